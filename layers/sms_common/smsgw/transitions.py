"""The status record's state machine as data: every change a record may make, the states it may make it
from, and the statuses it may write. The store builds each conditional write's condition from this
table, and refuses to write a status the table does not allow.

A record only moves forward: (no record ->) scheduled -> sending -> sent -> delivered / failed / unknown,
or cancelled before it reached the provider. A final record changes no more, except that a cancel
arriving after it is noted on it (`TOO_LATE`, which writes no status).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from smsgw.records import FINAL_STATUSES, AttemptState, Status

BULK = "bulk"  # the `kind` of a bulk request's own record


@dataclass(frozen=True)
class From:
    """One state a change may start from: all of its conditions hold at once."""

    status: Status | None  # None: the request_id has no record yet
    attempt: tuple[AttemptState, ...] = ()  # the attempt is in one of these (empty: any)
    bulk: bool = False  # a bulk request's own record
    owned: bool = False  # held by the caller's claim (its token)
    lease_expired: bool = False  # its in-flight claim's lease has run out
    without_phones: bool = False  # a bulk record written before its numbers were kept on it
    not_cancel_requested: bool = False  # no cancel has been noted on it yet


class Change(StrEnum):
    """Every kind of write to a status record."""

    CREATE = "create"  # a new record: an invalid request's `failed`, a scheduled message
    CLAIM = "claim"  # an attempt takes the record to send it
    SETTLE = "settle"  # the claim records how its attempt ended: sent, failed, released, held, maybe-sent
    RESOLVE = "resolve"  # a maybe-sent (or abandoned) attempt past its grace period ends `unknown`
    REPORT = "report"  # a sent message's delivery report: final, or looked up again later
    PUBLISH_HELD = "publish_held"  # a held message goes back to its queue
    PUBLISH_SCHEDULED = "publish_scheduled"  # a scheduled message goes back to its queue when due
    OPEN_BULK = "open_bulk"  # a bulk request's own record while its numbers are handed on
    BULK_PROGRESS = "bulk_progress"  # ... handed on, failed as a whole, or cancelled after its numbers
    CANCEL = "cancel"  # a message that has not gone to the provider
    TOO_LATE = "too_late"  # a cancel that came after the message went: noted, nothing else changes


@dataclass(frozen=True)
class Transition:
    sources: tuple[From, ...]
    writes: frozenset[Status] = frozenset()  # the statuses it may set (empty: the status stays)


NO_RECORD = From(None)
_RETRYABLE = (AttemptState.RELEASED, AttemptState.HELD)  # certainly not sent: may be claimed again

TRANSITIONS: Mapping[Change, Transition] = {
    Change.CREATE: Transition((NO_RECORD,), frozenset({Status.FAILED, Status.SCHEDULED})),
    Change.CLAIM: Transition(
        # A scheduled record is taken when its message comes back due (the send path checks the time).
        (NO_RECORD, From(Status.SCHEDULED), From(Status.SENDING, attempt=_RETRYABLE)),
        frozenset({Status.SENDING}),
    ),
    Change.SETTLE: Transition((From(Status.SENDING, owned=True),), frozenset({Status.SENT, Status.FAILED})),
    Change.RESOLVE: Transition(
        (
            From(Status.SENDING, attempt=(AttemptState.MAYBE_SENT,)),
            From(Status.SENDING, attempt=(AttemptState.IN_FLIGHT,), lease_expired=True),
        ),
        frozenset({Status.UNKNOWN}),
    ),
    Change.REPORT: Transition((From(Status.SENT),), frozenset({Status.DELIVERED, Status.FAILED, Status.UNKNOWN})),
    Change.PUBLISH_HELD: Transition((From(Status.SENDING, attempt=(AttemptState.HELD,)),)),
    Change.PUBLISH_SCHEDULED: Transition((From(Status.SCHEDULED),)),
    Change.OPEN_BULK: Transition(
        # Taken again from an earlier delivery that stopped before it had handed every number on.
        (NO_RECORD, From(Status.SCHEDULED), From(Status.SENDING, attempt=(AttemptState.IN_FLIGHT,), bulk=True)),
        frozenset({Status.SENDING}),
    ),
    Change.BULK_PROGRESS: Transition((From(Status.SENDING, bulk=True),), frozenset({Status.FAILED, Status.CANCELLED})),
    Change.CANCEL: Transition(
        (
            NO_RECORD,  # not seen yet: the `cancelled` record stops it when it comes
            From(Status.SCHEDULED),
            From(Status.SENDING, attempt=_RETRYABLE),
            # A bulk request handed on before its numbers were kept on its record: its chunks cancel those of
            # its numbers that have not gone (their records say which went).
            From(Status.SENDING, bulk=True, without_phones=True),
        ),
        frozenset({Status.CANCELLED}),
    ),
    Change.TOO_LATE: Transition(
        tuple(From(status, not_cancel_requested=True) for status in Status if status is not Status.CANCELLED)
    ),
}

# How far along a status is: a change never writes a status behind the one it starts from.
RANK: Mapping[Status | None, int] = {
    None: 0,
    Status.SCHEDULED: 1,
    Status.SENDING: 2,
    Status.SENT: 3,
    **dict.fromkeys(FINAL_STATUSES, 4),
}
