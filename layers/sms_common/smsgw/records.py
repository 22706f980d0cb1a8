"""The status record: its vocabulary (statuses, the state of an attempt, kinds of pending work) and
its typed shape as read back from the table.

String enums, so they are stored, compared and put in events as the plain words the contract uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """The record's `status` (the contract): (scheduled ->) sending -> sent -> delivered / failed / unknown;
    cancelled from scheduled, or from sending before the message reached the provider."""

    SCHEDULED = "scheduled"  # held by the service until its schedule_time; no provider call yet
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"  # its producer cancelled it before it went to the provider


FINAL_STATUSES = frozenset({Status.DELIVERED, Status.FAILED, Status.UNKNOWN, Status.CANCELLED})


class CancelResult(StrEnum):
    """What a cancel did to its record (`cancel_result`, beside `cancel_requested_at`)."""

    CANCELLED = "cancelled"  # nothing had gone to the provider: the record is now `cancelled`
    TOO_LATE = "too_late"  # the message had gone (or may have): the record goes on as it was


class AttemptState(StrEnum):
    """Where the current attempt stands (internal): only released and held records may be claimed again."""

    IN_FLIGHT = "in_flight"  # claimed; the provider call may be under way
    RELEASED = "released"  # certainly not sent: the next delivery may claim it
    HELD = "held"  # parked behind the balance gate, published again when it opens
    MAYBE_SENT = "maybe_sent"  # the answer was lost: never resent
    DONE = "done"  # sent or final


class WorkKind(StrEnum):
    """Kinds of deferred work: something to do for one request when its time comes (see DueWork)."""

    # Carried by the status record (`poll_work` and `due_at`, in the work index); poll_status does them.
    REPORT = "report"  # look up the delivery report
    UNRESOLVED = "unresolved"  # a maybe-sent outcome to resolve after its grace period
    HELD = "held"  # publish the held message again once the gate opens
    SCHEDULED = "scheduled"  # publish the scheduled message again at its schedule_time
    # Carried by the message itself, back in its queue with a delay; the send function does them.
    TURN = "turn"  # its turn in its lane's queue for capacity (smsgw.limiter)
    RETRY = "retry"  # again after a throttle answer or a not-sent failure

    @property
    def on_record(self) -> bool:
        return self in RECORD_WORK


RECORD_WORK = frozenset({WorkKind.REPORT, WorkKind.UNRESOLVED, WorkKind.HELD, WorkKind.SCHEDULED})


@dataclass(frozen=True)
class DueWork:
    """Work due at `due_at` (epoch seconds) for one request: the one shape of every deferred thing.

    Where it waits follows from its kind. Work on a record that is not being sent (a report, a
    maybe-sent outcome, a held message) waits in the record's work index, read by poll_status. A message
    waiting to be sent (its turn for capacity, a retry) waits in its own queue as an SQS delay, with the
    same two fields as message attributes: that costs no DynamoDB write per wait, however long the backlog,
    and a turn further off than SQS's 15-minute delay is several hops that keep `due_at`."""

    kind: WorkKind
    due_at: float


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal: whole ones as int, others as float, inside maps too."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


@dataclass(frozen=True, eq=False)
class StatusRecord:
    """One status record as stored: the contract's attributes (docs/contract.md, "The status record") and the
    attempt's bookkeeping. Unknown attributes are ignored; absent ones are None (or 0)."""

    request_id: str
    status: Status
    phone: str | None = None
    message_id: str | None = None
    provider_status: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    parts: int | None = None
    encoding: str | None = None
    cost: float | None = None
    priority: str | None = None
    type: str | None = None
    sender_id: str | None = None
    campaign_id: str | None = None
    schedule_time: str | None = None
    metadata: Mapping[str, Any] | None = None
    attempts: int = 0
    created_at: str | None = None
    sent_at: str | None = None
    final_at: str | None = None
    updated_at: str | None = None
    # the attempt's bookkeeping (internal)
    attempt_state: AttemptState | None = None
    claim_token: str | None = None
    lease_until: float = 0.0
    sqs_message_id: str | None = None
    poll_work: WorkKind | None = None
    due_at: float | None = None
    payload: str | None = None  # a held message's SQS body
    report_checks: int = 0
    cancel_requested_at: str | None = None  # when a cancel for this request_id arrived
    cancel_result: CancelResult | None = None
    # a bulk request: its own record says `kind` bulk and how many numbers it has; each number's record
    # names it as `parent_id`
    kind: str | None = None
    children: int | None = None
    children_invalid: int | None = None
    phones: tuple[str, ...] | None = None  # a bulk request's numbers (normalised), kept when it is handed on
    parent_id: str | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> StatusRecord:
        """From a deserialised DynamoDB item (boto3's TypeDeserializer)."""
        values = {key: _plain(value) for key, value in item.items() if key in _RECORD_FIELDS}
        values["status"] = Status(values["status"])
        kinds: tuple[tuple[str, type[StrEnum]], ...] = (
            ("attempt_state", AttemptState),
            ("poll_work", WorkKind),
            ("cancel_result", CancelResult),
        )
        for name, kind in kinds:
            if values.get(name) is not None:
                values[name] = kind(values[name])
        for name in ("attempts", "report_checks"):
            values[name] = int(values.get(name) or 0)
        if values.get("phones") is not None:
            values["phones"] = tuple(values["phones"])
        values["lease_until"] = float(values.get("lease_until") or 0)
        return cls(**values)

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def cancels_by_number(self) -> bool:
        """A bulk request whose numbers may be going: a cancel stops each number by its own record first."""
        return self.kind == "bulk" and self.status == Status.SENDING and self.phones is not None


_RECORD_FIELDS = frozenset(f.name for f in fields(StatusRecord))
