"""The kinds of value a setting holds, each parsed from its environment variable's text with an error that
names the variable; and the structured values (MiM's windows, the tracking policy)."""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from smsgw.fields import SENDER_ID_PATTERN

OFFICIAL_BASE_URL = "https://api.mimsms.com"


class ConfigError(ValueError):
    """A missing or malformed setting; the message names the variable."""


class Kind(Protocol):
    def parse(self, raw: str, name: str) -> Any:
        """The value of a set variable (stripped, not empty); ConfigError naming `name` when malformed."""
        ...


@dataclass(frozen=True)
class Text:
    def parse(self, raw: str, name: str) -> str:
        return raw


@dataclass(frozen=True)
class Number:
    """A number within [minimum, maximum]; `whole` for a count of something."""

    minimum: float
    maximum: float
    whole: bool = False

    def parse(self, raw: str, name: str) -> float | int:
        if self.whole:
            if not raw.isdigit():
                raise ConfigError(f"{name} must be a whole number, got {raw!r}")
            value: float | int = int(raw)
        else:
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not self.minimum <= value <= self.maximum:
            low, high = (f"{int(b)}" if self.whole else f"{b:g}" for b in (self.minimum, self.maximum))
            raise ConfigError(f"{name} must be between {low} and {high}, got {raw!r}")
        return value


def whole(minimum: int, maximum: int) -> Number:
    return Number(minimum, maximum, whole=True)


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]

    def parse(self, raw: str, name: str) -> str:
        if raw not in self.options:
            raise ConfigError(f"{name} must be one of {', '.join(self.options)}, got {raw!r}")
        return raw


@dataclass(frozen=True)
class Flag:
    def parse(self, raw: str, name: str) -> bool:
        text = raw.lower()
        if text not in ("true", "false"):
            raise ConfigError(f"{name} must be true or false, got {text!r}")
        return text == "true"


@dataclass(frozen=True)
class Parsed:
    """A value with a grammar of its own."""

    function: Callable[[str, str], Any]

    def parse(self, raw: str, name: str) -> Any:
        return self.function(raw, name)


@dataclass(frozen=True)
class RateLimit:
    """One of MiM's windows: at most `count` calls in any `seconds`."""

    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}"


def parse_rate_limits(raw: str, name: str = "MIMSMS_RATE_LIMITS") -> tuple[RateLimit, ...]:
    """`100/60,1000/3600` -> (RateLimit(100, 60), RateLimit(1000, 3600)), shortest window first."""
    limits = []
    for item in raw.split(","):
        count, sep, seconds = item.strip().partition("/")
        if not sep or not count.strip().isdigit() or not seconds.strip().isdigit():
            raise ConfigError(f"{name} must look like '100/60,1000/3600' (count/seconds), got {raw!r}")
        limit = RateLimit(int(count), int(seconds))
        if limit.count < 1 or limit.seconds < 1:
            raise ConfigError(f"{name} counts and windows must be positive, got {raw!r}")
        limits.append(limit)
    return tuple(sorted(limits, key=lambda limit: limit.seconds))


@dataclass(frozen=True)
class TrackingPolicy:
    """Which sent messages get delivery reports looked up: each look-up costs a call of the account's limit."""

    kind: Literal["all", "high", "sample", "none"] = "all"
    one_in: int = 1  # sample: one message in this many (chosen by request_id, so a copy is chosen alike)

    def tracks(self, request_id: str, priority: str) -> bool:
        if self.kind == "all":
            return True
        if self.kind == "high":
            return priority == "high"
        if self.kind == "sample":
            return priority == "high" or zlib.crc32(request_id.encode()) % self.one_in == 0
        return False

    def __str__(self) -> str:
        return f"sample:{self.one_in}" if self.kind == "sample" else self.kind


def parse_tracking_policy(raw: str, name: str = "TRACKING_POLICY") -> TrackingPolicy:
    """`all`, `high`, `sample:N` (one message in N, OTPs always) or `none`."""
    text = raw.strip().lower() or "all"
    if text in ("all", "high", "none"):
        return TrackingPolicy(text)  # type: ignore[arg-type]
    kind, _, number = text.partition(":")
    if kind == "sample" and number.isdigit() and int(number) >= 1:
        return TrackingPolicy("sample", int(number))
    raise ConfigError(f"{name} must be all, high, sample:N or none, got {raw!r}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_base_url(raw: str, name: str = "MIMSMS_BASE_URL") -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{name} must be an absolute URL such as {OFFICIAL_BASE_URL}, got {raw!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        # Credentials travel in every request body: plain HTTP only to a simulator on this machine.
        raise ConfigError(f"{name} must use https:// (http:// is allowed only for loopback hosts)")
    if parts.query or parts.fragment:
        raise ConfigError(f"{name} must not carry a query string or fragment")
    return raw.rstrip("/")


def sender_id(raw: str, name: str) -> str:
    if not SENDER_ID_PATTERN.fullmatch(raw):
        raise ConfigError(f"{name} must be 1-20 letters, digits, spaces or . _ & -")
    return raw
