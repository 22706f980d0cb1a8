"""Settings read once from the environment into a frozen object.

Nothing reads the environment at import time: `get_settings()` does it on first use and caches
the result, so tests set variables and call `get_settings.cache_clear()` instead of reloading modules.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from smsgw.message import SENDER_ID_PATTERN

Dialect = Literal["generic", "official"]
DIALECTS: tuple[Dialect, ...] = ("generic", "official")
OFFICIAL_BASE_URL = "https://api.mimsms.com"
# The integration guide's limits (per minute, hour, day); MiM states the same for the account.
DEFAULT_RATE_LIMITS = "100/60,1000/3600,10000/86400"


class ConfigError(ValueError):
    """A missing or malformed setting; the message names the variable."""


@dataclass(frozen=True)
class RateLimit:
    """One of MiM's windows: at most `count` calls in any `seconds`."""

    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}"


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


def parse_tracking_policy(raw: str, *, name: str = "TRACKING_POLICY") -> TrackingPolicy:
    """`all`, `high`, `sample:N` (one message in N, OTPs always) or `none`."""
    text = raw.strip().lower() or "all"
    if text in ("all", "high", "none"):
        return TrackingPolicy(text)  # type: ignore[arg-type]
    kind, _, number = text.partition(":")
    if kind == "sample" and number.isdigit() and int(number) >= 1:
        return TrackingPolicy("sample", int(number))
    raise ConfigError(f"{name} must be all, high, sample:N or none, got {raw!r}")


@dataclass(frozen=True, eq=False)
class Settings:
    """The service's configuration, read once from the environment (`get_settings`)."""

    messages_table: str
    secret_id: str
    dialect: Dialect
    base_url: str
    rate_limits: tuple[RateLimit, ...]
    price_per_part: float = 0.50
    send_concurrency: int = 10
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    secret_max_age: int = 300
    record_retention_days: int = 90
    default_sender_id: str | None = None  # when neither the message nor the credentials secret names one
    smart_encoding: bool = True  # replace GSM-7 look-alikes (curly quotes, dashes) that would force UCS-2
    # Delivery reports, balance, status events (poll_status; the send path reads the gate and publishes too).
    event_bus: str = "default"
    event_source: str = "sms-gateway"
    balance_gate_parameter: str | None = None  # SSM parameter holding the gate; None: no gate
    balance_floor: float = 10.0
    balance_check_seconds: int = 240  # how often the open gate's balance is read (closed: every run)
    tracking_window_hours: float = 72.0
    maybe_sent_grace_seconds: int = 900
    report_delay_seconds: float = 60.0  # first look at a report after sending, and the back-off unit
    poll_concurrency: int = 5
    send_queue_url: str = ""  # where held and deferred messages are published again
    # The account-wide limiter (smsgw.limiter) and waiting for capacity outside the function.
    control_table: str = ""  # the DynamoDB table holding the limiter's item
    otp_share: float = 0.2  # share of each window bulk traffic leaves to OTPs while they wait
    bulk_burst: float = 1 / 6  # of the shortest window's ceiling: how far bulk may run ahead of its pace
    priority_queue_url: str | None = None  # where deferred `high` messages go back to (their own queue)
    max_defer_seconds: int = 900  # SQS's longest delay; a longer wait is several hops
    # Retries per outcome class: not-sent answers come back with back-off, then fail; an outage pauses everyone.
    max_send_attempts: int = 5
    tracking: TrackingPolicy = TrackingPolicy()
    max_message_age_seconds: int = 86400  # a message without valid_until is not sent later than this; 0: no limit
    retry_base_seconds: float = 10.0
    outage_failures: int = 5  # not-sent failures in a row (all instances) that start a cool-down
    rate_slack_seconds: float = 1.0  # the most time between taking capacity and the request reaching MiM
    max_clock_skew_seconds: float = 1.0  # how far apart the instances' clocks may be while the limit holds
    outage_cooldown_seconds: float = 60.0  # the first cool-down; each further one in a row doubles
    bulk_chunk_size: int = 100  # numbers of a bulk request per provider request (the dialect may allow fewer)


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required but not set")
    return value


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float, maximum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum:g} and {maximum:g}, got {raw!r}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigError(f"{name} must be a whole number, got {raw!r}")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {raw!r}")
    return value


def parse_rate_limits(raw: str, *, name: str = "MIMSMS_RATE_LIMITS") -> tuple[RateLimit, ...]:
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_base_url(raw: str, *, name: str = "MIMSMS_BASE_URL") -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{name} must be an absolute URL such as {OFFICIAL_BASE_URL}, got {raw!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        # Credentials travel in every request body: plain HTTP only to a simulator on this machine.
        raise ConfigError(f"{name} must use https:// (http:// is allowed only for loopback hosts)")
    if parts.query or parts.fragment:
        raise ConfigError(f"{name} must not carry a query string or fragment")
    return raw.rstrip("/")


def load_settings(env: Mapping[str, str]) -> Settings:
    dialect = env.get("MIMSMS_API", "").strip() or "official"
    if dialect not in DIALECTS:
        raise ConfigError(f"MIMSMS_API must be one of {', '.join(DIALECTS)}, got {dialect!r}")
    base_url = env.get("MIMSMS_BASE_URL", "").strip()
    if not base_url:
        if dialect != "official":
            raise ConfigError("MIMSMS_BASE_URL is required when MIMSMS_API is 'generic'")
        base_url = OFFICIAL_BASE_URL
    gate = env.get("BALANCE_GATE_PARAMETER", "").strip() or None
    sender = env.get("DEFAULT_SENDER_ID", "").strip() or None
    if sender is not None and not SENDER_ID_PATTERN.fullmatch(sender):
        raise ConfigError("DEFAULT_SENDER_ID must be 1-20 letters, digits, spaces or . _ & -")
    smart = env.get("SMART_ENCODING", "").strip().lower() or "true"
    if smart not in ("true", "false"):
        raise ConfigError(f"SMART_ENCODING must be true or false, got {smart!r}")
    return Settings(
        default_sender_id=sender,
        smart_encoding=smart == "true",
        messages_table=_required(env, "MESSAGES_TABLE"),
        secret_id=_required(env, "MIMSMS_SECRET_ID"),
        dialect=dialect,
        base_url=validate_base_url(base_url),
        rate_limits=parse_rate_limits(env.get("MIMSMS_RATE_LIMITS", "").strip() or DEFAULT_RATE_LIMITS),
        price_per_part=_number(env, "PRICE_PER_PART_BDT", 0.50, minimum=0, maximum=100),
        send_concurrency=_integer(env, "SEND_CONCURRENCY", 10, minimum=1, maximum=64),
        connect_timeout=_number(env, "HTTP_CONNECT_TIMEOUT_SECONDS", 3.05, minimum=0.1, maximum=30),
        read_timeout=_number(env, "HTTP_READ_TIMEOUT_SECONDS", 10.0, minimum=0.1, maximum=120),
        secret_max_age=_integer(env, "SECRET_CACHE_SECONDS", 300, minimum=0, maximum=86400),
        record_retention_days=_integer(env, "RECORD_RETENTION_DAYS", 90, minimum=1, maximum=3650),
        event_bus=env.get("STATUS_EVENT_BUS", "").strip() or "default",
        event_source=env.get("STATUS_EVENT_SOURCE", "").strip() or "sms-gateway",
        balance_gate_parameter=gate,
        balance_floor=_number(env, "BALANCE_FLOOR_BDT", 10.0, minimum=0, maximum=1_000_000),
        balance_check_seconds=_integer(env, "BALANCE_CHECK_SECONDS", 240, minimum=0, maximum=86400),
        tracking_window_hours=_number(env, "TRACKING_WINDOW_HOURS", 72.0, minimum=0.01, maximum=24 * 30),
        maybe_sent_grace_seconds=_integer(env, "MAYBE_SENT_GRACE_SECONDS", 900, minimum=0, maximum=7 * 86400),
        report_delay_seconds=_number(env, "REPORT_DELAY_SECONDS", 60.0, minimum=0.1, maximum=3600),
        poll_concurrency=_integer(env, "POLL_CONCURRENCY", 5, minimum=1, maximum=32),
        # Held and deferred messages go back to the queue: without it they could never return.
        send_queue_url=_required(env, "SEND_QUEUE_URL"),
        control_table=_required(env, "CONTROL_TABLE"),
        otp_share=_number(env, "OTP_RESERVED_SHARE", 0.2, minimum=0, maximum=0.9),
        bulk_burst=_number(env, "BULK_BURST_SHARE", 1 / 6, minimum=0.01, maximum=1),
        priority_queue_url=env.get("PRIORITY_QUEUE_URL", "").strip() or None,
        max_defer_seconds=_integer(env, "MAX_DEFER_SECONDS", 900, minimum=1, maximum=900),
        max_send_attempts=_integer(env, "MAX_SEND_ATTEMPTS", 5, minimum=1, maximum=50),
        tracking=parse_tracking_policy(env.get("TRACKING_POLICY", "")),
        max_message_age_seconds=_integer(env, "MAX_MESSAGE_AGE_SECONDS", 86400, minimum=0, maximum=14 * 86400),
        retry_base_seconds=_number(env, "RETRY_BASE_SECONDS", 10.0, minimum=0.01, maximum=900),
        outage_failures=_integer(env, "OUTAGE_FAILURES", 5, minimum=1, maximum=1000),
        rate_slack_seconds=_number(env, "RATE_SLACK_SECONDS", 1.0, minimum=0.01, maximum=60),
        max_clock_skew_seconds=_number(env, "MAX_CLOCK_SKEW_SECONDS", 1.0, minimum=0, maximum=60),
        outage_cooldown_seconds=_number(env, "OUTAGE_COOLDOWN_SECONDS", 60.0, minimum=0.01, maximum=3600),
        bulk_chunk_size=_integer(env, "BULK_CHUNK_SIZE", 100, minimum=1, maximum=1000),
    )


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings(os.environ)
