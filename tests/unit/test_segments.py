import pytest

from smsgw.segments import MessageTooLong, check_length, segment


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
