"""SMS encoding and part count, computed before any provider call.

GSM-7: 160 septets in one part, 153 per part when split; the extension characters take two septets.
Anything outside GSM-7 makes the whole text UCS-2: 70 units in one part, 67 per part when split, and
characters beyond the Basic Multilingual Plane (emoji) take two units. A character is never split
across two parts, which is how handsets and SMSCs concatenate, so the count can exceed a plain division.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from smsgw.errors import ErrorCode

Encoding = Literal["gsm7", "ucs2"]
MAX_PARTS = 10

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

_LIMITS: dict[Encoding, tuple[int, int]] = {"gsm7": (160, 153), "ucs2": (70, 67)}

# Characters that force UCS-2 but look like GSM-7 ones: typographic quotes, dashes, the ellipsis, odd
# spaces and invisible ones. Word processors and phones put them in English text, where one of them
# would cost a 150-character message two more parts (70 a part instead of 160).
_LOOK_ALIKES: dict[int, str] = {
    **dict.fromkeys(map(ord, "\u2018\u2019\u201a\u201b\u2032\u00b4\u0060"), "'"),
    **dict.fromkeys(map(ord, "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"), '"'),
    **dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"), "-"),
    ord("\u2026"): "...",
    ord("\u2044"): "/",
    **dict.fromkeys(
        map(ord, "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"), " "
    ),  # odd spaces
    **dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), ""),  # zero-width, soft hyphen
}


class MessageTooLong(ValueError):
    code = ErrorCode.MESSAGE_TOO_LONG


@dataclass(frozen=True, eq=False)
class Segmentation:
    """How a text is sent: its encoding, its length in that encoding's units, and its parts."""

    encoding: Encoding
    units: int  # septets for gsm7, UTF-16 code units for ucs2
    parts: int


def _unit_costs(text: str) -> tuple[Encoding, list[int]]:
    if is_gsm7(text):
        return "gsm7", [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return "ucs2", [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def segment(text: str) -> Segmentation:
    encoding, costs = _unit_costs(text)
    single, per_part = _LIMITS[encoding]
    units = sum(costs)
    if units <= single:
        return Segmentation(encoding, units, 1)
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return Segmentation(encoding, units, parts)


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def smart_encode(text: str) -> str:
    """`text` with its GSM-7 look-alikes replaced, when that makes the whole text GSM-7; else `text` as it
    is: Bangla, emoji or anything else that needs UCS-2 anyway is never touched."""
    if is_gsm7(text):
        return text
    replaced = text.translate(_LOOK_ALIKES)
    return replaced if is_gsm7(replaced) else text


def check_length(text: str, max_parts: int = MAX_PARTS) -> Segmentation:
    """Segment `text`, raising MessageTooLong when it needs more than `max_parts` parts."""
    seg = segment(text)
    if seg.parts > max_parts:
        _single, per_part = _LIMITS[seg.encoding]
        raise MessageTooLong(
            f"message needs {seg.parts} SMS parts as {seg.encoding.upper()}; at most {max_parts} are allowed "
            f"({max_parts * per_part} {'GSM-7 characters' if seg.encoding == 'gsm7' else 'UCS-2 units'})"
        )
    return seg
