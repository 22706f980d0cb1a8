"""SMS encoding and part count, computed before any provider call.

GSM-7: 160 septets in one part, 153 per part when split; the extension characters take two septets.
Anything outside GSM-7 makes the whole text UCS-2: 70 units in one part, 67 per part when split, and
characters beyond the Basic Multilingual Plane (emoji) take two units. A character is never split
across two parts, which is how handsets and SMSCs concatenate, so the count can exceed a plain division.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["gsm7", "ucs2"]
MAX_PARTS = 10

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

_LIMITS: dict[Encoding, tuple[int, int]] = {"gsm7": (160, 153), "ucs2": (70, 67)}


class MessageTooLong(ValueError):
    code = "message_too_long"


@dataclass(frozen=True)
class Segmentation:
    encoding: Encoding
    units: int  # septets for gsm7, UTF-16 code units for ucs2
    parts: int


def _unit_costs(text: str) -> tuple[Encoding, list[int]]:
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
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
