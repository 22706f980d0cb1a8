"""The status record's vocabulary: its statuses, the state of an attempt, and the kinds of pending work.

String enums, so they are stored, compared and put in events as the plain words the contract uses.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """The record's `status` (the contract): sending -> sent -> delivered / failed / unknown."""

    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNKNOWN = "unknown"


FINAL_STATUSES = frozenset({Status.DELIVERED, Status.FAILED, Status.UNKNOWN})


class AttemptState(StrEnum):
    """Where the current attempt stands (internal): only released and held records may be claimed again."""

    IN_FLIGHT = "in_flight"  # claimed; the provider call may be under way
    RELEASED = "released"  # certainly not sent: the next delivery may claim it
    HELD = "held"  # parked behind the balance gate, published again when it opens
    MAYBE_SENT = "maybe_sent"  # the answer was lost: never resent
    DONE = "done"  # sent or final


class WorkKind(StrEnum):
    """What poll_status still has to do for a record (`poll_work`, with `due_at`, in the work index)."""

    REPORT = "report"  # look up the delivery report
    UNRESOLVED = "unresolved"  # a maybe-sent outcome to resolve after its grace period
    HELD = "held"  # publish the held message again once the gate opens
