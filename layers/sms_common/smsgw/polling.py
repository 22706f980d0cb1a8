"""poll_status: keep the status table true and the account funded.

Each run, oldest work first and within a time budget that ends well before the Lambda timeout:
1. balance: read it, emit it, open or close the gate against the floor (a closed one opens at what the
   waiting messages need, which may be more);
2. held messages (parked while the gate was closed): publish them to the send queue again once it opens;
   scheduled messages: publish them to their queue when their time has come;
3. maybe-sent messages past their grace period, and attempts that ended without recording an outcome
   (in flight past their lease and the grace): `unknown` with `outcome_unknown` (the contract's maybe-sent policy);
4. delivery reports for `sent` messages that are due, several at a time, with the capacity the
   account-wide limiter leaves after sending: `delivered`, `failed`, still pending (looked at again
   later, with back-off), or `unknown` once the tracking window has passed.
Every write is conditional on the record's current state, so late, repeated or out-of-order reports
never move a record backward. Every final state reaches the bus from the table's stream (smsgw.notifying).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from smsgw.balance import BalanceGate
from smsgw.config import Settings
from smsgw.credentials import CredentialsError, CredentialSource
from smsgw.deferral import pin_request_id
from smsgw.limiter import Lane, RateLimiter
from smsgw.observability import logger, metrics
from smsgw.provider import DeliveryReport, DeliveryState, Outcome, Provider, outage_sign
from smsgw.records import AttemptState, Status, StatusRecord, WorkKind
from smsgw.store import MessageStore

DEFAULT_RUN_SECONDS = 60.0
# Look again after 1, 2, 5, 15, 30 minutes, then hourly growing to every 6 hours (in units of
# REPORT_DELAY_SECONDS, a minute). Most of MiM's reports come within minutes and the rest within hours:
# a message that never gets one costs about 20 look-ups over 72 hours, not the 144 of a 30-minute step.
REPORT_SCHEDULE = (1, 2, 5, 15, 30, 60, 120, 240, 360)
# The most look-ups one message may spend, answered or not: the schedule above makes about 20 in a 72-hour
# tracking window; a longer window, or throttled look-ups retried sooner, end `unknown` here instead.
MAX_REPORT_LOOKUPS = 24


@dataclass
class PollSummary:
    """What one poll run did, for its log line and its metrics."""

    balance: float | None = None
    balance_needed: float | None = None  # what opens the gate: the floor, or a refused message's price
    gate_open: bool | None = None
    republished: int = 0
    scheduled_published: int = 0
    resolved_unknown_outcome: int = 0
    reports_checked: int = 0
    delivered: int = 0
    failed: int = 0
    unknown: int = 0
    still_pending: int = 0
    stopped_early: str | None = None  # "time", "capacity" or "throttled" when work was left for the next run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _epoch(value: Any) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(eq=False)
class Poller:
    settings: Settings
    store: MessageStore
    provider: Provider
    credentials: CredentialSource
    gate: BalanceGate
    sqs: Any
    limiter: RateLimiter
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=self.settings.poll_concurrency, thread_name_prefix="poll")

    def run(self, deadline: float) -> PollSummary:
        summary = PollSummary()
        try:
            credentials = self.credentials.get()
        except CredentialsError as exc:
            logger.error("cannot poll: credentials unavailable", extra={"error": str(exc)})
            credentials = None
        if credentials is not None:
            self._check_balance(credentials, summary)
        if self.gate.enabled and self.gate.is_open():
            summary.republished = self._publish_due(WorkKind.HELD, deadline, summary)
        summary.scheduled_published = self._publish_due(WorkKind.SCHEDULED, deadline, summary)
        self._resolve_maybe_sent(deadline, summary)
        if credentials is not None:
            self._poll_reports(credentials, deadline, summary)
        self._emit(summary)
        return summary

    # --- 1. balance and the gate ---------------------------------------------------------------
    def _check_balance(self, credentials: Any, summary: PollSummary) -> None:
        # Every check is a call of the account's limit (every minute would be 14 % of the day's 10,000):
        # every BALANCE_CHECK_SECONDS while the gate is open, every run while it is closed.
        if self.gate.is_open() and not self.limiter.claim_balance_check(self.settings.balance_check_seconds):
            return
        if not self.limiter.acquire(Lane.CONTROL).granted:
            logger.warning("no capacity for a balance check this run")
            return
        result = self.provider.balance(credentials)
        if result.outcome is Outcome.THROTTLED:
            self.limiter.throttled(None)
        if result.auth_failed:
            try:
                result = self.provider.balance(self.credentials.refresh())
            except CredentialsError as exc:  # the rest of the run (maybe-sent, held) still has work to do
                logger.error("cannot re-read the credentials", extra={"error": str(exc)})
        if result.balance is None:
            logger.warning("balance unavailable", extra={"error_code": result.error_code})
            return
        summary.balance = result.balance
        floor = self.settings.balance_floor
        was_open = self.gate.is_open()
        # A closed gate opens at what the waiting messages need: the floor, or the price of the one the
        # provider refused if that is more. Opening below it would refuse that message and close again.
        needed = floor if was_open else self.gate.needed(floor)
        summary.balance_needed = needed
        if result.balance < floor and was_open:
            self.gate.close(f"balance below the floor of {floor:g}", balance=result.balance, now=self.clock())
        elif result.balance >= needed and not was_open:
            self.gate.open(result.balance, now=self.clock())
        elif not was_open:
            logger.warning("balance gate stays closed", extra={"balance": result.balance, "needed": needed})
        summary.gate_open = result.balance >= needed

    # --- 2. held and scheduled messages -----------------------------------------------------
    def _publish_due(self, kind: WorkKind, deadline: float, summary: PollSummary) -> int:
        """Held messages (the gate is open again) and scheduled ones (their time has come) whose work is due
        go back to their queue, as the same request; their delivery claims them. Returns how many."""
        published = 0
        for item in self.store.due(kind, self.clock()):
            if self.clock() >= deadline:
                summary.stopped_early = "time"
                break
            if item.payload is None:  # hold() and schedule() always keep the body: changed by hand
                logger.error(
                    "record without its message body; left for an operator",
                    extra={"request_id": item.request_id, "work": str(kind)},
                )
                continue
            # Publish first, then take it off the work queue: a crash in between publishes it twice,
            # and the claim on request_id makes the second copy a harmless duplicate.
            self._publish(item, pin_request_id(item.payload, item.request_id))
            self.store.published_again(item.request_id, kind, now=self.clock())
            published += 1
        return published

    def _publish(self, item: StatusRecord, body: str) -> None:
        high = item.priority == "high" and self.settings.priority_queue_url
        queue = self.settings.priority_queue_url if high else self.settings.send_queue_url
        self.sqs.send_message(QueueUrl=queue, MessageBody=body)

    # --- 3. maybe-sent messages -------------------------------------------------------------
    def _resolve_maybe_sent(self, deadline: float, summary: PollSummary) -> None:
        lost = (
            "the provider may or may not have sent this SMS (its answer was lost); "
            "it was not resent to avoid a duplicate"
        )
        abandoned = (
            "an attempt ended without recording its outcome (a timeout or a crash); "
            "the SMS may have been sent and was not resent to avoid a duplicate"
        )
        for item in self.store.due(WorkKind.UNRESOLVED, self.clock()):
            if self.clock() >= deadline:
                summary.stopped_early = "time"
                return
            now = self.clock()
            message = abandoned if item.attempt_state == AttemptState.IN_FLIGHT else lost
            if self.store.resolve_maybe_sent(item.request_id, now=now, error_message=message):
                summary.resolved_unknown_outcome += 1
                summary.unknown += 1
                metrics.add_metric(name="MessagesUnknown", unit=MetricUnit.Count, value=1)

    # --- 4. delivery reports ----------------------------------------------------------------
    def _poll_reports(self, credentials: Any, deadline: float, summary: PollSummary) -> None:
        chunk_size = self.settings.poll_concurrency * 2
        now = self.clock()
        start: dict[str, Any] | None = None
        while True:
            if self.clock() >= deadline:
                summary.stopped_early = "time"
                return
            # Capacity first, then read exactly that many records: a run reads only the work it does.
            grant = self.limiter.acquire(Lane.REPORT, chunk_size)
            granted = grant.granted
            if not granted:  # sending has the capacity now; the rest stays due for the next run
                summary.stopped_early = "capacity"
                return
            chunk, start = self.store.due_page(WorkKind.REPORT, now, granted, start)
            lookups = sum(1 for item in chunk if self._needs_lookup(item))
            self.limiter.release(grant, granted - lookups)  # past the window or no message id: no call made
            outcomes = list(self.pool.map(functools.partial(self._check_one, credentials), chunk))
            for _, result in outcomes:
                self._tally(result, summary)
            if any(result.get("throttled") for _, result in outcomes):
                self.limiter.throttled(None)
                summary.stopped_early = "throttled"
                return
            if start is None:
                return

    def _needs_lookup(self, item: StatusRecord) -> bool:
        sent_at = _epoch(item.sent_at) or self.clock()
        expired = self.clock() >= sent_at + self.settings.tracking_window_hours * 3600
        return bool(item.message_id) and not expired

    def _check_one(self, credentials: Any, item: StatusRecord) -> tuple[bool, dict[str, Any]]:
        """Look at one `sent` record. Returns (whether the provider was called, what happened)."""
        now = self.clock()
        request_id = item.request_id
        sent_at = _epoch(item.sent_at) or now
        expired = now >= sent_at + self.settings.tracking_window_hours * 3600
        message_id = item.message_id
        if not message_id or expired or item.report_checks >= MAX_REPORT_LOOKUPS:
            return False, self._finish(item, Status.UNKNOWN, now)
        report = self.provider.delivery_report(str(message_id), str(item.phone), credentials)
        if report.state is None:
            # The lookup itself failed: throttling ends this run's polling (and the message looks again
            # soon); other failures back off like a pending report, so one message cannot spend the
            # account's limit; failures in a row count toward the outage cool-down that sending shares.
            if outage_sign(report.outcome, report.error_code):
                self.limiter.provider_failed()
            else:
                self.limiter.provider_answered()
            throttled = report.outcome is Outcome.THROTTLED
            retry_at = now + self.settings.report_delay_seconds if throttled else self._next_look(item, now)
            self.store.postpone_report(request_id, now=now, due=retry_at, provider_status=None)
            return True, {"pending": True, "throttled": throttled}
        self.limiter.provider_answered()
        if report.state is DeliveryState.DELIVERED:
            return True, self._finish(item, Status.DELIVERED, now, report)
        if report.state is DeliveryState.FAILED:
            return True, self._finish(item, Status.FAILED, now, report)
        due = self._next_look(item, now)
        self.store.postpone_report(request_id, now=now, due=due, provider_status=report.provider_status)
        return True, {"pending": True}

    def _next_look(self, item: StatusRecord, now: float) -> float:
        """When to look at a report again: later with every look, never past the tracking window."""
        checks = item.report_checks
        backoff = self.settings.report_delay_seconds * REPORT_SCHEDULE[min(checks, len(REPORT_SCHEDULE) - 1)]
        sent_at = _epoch(item.sent_at) or now
        return min(now + backoff, sent_at + self.settings.tracking_window_hours * 3600)

    def _finish(
        self, item: StatusRecord, status: Status, now: float, report: DeliveryReport | None = None
    ) -> dict[str, Any]:
        """Write `status` from `report` (none: the tracking ended without one); a failed report names why."""
        failed = report is not None and status is Status.FAILED
        written = self.store.finish_report(
            item.request_id,
            status,
            now=now,
            provider_status=report.provider_status if report is not None else item.provider_status,
            error_code=report.error_code if failed and report is not None else None,
            error_message=report.error_message if failed and report is not None else None,
        )
        if not written:  # already final: a late or repeated report changes nothing
            return {"stale": True}
        result: dict[str, Any] = {"status": status, "error_code": report.error_code if failed and report else None}
        if status is Status.DELIVERED:
            result["latency"] = now - (_epoch(item.sent_at) or now)
        return result

    def _tally(self, result: dict[str, Any], summary: PollSummary) -> None:
        status = result.get("status")
        if status == Status.DELIVERED:
            summary.delivered += 1
            metrics.add_metric(name="MessagesDelivered", unit=MetricUnit.Count, value=1)
            if "latency" in result:
                metrics.add_metric(name="DeliveryLatency", unit=MetricUnit.Seconds, value=result["latency"])
        elif status == Status.FAILED:
            summary.failed += 1
            self._count_failure(result.get("error_code") or "undelivered")
        elif status == Status.UNKNOWN:
            summary.unknown += 1
            metrics.add_metric(name="MessagesUnknown", unit=MetricUnit.Count, value=1)
        elif result.get("pending"):
            summary.still_pending += 1
        summary.reports_checked += 1

    @staticmethod
    def _count_failure(error_code: str) -> None:
        metrics.add_metric(name="MessagesFailed", unit=MetricUnit.Count, value=1)
        with single_metric(
            name="FailuresByCode", unit=MetricUnit.Count, value=1, namespace=metrics.namespace
        ) as metric:
            metric.add_dimension(name="error_code", value=error_code)

    def run_within(self, context: Any) -> PollSummary:
        """One scheduled run, ending early enough that an in-flight provider call still fits before the timeout."""
        remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else DEFAULT_RUN_SECONDS
        reserve = self.settings.connect_timeout + self.settings.read_timeout + 5.0
        return self.run(self.clock() + max(remaining - reserve, remaining * 0.5))

    def _emit(self, summary: PollSummary) -> None:
        if summary.balance is not None:
            metrics.add_metric(name="Balance", unit=MetricUnit.NoUnit, value=summary.balance)
        if summary.balance_needed is not None:
            metrics.add_metric(name="BalanceNeeded", unit=MetricUnit.NoUnit, value=summary.balance_needed)
        if summary.gate_open is not None:
            metrics.add_metric(name="BalanceGateClosed", unit=MetricUnit.Count, value=0 if summary.gate_open else 1)
        metrics.add_metric(name="HeldRepublished", unit=MetricUnit.Count, value=summary.republished)
        metrics.add_metric(name="ReportsChecked", unit=MetricUnit.Count, value=summary.reports_checked)
        logger.info("poll finished", extra=summary.as_dict())
