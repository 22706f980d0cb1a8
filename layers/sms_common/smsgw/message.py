"""The producer's message (README, "Publishing a message"): parse an SQS body into an SmsRequest, or say what is wrong.

Validation errors carry the contract's error code and a sentence naming the field. They are final:
the send path records them as `failed` and never retries them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from smsgw import phone as phones
from smsgw import segments

Priority = Literal["normal", "high"]
MessageType = Literal["transactional", "promotional"]

DHAKA = timezone(timedelta(hours=6), "Asia/Dhaka")  # Bangladesh keeps no daylight saving time
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SENDER_ID_PATTERN = re.compile(r"^[A-Za-z0-9 ._&-]{1,20}$")
MAX_METADATA_BYTES = 2048
FIELDS = frozenset(
    {
        "phone",
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


class InvalidRequest(ValueError):
    """A body that breaks the contract. `request_id` is set when the body named a usable one."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True)
class SmsRequest:
    request_id: str
    phone: str  # normalised 8801XXXXXXXXX
    text: str = field(repr=False)  # message text is never logged
    segmentation: segments.Segmentation
    sender_id: str | None = None
    priority: Priority = "normal"
    schedule_time: datetime | None = None  # timezone-aware
    valid_until: datetime | None = None  # timezone-aware: not sent after this
    type: MessageType = "transactional"
    campaign_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def _optional_str(body: dict[str, Any], name: str, request_id: str | None) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("invalid_request", f"{name} must be a non-empty string", request_id)
    return value.strip()


def _choice(body: dict[str, Any], name: str, choices: tuple[str, ...], request_id: str | None) -> str:
    value = body.get(name, choices[0])
    if value not in choices:
        allowed = " or ".join(f'"{c}"' for c in choices)
        raise InvalidRequest("invalid_request", f"{name} must be {allowed}", request_id)
    return str(value)


def parse_schedule_time(value: object, name: str = "schedule_time") -> datetime:
    """`YYYY-MM-DD HH:MM:SS` in Asia/Dhaka, or ISO 8601 with an offset; returned timezone-aware."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", text):
            return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=DHAKA)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(
            f"{name} must be 'YYYY-MM-DD HH:MM:SS' (Asia/Dhaka) or ISO 8601 with an offset, "
            "e.g. 2025-01-20T10:00:00+06:00"
        )
    return parsed


def _metadata(body: dict[str, Any], request_id: str | None) -> dict[str, str]:
    value = body.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidRequest("invalid_request", "metadata must be an object whose values are strings", request_id)
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_METADATA_BYTES:
        raise InvalidRequest(
            "invalid_request", f"metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are allowed", request_id
        )
    return dict(value)


def parse_request(body: str, *, default_request_id: str) -> SmsRequest:
    """Validate one SQS body against the contract. Raises InvalidRequest."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        raise InvalidRequest("invalid_request", "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("invalid_request", "body must be a JSON object")

    raw_id = data.get("request_id")
    if raw_id is None:
        request_id = default_request_id
    elif isinstance(raw_id, str) and REQUEST_ID_PATTERN.fullmatch(raw_id):
        request_id = raw_id
    else:
        raise InvalidRequest("invalid_request", "request_id must be 1-128 characters of A-Z a-z 0-9 . _ : -")

    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise InvalidRequest("invalid_request", f"unknown field(s): {', '.join(unknown)}", request_id)

    if "phone" not in data:
        raise InvalidRequest("invalid_phone", "phone is required", request_id)
    try:
        phone = phones.normalise(data["phone"])
    except phones.PhoneError as exc:
        raise InvalidRequest(exc.code, str(exc), request_id) from None

    text = data.get("message")
    if not isinstance(text, str):
        raise InvalidRequest("invalid_request", "message is required and must be a string", request_id)
    if not text.strip():
        raise InvalidRequest("invalid_request", "message is empty", request_id)
    try:
        segmentation = segments.check_length(text)
    except segments.MessageTooLong as exc:
        raise InvalidRequest(exc.code, str(exc), request_id) from None

    sender_id = _optional_str(data, "sender_id", request_id)
    if sender_id is not None and not SENDER_ID_PATTERN.fullmatch(sender_id):
        raise InvalidRequest("invalid_sender_id", "sender_id must be 1-20 letters, digits or spaces", request_id)

    times: dict[str, datetime | None] = {"schedule_time": None, "valid_until": None}
    for name in times:
        if data.get(name) is not None:
            try:
                times[name] = parse_schedule_time(data[name], name)
            except ValueError as exc:
                raise InvalidRequest("invalid_request", str(exc), request_id) from None

    return SmsRequest(
        request_id=request_id,
        phone=phone,
        text=text,
        segmentation=segmentation,
        sender_id=sender_id,
        priority=_choice(data, "priority", ("normal", "high"), request_id),  # type: ignore[arg-type]
        schedule_time=times["schedule_time"],
        valid_until=times["valid_until"],
        type=_choice(data, "type", ("transactional", "promotional"), request_id),  # type: ignore[arg-type]
        campaign_id=_optional_str(data, "campaign_id", request_id),
        metadata=_metadata(data, request_id),
    )
