"""The batch runner: the records of one SQS batch, sent concurrently on a bounded pool.

Powertools' AsyncBatchProcessor runs each record's blocking work on the send pool, so a batch costs
about one provider round trip. The steps the whole batch shares (the balance gate, the cancel check,
capacity) run once, before; a record whose outcome must come back later raises `RetryLater`, so it
lands in `batchItemFailures`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from smsgw.balance import BalanceGate
from smsgw.config import Settings
from smsgw.deferral import Deferrer
from smsgw.errors import ErrorCode
from smsgw.limiter import RateLimiter
from smsgw.observability import logger
from smsgw.records import DueWork
from smsgw.sending.admission import Admission, admit, retry_of
from smsgw.sending.inbound import Inbound, calls_provider, first_copies, scheduled_later
from smsgw.sending.results import RecordResult, RetryLater, emit_metrics
from smsgw.sending.sender import Sender
from smsgw.store import MessageStore, iso

DEFAULT_INVOCATION_SECONDS = 60.0  # lease length when no Lambda context tells the deadline
LEASE_MARGIN_SECONDS = 5.0
_T = TypeVar("_T")


def _shared_step(step: Callable[[], _T], what: str) -> _T | None:
    """A step the whole batch shares (the gate, the cancel check, capacity): its result, or None when it
    failed. A failure must not fail the invocation: the messages that need the step wait, and the rest
    (bad input, cancels, hand-ons) are settled all the same."""
    try:
        return step()
    except Exception as exc:
        logger.error(f"{what}; the messages that need it wait", extra={"error": type(exc).__name__})
        return None


@dataclass
class BatchPlan:
    """What the shared steps decided for a batch, before any record is sent (keys: SQS message ids)."""

    gate_open: bool = True
    stopped: set[str] = field(default_factory=set)  # chunks of a cancelled bulk request
    admission: Admission = field(default_factory=lambda: Admission({}, {}, {}))


def unsettled(item: Inbound, result: RecordResult, later: Inbound | None) -> Inbound:
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


@dataclass(eq=False)
class BatchRunner:
    """Runs SQS batches through one sender; every collaborator is passed in (smsgw.runtime builds it)."""

    settings: Settings
    sender: Sender
    store: MessageStore
    gate: BalanceGate
    limiter: RateLimiter
    deferrer: Deferrer
    pool: Executor
    max_numbers: int  # numbers the provider takes in one request (1: no bulk call)
    clock: Callable[[], float] = time.time

    def run(self, event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
        """Send every record of an SQS batch; report the ones to retry as batchItemFailures."""
        remaining = context.get_remaining_time_in_millis() / 1000 if context else DEFAULT_INVOCATION_SECONDS
        lease_until = self.clock() + remaining + LEASE_MARGIN_SECONDS
        smart = self.settings.smart_encoding
        inbound = {r["messageId"]: Inbound.from_record(r, smart_encoding=smart) for r in event.get("Records", [])}
        first = first_copies(list(inbound.values()))
        plan = self.plan([item for m, item in inbound.items() if m in first])

        async def handle(record: SQSRecord) -> str:
            item = inbound[record.message_id]
            if record.message_id not in first:
                logger.info(
                    "request_id repeated in this batch; only its first copy is processed",
                    extra={"request_id": item.request_id},
                )
                result = RecordResult(item.request_id, "duplicate")
            else:
                work = functools.partial(self.work, item, plan, lease_until)
                result = await asyncio.get_running_loop().run_in_executor(self.pool, work)
            emit_metrics(result)
            if result.disposition == "retry":
                raise RetryLater(result.error_code)
            return result.disposition

        # Every record failing (e.g. throttled) is an ordinary retry, not an invocation error.
        processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        # Final states reach the bus from the status table's stream (smsgw.notifying), not from here.
        return async_process_partial_response(event=event, record_handler=handle, processor=processor, context=context)

    def plan(self, candidates: list[Inbound]) -> BatchPlan:
        """The shared steps, once for the batch. One that fails leaves the records that need it waiting."""
        now, max_age = self.sender.now(), self.settings.max_message_age_seconds
        everyone = candidates
        unsure: set[str] = set()  # records a failed shared step leaves waiting
        # A closed gate parks messages without a provider call, so they need no capacity.
        gate = _shared_step(self.gate.is_open, "the balance gate could not be read")
        if gate is None:
            unsure |= {item.sqs_message_id for item in candidates if calls_provider(item, max_age, now)}
        plan = BatchPlan(gate_open=gate is not False)
        # A message back from a wait, or a chunk of a bulk request, may have been cancelled meanwhile: it
        # must not take capacity (one read for the batch).
        returning = {item.request_id for item in candidates if item.request is not None and item.work is not None}
        parents = {item.chunk_of for item in candidates if item.chunk_of is not None}
        finished: set[str] = set()
        if gate and (returning | parents):
            ids = sorted(returning | parents)
            read = _shared_step(lambda: self.store.finished(ids), "the cancel check failed")
            if read is None:
                unsure |= {i.sqs_message_id for i in candidates if i.chunk_of in parents or i.request_id in returning}
            finished = read or set()
        plan.stopped = {i.sqs_message_id for i in candidates if i.chunk_of is not None and i.chunk_of in finished}
        candidates = [
            item
            for item in candidates
            if item.sqs_message_id not in plan.stopped | unsure
            and not (item.request_id in returning and item.request_id in finished)
        ]
        if gate:
            admitted = _shared_step(
                lambda: admit(candidates, self.limiter, self.deferrer, max_age, now, self.max_numbers),
                "no capacity taken",
            )
            if admitted is None:
                unsure |= {item.sqs_message_id for item in candidates if calls_provider(item, max_age, now)}
            plan.admission = admitted or plan.admission
        retry_at = now + self.settings.retry_base_seconds
        waiting = {item.sqs_message_id: retry_of(item, retry_at, self.deferrer) for item in everyone}
        plan.admission.waiting.update({m: work for m, work in waiting.items() if m in unsure})
        return plan

    def work(self, item: Inbound, plan: BatchPlan, lease_until: float) -> RecordResult:
        """One record, in a worker thread: stopped, deferred, or handed to the sender (in part, for a chunk
        granted some of its calls)."""
        if item.sqs_message_id in plan.stopped and item.bulk is not None:
            return self.sender.stop_chunk(item.bulk)
        admission = plan.admission
        wait, granted = admission.waiting.get(item.sqs_message_id), admission.partial.get(item.sqs_message_id, 0)
        if wait is not None and not granted:
            return self.defer(item, wait, lease_until)
        later = None
        if wait is not None and item.bulk is not None:  # a chunk granted some of its calls: those numbers go
            numbers = item.bulk.children
            item, later = item.with_numbers(numbers[:granted]), item.with_numbers(numbers[granted:])
        grant = admission.grants.get(item.sqs_message_id)
        result = self._learn(self.sender.handle(item, lease_until, gate_open=plan.gate_open, grant=grant))
        if result.disposition == "deferred":
            return self._wait_again(item, result, later, lease_until)
        if later is not None and wait is not None and result.disposition != "retry":  # a retry brings them all back
            self.defer(later, wait, lease_until)
        return result

    def _wait_again(
        self, item: Inbound, result: RecordResult, later: Inbound | None, lease_until: float
    ) -> RecordResult:
        """A record the sender deferred (a throttle, a failure to retry): what has no final answer waits."""
        retry_at = result.retry_at if result.retry_at is not None else self.clock()
        rest = unsettled(item, result, later)
        if rest.bulk is not None and not rest.bulk.children:
            return result
        deferred = self.defer(rest, retry_of(rest, retry_at, self.deferrer), lease_until)
        if deferred.disposition == "deferred":
            deferred = replace(deferred, error_code=result.error_code)
        if result.children:  # a chunk's numbers: their own results (an expired rest: its own)
            final = tuple(c for c in result.children if c.disposition not in ("deferred", "retry"))
            deferred = replace(deferred, children=final + deferred.children if deferred.children else result.children)
        return replace(deferred, cooldown_started=result.cooldown_started)

    def defer(self, item: Inbound, work: DueWork, lease_until: float) -> RecordResult:
        """Back in its queue until `work` is due; or expired, when that is past its deadline."""
        rid = item.request_id
        deadline = item.deadline(self.settings.max_message_age_seconds)
        # It would come back too late: never sent late. Not a copy of a message scheduled for later, though:
        # the service holds that message on its record, on time, and the copy is met there when it comes back.
        early_copy = scheduled_later(item, self.sender.now())
        if deadline is not None and work.due_at >= deadline and not early_copy:
            if item.bulk is not None:
                return self.sender.expire_chunk(item.bulk, item.sqs_message_id, lease_until)
            return self.sender.expire(item.sms, item.sqs_message_id, lease_until)
        delay = self.deferrer.defer(item.body, rid, item.priority, work, item.deferrals, deadline, item.chunk_of)
        logger.info(
            "no capacity now; the message waits in its queue",
            extra={"request_id": rid, "delay_seconds": delay, "deferrals": item.deferrals + 1},
        )
        return RecordResult(rid, "deferred", ErrorCode.RATE_LIMITED)

    def _learn(self, result: RecordResult) -> RecordResult:
        """Tell the account-wide limiter what the provider said: throttled, answered, or failing (an outage?)."""
        if result.throttled:  # trust its word over our own count
            self.limiter.throttled(result.retry_after)
        if result.provider_reached is True:
            self.limiter.provider_answered()
        elif result.provider_reached is False:
            ends = self.limiter.provider_failed()
            if ends is not None:
                logger.error("the provider keeps failing; every caller pauses", extra={"until": iso(ends)})
                return replace(result, cooldown_started=True)
        return result
