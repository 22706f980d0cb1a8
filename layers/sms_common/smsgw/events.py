"""Status events: every move to a final state goes to EventBridge so other systems need not poll.

They are published from the status table's stream, not by the function that wrote the final state:
a record that reaches a final state is one stream record, which Lambda hands to the status_events
function until its events are put (retrying, bisecting a failing batch, then an on-failure queue).
So an event is delivered at least once, however PutEvents or a function fails after the write, and
at no extra DynamoDB write per message (an outbox would cost one to mark each event sent). A
retried batch may put an event twice: its `event_id` is the same every time, derived from the
record's final state, so consumers drop duplicates by it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from smsgw.observability import logger, mask_phone
from smsgw.records import FINAL_STATUSES, CancelResult, StatusRecord

DETAIL_TYPE = "SMS Final Status"
CANCEL_TOO_LATE_DETAIL_TYPE = "SMS Cancel Too Late"  # a cancel found its message gone: the producer's answer
PUT_EVENTS_MAX_ENTRIES = 10
_EVENT_ID_NAMESPACE = uuid.UUID("6f1d3c2a-8b4e-4f6a-9c1d-2e7b4a603f9a")  # fixed: ids stay stable across releases
_deserializer = TypeDeserializer()


def event_id(record: StatusRecord) -> str:
    """The same id for every copy of the event of one final state (a request_id reused after the
    record expired gets a new one: its final_at differs)."""
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{record.request_id}|{record.status}|{record.final_at}"))


def final_event(record: StatusRecord) -> dict[str, Any]:
    """The event detail for a status record in a final state. Phones are masked; text never travels."""
    return {
        "event_id": event_id(record),
        "request_id": record.request_id,
        "status": str(record.status),
        "error_code": record.error_code,
        "error_message": record.error_message,
        "phone": mask_phone(record.phone) if record.phone else None,
        "message_id": record.message_id,
        "provider_status": record.provider_status,
        "parts": record.parts,
        "final_at": record.final_at,
        "metadata": dict(record.metadata or {}),
    }


def too_late_event(record: StatusRecord) -> dict[str, Any]:
    """The event detail for a cancel that came too late: the record as it goes on (it may yet be delivered,
    and then has its final event too)."""
    key = f"{record.request_id}|cancel_too_late|{record.cancel_requested_at}"
    return {
        "event_id": str(uuid.uuid5(_EVENT_ID_NAMESPACE, key)),
        "request_id": record.request_id,
        "status": str(record.status),
        "cancel_requested_at": record.cancel_requested_at,
        "phone": mask_phone(record.phone) if record.phone else None,
        "message_id": record.message_id,
        "metadata": dict(record.metadata or {}),
    }


@dataclass(frozen=True, eq=False)
class StatusEvent:
    """One EventBridge event: its detail-type and its detail (the record as producers see it)."""

    detail_type: str
    detail: dict[str, Any]


def event_of(stream_record: Mapping[str, Any]) -> StatusEvent | None:
    """The status event a stream record calls for: a final state reached, or a cancel refused; else None."""
    final = reached_final_state(stream_record)
    if final is not None:
        return StatusEvent(DETAIL_TYPE, final_event(final))
    refused = cancel_came_too_late(stream_record)
    if refused is not None:
        return StatusEvent(CANCEL_TOO_LATE_DETAIL_TYPE, too_late_event(refused))
    return None


def _image(image: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in (image or {}).items()}


def reached_final_state(stream_record: Mapping[str, Any]) -> StatusRecord | None:
    """The record a stream record shows arriving in a final state (created final, or moved there), else None.

    The template's filter lets only these through; checking here too keeps the rule in one place that
    tests can reach, and makes a looser filter harmless."""
    change = stream_record.get("dynamodb") or {}
    new, old = _image(change.get("NewImage")), _image(change.get("OldImage"))
    if stream_record.get("eventName") not in ("INSERT", "MODIFY") or new.get("status") not in FINAL_STATUSES:
        return None
    if old.get("status") in FINAL_STATUSES:
        return None  # already final: a later write (none is made today) says nothing new
    return StatusRecord.from_item(new)


def cancel_came_too_late(stream_record: Mapping[str, Any]) -> StatusRecord | None:
    """The record a stream record shows a cancel refused on (its first refusal only), else None."""
    change = stream_record.get("dynamodb") or {}
    new, old = _image(change.get("NewImage")), _image(change.get("OldImage"))
    if stream_record.get("eventName") != "MODIFY" or new.get("cancel_result") != CancelResult.TOO_LATE:
        return None
    return None if "cancel_result" in old else StatusRecord.from_item(new)


class StatusEvents:
    def __init__(self, client: Any, bus: str, source: str) -> None:
        self._client = client
        self._bus = bus
        self._source = source

    def publish(self, events: list[StatusEvent]) -> set[int]:
        """Put the events, ten per call, retrying failed entries once. Returns the indexes not put."""
        failed: set[int] = set()
        for start in range(0, len(events), PUT_EVENTS_MAX_ENTRIES):
            pending = list(range(start, min(start + PUT_EVENTS_MAX_ENTRIES, len(events))))
            for _ in range(2):
                entries = [
                    {
                        "Source": self._source,
                        "DetailType": events[i].detail_type,
                        "Detail": json.dumps(events[i].detail),
                        "EventBusName": self._bus,
                    }
                    for i in pending
                ]
                try:
                    response = self._client.put_events(Entries=entries)
                except (BotoCoreError, ClientError) as exc:
                    logger.warning("PutEvents failed", extra={"error": type(exc).__name__, "count": len(pending)})
                    continue
                results = response.get("Entries", [])
                pending = [i for i, result in zip(pending, results, strict=True) if result.get("ErrorCode")]
                if not pending:
                    break
            failed.update(pending)
        if failed:
            logger.error("status events not put; their stream records will be retried", extra={"count": len(failed)})
        return failed
