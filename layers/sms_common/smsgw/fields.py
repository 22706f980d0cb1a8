"""The contract's fields one by one: their limits and patterns, and a validator for each kind of field.

Every failure is an InvalidRequest with the contract's error code and a sentence naming the field.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from smsgw.errors import ErrorCode

DHAKA = timezone(timedelta(hours=6), "Asia/Dhaka")  # Bangladesh keeps no daylight saving time
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SENDER_ID_PATTERN = re.compile(r"^[A-Za-z0-9 ._&-]{1,20}$")
# SQS's classic limit: a bulk body of 1,000 personal texts fits; a scheduled one is stored whole in its
# record (DynamoDB items hold 400 KB).
MAX_BODY_BYTES = 256 * 1024
MAX_METADATA_BYTES = 2048
MAX_CAMPAIGN_ID_CHARS = 128
MAX_METADATA_KEY_CHARS = 128
MAX_ERROR_MESSAGE_CHARS = 300  # error messages quote the body: bounded, so a hostile one cannot grow a record
# Control characters other than line breaks would reach the handset as garbage (or end the text early).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]")
IDENTIFIER_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # in names and ids, no line breaks either
# A lone surrogate (`"\ud800"` in JSON) is not Unicode: DynamoDB and the provider cannot encode it.
LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
FIELDS = frozenset(
    {
        "action",
        "phone",
        "phones",
        "messages",
        "message",
        "request_id",
        "sender_id",
        "priority",
        "schedule_time",
        "valid_until",
        "type",
        "campaign_id",
        "metadata",
    }
)
MAX_BULK_NUMBERS = 1000  # numbers (phones) or texts (messages) in one bulk request
MAX_BULK_REQUEST_ID_CHARS = 128 - 14  # a child's record is `<request_id>:<8801XXXXXXXXX>`, itself a request_id
CANCEL_FIELDS = frozenset({"action", "request_id"})  # a cancel names its target and nothing else
ENTRY_FIELDS = frozenset({"phone", "message"})  # one entry of a personalised bulk request (`messages`)
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
MAX_SCHEDULE_DAYS = 30  # how far ahead a message may be scheduled (the service holds it until then)


def bounded(text: str, limit: int = MAX_ERROR_MESSAGE_CHARS) -> str:
    """An error message as stored: whatever the body (or a provider, or a proxy's error page) said, short."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class InvalidRequest(ValueError):
    """A body that breaks the contract. `request_id` is set when the body named a usable one."""

    def __init__(self, code: ErrorCode, message: str, request_id: str | None = None) -> None:
        message = bounded(message)
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


def quote(text: str, limit: int = 40) -> str:
    """A piece of the body for an error message: escaped (no control characters or surrogates) and short."""
    quoted = ascii(text[: limit + 1])
    return quoted if len(text) <= limit else quoted[:-1] + "...'"


def optional_str(body: dict[str, Any], name: str, request_id: str | None, max_chars: int = 0) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, f"{name} must be a non-empty string", request_id)
    if max_chars and len(value.strip()) > max_chars:
        raise InvalidRequest(
            ErrorCode.INVALID_REQUEST, f"{name} is {len(value.strip())} characters; at most {max_chars}", request_id
        )
    if IDENTIFIER_CONTROLS.search(value):
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, f"{name} contains control characters", request_id)
    return value.strip()


def choice_of(body: dict[str, Any], name: str, choices: tuple[str, ...], request_id: str | None) -> str:
    value = body.get(name)
    if value is None:  # null means absent, as for every optional field
        return choices[0]
    if value not in choices:
        allowed = " or ".join(f'"{c}"' for c in choices)
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, f"{name} must be {allowed}", request_id)
    return str(value)


def parse_schedule_time(value: object, name: str = "schedule_time") -> datetime:
    """`YYYY-MM-DD HH:MM:SS` in Asia/Dhaka, or ISO 8601 with an offset; returned timezone-aware."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", text):
            parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=DHAKA)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(
            f"{name} must be 'YYYY-MM-DD HH:MM:SS' (Asia/Dhaka) or ISO 8601 with an offset, "
            "e.g. 2025-01-20T10:00:00+06:00"
        )
    try:  # 0001-01-01 with a positive offset, or 9999-12-31 with a negative one, is no instant at all
        in_range = EARLIEST <= parsed.astimezone(UTC) < LATEST
    except (OverflowError, ValueError):
        in_range = False
    if not in_range:
        raise ValueError(f"{name} must lie between {EARLIEST.year} and {LATEST.year - 1}")
    return parsed


def metadata_of(body: dict[str, Any], request_id: str | None) -> dict[str, str]:
    value = body.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidRequest(
            ErrorCode.INVALID_REQUEST, "metadata must be an object whose values are strings", request_id
        )
    for key in value:
        if not key.strip() or len(key) > MAX_METADATA_KEY_CHARS or IDENTIFIER_CONTROLS.search(key):
            # DynamoDB refuses an empty attribute name, even inside a map
            raise InvalidRequest(
                ErrorCode.INVALID_REQUEST,
                f"metadata keys must be 1-{MAX_METADATA_KEY_CHARS} characters, "
                f"not blank and without control characters: {quote(key)}",
                request_id,
            )
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_METADATA_BYTES:
        raise InvalidRequest(
            ErrorCode.INVALID_REQUEST,
            f"metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are allowed",
            request_id,
        )
    return dict(value)


class RepeatedField(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def unique_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique: `{"phone": A, "phone": B}` is ambiguous, not "the last one"."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise RepeatedField(key)
        result[key] = value
    return result


def lone_surrogate(data: dict[str, Any]) -> str | None:
    """Where the first lone surrogate is, at any depth, in a key or a value: `message`, `metadata`,
    `messages[3].message`, `phones[2]` (an unknown field's name quoted: it is the producer's text; a key
    inside an object is never quoted, its object is named instead). Walked without recursion: a body
    nested as deeply as json.loads allows must not exhaust the stack here."""
    pending: list[tuple[str, Any]] = []
    for name, value in reversed(data.items()):
        if LONE_SURROGATE.search(name):
            return "a field name"
        pending.append((name if name in FIELDS else quote(name), value))
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if LONE_SURROGATE.search(value):
                return path
        elif isinstance(value, dict):
            if any(LONE_SURROGATE.search(key) for key in value):
                return path
            # A bulk entry's own fields are named; anything else is named by the object that holds it.
            pending.extend(
                (f"{path}.{key}" if key in ENTRY_FIELDS else path, item) for key, item in reversed(value.items())
            )
        elif isinstance(value, list):
            pending.extend((f"{path}[{position}]", item) for position, item in reversed(list(enumerate(value, 1))))
    return None


def usable_request_id(data: dict[str, Any]) -> str | None:
    raw = data.get("request_id")
    return raw if isinstance(raw, str) and REQUEST_ID_PATTERN.fullmatch(raw) else None
