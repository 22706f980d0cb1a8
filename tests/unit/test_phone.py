import pytest

from smsgw.phone import PhoneError, mask, normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("01712345678", "8801712345678"),
        ("8801712345678", "8801712345678"),
        ("+8801712345678", "8801712345678"),
        ("+880 1712-345678", "8801712345678"),
        ("+880 01712 345678", "8801712345678"),
        ("008801812345678", "8801812345678"),
        ("017-1234-5678", "8801712345678"),
        ("(017) 1234 5678", "8801712345678"),
        (" 01312345678 ", "8801312345678"),
        ("1912345678", "8801912345678"),
        ("01412345678", "8801412345678"),
        ("01512345678", "8801512345678"),
        ("01612345678", "8801612345678"),
        ("০১৭১২৩৪৫৬৭৮", "8801712345678"),  # Bangla digits, as typed on a Bangla keyboard
        ("+৮৮০ ১৯১২-৩৪৫৬৭৮", "8801912345678"),
        ("\u09e6\u09e7\u09ed\u09e7\u09e8345678", "8801712345678"),  # mixed scripts: still one number
    ],
)
def test_every_common_form_normalises(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0171234567", "wrong length"),
        ("017123456789", "wrong length"),
        ("88017123456789", "wrong length"),
        ("029876543", "landline"),
        ("+880 2 9876543", "landline"),
        ("+447911123456", "not a Bangladesh number"),
        ("+1 415 555 0100", "not a Bangladesh number"),
        ("01112345678", "prefix 011"),
        ("01212345678", "prefix 012"),
        ("0171234567a", "letters"),
        ("call me", "letters"),
        ("01712#345678", "characters other than digits"),
        ("", "empty"),
        ("  ", "empty"),
        ("01312345\uff16\uff17\uff18", "FULLWIDTH DIGIT SIX"),  # str.isdigit() takes these: the provider must not
        ("0171234\u0665\u0666\u0667\u0668", "ARABIC-INDIC DIGIT FIVE"),
        ("0171234\u06f5\u06f6\u06f7\u06f8", "EXTENDED ARABIC-INDIC DIGIT FIVE"),
        ("017123456\u00b28", "SUPERSCRIPT TWO"),
        ("0171234\u0915\u096b\u096c\u096d", "DEVANAGARI DIGIT FIVE"),  # the digits are named before any letter
    ],
)
def test_precise_errors(raw: str, reason: str) -> None:
    with pytest.raises(PhoneError, match=reason):
        normalise(raw)


@pytest.mark.parametrize("value", [None, 1712345678, ["01712345678"]])
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(PhoneError, match="must be a string"):
        normalise(value)


def test_error_text_never_repeats_the_number() -> None:
    with pytest.raises(PhoneError) as caught:
        normalise("0171234567")
    assert "171234567" not in str(caught.value)


def test_mask_keeps_prefix_and_last_two_digits() -> None:
    assert mask("8801712345678") == "88017******78"
    assert "12345" not in mask("8801712345678")
