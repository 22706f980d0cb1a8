"""The send path: one SQS record in, one provider call at most, one status record out.

`Sender.process` is the whole life of a record and runs in a worker thread; `process_batch` runs
the records of one SQS batch concurrently on a bounded pool (Powertools' AsyncBatchProcessor with
the blocking calls in a ThreadPoolExecutor), so a batch costs about one provider round trip.
Retryable outcomes raise `RetryLater` so the record lands in `batchItemFailures`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from smsgw import runtime
from smsgw.balance import BalanceGate
from smsgw.config import Settings
from smsgw.credentials import Credentials, CredentialsError, CredentialSource
from smsgw.deferral import Deferrer, deferrals_of, parent_of, pin_request_id, work_of
from smsgw.limiter import Grant, Lane, RateLimiter
from smsgw.message import (
    BulkRequest,
    CancelRequest,
    InvalidRequest,
    Priority,
    SmsRequest,
    child_request_id,
    parse_message,
)
from smsgw.observability import logger, mask_phone, metrics
from smsgw.provider import OutboundBulk, OutboundSms, Outcome, Provider, SendResult, outage_sign
from smsgw.records import AttemptState, CancelResult, DueWork, Status, StatusRecord, WorkKind
from smsgw.store import Claim, MessageStore, iso

Disposition = Literal[
    "sent", "failed", "invalid", "duplicate", "retry", "maybe_sent", "held", "deferred", "scheduled", "cancelled",
    "cancel_too_late", "handed_on",
]  # fmt: skip
# Not-sent answers that another try cannot cure until an operator acts: SQS redelivers them, then the DLQ.
SETUP_ERRORS = frozenset({"authentication_failed", "ip_not_allowed", "credentials_unavailable", "missing_sender_id"})
DEFAULT_INVOCATION_SECONDS = 60.0  # lease length when no Lambda context tells the deadline
LEASE_MARGIN_SECONDS = 5.0

METRIC_BY_DISPOSITION: dict[Disposition, str] = {
    "sent": "MessagesSent",
    "failed": "MessagesFailed",
    "invalid": "InvalidRequests",
    "duplicate": "DuplicateRequests",
    "retry": "SendRetries",
    "maybe_sent": "MaybeSent",
    "held": "MessagesHeld",
    "deferred": "MessagesDeferred",
    "scheduled": "MessagesScheduled",
    "cancelled": "MessagesCancelled",
    "cancel_too_late": "CancelsTooLate",
    "handed_on": "BulkRequests",  # a bulk request's numbers handed to their chunks
}
_T = TypeVar("_T")
_R = TypeVar("_R")
BALANCE_WAIT_SECONDS = 60.0  # a chunk that meets a closed gate waits this long in its queue (a poll run)
# A dialect without a bulk call sends a chunk number by number, a call each, in series in one worker: a
# chunk of this many fits well inside the function's time and inside bulk's burst of the shortest window
# (a sixth of 100 a minute), so it usually gets all its calls at once (what it does not get waits its turn).
CALLS_PER_CHUNK = 10


class RetryLater(Exception):
    """Raised for a record that must come back later; the text names only an error code."""


@dataclass(frozen=True, eq=False)
class RecordResult:
    """How one SQS record (or one number of a chunk) ended in this invocation: what the batch reports."""

    request_id: str
    disposition: Disposition
    error_code: str | None = None
    parts: int = 0
    cost: float = 0.0
    # deferred: when to come back, and whether the provider throttled it (then `retry_after` is its word)
    retry_at: float | None = None
    throttled: bool = False
    retry_after: float | None = None
    provider_reached: bool | None = None  # None: no provider call; False: not sent or no answer (an outage sign)
    cooldown_started: bool = False  # this failure started an outage cool-down for every caller
    children: tuple[RecordResult, ...] = ()  # a bulk request's or a chunk's numbers, each as a message


@dataclass(frozen=True, eq=False)
class Inbound:
    """One SQS record, parsed once: the request, or why it breaks the contract."""

    body: str
    sqs_message_id: str
    request: SmsRequest | None = None
    cancel: CancelRequest | None = None  # a cancel of another message (request_id names that one)
    bulk: BulkRequest | None = None  # phones or messages: handed on in chunks, or (a chunk) sent
    chunk_of: str | None = None  # the bulk request this body is a chunk of (the `bulk_parent` attribute)
    invalid: InvalidRequest | None = None
    published_at: float | None = None  # SQS SentTimestamp: when the producer (or a deferral) published it
    deferrals: int = 0  # times it has waited in its queue (the `deferrals` attribute)
    work: DueWork | None = None  # what it waited for, when it comes back from a wait (a turn, a retry)

    @classmethod
    def parse(
        cls, body: str, sqs_message_id: str, published_at: float | None = None, *, smart_encoding: bool = True
    ) -> Inbound:
        try:
            parsed = parse_message(body, default_request_id=sqs_message_id, smart_encoding=smart_encoding)
        except InvalidRequest as exc:
            return cls(body, sqs_message_id, invalid=exc, published_at=published_at)
        if isinstance(parsed, CancelRequest):
            return cls(body, sqs_message_id, cancel=parsed, published_at=published_at)
        if isinstance(parsed, BulkRequest):
            return cls(body, sqs_message_id, bulk=parsed, published_at=published_at)
        return cls(body, sqs_message_id, request=parsed, published_at=published_at)

    @classmethod
    def from_record(cls, record: dict[str, Any], *, smart_encoding: bool = True) -> Inbound:
        sent = str(record.get("attributes", {}).get("SentTimestamp", ""))
        published_at = int(sent) / 1000 if sent.isdigit() else None
        inbound = cls.parse(record["body"], record["messageId"], published_at, smart_encoding=smart_encoding)
        attributes = record.get("messageAttributes")
        chunk_of = parent_of(attributes) if inbound.bulk is not None else None
        return replace(inbound, deferrals=deferrals_of(attributes), work=work_of(attributes), chunk_of=chunk_of)

    @property
    def sms(self) -> SmsRequest:
        """The request of a record that parsed as one (the only records the send path asks for it)."""
        if self.request is None:
            raise ValueError(f"record {self.sqs_message_id} carries no send request")
        return self.request

    @property
    def sendable(self) -> SmsRequest | BulkRequest | None:
        return self.request or self.bulk

    @property
    def sends_now(self) -> bool:
        """Whether this record makes a provider call when it goes: one SMS, or a chunk of a bulk request
        (a bulk request itself is handed on to its chunks, which take capacity a call each)."""
        return self.request is not None or (self.bulk is not None and self.chunk_of is not None)

    def calls(self, max_numbers: int) -> int:
        """Provider calls this record makes when it goes: a chunk's numbers `max_numbers` to a call."""
        if self.bulk is None:
            return 1
        return max(1, math.ceil(len(self.bulk.children) / max_numbers))

    def with_numbers(self, children: tuple[SmsRequest, ...]) -> Inbound:
        """This chunk with only `children` (some of its numbers): its body written for them."""
        if self.bulk is None:
            raise ValueError(f"record {self.sqs_message_id} is not a chunk of a bulk request")
        bulk = replace(self.bulk, children=children)
        return replace(self, bulk=bulk, body=chunk_body(json.loads(self.body), bulk))

    @property
    def priority(self) -> Priority:
        sendable = self.sendable
        return sendable.priority if sendable is not None else "normal"

    def deadline(self, max_age: int) -> float | None:
        """The moment after which this message must not be sent: valid_until, or the default maximum age."""
        sendable = self.sendable
        if sendable is None:
            return None
        limits = []
        if sendable.valid_until is not None:
            limits.append(sendable.valid_until.timestamp())
        if max_age and self.published_at is not None:
            # A scheduled message's age counts from its schedule_time: it was meant to wait until then.
            start = self.published_at
            if sendable.schedule_time is not None:
                start = max(start, sendable.schedule_time.timestamp())
            limits.append(start + max_age)
        return min(limits) if limits else None

    @property
    def request_id(self) -> str:
        """The request this record is about (a cancel's: the message it cancels)."""
        if self.request is not None:
            return self.request.request_id
        if self.cancel is not None:
            return self.cancel.request_id
        if self.bulk is not None:
            return self.bulk.request_id
        return (self.invalid.request_id if self.invalid else None) or self.sqs_message_id

    @property
    def key(self) -> str:
        """What makes two records of a batch copies of each other: a send and a cancel of one request_id
        are not (both are processed; the store decides which came first)."""
        if self.cancel is not None:
            return f"cancel:{self.request_id}"
        if self.chunk_of is not None and self.bulk is not None and self.bulk.children:
            return f"chunk:{self.bulk.children[0].request_id}"  # the chunks of one request differ by their numbers
        return self.request_id


def first_copies(inbound: list[Inbound]) -> set[str]:
    """SQS message ids of the records to process: the first record of each request_id (each cancel) in the batch.

    Later copies are duplicates, decided here and not by racing the first copy's claim.
    """
    seen: set[str] = set()
    first: set[str] = set()
    for item in inbound:
        if item.key not in seen:
            seen.add(item.key)
            first.add(item.sqs_message_id)
    return first


class Sender:
    def __init__(
        self,
        settings: Settings,
        store: MessageStore,
        provider: Provider,
        credentials: CredentialSource,
        gate: BalanceGate,
        clock: Callable[[], float] = time.time,
        deferrer: Deferrer | None = None,
        writes: Executor | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._limiter = limiter  # capacity for a call beyond the one admitted (None: no such call is made)
        self._deferrer = deferrer
        self._writes = writes  # a chunk's records, written side by side (None: one after another)
        self._settings = settings
        self._store = store
        self._provider = provider
        self._credentials = credentials
        self._gate = gate
        self._clock = clock

    def now(self) -> float:
        return self._clock()

    def _each(self, work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """`work` on every item, results in order: on the write pool when there is one. A chunk's numbers
        are independent records, each its own DynamoDB round trip: a thousand of them one after another
        would take seconds of the function's time."""
        if self._writes is None or len(items) < 2:
            return [work(item) for item in items]
        return list(self._writes.map(work, items))

    def process(self, body: str, sqs_message_id: str, lease_until: float, *, gate_open: bool = True) -> RecordResult:
        inbound = Inbound.parse(body, sqs_message_id, smart_encoding=self._settings.smart_encoding)
        return self.handle(inbound, lease_until, gate_open=gate_open)

    def handle(
        self, inbound: Inbound, lease_until: float, *, gate_open: bool = True, grant: Grant | None = None
    ) -> RecordResult:
        """One record's whole life in this invocation. `grant`: the capacity admission counted its calls in."""
        if inbound.invalid is not None:
            return self._reject(inbound.invalid, inbound.sqs_message_id)
        if inbound.cancel is not None:
            return self.cancel(inbound.cancel)
        if inbound.bulk is not None:
            if inbound.chunk_of is not None:
                return self._send_chunk(inbound, inbound.bulk, lease_until, gate_open=gate_open, grant=grant)
            return self._hand_on(inbound, inbound.bulk, lease_until)
        request, body, sqs_message_id = inbound.sms, inbound.body, inbound.sqs_message_id

        log = _log_of(request)
        deadline = inbound.deadline(self._settings.max_message_age_seconds)
        if deadline is not None and self._clock() >= deadline:
            return self.expire(request, sqs_message_id, lease_until)
        if scheduled_later(inbound, self._clock()):
            return self._schedule(request, body, deadline, log)
        if not gate_open:
            claim = self._claim(request, lease_until, sqs_message_id)
            if claim.token is None:
                return self._duplicate(request, claim.existing, log)
            parked = pin_request_id(body, request.request_id, deadline)  # keeps its identity and deadline
            return self._hold(request, claim.token, parked, "balance_low", "the account balance is below the floor",
                              log, attempted=False)  # fmt: skip

        # The record is claimed only once the message can go: credentials in hand, a sender ID known.
        try:
            credentials = self._credentials.get()  # every failure comes as CredentialsError
        except CredentialsError as exc:
            return self._not_ready(request, "credentials_unavailable", str(exc), log)
        outbound = self._outbound(request, credentials)
        if outbound is None:
            return self._not_ready(
                request,
                "missing_sender_id",
                "no sender_id in the message, the credentials secret or DEFAULT_SENDER_ID",
                log,
            )
        claim = self._claim(request, lease_until, sqs_message_id)
        if claim.token is None:
            return self._duplicate(request, claim.existing, log)
        token = claim.token

        send = functools.partial(self._send_one, request, outbound)
        result = self._call(send, credentials, log, request.priority)
        if result.error_code == "insufficient_balance" and self._gate.enabled:
            cost = request.segmentation.parts * self._settings.price_per_part
            self._gate.close("the provider answered insufficient balance", now=self._clock(), need=cost)
            parked = pin_request_id(body, request.request_id, deadline)
            held = self._hold(request, token, parked, "insufficient_balance", result.error_message or "", log,
                              attempted=True)  # fmt: skip
            return replace(held, provider_reached=True)
        return self._settle(request, token, claim.attempts, result, log)

    def cancel(self, cancel: CancelRequest, *, answer_too_late: bool = True) -> RecordResult:
        """Cancel a message that has not gone to the provider; too late is recorded on its record and
        answered once (a status event), never retried. No provider call, no capacity taken."""
        rid = cancel.request_id
        result, existing = self._store.cancel(rid, now=self._clock(), answer_too_late=answer_too_late)
        if result is None and answer_too_late and existing is not None and existing.cancels_by_number:
            return self._cancel_bulk(existing, existing.phones or ())
        if result is CancelResult.CANCELLED:
            logger.info("sms cancelled", extra={"request_id": rid})
            return RecordResult(rid, "cancelled")
        status = str(existing.status) if existing is not None else None
        if result is CancelResult.TOO_LATE:
            logger.warning("cancel came too late; the message had gone", extra={"request_id": rid, "status": status})
            return RecordResult(rid, "cancel_too_late", "too_late")
        logger.info("cancel already answered", extra={"request_id": rid, "status": status})
        return RecordResult(rid, "duplicate")

    def _cancel_bulk(self, parent: StatusRecord, phones: tuple[str, ...]) -> RecordResult:
        """A bulk request whose numbers may be going: each number is cancelled by its own record first (a
        claim that came before wins, and that number goes; one that comes after meets a `cancelled` record),
        so the answer says what was stopped: cancelled if any number was, else too late."""
        rid = parent.request_id
        results = self._each(functools.partial(self._cancel_number, rid), phones)
        stopped = tuple(result for result in results if result.disposition == "cancelled")
        answer = self._store.cancel_bulk(rid, now=self._clock(), stopped=len(stopped), total=len(phones))
        log = {"request_id": rid, "numbers": len(phones), "stopped": len(stopped)}
        if answer is CancelResult.CANCELLED:
            logger.info("bulk request cancelled", extra=log)
            return RecordResult(rid, "cancelled", children=stopped)
        if answer is CancelResult.TOO_LATE:
            logger.warning("cancel came too late; every number of the bulk request had gone", extra=log)
            return RecordResult(rid, "cancel_too_late", "too_late")
        logger.info("cancel already answered", extra=log)
        return RecordResult(rid, "duplicate")

    def _cancel_number(self, parent_id: str, phone: str) -> RecordResult:
        """One number of a cancelled bulk request: cancelled unless it has gone (then it goes on, unanswered:
        the request's cancel is the answer)."""
        rid = child_request_id(parent_id, phone)
        result, _ = self._store.cancel(rid, now=self._clock(), answer_too_late=False, parent_id=parent_id, phone=phone)
        if result is CancelResult.CANCELLED:
            logger.info("sms cancelled", extra={"request_id": rid, "phone": mask_phone(phone)})
            return RecordResult(rid, "cancelled")
        return RecordResult(rid, "duplicate")

    def _schedule(
        self, request: SmsRequest | BulkRequest, body: str, deadline: float | None, log: dict[str, Any]
    ) -> RecordResult:
        """Due later: recorded as `scheduled`, the body kept (its request_id and deadline written in), and
        published again by poll_status when due, however far ahead. No provider call, no capacity taken."""
        parked = pin_request_id(body, request.request_id, deadline)
        existing = self._store.schedule(request, now=self._clock(), payload=parked)
        if existing is not None and existing.status == Status.SCHEDULED:
            # A copy of a message still scheduled (published early, or by the producer twice): acknowledging
            # it could drop the one copy poll_status published; it waits in its queue until due instead.
            due = request.schedule_time.timestamp() if request.schedule_time is not None else self._clock()
            return RecordResult(request.request_id, "deferred", "scheduled", retry_at=due)
        if existing is not None:
            if isinstance(request, BulkRequest):
                logger.info("duplicate bulk request_id; not again", extra={**log, "existing_status": existing.status})
                return RecordResult(request.request_id, "duplicate")
            return self._duplicate(request, existing, log)
        logger.info("sms scheduled", extra={**log, "schedule_time": str(request.schedule_time)})
        return RecordResult(request.request_id, "scheduled")

    def expire(self, request: SmsRequest, sqs_message_id: str, lease_until: float) -> RecordResult:
        """Past its valid_until (or the maximum age), or would be before capacity comes: `failed` / `expired`."""
        log = _log_of(request)
        claim = self._claim(request, lease_until, sqs_message_id)
        if claim.token is None:
            return self._duplicate(request, claim.existing, log)
        now = self._clock()
        message = "not handed to the provider before its valid_until (or the maximum message age); never sent late"
        self._store.mark_failed(request.request_id, claim.token, now=now, error_code="expired", error_message=message,
                                provider_status=None, attempted=False)  # fmt: skip
        logger.warning("sms expired before it could be sent", extra=log)
        return RecordResult(request.request_id, "failed", "expired")

    def _claim(self, request: SmsRequest, lease_until: float, sqs_message_id: str) -> Claim:
        resolve_at = lease_until + self._settings.maybe_sent_grace_seconds  # if the attempt never says how it ended
        return self._store.claim(request, now=self._clock(), lease_until=lease_until, resolve_at=resolve_at,
                                 sqs_message_id=sqs_message_id)  # fmt: skip

    def _not_ready(self, request: SmsRequest, error_code: str, error_message: str, log: dict[str, Any]) -> RecordResult:
        """Nothing can be sent until an operator fixes the setup: SQS redelivers, then keeps it in the DLQ.

        No record is claimed; one that already exists and is settled makes this a plain duplicate.
        """
        existing = self._store.get(request.request_id)
        if existing is not None and not (
            existing.status == Status.SENDING and existing.attempt_state in (AttemptState.RELEASED, AttemptState.HELD)
        ):
            return self._duplicate(request, existing, log)
        logger.error("sms cannot be sent yet; will retry", extra={**log, "error_code": error_code,
                                                                  "error": error_message})  # fmt: skip
        return RecordResult(request.request_id, "retry", error_code)

    def _outbound(self, request: SmsRequest, credentials: Credentials) -> OutboundSms | None:
        # The message's own, else the secret's, else the stack's default (template parameter SenderId).
        sender_id = request.sender_id or credentials.sender_id or self._settings.default_sender_id
        if not sender_id:
            return None
        return OutboundSms(
            phone=request.phone,
            text=request.text,
            sender_id=sender_id,
            priority=request.priority,
            transactional=request.type == "transactional",
            campaign_id=request.campaign_id,
        )

    def _send_one(self, request: SmsRequest, planned: OutboundSms, credentials: Credentials) -> SendResult:
        return self._provider.send(self._outbound(request, credentials) or planned, credentials)

    def _renew(self, grant: Grant | None, priority: Priority) -> float | None:
        """None when a call of `grant` may go now (counted again if it is later than half the limiter's
        slack after its grant); else when capacity is expected."""
        if grant is None or self._limiter is None:
            return None
        lane = Lane.OTP if priority == "high" else Lane.BULK
        return self._limiter.renew(grant, lane, within=self._settings.rate_slack_seconds / 2)

    def _another_call(self, priority: Priority) -> bool:
        """Capacity for one more call than admission took (the same request again, with a rotated key)."""
        if self._limiter is None:
            return False
        return self._limiter.acquire(Lane.OTP if priority == "high" else Lane.BULK).granted == 1

    def _call(
        self,
        send: Callable[[Credentials], SendResult],
        credentials: Credentials,
        log: dict[str, Any],
        priority: Priority,
    ) -> SendResult:
        """The provider call, after the claim: once more after an authentication failure if the secret
        has changed (a rotated key) and the limiter grants that call; never an exception. Without the
        capacity the refusal stands: SQS redelivers the message, which then goes with the fresh key."""
        try:
            result = send(credentials)
            if not result.auth_failed:
                return result
            try:
                fresh = self._credentials.refresh()
            except CredentialsError:
                return result
            if fresh == credentials:
                return result
            if not self._another_call(priority):
                logger.info(
                    "credentials changed after an authentication failure; no capacity to send again now", extra=log
                )
                return result
            logger.info("credentials changed after an authentication failure; sending again", extra=log)
            return send(fresh)
        except Exception as exc:
            # The adapters turn every fault into an outcome: this is a bug of ours, after the claim. Whether
            # the request left is unknowable: never resent, resolved like any maybe-sent one. Only the
            # exception's type is logged: its text may quote the request.
            error = type(exc).__name__
            logger.error("the provider call raised; its outcome is unknown", extra={**log, "error": error})
            message = f"the provider call failed unexpectedly ({error})"
            return SendResult(Outcome.MAYBE_SENT, error_code="internal_error", error_message=message)

    # --- bulk requests: handed on in chunks, each chunk one provider request ---------------------------
    def _hand_on(self, inbound: Inbound, bulk: BulkRequest, lease_until: float) -> RecordResult:
        """A bulk request due now: its own record, a failed record per invalid number, and its valid
        numbers published back to its queue in chunks (a chunk per provider request), each of which
        waits for capacity and is sent like one message. No provider call here, no capacity taken."""
        rid, now = bulk.request_id, self._clock()
        log: dict[str, Any] = {"request_id": rid, "numbers": len(bulk.children)}
        deadline = inbound.deadline(self._settings.max_message_age_seconds)
        if scheduled_later(inbound, now) and bulk.children:
            return self._schedule(bulk, inbound.body, deadline, log)
        opened, existing = self._store.open_bulk(bulk, now=now, sqs_message_id=inbound.sqs_message_id)
        if not opened:
            status = existing.status if existing is not None else None
            logger.info("bulk request handed on already; not again", extra={**log, "existing_status": status})
            return RecordResult(rid, "duplicate")
        if deadline is not None and now >= deadline:  # its record says so; no number gets one
            message = "not handed to the provider before its valid_until (or the maximum message age); never sent late"
            self._store.fail_bulk(rid, now=now, error_code="expired", error_message=message)
            logger.warning("bulk request expired before it could be sent", extra=log)
            return RecordResult(rid, "failed", "expired")
        invalid = []
        for child in bulk.invalid:
            self._store.record_invalid(child.request_id, child.code, child.message, now=now,
                                       sqs_message_id=inbound.sqs_message_id, parent_id=rid)  # fmt: skip
            invalid.append(RecordResult(child.request_id, "invalid", child.code))
        per_call = self._provider.max_numbers
        size = max(1, min(self._settings.bulk_chunk_size, per_call if per_call > 1 else CALLS_PER_CHUNK))
        bodies = chunk_bodies(inbound.body, bulk, size, deadline)
        deferrer = self._deferrer or runtime.deferrer()
        deferrer.hand_on(bodies, bulk.priority, rid)
        self._store.handed_on(rid, now=now)
        logger.info("bulk request handed on in chunks", extra={**log, "chunks": len(bodies), "invalid": len(invalid)})
        return RecordResult(rid, "handed_on", children=tuple(invalid))

    def _send_chunk(
        self, inbound: Inbound, bulk: BulkRequest, lease_until: float, *, gate_open: bool, grant: Grant | None
    ) -> RecordResult:
        """One chunk of a bulk request: its numbers claimed one by one, then one provider request for all
        that are not duplicates, and each number's record settled by that one outcome."""
        rid, sqs_message_id = bulk.request_id, inbound.sqs_message_id
        log: dict[str, Any] = {"request_id": rid, "numbers": len(bulk.children)}
        if not bulk.children:  # only a hand-made message marked as a chunk can be: its request keeps the rest
            logger.warning("a chunk without a number that can be sent; nothing to send", extra=log)
            return RecordResult(rid, "invalid", "invalid_request")
        deadline = inbound.deadline(self._settings.max_message_age_seconds)
        if deadline is not None and self._clock() >= deadline:
            return self.expire_chunk(bulk, sqs_message_id, lease_until)
        if not gate_open:  # no record is parked: the chunk waits in its queue until a poll run opens the gate
            return RecordResult(rid, "deferred", "balance_low", retry_at=self._clock() + BALANCE_WAIT_SECONDS)
        try:
            credentials = self._credentials.get()
        except CredentialsError as exc:
            logger.error("chunk cannot be sent yet; will retry", extra={**log, "error_code": "credentials_unavailable",
                                                                       "error": str(exc)})  # fmt: skip
            return RecordResult(rid, "retry", "credentials_unavailable")
        # The numbers share every field but the phone (and, in messages, the text): the first speaks for all.
        planned = self._outbound(bulk.children[0], credentials)
        if planned is None:
            logger.error("chunk cannot be sent yet; will retry", extra={**log, "error_code": "missing_sender_id"})
            return RecordResult(rid, "retry", "missing_sender_id")

        if self._provider.max_numbers == 1:
            return self._send_each(bulk, planned, credentials, lease_until, sqs_message_id, grant)

        results: list[RecordResult] = []
        claimed: list[tuple[SmsRequest, Claim]] = []
        claims = self._each(lambda child: self._claim(child, lease_until, sqs_message_id), bulk.children)
        for child, claim in zip(bulk.children, claims, strict=True):
            if claim.token is None:
                results.append(self._duplicate(child, claim.existing, _log_of(child)))
            else:
                claimed.append((child, claim))
        if not claimed:
            return RecordResult(rid, "duplicate", children=tuple(results))

        def send(creds: Credentials) -> SendResult:
            first = self._outbound(claimed[0][0], creds) or replace(planned, phone=claimed[0][0].phone)
            if len(claimed) == 1:
                return self._provider.send(first, creds)
            numbers = tuple(child.phone for child, _ in claimed)
            texts = tuple(child.text for child, _ in claimed) if bulk.personal else None
            outbound = OutboundBulk(numbers, None if texts else first.text, texts, first.sender_id,
                                    first.transactional, first.campaign_id)  # fmt: skip
            return self._provider.send_bulk(outbound, creds)

        result = self._call(send, credentials, log, bulk.priority)
        if result.error_code == "insufficient_balance" and self._gate.enabled:
            need = sum(child.segmentation.parts for child, _ in claimed) * self._settings.price_per_part
            self._gate.close("the provider answered insufficient balance", now=self._clock(), need=need)
            message = result.error_message or ""
            self._each(
                lambda pair: self._release(pair[0], pair[1].token or "", "insufficient_balance", message,
                                           _log_of(pair[0])),
                claimed,
            )  # fmt: skip
            return RecordResult(rid, "deferred", "insufficient_balance", retry_at=self._clock() + BALANCE_WAIT_SECONDS,
                                provider_reached=True)  # fmt: skip
        settled = self._each(
            lambda pair: self._settle(pair[0], pair[1].token or "", pair[1].attempts, result, _log_of(pair[0])), claimed
        )
        first = settled[0]  # one outcome for every number of the request
        return replace(first, request_id=rid, children=tuple(results + settled))

    def _send_each(
        self,
        bulk: BulkRequest,
        planned: OutboundSms,
        credentials: Credentials,
        lease_until: float,
        sqs_message_id: str,
        grant: Grant | None,
    ) -> RecordResult:
        """A chunk in a dialect without a bulk call: number by number, each claimed just before its own call.
        It stops at the first answer that leaves its number to try again (a throttle, a failure to retry, a
        closed gate) or that says the provider is failing: the numbers not settled then wait as a chunk
        (process_batch publishes them again), so none is sent twice and none is left behind. A call made
        seconds after admission counted it is counted again when it is made (`grant`): refused then, it and
        the rest wait, and what admission counted for them is given back."""
        rid = bulk.request_id
        results: list[RecordResult] = []
        for index, child in enumerate(bulk.children):
            wait = self._renew(grant, child.priority)
            if wait is not None and self._limiter is not None and grant is not None:
                self._limiter.release(grant, len(bulk.children) - index)
                return RecordResult(rid, "deferred", "rate_limited", retry_at=wait, children=tuple(results))
            log = _log_of(child)
            claim = self._claim(child, lease_until, sqs_message_id)
            if claim.token is None:
                results.append(self._duplicate(child, claim.existing, log))
                continue
            fallback = replace(planned, phone=child.phone, text=child.text)

            def send(creds: Credentials, child: SmsRequest = child, fallback: OutboundSms = fallback) -> SendResult:
                return self._provider.send(self._outbound(child, creds) or fallback, creds)

            result = self._call(send, credentials, log, child.priority)
            if result.error_code == "insufficient_balance" and self._gate.enabled:
                unsent = bulk.children[len(results) :]
                need = sum(other.segmentation.parts for other in unsent) * self._settings.price_per_part
                self._gate.close("the provider answered insufficient balance", now=self._clock(), need=need)
                self._release(child, claim.token, "insufficient_balance", result.error_message or "", log)
                retry_at = self._clock() + BALANCE_WAIT_SECONDS
                return RecordResult(rid, "deferred", "insufficient_balance", retry_at=retry_at, provider_reached=True,
                                    children=tuple(results))  # fmt: skip
            settled = self._settle(child, claim.token, claim.attempts, result, log)
            results.append(settled)
            if settled.disposition in ("deferred", "retry"):
                return replace(settled, request_id=rid, children=tuple(results))
            if settled.provider_reached is False and len(results) < len(bulk.children):
                # The provider is failing: the rest wait (and the outage count sees one failure per chunk).
                backoff = self._clock() + self._settings.retry_base_seconds
                return replace(
                    settled, request_id=rid, disposition="deferred", retry_at=backoff, children=tuple(results)
                )
        sent = [result for result in results if result.disposition != "duplicate"]
        if not sent:
            return RecordResult(rid, "duplicate", children=tuple(results))
        return replace(sent[-1], request_id=rid, children=tuple(results))

    def expire_chunk(self, bulk: BulkRequest, sqs_message_id: str, lease_until: float) -> RecordResult:
        results = self._each(lambda child: self.expire(child, sqs_message_id, lease_until), bulk.children)
        return RecordResult(bulk.request_id, "failed", "expired", children=tuple(results))

    def stop_chunk(self, bulk: BulkRequest) -> RecordResult:
        """A chunk of a bulk request that was cancelled: each of its numbers is cancelled (or was sent)."""
        # Its numbers that went were not cancelled one by one: the bulk request's cancel is the answer.
        results = self._each(functools.partial(self._cancel_number, bulk.request_id), [c.phone for c in bulk.children])
        return RecordResult(bulk.request_id, "cancelled", children=tuple(results))

    def _settle(
        self, request: SmsRequest, token: str, attempts: int, result: SendResult, log: dict[str, Any]
    ) -> RecordResult:
        reached = self._settle_outcome(request, token, attempts, result, log)
        return replace(reached, provider_reached=not outage_sign(result.outcome, result.error_code))

    def _settle_outcome(
        self, request: SmsRequest, token: str, attempts: int, result: SendResult, log: dict[str, Any]
    ) -> RecordResult:
        now = self._clock()
        rid = request.request_id
        parts = request.segmentation.parts
        if result.outcome is Outcome.ACCEPTED:
            cost = result.cost if result.cost is not None else parts * self._settings.price_per_part
            if not self._store.mark_sent(
                rid,
                token,
                now=now,
                message_id=result.message_id,
                provider_status=result.provider_status,
                cost=cost,
                # MiM's reports come seconds to minutes later; the policy may not track this one at all.
                report_due=now + self._settings.report_delay_seconds
                if self._settings.tracking.tracks(rid, request.priority)
                else None,
            ):
                logger.warning("status record changed while sending; sent state not written", extra=log)
            logger.info("sms sent", extra={**log, "message_id": result.message_id, "parts": parts})
            return RecordResult(rid, "sent", parts=parts, cost=cost)
        error_code = result.error_code or "provider_error"
        error_message = result.error_message or error_code
        if result.outcome is Outcome.PERMANENT:
            self._store.mark_failed(
                rid,
                token,
                now=now,
                error_code=error_code,
                error_message=error_message,
                provider_status=result.provider_status,
            )
            logger.warning("sms failed permanently", extra={**log, "error_code": error_code})
            return RecordResult(rid, "failed", error_code)
        if result.outcome is Outcome.MAYBE_SENT:
            self._mark_maybe_sent(rid, token, error_message)
            logger.error("provider outcome unknown; not resending", extra={**log, "error_code": error_code})
            return RecordResult(rid, "maybe_sent", error_code)
        if result.outcome is Outcome.THROTTLED:
            # Not a failure: the message waits for capacity outside the function (process_batch defers it).
            self._release(request, token, error_code, error_message, log)
            return RecordResult(rid, "deferred", error_code, retry_at=now + (result.retry_after or 0),
                                throttled=True, retry_after=result.retry_after)  # fmt: skip
        if error_code in SETUP_ERRORS:  # ours to fix (a key, the allow-list): SQS retries, then the DLQ keeps it
            return self._release(request, token, error_code, error_message, log)
        if attempts >= self._settings.max_send_attempts:
            message = f"not sent after {attempts} attempts; the last answer: {error_code}: {error_message}"
            self._store.mark_failed(rid, token, now=now, error_code="retries_exhausted", error_message=message,
                                    provider_status=result.provider_status)  # fmt: skip
            logger.error("sms not sent after every attempt", extra={**log, "error_code": error_code})
            return RecordResult(rid, "failed", "retries_exhausted")
        # Certainly not sent: try again later, with exponential back-off (the deferral adds jitter).
        self._release(request, token, error_code, error_message, log)
        backoff = self._settings.retry_base_seconds * 2 ** (attempts - 1)
        return RecordResult(rid, "deferred", error_code, retry_at=now + backoff)

    def _mark_maybe_sent(self, request_id: str, token: str, error_message: str) -> None:
        now = self._clock()
        resolve_at = now + self._settings.maybe_sent_grace_seconds
        self._store.mark_maybe_sent(request_id, token, now=now, error_message=error_message, resolve_at=resolve_at)

    def _hold(
        self,
        request: SmsRequest,
        token: str,
        body: str,
        error_code: str,
        error_message: str,
        log: dict[str, Any],
        *,
        attempted: bool,
    ) -> RecordResult:
        self._store.hold(
            request.request_id,
            token,
            now=self._clock(),
            payload=body,
            error_code=error_code,
            error_message=error_message,
            attempted=attempted,
        )
        logger.warning("sms held until the balance is back", extra={**log, "error_code": error_code})
        return RecordResult(request.request_id, "held", error_code)

    def _release(
        self, request: SmsRequest, token: str, error_code: str, error_message: str, log: dict[str, Any]
    ) -> RecordResult:
        self._store.release(
            request.request_id, token, now=self._clock(), error_code=error_code, error_message=error_message
        )
        logger.warning("sms not sent; will retry", extra={**log, "error_code": error_code})
        return RecordResult(request.request_id, "retry", error_code)

    def _reject(self, exc: InvalidRequest, sqs_message_id: str) -> RecordResult:
        request_id = exc.request_id or sqs_message_id
        now = self._clock()
        created = self._store.record_invalid(request_id, exc.code, exc.message, now=now, sqs_message_id=sqs_message_id)
        logger.warning(
            "invalid request rejected", extra={"request_id": request_id, "error_code": exc.code, "recorded": created}
        )
        return RecordResult(request_id, "invalid", exc.code)

    def _duplicate(self, request: SmsRequest, existing: StatusRecord | None, log: dict[str, Any]) -> RecordResult:
        if (
            existing is not None
            and existing.status == Status.SENDING
            and existing.attempt_state == AttemptState.IN_FLIGHT
            and existing.lease_until < self._clock()
        ):
            # An earlier invocation claimed it and ended without a word (timeout, crash): it may have sent it.
            self._mark_maybe_sent(
                request.request_id,
                existing.claim_token or "",
                "an earlier attempt ended without recording its outcome",
            )
            logger.error("abandoned attempt found; not resending", extra=log)
            return RecordResult(request.request_id, "maybe_sent", "maybe_sent")
        status = existing.status if existing is not None else None
        logger.info("duplicate request_id; not sending again", extra={**log, "existing_status": status})
        return RecordResult(request.request_id, "duplicate")


def _log_of(request: SmsRequest) -> dict[str, Any]:
    return {"request_id": request.request_id, "phone": mask_phone(request.phone)}


def chunk_bodies(body: str, bulk: BulkRequest, size: int, deadline: float | None) -> list[str]:
    """The bodies of a bulk request's chunks: the request as published (a schedule_time, now past, kept
    as the start of its age), its numbers `size` at a time (normalised, duplicates gone) and its deadline
    written in (a chunk is a new SQS message, published now)."""
    data = json.loads(body)
    data["request_id"] = bulk.request_id
    if deadline is not None:
        data["valid_until"] = datetime.fromtimestamp(deadline, UTC).isoformat(timespec="seconds")
    children = bulk.children
    return [chunk_body(data, replace(bulk, children=children[at : at + size])) for at in range(0, len(children), size)]


def chunk_body(data: dict[str, Any], bulk: BulkRequest) -> str:
    """A chunk's body: the request's fields in `data`, with the numbers (and texts) of `bulk`."""
    if bulk.personal:
        numbers: dict[str, Any] = {
            "messages": [{"phone": child.phone, "message": child.text} for child in bulk.children]
        }
    else:
        numbers = {"phones": [child.phone for child in bulk.children]}
    return json.dumps({**data, **numbers}, ensure_ascii=False, separators=(",", ":"))


def _emit_metrics(result: RecordResult) -> None:
    """Metrics for one record, from the event loop's thread only (Powertools' Metrics is not thread-safe).
    A chunk counts as its numbers; a bulk request handed on counts once, and its invalid numbers each."""
    if result.children:
        for child in result.children:
            _emit_metrics(child)
        if result.disposition != "handed_on":
            return
    metrics.add_metric(name=METRIC_BY_DISPOSITION[result.disposition], unit=MetricUnit.Count, value=1)
    if result.cooldown_started:
        metrics.add_metric(name="ProviderCooldowns", unit=MetricUnit.Count, value=1)
    if result.disposition == "sent":
        metrics.add_metric(name="Parts", unit=MetricUnit.Count, value=result.parts)
        metrics.add_metric(name="CostBDT", unit=MetricUnit.NoUnit, value=result.cost)
    if result.disposition in ("failed", "invalid") and result.error_code:
        with single_metric(
            name="FailuresByCode", unit=MetricUnit.Count, value=1, namespace=metrics.namespace
        ) as metric:
            metric.add_dimension(name="error_code", value=result.error_code)


# Work this close is due: SQS delays by whole seconds, and the message may come back a little early.
DUE_TOLERANCE_SECONDS = 1.0


@dataclass(frozen=True, eq=False)
class Admission:
    """What admit() decided for a batch (keys are SQS message ids)."""

    waiting: dict[str, DueWork]  # records that wait, and for what
    partial: dict[str, int]  # chunks granted only some of their calls: that many numbers go
    grants: dict[str, Grant]  # the grant each record's calls were counted in (a chunk renews its later calls)


def admit(inbound: list[Inbound], limiter: RateLimiter, max_age: int, now: float, max_numbers: int = 1) -> Admission:
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
        turn = _turn(item)
        if turn is not None and turn > now + DUE_TOLERANCE_SECONDS:
            waiting[item.sqs_message_id] = DueWork(WorkKind.TURN, turn)  # a long wait, hop by hop
            continue
        lanes[Lane.OTP if item.priority == "high" else Lane.BULK].append(item)
    for lane, items in lanes.items():
        if items:
            # Those whose turn has come ask first; the rest of the batch queues behind them if need be.
            items.sort(key=lambda item: _turn(item) or now + DUE_TOLERANCE_SECONDS)
            calls = [item.calls(max_numbers) for item in items]
            due = sum(n for item, n in zip(items, calls, strict=True) if _turn(item) is not None)
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
                    DueWork(WorkKind.TURN, turn) if turn is not None else _retry(item, grant.retry_at)
                )
    return Admission(waiting, partial, grants)


def calls_provider(item: Inbound, max_age: int, now: float) -> bool:
    """Whether the record would call the provider now: a message or a chunk, neither expired nor due later."""
    if not item.sends_now:
        return False
    deadline = item.deadline(max_age)
    return not (deadline is not None and now >= deadline) and not scheduled_later(item, now)


def _shared_step(step: Callable[[], _T], what: str) -> _T | None:
    """A step the whole batch shares (the gate, the cancel check, capacity): its result, or None when it
    failed. A failure must not fail the invocation: the messages that need the step wait, and the rest
    (bad input, cancels, hand-ons) are settled all the same."""
    try:
        return step()
    except Exception as exc:
        logger.error(f"{what}; the messages that need it wait", extra={"error": type(exc).__name__})
        return None


def scheduled_later(item: Inbound, now: float) -> bool:
    """Whether the message is due after now (beyond the tolerance for SQS's whole-second delays)."""
    schedule = item.sendable.schedule_time if item.sendable is not None else None
    return schedule is not None and schedule.timestamp() > now + DUE_TOLERANCE_SECONDS


def _turn(item: Inbound) -> float | None:
    """The turn this record is back at, if it waited for one."""
    return item.work.due_at if item.work is not None and item.work.kind is WorkKind.TURN else None


def _retry(item: Inbound, retry_at: float) -> DueWork:
    """A retry from `retry_at` on, with the jitter that spreads retries."""
    return DueWork(WorkKind.RETRY, runtime.deferrer().due_at(retry_at, item.deferrals, item.priority))


def _defer(item: Inbound, work: DueWork, lease_until: float) -> RecordResult:
    rid = item.request_id
    deadline = item.deadline(runtime.settings().max_message_age_seconds)
    # It would come back too late: never sent late. Not a copy of a message scheduled for later, though:
    # the service holds that message on its record, on time, and the copy is met there when it comes back.
    early_copy = scheduled_later(item, runtime.sender().now())
    if deadline is not None and work.due_at >= deadline and not early_copy:
        if item.bulk is not None:
            return runtime.sender().expire_chunk(item.bulk, item.sqs_message_id, lease_until)
        return runtime.sender().expire(item.sms, item.sqs_message_id, lease_until)
    delay = runtime.deferrer().defer(item.body, rid, item.priority, work, item.deferrals, deadline, item.chunk_of)
    logger.info(
        "no capacity now; the message waits in its queue",
        extra={"request_id": rid, "delay_seconds": delay, "deferrals": item.deferrals + 1},
    )
    return RecordResult(rid, "deferred", "rate_limited")


def _unsettled(item: Inbound, result: RecordResult, later: Inbound | None) -> Inbound:
    """What waits after a deferred result: a message itself (a bulk request as published, its invalid
    numbers included: it has not been handed on); of a chunk, the numbers without a final answer (not
    sent, not failed, not another's), with the numbers that were not granted a call."""
    if item.bulk is None or item.chunk_of is None:
        return item
    settled = {child.request_id for child in result.children if child.disposition not in ("deferred", "retry")}
    rest = tuple(child for child in item.bulk.children if child.request_id not in settled)
    if later is not None and later.bulk is not None:
        rest += later.bulk.children
    return item.with_numbers(rest)


def _learn(limiter: RateLimiter, result: RecordResult) -> RecordResult:
    """Tell the account-wide limiter what the provider said: throttled, answered, or failing (an outage?)."""
    if result.throttled:  # trust its word over our own count
        limiter.throttled(result.retry_after)
    if result.provider_reached is True:
        limiter.provider_answered()
    elif result.provider_reached is False:
        ends = limiter.provider_failed()
        if ends is not None:
            logger.error("the provider keeps failing; every caller pauses", extra={"until": iso(ends)})
            return replace(result, cooldown_started=True)
    return result


def process_batch(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """Send every record of an SQS batch; report the ones to retry as batchItemFailures."""
    sender, executor, limiter = runtime.sender(), runtime.send_pool(), runtime.limiter()
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else DEFAULT_INVOCATION_SECONDS
    lease_until = time.time() + remaining + LEASE_MARGIN_SECONDS
    settings, now = runtime.settings(), sender.now()
    smart, max_age = settings.smart_encoding, settings.max_message_age_seconds
    inbound = {r["messageId"]: Inbound.from_record(r, smart_encoding=smart) for r in event.get("Records", [])}
    first = first_copies(list(inbound.values()))
    candidates = [item for m, item in inbound.items() if m in first]
    unsure: set[str] = set()  # records a failed shared step leaves waiting (SQS message ids)
    # Once per batch: a closed gate parks messages without a provider call, so they need no capacity.
    gate = _shared_step(runtime.gate().is_open, "the balance gate could not be read")
    if gate is None:
        unsure |= {item.sqs_message_id for item in candidates if calls_provider(item, max_age, now)}
    gate_open = gate is not False
    # A message back from a wait, or a chunk of a bulk request, may have been cancelled meanwhile: it must
    # not take capacity (one read for the batch).
    returning = {item.request_id for item in candidates if item.request is not None and item.work is not None}
    parents = {item.chunk_of for item in candidates if item.chunk_of is not None}
    finished: set[str] = set()
    if gate and (returning | parents):
        ids = sorted(returning | parents)
        read = _shared_step(lambda: runtime.store().finished(ids), "the cancel check failed")
        if read is None:
            unsure |= {i.sqs_message_id for i in candidates if i.chunk_of in parents or i.request_id in returning}
        finished = read or set()
    stopped = {item.sqs_message_id for item in candidates if item.chunk_of is not None and item.chunk_of in finished}
    candidates = [
        item
        for item in candidates
        if item.sqs_message_id not in stopped | unsure
        and not (item.request_id in returning and item.request_id in finished)
    ]
    admission = Admission({}, {}, {})
    if gate:
        max_numbers = runtime.provider().max_numbers
        admitted = _shared_step(lambda: admit(candidates, limiter, max_age, now, max_numbers), "no capacity taken")
        if admitted is None:
            unsure |= {item.sqs_message_id for item in candidates if calls_provider(item, max_age, now)}
        admission = admitted or admission
    waiting, partial = admission.waiting, admission.partial
    retry_at = now + settings.retry_base_seconds
    waiting.update({m: _retry(inbound[m], retry_at) for m in unsure})

    def work(item: Inbound) -> RecordResult:
        if item.sqs_message_id in stopped and item.bulk is not None:
            return sender.stop_chunk(item.bulk)
        wait, granted = waiting.get(item.sqs_message_id), partial.get(item.sqs_message_id, 0)
        if wait is not None and not granted:
            return _defer(item, wait, lease_until)
        later = None
        if wait is not None and item.bulk is not None:  # a chunk granted some of its calls: those numbers go
            numbers = item.bulk.children
            item, later = item.with_numbers(numbers[:granted]), item.with_numbers(numbers[granted:])
        grant = admission.grants.get(item.sqs_message_id)
        result = _learn(limiter, sender.handle(item, lease_until, gate_open=gate_open, grant=grant))
        if result.disposition == "deferred":
            retry_at = result.retry_at if result.retry_at is not None else time.time()
            rest = _unsettled(item, result, later)
            if rest.bulk is not None and not rest.bulk.children:
                return result
            deferred = _defer(rest, _retry(rest, retry_at), lease_until)
            if deferred.disposition == "deferred":
                deferred = replace(deferred, error_code=result.error_code)
            if result.children:  # a chunk's numbers: their own results (an expired rest: its own)
                final = tuple(c for c in result.children if c.disposition not in ("deferred", "retry"))
                deferred = replace(
                    deferred, children=final + deferred.children if deferred.children else result.children
                )
            return replace(deferred, cooldown_started=result.cooldown_started)
        if later is not None and wait is not None and result.disposition != "retry":  # a retry brings them all back
            _defer(later, wait, lease_until)
        return result

    async def handle(record: SQSRecord) -> str:
        item = inbound[record.message_id]
        if record.message_id not in first:
            logger.info("request_id repeated in this batch; only its first copy is processed",
                        extra={"request_id": item.request_id})  # fmt: skip
            result = RecordResult(item.request_id, "duplicate")
        else:
            result = await asyncio.get_running_loop().run_in_executor(executor, work, item)
        _emit_metrics(result)
        if result.disposition == "retry":
            raise RetryLater(result.error_code)
        return result.disposition

    # Every record failing (e.g. throttled) is an ordinary retry, not an invocation error.
    processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    # Final states reach the bus from the status table's stream (smsgw.notifying), not from here.
    return async_process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
