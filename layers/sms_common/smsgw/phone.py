"""Bangladesh mobile numbers: normalise any common form to `8801XXXXXXXXX`, or say precisely why not."""

from __future__ import annotations

import re
import unicodedata

from smsgw.errors import ErrorCode

COUNTRY_CODE = "880"
# 013/017 Grameenphone, 014/019 Banglalink, 015 Teletalk, 016/018 Robi. Numbers are portable,
# so the prefix says nothing reliable about the operator; it only tells a mobile number apart.
_MOBILE_PREFIXES = frozenset("3456789")
_SEPARATORS = re.compile(r"[\s\-.()/]")
_BANGLA_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")  # as written on Bangla keyboards and forms
_ASCII_DIGITS = frozenset("0123456789")


class PhoneError(ValueError):
    """The number is not a Bangladesh mobile number; the message says why."""

    code = ErrorCode.INVALID_PHONE


def normalise(raw: object) -> str:
    """Return the number as `8801XXXXXXXXX` (13 digits, no `+`)."""
    if not isinstance(raw, str):
        raise PhoneError("phone must be a string")
    text = _SEPARATORS.sub("", raw.strip())
    if not text:
        raise PhoneError("phone is empty")
    international = False
    if text.startswith("+"):
        international, text = True, text[1:]
    elif text.startswith("00"):
        international, text = True, text[2:]
    text = text.translate(_BANGLA_DIGITS)
    _check_digits(text)
    if international and not text.startswith(COUNTRY_CODE):
        raise PhoneError("phone is not a Bangladesh number (country code must be +880)")
    national = _national(text)
    if not national.startswith("1"):
        raise PhoneError("phone is a landline or not a mobile number: Bangladesh mobile numbers start with 01")
    if len(national) != 10:
        raise PhoneError(
            f"phone has the wrong length: {len(national) + 1} digits in local form; "
            "a Bangladesh mobile number has 11 (01XXXXXXXXX)"
        )
    if national[1] not in _MOBILE_PREFIXES:
        raise PhoneError(f"phone prefix 01{national[1]} is not a Bangladesh mobile operator prefix (013-019)")
    return COUNTRY_CODE + national


def _check_digits(text: str) -> None:
    """Only 0-9 are left once separators and Bangla digits are dealt with; else say what is there."""
    if all(ch in _ASCII_DIGITS for ch in text):
        return
    foreign = next((ch for ch in text if ch not in _ASCII_DIGITS and unicodedata.digit(ch, None) is not None), None)
    if foreign is not None:  # str.isdigit() would take these, and the provider would get them
        name = unicodedata.name(foreign, "a digit")
        raise PhoneError(f"phone contains {name} (U+{ord(foreign):04X}): write the digits as 0-9 or as Bangla digits")
    if any(ch.isalpha() for ch in text):
        raise PhoneError("phone contains letters; expected digits such as 01712345678")
    raise PhoneError("phone contains characters other than digits, spaces, dashes and a leading +")


def _national(text: str) -> str:
    """The number without its country code or trunk 0 (`1XXXXXXXXX` for a mobile number)."""
    if text.startswith(COUNTRY_CODE):
        national = text[len(COUNTRY_CODE) :]
        return national[1:] if national.startswith("0") else national  # +880 01712...: a common mistake
    return text[1:] if text.startswith("0") else text


def mask(phone: str) -> str:
    """For logs: keep the operator prefix and the last two digits, `88017*******78`."""
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:5] + "*" * (len(phone) - 7) + phone[-2:]
