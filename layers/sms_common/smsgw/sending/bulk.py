"""Bulk requests on the send path: the hand-on in chunks, a chunk's numbers sent, a cancel by number."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

from smsgw.credentials import Credentials, CredentialsError
from smsgw.errors import ErrorCode
from smsgw.limiter import Grant
from smsgw.message import (
    BulkRequest,
    SmsRequest,
    child_request_id,
)
from smsgw.observability import logger, mask_phone
from smsgw.provider import OutboundBulk, OutboundSms, SendResult
from smsgw.records import CancelResult, StatusRecord
from smsgw.sending.calls import ProviderCalls
from smsgw.sending.inbound import Inbound, chunk_bodies, scheduled_later
from smsgw.sending.record import log_of
from smsgw.sending.results import RecordResult
from smsgw.store import Claim

BALANCE_WAIT_SECONDS = 60.0  # a chunk that meets a closed gate waits this long in its queue (a poll run)
# A dialect without a bulk call sends a chunk number by number, a call each, in series in one worker: a
# chunk of this many fits well inside the function's time and inside bulk's burst of the shortest window
# (a sixth of 100 a minute), so it usually gets all its calls at once (what it does not get waits its turn).
CALLS_PER_CHUNK = 10


class BulkSender(ProviderCalls):
    """Bulk requests: handed on in chunks, each chunk sent (one request, or number by number), expired,
    stopped or cancelled."""

    def _cancel_bulk(self, parent: StatusRecord, phones: tuple[str, ...]) -> RecordResult:
        """A bulk request whose numbers may be going: each number is cancelled by its own record first (a
        claim that came before wins, and that number goes; one that comes after meets a `cancelled` record),
        so the answer says what was stopped: cancelled if any number was, else too late."""
        rid = parent.request_id
        results = self._each(functools.partial(self._cancel_number, rid), phones)
        stopped = tuple(result for result in results if result.disposition == "cancelled")
        answer = self.store.cancel_bulk(rid, now=self.clock(), stopped=len(stopped), total=len(phones))
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
        result, _ = self.store.cancel(rid, now=self.clock(), answer_too_late=False, parent_id=parent_id, phone=phone)
        if result is CancelResult.CANCELLED:
            logger.info("sms cancelled", extra={"request_id": rid, "phone": mask_phone(phone)})
            return RecordResult(rid, "cancelled")
        return RecordResult(rid, "duplicate")

    def _hand_on(self, inbound: Inbound, bulk: BulkRequest, lease_until: float) -> RecordResult:
        """A bulk request due now: its own record, a failed record per invalid number, and its valid
        numbers published back to its queue in chunks (a chunk per provider request), each of which
        waits for capacity and is sent like one message. No provider call here, no capacity taken."""
        rid, now = bulk.request_id, self.clock()
        log: dict[str, Any] = {"request_id": rid, "numbers": len(bulk.children)}
        deadline = inbound.deadline(self.settings.max_message_age_seconds)
        if scheduled_later(inbound, now) and bulk.children:
            return self._schedule(bulk, inbound.body, deadline, log)
        opened, existing = self.store.open_bulk(bulk, now=now, sqs_message_id=inbound.sqs_message_id)
        if not opened:
            status = existing.status if existing is not None else None
            logger.info("bulk request handed on already; not again", extra={**log, "existing_status": status})
            return RecordResult(rid, "duplicate")
        if deadline is not None and now >= deadline:  # its record says so; no number gets one
            message = "not handed to the provider before its valid_until (or the maximum message age); never sent late"
            self.store.fail_bulk(rid, now=now, error_code=ErrorCode.EXPIRED, error_message=message)
            logger.warning("bulk request expired before it could be sent", extra=log)
            return RecordResult(rid, "failed", ErrorCode.EXPIRED)
        invalid = []
        for child in bulk.invalid:
            self.store.record_invalid(
                child.request_id,
                child.code,
                child.message,
                now=now,
                sqs_message_id=inbound.sqs_message_id,
                parent_id=rid,
            )
            invalid.append(RecordResult(child.request_id, "invalid", child.code))
        per_call = self.provider.max_numbers
        size = max(1, min(self.settings.bulk_chunk_size, per_call if per_call > 1 else CALLS_PER_CHUNK))
        bodies = chunk_bodies(inbound.body, bulk, size, deadline)
        deferrer = self.deferrer
        if deferrer is None:
            raise ValueError("a sender without a deferrer cannot hand a bulk request on")
        deferrer.hand_on(bodies, bulk.priority, rid)
        self.store.handed_on(rid, now=now)
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
            return RecordResult(rid, "invalid", ErrorCode.INVALID_REQUEST)
        deadline = inbound.deadline(self.settings.max_message_age_seconds)
        if deadline is not None and self.clock() >= deadline:
            return self.expire_chunk(bulk, sqs_message_id, lease_until)
        if not gate_open:  # no record is parked: the chunk waits in its queue until a poll run opens the gate
            return RecordResult(rid, "deferred", ErrorCode.BALANCE_LOW, retry_at=self.clock() + BALANCE_WAIT_SECONDS)
        try:
            credentials = self.credentials.get()
        except CredentialsError as exc:
            logger.error(
                "chunk cannot be sent yet; will retry",
                extra={**log, "error_code": ErrorCode.CREDENTIALS_UNAVAILABLE, "error": str(exc)},
            )
            return RecordResult(rid, "retry", ErrorCode.CREDENTIALS_UNAVAILABLE)
        # The numbers share every field but the phone (and, in messages, the text): the first speaks for all.
        planned = self._outbound(bulk.children[0], credentials)
        if planned is None:
            logger.error(
                "chunk cannot be sent yet; will retry", extra={**log, "error_code": ErrorCode.MISSING_SENDER_ID}
            )
            return RecordResult(rid, "retry", ErrorCode.MISSING_SENDER_ID)

        if self.provider.max_numbers == 1:
            return self._send_each(bulk, planned, credentials, lease_until, sqs_message_id, grant)
        return self._send_together(bulk, planned, credentials, lease_until, sqs_message_id)

    def _send_together(
        self, bulk: BulkRequest, planned: OutboundSms, credentials: Credentials, lease_until: float, sqs_message_id: str
    ) -> RecordResult:
        """A chunk in a dialect with a bulk call: every number claimed, one request for those that are not
        duplicates, and each number's record settled by its one outcome."""
        rid = bulk.request_id
        log: dict[str, Any] = {"request_id": rid, "numbers": len(bulk.children)}
        results: list[RecordResult] = []
        claimed: list[tuple[SmsRequest, Claim]] = []
        claims = self._each(lambda child: self._claim(child, lease_until, sqs_message_id), bulk.children)
        for child, claim in zip(bulk.children, claims, strict=True):
            if claim.token is None:
                results.append(self._duplicate(child, claim.existing, log_of(child)))
            else:
                claimed.append((child, claim))
        if not claimed:
            return RecordResult(rid, "duplicate", children=tuple(results))

        def send(creds: Credentials) -> SendResult:
            first = self._outbound(claimed[0][0], creds) or replace(planned, phone=claimed[0][0].phone)
            if len(claimed) == 1:
                return self.provider.send(first, creds)
            numbers = tuple(child.phone for child, _ in claimed)
            texts = tuple(child.text for child, _ in claimed) if bulk.personal else None
            outbound = OutboundBulk(
                numbers, None if texts else first.text, texts, first.sender_id, first.transactional, first.campaign_id
            )
            return self.provider.send_bulk(outbound, creds)

        result = self._call(send, credentials, log, bulk.priority)
        if result.error_code == ErrorCode.INSUFFICIENT_BALANCE and self.gate.enabled:
            need = sum(child.segmentation.parts for child, _ in claimed) * self.settings.price_per_part
            self.gate.close("the provider answered insufficient balance", now=self.clock(), need=need)
            message = result.error_message or ""
            self._each(
                lambda pair: self._release(
                    pair[0], pair[1].token or "", ErrorCode.INSUFFICIENT_BALANCE, message, log_of(pair[0])
                ),
                claimed,
            )
            return RecordResult(
                rid,
                "deferred",
                ErrorCode.INSUFFICIENT_BALANCE,
                retry_at=self.clock() + BALANCE_WAIT_SECONDS,
                provider_reached=True,
            )
        settled = self._each(
            lambda pair: self._settle(pair[0], pair[1].token or "", pair[1].attempts, result, log_of(pair[0])), claimed
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
        (the batch runner publishes them again), so none is sent twice and none is left behind. A call made
        seconds after admission counted it is counted again when it is made (`grant`): refused then, it and
        the rest wait, and what admission counted for them is given back."""
        rid = bulk.request_id
        results: list[RecordResult] = []
        for index, child in enumerate(bulk.children):
            wait = self._renew(grant, child.priority)
            if wait is not None and self.limiter is not None and grant is not None:
                self.limiter.release(grant, len(bulk.children) - index)
                return RecordResult(rid, "deferred", ErrorCode.RATE_LIMITED, retry_at=wait, children=tuple(results))
            log = log_of(child)
            claim = self._claim(child, lease_until, sqs_message_id)
            if claim.token is None:
                results.append(self._duplicate(child, claim.existing, log))
                continue
            fallback = replace(planned, phone=child.phone, text=child.text)

            def send(creds: Credentials, child: SmsRequest = child, fallback: OutboundSms = fallback) -> SendResult:
                return self.provider.send(self._outbound(child, creds) or fallback, creds)

            result = self._call(send, credentials, log, child.priority)
            if result.error_code == ErrorCode.INSUFFICIENT_BALANCE and self.gate.enabled:
                return self._out_of_balance(bulk, results, child, claim.token, result, log)
            settled = self._settle(child, claim.token, claim.attempts, result, log)
            results.append(settled)
            if settled.disposition in ("deferred", "retry"):
                return replace(settled, request_id=rid, children=tuple(results))
            if settled.provider_reached is False and len(results) < len(bulk.children):
                # The provider is failing: the rest wait (and the outage count sees one failure per chunk).
                backoff = self.clock() + self.settings.retry_base_seconds
                return replace(
                    settled, request_id=rid, disposition="deferred", retry_at=backoff, children=tuple(results)
                )
        sent = [result for result in results if result.disposition != "duplicate"]
        if not sent:
            return RecordResult(rid, "duplicate", children=tuple(results))
        return replace(sent[-1], request_id=rid, children=tuple(results))

    def _out_of_balance(
        self,
        bulk: BulkRequest,
        results: list[RecordResult],
        child: SmsRequest,
        token: str,
        result: SendResult,
        log: dict[str, Any],
    ) -> RecordResult:
        """MiM answered insufficient balance for `child`: the gate closes for what the chunk still needs, and
        that number and the rest wait as a chunk."""
        unsent = bulk.children[len(results) :]
        need = sum(other.segmentation.parts for other in unsent) * self.settings.price_per_part
        self.gate.close("the provider answered insufficient balance", now=self.clock(), need=need)
        self._release(child, token, ErrorCode.INSUFFICIENT_BALANCE, result.error_message or "", log)
        retry_at = self.clock() + BALANCE_WAIT_SECONDS
        return RecordResult(
            bulk.request_id,
            "deferred",
            ErrorCode.INSUFFICIENT_BALANCE,
            retry_at=retry_at,
            provider_reached=True,
            children=tuple(results),
        )

    def expire_chunk(self, bulk: BulkRequest, sqs_message_id: str, lease_until: float) -> RecordResult:
        results = self._each(lambda child: self.expire(child, sqs_message_id, lease_until), bulk.children)
        return RecordResult(bulk.request_id, "failed", ErrorCode.EXPIRED, children=tuple(results))

    def stop_chunk(self, bulk: BulkRequest) -> RecordResult:
        """A chunk of a bulk request that was cancelled: each of its numbers is cancelled (or was sent)."""
        # Its numbers that went were not cancelled one by one: the bulk request's cancel is the answer.
        results = self._each(functools.partial(self._cancel_number, bulk.request_id), [c.phone for c in bulk.children])
        return RecordResult(bulk.request_id, "cancelled", children=tuple(results))
