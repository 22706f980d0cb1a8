"""Provider calls of the send path: the request built, the call made, a rotated key tried once more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smsgw.credentials import Credentials, CredentialsError
from smsgw.errors import ErrorCode
from smsgw.limiter import Grant, Lane
from smsgw.message import (
    Priority,
    SmsRequest,
)
from smsgw.observability import logger
from smsgw.provider import OutboundSms, Outcome, SendResult
from smsgw.records import AttemptState, Status
from smsgw.sending.record import RecordKeeper
from smsgw.sending.results import RecordResult


class ProviderCalls(RecordKeeper):
    """What goes to the provider: the outbound request, and the call (capacity first for any call
    beyond the one admission counted)."""

    def _not_ready(self, request: SmsRequest, error_code: str, error_message: str, log: dict[str, Any]) -> RecordResult:
        """Nothing can be sent until an operator fixes the setup: SQS redelivers, then keeps it in the DLQ.

        No record is claimed; one that already exists and is settled makes this a plain duplicate.
        """
        existing = self.store.get(request.request_id)
        if existing is not None and not (
            existing.status == Status.SENDING and existing.attempt_state in (AttemptState.RELEASED, AttemptState.HELD)
        ):
            return self._duplicate(request, existing, log)
        logger.error(
            "sms cannot be sent yet; will retry", extra={**log, "error_code": error_code, "error": error_message}
        )
        return RecordResult(request.request_id, "retry", error_code)

    def _outbound(self, request: SmsRequest, credentials: Credentials) -> OutboundSms | None:
        # The message's own, else the secret's, else the stack's default (template parameter SenderId).
        sender_id = request.sender_id or credentials.sender_id or self.settings.default_sender_id
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
        return self.provider.send(self._outbound(request, credentials) or planned, credentials)

    def _renew(self, grant: Grant | None, priority: Priority) -> float | None:
        """None when a call of `grant` may go now (counted again if it is later than half the limiter's
        slack after its grant); else when capacity is expected."""
        if grant is None or self.limiter is None:
            return None
        lane = Lane.OTP if priority == "high" else Lane.BULK
        return self.limiter.renew(grant, lane, within=self.settings.rate_slack_seconds / 2)

    def _another_call(self, priority: Priority) -> bool:
        """Capacity for one more call than admission took (the same request again, with a rotated key)."""
        if self.limiter is None:
            return False
        return self.limiter.acquire(Lane.OTP if priority == "high" else Lane.BULK).granted == 1

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
                fresh = self.credentials.refresh()
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
            return SendResult(Outcome.MAYBE_SENT, error_code=ErrorCode.INTERNAL_ERROR, error_message=message)
