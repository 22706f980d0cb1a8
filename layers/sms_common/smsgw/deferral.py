"""Waiting for capacity outside the function: the message goes back to its queue with a delay.

A message the limiter cannot serve now (or that the provider throttled) is published again to the
queue it belongs to, with `DelaySeconds` up to the time capacity is expected, and its SQS message is
acknowledged. It costs no DynamoDB write and no receive toward the dead-letter queue, however long the
backlog: a wait longer than SQS's 15-minute delay is several hops. The copy carries the request_id it
was known by (the original SQS message id when the producer gave none), so it keeps its identity and
its status record, and a copy published twice is still sent once (the claim decides).

What it waits for is a `DueWork` (smsgw.records), the shape of every deferred thing, carried in the
`work` and `due_at` message attributes, so that a turn further off than SQS's 15-minute delay is kept
across hops without asking the limiter again. A message refused capacity comes back at its turn (see
smsgw.limiter: the lane's queue hands out times at the pace capacity frees). A retry (a throttled
answer, a not-sent failure) comes back at the expected time plus full jitter over a span that doubles
with every deferral the message has had; OTPs use a span of a few slices, so they come back first.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from smsgw.message import Priority
from smsgw.records import DueWork, WorkKind

DEFERRALS_ATTRIBUTE = "deferrals"  # SQS message attribute: how often this message has waited
# SQS message attributes: the message's pending work (smsgw.records.DueWork), as on a status record.
WORK_ATTRIBUTE, DUE_ATTRIBUTE = "work", "due_at"
# SQS message attribute: this body is one chunk of that bulk request (its numbers are sent as they are,
# not handed on again).
PARENT_ATTRIBUTE = "bulk_parent"
SQS_BATCH_ENTRIES, SQS_BATCH_BYTES = 10, 250_000  # SendMessageBatch: 10 entries, 256 KiB in all
MAX_SPREAD_DOUBLINGS = 6


def pin_request_id(body: str, request_id: str, valid_until: float | None = None) -> str:
    """The body with its request_id (and deadline) written in, so a copy is the same request.

    A copy is a new SQS message: without these it would get a new id and a new publishing time.
    """
    data = json.loads(body)
    pins: dict[str, str] = {"request_id": request_id}
    if valid_until is not None:
        pins["valid_until"] = datetime.fromtimestamp(valid_until, UTC).isoformat(timespec="seconds")
    if all(data.get(name) == value for name, value in pins.items()):
        return body
    data.update(pins)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _attribute(message_attributes: dict[str, Any] | None, name: str) -> str:
    attribute = (message_attributes or {}).get(name) or {}
    return str(attribute.get("stringValue") or attribute.get("StringValue") or "")


def deferrals_of(message_attributes: dict[str, Any] | None) -> int:
    """The deferral count from a Lambda SQS record's messageAttributes (0 when absent or unreadable)."""
    raw = _attribute(message_attributes, DEFERRALS_ATTRIBUTE)
    return int(raw) if raw.isdigit() else 0


def parent_of(message_attributes: dict[str, Any] | None) -> str | None:
    """The bulk request a chunk belongs to, from a Lambda SQS record's messageAttributes."""
    return _attribute(message_attributes, PARENT_ATTRIBUTE) or None


def work_of(message_attributes: dict[str, Any] | None) -> DueWork | None:
    """The message's pending work from a Lambda SQS record's messageAttributes, if it carries any."""
    try:
        kind = WorkKind(_attribute(message_attributes, WORK_ATTRIBUTE))
        due_at = float(_attribute(message_attributes, DUE_ATTRIBUTE))
    except ValueError:
        return None
    return DueWork(kind, due_at) if not kind.on_record and math.isfinite(due_at) and due_at > 0 else None


class Deferrer:
    def __init__(
        self,
        sqs: Any,
        send_queue_url: str,
        priority_queue_url: str | None,
        *,
        max_delay: int,
        base_spread: float,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._sqs = sqs
        self._queues: dict[str, str] = {"normal": send_queue_url, "high": priority_queue_url or send_queue_url}
        self._max_delay = max_delay
        self._base_spread = base_spread  # seconds: a slice of the shortest rate window, scaled per deferral
        self._clock = clock
        self._rng = rng or random.Random()  # nosec B311  # jitter that spreads retries, not a secret

    def due_at(self, retry_at: float, deferrals: int, priority: Priority) -> float:
        """When a retry comes back: at `retry_at`, plus jitter that widens with each earlier deferral."""
        doublings = min(deferrals, MAX_SPREAD_DOUBLINGS)
        span = self._base_spread * (1 if priority == "high" else 10) * 2**doublings
        return max(retry_at, self._clock()) + self._rng.uniform(0, span)

    def defer(
        self,
        body: str,
        request_id: str,
        priority: Priority,
        work: DueWork,
        deferrals: int,
        valid_until: float | None = None,
        parent_id: str | None = None,
    ) -> int:
        """Publish the message again to its queue, to come back when `work` is due (or after the longest
        delay, to wait again). Returns the delay in seconds.

        Either comes back at its `due_at` exactly: turns are spread by the limiter, retries by the jitter
        `due_at()` put in when the retry was made."""
        if work.kind.on_record:
            raise ValueError(f"{work.kind} work waits on the record, not in the queue")
        attributes = {
            DEFERRALS_ATTRIBUTE: {"DataType": "Number", "StringValue": str(deferrals + 1)},
            WORK_ATTRIBUTE: {"DataType": "String", "StringValue": work.kind.value},
            DUE_ATTRIBUTE: {"DataType": "Number", "StringValue": f"{work.due_at:.3f}"},
        }
        if parent_id is not None:
            attributes[PARENT_ATTRIBUTE] = {"DataType": "String", "StringValue": parent_id}
        delay = min(self._max_delay, max(1, math.ceil(work.due_at - self._clock())))
        self._sqs.send_message(
            QueueUrl=self._queues[priority],
            MessageBody=pin_request_id(body, request_id, valid_until),
            DelaySeconds=delay,
            MessageAttributes=attributes,
        )
        return delay

    def hand_on(self, bodies: list[str], priority: Priority, parent_id: str) -> None:
        """Publish a bulk request's chunks to its queue, marked as its chunks (SendMessageBatch, as many
        at a time as SQS takes). Raises when SQS keeps refusing some: the bulk request's own message is
        then delivered again and hands them on again (each number is claimed once, whatever comes twice)."""
        attributes = {PARENT_ATTRIBUTE: {"DataType": "String", "StringValue": parent_id}}
        batch: list[str] = []
        size = 0
        for body in bodies:
            length = len(body.encode())
            if batch and (len(batch) == SQS_BATCH_ENTRIES or size + length > SQS_BATCH_BYTES):
                self._send_batch(batch, priority, attributes)
                batch, size = [], 0
            batch.append(body)
            size += length
        if batch:
            self._send_batch(batch, priority, attributes)

    def _send_batch(self, bodies: list[str], priority: Priority, attributes: dict[str, Any]) -> None:
        entries = [
            {"Id": str(n), "MessageBody": body, "MessageAttributes": attributes} for n, body in enumerate(bodies)
        ]
        for _ in range(3):
            response = self._sqs.send_message_batch(QueueUrl=self._queues[priority], Entries=entries)
            failed = {failure["Id"] for failure in response.get("Failed", [])}
            entries = [entry for entry in entries if entry["Id"] in failed]
            if not entries:
                return
        raise RuntimeError(f"SQS refused {len(entries)} chunk(s) of a bulk request three times")
