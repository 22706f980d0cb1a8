"""Admission: capacity for a batch's records from the account-wide limiter, OTPs first, earlier turns first."""

from __future__ import annotations

from dataclasses import dataclass

from smsgw.deferral import Deferrer
from smsgw.limiter import Grant, Lane, RateLimiter
from smsgw.records import DueWork, WorkKind
from smsgw.sending.inbound import DUE_TOLERANCE_SECONDS, Inbound, calls_provider, turn_of


@dataclass(frozen=True, eq=False)
class Admission:
    """What admit() decided for a batch (keys are SQS message ids)."""

    waiting: dict[str, DueWork]  # records that wait, and for what
    partial: dict[str, int]  # chunks granted only some of their calls: that many numbers go
    grants: dict[str, Grant]  # the grant each record's calls were counted in (a chunk renews its later calls)


def admit(
    inbound: list[Inbound], limiter: RateLimiter, deferrer: Deferrer, max_age: int, now: float, max_numbers: int = 1
) -> Admission:
    """Take capacity for the records that will call the provider, OTPs first, earlier turns first: a call
    each (a chunk of a dialect without a bulk call: a call a number).

    Returns the records that wait (SQS message id -> what they wait for), and the chunks granted only
    some of their calls (SQS message id -> calls granted: that many numbers go, the rest wait); the
    rest may call. Invalid, expired and scheduled-for-later records make no call and take nothing; a
    record back before its turn waits on, unasked (a retry asks: the limiter knows best how long a
    throttle or an outage lasts). Refused calls wait for the turn the limiter gives them (or retry when
    it gave none); a chunk waits for the turn of its last refused call, when the pace has room for all.
    """
    lanes: dict[Lane, list[Inbound]] = {Lane.OTP: [], Lane.BULK: []}
    waiting: dict[str, DueWork] = {}
    partial: dict[str, int] = {}
    grants: dict[str, Grant] = {}
    for item in inbound:
        if not calls_provider(item, max_age, now):
            continue
        turn = turn_of(item)
        if turn is not None and turn > now + DUE_TOLERANCE_SECONDS:
            waiting[item.sqs_message_id] = DueWork(WorkKind.TURN, turn)  # a long wait, hop by hop
            continue
        lanes[Lane.OTP if item.priority == "high" else Lane.BULK].append(item)
    for lane, items in lanes.items():
        if items:
            # Those whose turn has come ask first; the rest of the batch queues behind them if need be.
            items.sort(key=lambda item: turn_of(item) or now + DUE_TOLERANCE_SECONDS)
            calls = [item.calls(max_numbers) for item in items]
            due = sum(n for item, n in zip(items, calls, strict=True) if turn_of(item) is not None)
            grant = limiter.acquire(lane, sum(calls), due=due)
            left, refused = grant.granted, 0  # calls granted not yet given out; refused calls so far
            for item, n in zip(items, calls, strict=True):
                given = min(n, left)
                left -= given
                if given:
                    grants[item.sqs_message_id] = grant
                if given == n:
                    continue
                if given:
                    partial[item.sqs_message_id] = given
                refused += n - given
                turn = grant.turns[refused - 1] if refused <= len(grant.turns) else None
                waiting[item.sqs_message_id] = (
                    DueWork(WorkKind.TURN, turn) if turn is not None else retry_of(item, grant.retry_at, deferrer)
                )
    return Admission(waiting, partial, grants)


def retry_of(item: Inbound, retry_at: float, deferrer: Deferrer) -> DueWork:
    """A retry from `retry_at` on, with the jitter that spreads retries."""
    return DueWork(WorkKind.RETRY, deferrer.due_at(retry_at, item.deferrals, item.priority))
