"""The send path's base: its collaborators, and each outcome written to a status record."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from smsgw.balance import BalanceGate
from smsgw.config import Settings
from smsgw.credentials import CredentialSource
from smsgw.deferral import Deferrer, pin_request_id
from smsgw.errors import ErrorCode, Policy, policy_of
from smsgw.limiter import RateLimiter
from smsgw.message import (
    BulkRequest,
    InvalidRequest,
    SmsRequest,
)
from smsgw.observability import logger, mask_phone
from smsgw.provider import Outcome, Provider, SendResult, outage_sign
from smsgw.records import AttemptState, Status, StatusRecord
from smsgw.sending.results import RecordResult
from smsgw.store import Claim, MessageStore

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(eq=False)
class RecordKeeper:
    """The send path's collaborators, and every outcome it writes to a status record (claims, sent,
    failed, held, released, maybe-sent, duplicates)."""

    settings: Settings
    store: MessageStore
    provider: Provider
    credentials: CredentialSource
    gate: BalanceGate
    clock: Callable[[], float] = time.time
    deferrer: Deferrer | None = None
    writes: Executor | None = None  # a chunk's records, written side by side (None: one after another)
    limiter: RateLimiter | None = None  # capacity for a call beyond the one admitted (None: no such call is made)

    def now(self) -> float:
        return self.clock()

    def _each(self, work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """`work` on every item, results in order: on the write pool when there is one. A chunk's numbers
        are independent records, each its own DynamoDB round trip: a thousand of them one after another
        would take seconds of the function's time."""
        if self.writes is None or len(items) < 2:
            return [work(item) for item in items]
        return list(self.writes.map(work, items))

    def _claim(self, request: SmsRequest, lease_until: float, sqs_message_id: str) -> Claim:
        resolve_at = lease_until + self.settings.maybe_sent_grace_seconds  # if the attempt never says how it ended
        return self.store.claim(
            request, now=self.clock(), lease_until=lease_until, resolve_at=resolve_at, sqs_message_id=sqs_message_id
        )

    def expire(self, request: SmsRequest, sqs_message_id: str, lease_until: float) -> RecordResult:
        """Past its valid_until (or the maximum age), or would be before capacity comes: `failed` / `expired`."""
        log = log_of(request)
        claim = self._claim(request, lease_until, sqs_message_id)
        if claim.token is None:
            return self._duplicate(request, claim.existing, log)
        now = self.clock()
        message = "not handed to the provider before its valid_until (or the maximum message age); never sent late"
        self.store.mark_failed(
            request.request_id,
            claim.token,
            now=now,
            error_code=ErrorCode.EXPIRED,
            error_message=message,
            provider_status=None,
            attempted=False,
        )
        logger.warning("sms expired before it could be sent", extra=log)
        return RecordResult(request.request_id, "failed", ErrorCode.EXPIRED)

    def _schedule(
        self, request: SmsRequest | BulkRequest, body: str, deadline: float | None, log: dict[str, Any]
    ) -> RecordResult:
        """Due later: recorded as `scheduled`, the body kept (its request_id and deadline written in), and
        published again by poll_status when due, however far ahead. No provider call, no capacity taken."""
        parked = pin_request_id(body, request.request_id, deadline)
        existing = self.store.schedule(request, now=self.clock(), payload=parked)
        if existing is not None and existing.status == Status.SCHEDULED:
            # A copy of a message still scheduled (published early, or by the producer twice): acknowledging
            # it could drop the one copy poll_status published; it waits in its queue until due instead.
            due = request.schedule_time.timestamp() if request.schedule_time is not None else self.clock()
            return RecordResult(request.request_id, "deferred", "scheduled", retry_at=due)
        if existing is not None:
            if isinstance(request, BulkRequest):
                logger.info("duplicate bulk request_id; not again", extra={**log, "existing_status": existing.status})
                return RecordResult(request.request_id, "duplicate")
            return self._duplicate(request, existing, log)
        logger.info("sms scheduled", extra={**log, "schedule_time": str(request.schedule_time)})
        return RecordResult(request.request_id, "scheduled")

    def _settle(
        self, request: SmsRequest, token: str, attempts: int, result: SendResult, log: dict[str, Any]
    ) -> RecordResult:
        reached = self._settle_outcome(request, token, attempts, result, log)
        return replace(reached, provider_reached=not outage_sign(result.outcome, result.error_code))

    def _settle_outcome(
        self, request: SmsRequest, token: str, attempts: int, result: SendResult, log: dict[str, Any]
    ) -> RecordResult:
        if result.outcome is Outcome.ACCEPTED:
            return self._sent(request, token, result, log)
        rid = request.request_id
        error_code = result.error_code or ErrorCode.PROVIDER_ERROR
        error_message = result.error_message or error_code
        if result.outcome is Outcome.PERMANENT:
            self.store.mark_failed(
                rid,
                token,
                now=self.clock(),
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
            # Not a failure: the message waits for capacity outside the function (the batch runner defers it).
            self._release(request, token, error_code, error_message, log)
            return RecordResult(
                rid,
                "deferred",
                error_code,
                retry_at=self.clock() + (result.retry_after or 0),
                throttled=True,
                retry_after=result.retry_after,
            )
        if policy_of(error_code) is Policy.REDELIVER:  # ours to fix (a key, the allow-list): SQS, then the DLQ
            return self._release(request, token, error_code, error_message, log)
        return self._back_off(request, token, attempts, result, log)

    def _sent(self, request: SmsRequest, token: str, result: SendResult, log: dict[str, Any]) -> RecordResult:
        now = self.clock()
        rid, parts = request.request_id, request.segmentation.parts
        cost = result.cost if result.cost is not None else parts * self.settings.price_per_part
        # MiM's reports come seconds to minutes later; the policy may not track this one at all.
        tracked = self.settings.tracking.tracks(rid, request.priority)
        report_due = now + self.settings.report_delay_seconds if tracked else None
        written = self.store.mark_sent(
            rid,
            token,
            now=now,
            message_id=result.message_id,
            provider_status=result.provider_status,
            cost=cost,
            report_due=report_due,
        )
        if not written:
            logger.warning("status record changed while sending; sent state not written", extra=log)
        logger.info("sms sent", extra={**log, "message_id": result.message_id, "parts": parts})
        return RecordResult(rid, "sent", parts=parts, cost=cost)

    def _back_off(
        self, request: SmsRequest, token: str, attempts: int, result: SendResult, log: dict[str, Any]
    ) -> RecordResult:
        """Certainly not sent: again later with exponential back-off (the deferral adds jitter), until the
        last attempt, which fails as `retries_exhausted` naming the last answer."""
        rid, now = request.request_id, self.clock()
        error_code = result.error_code or ErrorCode.PROVIDER_ERROR
        error_message = result.error_message or error_code
        if attempts >= self.settings.max_send_attempts:
            message = f"not sent after {attempts} attempts; the last answer: {error_code}: {error_message}"
            self.store.mark_failed(
                rid,
                token,
                now=now,
                error_code=ErrorCode.RETRIES_EXHAUSTED,
                error_message=message,
                provider_status=result.provider_status,
            )
            logger.error("sms not sent after every attempt", extra={**log, "error_code": error_code})
            return RecordResult(rid, "failed", ErrorCode.RETRIES_EXHAUSTED)
        self._release(request, token, error_code, error_message, log)
        backoff = self.settings.retry_base_seconds * 2 ** (attempts - 1)
        return RecordResult(rid, "deferred", error_code, retry_at=now + backoff)

    def _mark_maybe_sent(self, request_id: str, token: str, error_message: str) -> None:
        now = self.clock()
        resolve_at = now + self.settings.maybe_sent_grace_seconds
        self.store.mark_maybe_sent(request_id, token, now=now, error_message=error_message, resolve_at=resolve_at)

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
        self.store.hold(
            request.request_id,
            token,
            now=self.clock(),
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
        self.store.release(
            request.request_id, token, now=self.clock(), error_code=error_code, error_message=error_message
        )
        logger.warning("sms not sent; will retry", extra={**log, "error_code": error_code})
        return RecordResult(request.request_id, "retry", error_code)

    def _reject(self, exc: InvalidRequest, sqs_message_id: str) -> RecordResult:
        request_id = exc.request_id or sqs_message_id
        now = self.clock()
        created = self.store.record_invalid(request_id, exc.code, exc.message, now=now, sqs_message_id=sqs_message_id)
        logger.warning(
            "invalid request rejected", extra={"request_id": request_id, "error_code": exc.code, "recorded": created}
        )
        return RecordResult(request_id, "invalid", exc.code)

    def _duplicate(self, request: SmsRequest, existing: StatusRecord | None, log: dict[str, Any]) -> RecordResult:
        if (
            existing is not None
            and existing.status == Status.SENDING
            and existing.attempt_state == AttemptState.IN_FLIGHT
            and existing.lease_until < self.clock()
        ):
            # An earlier invocation claimed it and ended without a word (timeout, crash): it may have sent it.
            self._mark_maybe_sent(
                request.request_id,
                existing.claim_token or "",
                "an earlier attempt ended without recording its outcome",
            )
            logger.error("abandoned attempt found; not resending", extra=log)
            return RecordResult(request.request_id, "maybe_sent", ErrorCode.MAYBE_SENT)
        status = existing.status if existing is not None else None
        logger.info("duplicate request_id; not sending again", extra={**log, "existing_status": status})
        return RecordResult(request.request_id, "duplicate")


def log_of(request: SmsRequest) -> dict[str, Any]:
    return {"request_id": request.request_id, "phone": mask_phone(request.phone)}
