"""The sender: one SQS record in, one provider call at most, one status record out."""

from __future__ import annotations

import functools
from dataclasses import replace

from smsgw.credentials import CredentialsError
from smsgw.deferral import pin_request_id
from smsgw.errors import ErrorCode
from smsgw.limiter import Grant
from smsgw.message import (
    CancelRequest,
)
from smsgw.observability import logger
from smsgw.records import CancelResult
from smsgw.sending.bulk import BulkSender
from smsgw.sending.inbound import Inbound, scheduled_later
from smsgw.sending.record import log_of
from smsgw.sending.results import RecordResult


class Sender(BulkSender):
    """One SQS record's whole life on the send path (`handle`), run in a worker thread of the batch."""

    def process(self, body: str, sqs_message_id: str, lease_until: float, *, gate_open: bool = True) -> RecordResult:
        inbound = Inbound.parse(body, sqs_message_id, smart_encoding=self.settings.smart_encoding)
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
        return self._send_message(inbound, lease_until, gate_open=gate_open)

    def _send_message(self, inbound: Inbound, lease_until: float, *, gate_open: bool) -> RecordResult:
        """One SMS: expired, scheduled for later, parked behind a closed gate, or claimed and sent."""
        request, body, sqs_message_id = inbound.sms, inbound.body, inbound.sqs_message_id
        log = log_of(request)
        deadline = inbound.deadline(self.settings.max_message_age_seconds)
        if deadline is not None and self.clock() >= deadline:
            return self.expire(request, sqs_message_id, lease_until)
        if scheduled_later(inbound, self.clock()):
            return self._schedule(request, body, deadline, log)
        if not gate_open:
            claim = self._claim(request, lease_until, sqs_message_id)
            if claim.token is None:
                return self._duplicate(request, claim.existing, log)
            parked = pin_request_id(body, request.request_id, deadline)  # keeps its identity and deadline
            return self._hold(
                request,
                claim.token,
                parked,
                ErrorCode.BALANCE_LOW,
                "the account balance is below the floor",
                log,
                attempted=False,
            )

        # The record is claimed only once the message can go: credentials in hand, a sender ID known.
        try:
            credentials = self.credentials.get()  # every failure comes as CredentialsError
        except CredentialsError as exc:
            return self._not_ready(request, ErrorCode.CREDENTIALS_UNAVAILABLE, str(exc), log)
        outbound = self._outbound(request, credentials)
        if outbound is None:
            return self._not_ready(
                request,
                ErrorCode.MISSING_SENDER_ID,
                "no sender_id in the message, the credentials secret or DEFAULT_SENDER_ID",
                log,
            )
        claim = self._claim(request, lease_until, sqs_message_id)
        if claim.token is None:
            return self._duplicate(request, claim.existing, log)
        token = claim.token

        send = functools.partial(self._send_one, request, outbound)
        result = self._call(send, credentials, log, request.priority)
        if result.error_code == ErrorCode.INSUFFICIENT_BALANCE and self.gate.enabled:
            cost = request.segmentation.parts * self.settings.price_per_part
            self.gate.close("the provider answered insufficient balance", now=self.clock(), need=cost)
            parked = pin_request_id(body, request.request_id, deadline)
            held = self._hold(
                request, token, parked, ErrorCode.INSUFFICIENT_BALANCE, result.error_message or "", log, attempted=True
            )
            return replace(held, provider_reached=True)
        return self._settle(request, token, claim.attempts, result, log)

    def cancel(self, cancel: CancelRequest, *, answer_too_late: bool = True) -> RecordResult:
        """Cancel a message that has not gone to the provider; too late is recorded on its record and
        answered once (a status event), never retried. No provider call, no capacity taken."""
        rid = cancel.request_id
        result, existing = self.store.cancel(rid, now=self.clock(), answer_too_late=answer_too_late)
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
