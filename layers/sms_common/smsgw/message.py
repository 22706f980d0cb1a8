"""The producer's message (docs/contract.md, section 1): parse an SQS body into an SmsRequest, or say what
is wrong.

Validation errors carry the contract's error code and a sentence naming the field. They are final:
the send path records them as `failed` and never retries them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from smsgw import phone as phones
from smsgw import segments
from smsgw.errors import ErrorCode
from smsgw.fields import (
    CANCEL_FIELDS,
    CONTROL_CHARACTERS,
    ENTRY_FIELDS,
    FIELDS,
    MAX_BODY_BYTES,
    MAX_BULK_NUMBERS,
    MAX_BULK_REQUEST_ID_CHARS,
    MAX_CAMPAIGN_ID_CHARS,
    MAX_SCHEDULE_DAYS,
    REQUEST_ID_PATTERN,
    SENDER_ID_PATTERN,
    InvalidRequest,
    RepeatedField,
    bounded,
    choice_of,
    lone_surrogate,
    metadata_of,
    optional_str,
    parse_schedule_time,
    quote,
    unique_fields,
    usable_request_id,
)

Priority = Literal["normal", "high"]
MessageType = Literal["transactional", "promotional"]

# The contract's limits and validators live in smsgw.fields; these are re-exported for callers.
__all__ = [
    "FIELDS",
    "MAX_SCHEDULE_DAYS",
    "REQUEST_ID_PATTERN",
    "SENDER_ID_PATTERN",
    "BulkRequest",
    "CancelRequest",
    "InvalidChild",
    "InvalidRequest",
    "MessageType",
    "Parsed",
    "Priority",
    "SmsRequest",
    "bounded",
    "child_request_id",
    "parse_message",
    "parse_request",
    "parse_schedule_time",
]


@dataclass(frozen=True, eq=False)
class SmsRequest:
    """One SMS to send, validated and normalised: what the contract's message means."""

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
    parent_id: str | None = None  # the bulk request this SMS is one number of


@dataclass(frozen=True, eq=False)
class InvalidChild:
    """A number of a bulk request that cannot be sent: recorded `failed` on its own record."""

    request_id: str
    code: str
    message: str


@dataclass(frozen=True, eq=False)
class BulkRequest:
    """`phones` or `messages`: one request, an SMS (a record) per number, sent in chunks."""

    request_id: str
    children: tuple[SmsRequest, ...]  # each keyed `<request_id>:<phone>`, the shared fields on each
    invalid: tuple[InvalidChild, ...]
    personal: bool  # messages (a text per number) rather than phones (one text)
    priority: Priority = "normal"
    schedule_time: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True)
class CancelRequest:
    """`{"action": "cancel", "request_id": ...}`: cancel that message unless it has gone to the provider."""

    request_id: str  # the message to cancel (the cancel itself has no identity of its own)


def parse_request(body: str, *, default_request_id: str, smart_encoding: bool = True) -> SmsRequest:
    """A body that must be one SMS to send (a cancel or a bulk request is refused): see parse_message."""
    parsed = parse_message(body, default_request_id=default_request_id, smart_encoding=smart_encoding)
    if isinstance(parsed, CancelRequest):
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, "a cancel, not a message to send")
    if isinstance(parsed, BulkRequest):
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, "a bulk request, not one message", parsed.request_id)
    return parsed


Parsed = SmsRequest | BulkRequest | CancelRequest


def parse_message(body: str, *, default_request_id: str, smart_encoding: bool = True) -> Parsed:
    """Validate one SQS body against the contract: a message to send, or a cancel of one. Raises
    InvalidRequest, and nothing else, for any body.

    With `smart_encoding` the text is what will be sent: GSM-7 look-alikes replaced where that keeps it
    GSM-7 (segments.smart_encode), and its parts counted after that."""
    data, usable_id = _decode(body)
    action = data.get("action")
    if action == "cancel":
        return _cancel_request(data)
    if action not in (None, "send"):
        # Not knowing what the body meant, its request_id may be a cancel's target: the failure is
        # recorded under the SQS message id, never on a message it might name.
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, 'action must be "send" (the default) or "cancel"')
    return _send_request(data, usable_id, default_request_id, smart_encoding)


def _cancel_request(data: dict[str, Any]) -> CancelRequest:
    """A cancel's failures are recorded under its SQS message id: its request_id names another message."""
    extra = sorted(set(data) - CANCEL_FIELDS)
    if extra:
        named = ", ".join(quote(name) for name in extra[:5])
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, f"a cancel carries only action and request_id, not {named}")
    target = usable_request_id(data)
    if target is None:
        raise InvalidRequest(
            ErrorCode.INVALID_REQUEST,
            "a cancel needs the request_id of the message to cancel (1-128 characters of A-Z a-z 0-9 . _ : -)",
        )
    return CancelRequest(target)


def _decode(body: str) -> tuple[dict[str, Any], str | None]:
    """The body as one JSON object of unique, valid-Unicode fields within the size limit, and its usable
    request_id (when it names one); else InvalidRequest."""
    if not isinstance(body, str):
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, "body must be text")
    repeated: str | None = None
    try:
        try:
            data = json.loads(body, object_pairs_hook=unique_fields)
        except RepeatedField as exc:
            repeated, data = exc.name, json.loads(body)  # read again only to find the request_id
    except RecursionError:
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, "body is nested too deeply") from None
    except (ValueError, TypeError):
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, "body must be a JSON object")
    # From here on, a body that named a usable request_id has its failure recorded under it.
    usable_id = usable_request_id(data) if repeated != "request_id" else None
    if data.get("action") not in (None, "send"):
        usable_id = None  # a cancel's request_id names another message: its failures are never recorded there
    if repeated is not None:
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, f"field {quote(repeated)} appears more than once", usable_id)
    size = len(body.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY_BYTES:
        raise InvalidRequest(
            ErrorCode.INVALID_REQUEST, f"body is {size} bytes; at most {MAX_BODY_BYTES} are allowed", usable_id
        )
    surrogate = lone_surrogate(data)
    if surrogate is not None:
        raise InvalidRequest(
            ErrorCode.INVALID_REQUEST, f"{surrogate} contains a lone surrogate: not valid Unicode text", usable_id
        )
    return data, usable_id


def _send_request(
    data: dict[str, Any], usable_id: str | None, default_request_id: str, smart_encoding: bool
) -> SmsRequest | BulkRequest:
    raw_id = data.get("request_id")
    if raw_id is None:
        request_id = default_request_id
    elif usable_id is not None:
        request_id = usable_id
    else:
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, "request_id must be 1-128 characters of A-Z a-z 0-9 . _ : -")

    unknown = sorted(set(data) - FIELDS)
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        named = ", ".join(quote(name) for name in unknown[:5]) + more
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, f"unknown field(s): {named}", request_id)

    recipients = [name for name in ("phone", "phones", "messages") if data.get(name) is not None]
    if len(recipients) > 1:
        given = " and ".join(recipients)
        raise InvalidRequest(
            ErrorCode.INVALID_REQUEST, f"give one of phone, phones and messages, not {given}", request_id
        )
    if recipients and recipients[0] != "phone":
        return _bulk_request(data, request_id, recipients[0], smart_encoding)

    if "phone" not in data:
        raise InvalidRequest(ErrorCode.INVALID_PHONE, "phone is required", request_id)
    try:
        phone = phones.normalise(data["phone"])
    except phones.PhoneError as exc:
        raise InvalidRequest(exc.code, str(exc), request_id) from None
    text, segmentation = _text(data.get("message"), "message", request_id, smart_encoding)
    return SmsRequest(
        request_id=request_id, phone=phone, text=text, segmentation=segmentation, **_shared(data, request_id)
    )


def _text(text: object, name: str, request_id: str, smart_encoding: bool) -> tuple[str, segments.Segmentation]:
    """The text as it will be sent, and its parts; else InvalidRequest naming the field."""
    if not isinstance(text, str):
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, f"{name} is required and must be a string", request_id)
    if not text.strip():
        raise InvalidRequest(ErrorCode.INVALID_REQUEST, f"{name} is empty", request_id)
    control = CONTROL_CHARACTERS.search(text)
    if control is not None:
        raise InvalidRequest(
            ErrorCode.INVALID_REQUEST,
            f"{name} contains the control character U+{ord(control.group()):04X} "
            f"at position {control.start()}; only line breaks are allowed",
            request_id,
        )
    if smart_encoding:  # typographic quotes and the like must not turn English text into UCS-2
        text = segments.smart_encode(text)
    try:
        return text, segments.check_length(text)
    except segments.MessageTooLong as exc:
        raise InvalidRequest(exc.code, str(exc), request_id) from None


def _shared(data: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The fields every SMS of a request shares: sender, priority, times, type, campaign, metadata."""
    sender_id = optional_str(data, "sender_id", request_id)
    if sender_id is not None and not SENDER_ID_PATTERN.fullmatch(sender_id):
        raise InvalidRequest(
            ErrorCode.INVALID_SENDER_ID, "sender_id must be 1-20 letters, digits or spaces", request_id
        )

    times: dict[str, datetime | None] = {"schedule_time": None, "valid_until": None}
    for name in times:
        if data.get(name) is not None:
            try:
                times[name] = parse_schedule_time(data[name], name)
            except ValueError as exc:
                raise InvalidRequest(ErrorCode.INVALID_REQUEST, str(exc), request_id) from None

    schedule_time, valid_until = times["schedule_time"], times["valid_until"]
    if schedule_time is not None:
        if schedule_time > datetime.now(UTC) + timedelta(days=MAX_SCHEDULE_DAYS):
            raise InvalidRequest(
                ErrorCode.INVALID_REQUEST, f"schedule_time is more than {MAX_SCHEDULE_DAYS} days ahead", request_id
            )
        if valid_until is not None and valid_until < schedule_time:
            raise InvalidRequest(
                ErrorCode.INVALID_REQUEST, "valid_until is before schedule_time: it could never be sent", request_id
            )
    return {
        "sender_id": sender_id,
        "priority": choice_of(data, "priority", ("normal", "high"), request_id),
        "schedule_time": schedule_time,
        "valid_until": valid_until,
        "type": choice_of(data, "type", ("transactional", "promotional"), request_id),
        "campaign_id": optional_str(data, "campaign_id", request_id, MAX_CAMPAIGN_ID_CHARS),
        "metadata": metadata_of(data, request_id),
    }


def child_request_id(request_id: str, phone: str) -> str:
    """The record of one number of a bulk request: `<request_id>:<8801XXXXXXXXX>`."""
    return f"{request_id}:{phone}"


def _bulk_entries(data: dict[str, Any], request_id: str, field_name: str) -> list[Any]:
    """The list of numbers (or of number-and-text entries) of a bulk request, as a whole within the contract."""
    if len(request_id) > MAX_BULK_REQUEST_ID_CHARS:
        raise InvalidRequest(
            ErrorCode.INVALID_REQUEST,
            f"a bulk request_id is at most {MAX_BULK_REQUEST_ID_CHARS} characters "
            "(each number's record adds ':' and 13 digits)",
            request_id,
        )
    entries = data[field_name]
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_BULK_NUMBERS:
        raise InvalidRequest(
            ErrorCode.INVALID_REQUEST, f"{field_name} must be a list of 1 to {MAX_BULK_NUMBERS} entries", request_id
        )
    if field_name == "messages" and data.get("message") is not None:
        raise InvalidRequest(
            ErrorCode.INVALID_REQUEST, "messages carries each number's text: no message beside it", request_id
        )
    return entries


def _bulk_request(data: dict[str, Any], request_id: str, field_name: str, smart_encoding: bool) -> BulkRequest:
    """`phones` (one text to many numbers) or `messages` (a text per number): a record per number.

    A number that is not valid gets a failed record of its own and never blocks the rest; in `phones` a
    number given twice is sent once; in `messages` it is ambiguous, and the request is invalid."""
    entries = _bulk_entries(data, request_id, field_name)
    personal = field_name == "messages"
    shared = _shared(data, request_id)
    common: tuple[str, segments.Segmentation] | None = None
    if not personal:
        common = _text(data.get("message"), "message", request_id, smart_encoding)

    children: dict[str, SmsRequest] = {}
    invalid: list[InvalidChild] = []
    seen: set[str] = set()  # numbers met so far, whether their text can be sent or not
    for position, entry in enumerate(entries, start=1):
        raw_phone: object = entry
        if personal:
            if not isinstance(entry, dict) or set(entry) != ENTRY_FIELDS:
                raise InvalidRequest(
                    ErrorCode.INVALID_REQUEST,
                    f"messages[{position}] must be an object with phone and message, nothing else",
                    request_id,
                )
            raw_phone = entry["phone"]
        try:
            phone = phones.normalise(raw_phone)
        except phones.PhoneError as exc:
            # By its position, not quoted: an almost-number may be someone's number, and events carry this.
            invalid.append(
                InvalidChild(f"{request_id}:invalid-{position}", exc.code, bounded(f"{field_name}[{position}]: {exc}"))
            )
            continue
        child_id = child_request_id(request_id, phone)
        if child_id in seen:
            if personal:
                raise InvalidRequest(
                    ErrorCode.INVALID_REQUEST,
                    f"messages names {phones.mask(phone)} twice: which text is meant?",
                    request_id,
                )
            continue  # the same number twice in phones: sent once
        seen.add(child_id)
        try:
            text, segmentation = common or _text(
                entry["message"], f"messages[{position}].message", child_id, smart_encoding
            )
        except InvalidRequest as exc:
            invalid.append(InvalidChild(child_id, exc.code, exc.message))
            continue
        children[child_id] = SmsRequest(child_id, phone, text, segmentation, **shared, parent_id=request_id)
    return BulkRequest(
        request_id,
        tuple(children.values()),
        tuple(invalid),
        personal,
        shared["priority"],
        shared["schedule_time"],
        shared["valid_until"],
    )
