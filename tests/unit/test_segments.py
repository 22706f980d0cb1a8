import pytest

from smsgw.segments import MessageTooLong, check_length, segment, smart_encode


@pytest.mark.parametrize(
    ("text", "encoding", "parts"),
    [
        ("a", "gsm7", 1),
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),
        ("a" * 306, "gsm7", 2),
        ("a" * 307, "gsm7", 3),
        ("a" * 1530, "gsm7", 10),
        ("€" * 80, "gsm7", 1),  # the euro sign takes two septets
        ("€" * 81, "gsm7", 2),
        ("{" + "a" * 159, "gsm7", 2),  # 161 septets
        ("আ" * 70, "ucs2", 1),
        ("আ" * 71, "ucs2", 2),
        ("আ" * 134, "ucs2", 2),
        ("আ" * 135, "ucs2", 3),
        ("আ" * 670, "ucs2", 10),
        ("😀" * 35, "ucs2", 1),  # an emoji takes two UCS-2 units
        ("😀" * 36, "ucs2", 2),
        ("a" * 159 + "😀", "ucs2", 3),  # one emoji turns the whole text into UCS-2
        ("Hello ওটিপি", "ucs2", 1),
    ],
)
def test_encoding_and_parts(text: str, encoding: str, parts: int) -> None:
    result = segment(text)
    assert (result.encoding, result.parts) == (encoding, parts)


def test_units_count_extension_characters_and_emoji_twice() -> None:
    assert segment("a^b").units == 4
    assert segment("a😀").units == 3


def test_a_double_character_is_not_split_across_parts() -> None:
    # 152 plain septets then '€': 154 units; a split part holds 153, so '€' opens part two.
    assert segment("a" * 152 + "€" + "a" * 152).parts == 3
    # The same for a surrogate pair at the UCS-2 part boundary.
    assert segment("আ" * 66 + "😀" + "আ" * 66).parts == 3


@pytest.mark.parametrize("text", ["a" * 1531, "আ" * 671, "😀" * 336, "€" * 766])
def test_more_than_ten_parts_is_too_long(text: str) -> None:
    with pytest.raises(MessageTooLong, match="at most 10"):
        check_length(text)


def test_ten_parts_exactly_is_allowed() -> None:
    assert check_length("a" * 1530).parts == 10


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("It\u2019s \u201cdone\u201d \u2014 thanks\u2026", 'It\'s "done" - thanks...'),
        ("Price\u00a0100\u2009BDT \u2013 today", "Price 100 BDT - today"),
        ("soft\u00adhyphen and zero\u200bwidth", "softhyphen and zerowidth"),
        ("plain ASCII stays", "plain ASCII stays"),
    ],
)
def test_look_alikes_become_gsm7(text: str, sent: str) -> None:
    assert smart_encode(text) == sent
    assert segment(smart_encode(text)).encoding == "gsm7"


@pytest.mark.parametrize(
    "text",
    [
        "\u0986\u09aa\u09a8\u09be\u09b0 \u201c\u0995\u09cb\u09a1\u201d \u2014 \u09ea\u09e9\u09e8\u09e7",  # Bangla
        "Great news \U0001f389 \u2014 it\u2019s here",  # an emoji needs UCS-2 anyway
        "\u4e2d\u6587 \u2019",
    ],
)
def test_text_that_needs_ucs2_anyway_is_left_exactly_as_written(text: str) -> None:
    assert smart_encode(text) == text


def test_one_curly_apostrophe_no_longer_triples_an_english_message() -> None:
    text = (
        "Dear customer, your order #4821 has shipped and will arrive tomorrow. We\u2019ll text you "
        "when it is out for delivery. Thank you for shopping."
    )
    assert len(text) <= 160
    assert (segment(text).encoding, segment(text).parts) == ("ucs2", 3)
    assert (segment(smart_encode(text)).encoding, segment(smart_encode(text)).parts) == ("gsm7", 1)
