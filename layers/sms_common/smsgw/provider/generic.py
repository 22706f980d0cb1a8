"""Dialect `generic`: the JSON API of the integration guide (`/send-sms`, `/balance`, `/status`)."""

from __future__ import annotations

from typing import Any

from smsgw.credentials import Credentials
from smsgw.errors import ErrorCode, Outcome
from smsgw.provider import common
from smsgw.provider.base import BalanceResult, DeliveryReport, DeliveryState, OutboundBulk, OutboundSms, SendResult
from smsgw.provider.http import HttpClient, TransportError

SUCCESS = frozenset({"success", "sent", "delivered", "accepted"})
# error_code -> our error code (which carries its outcome class); the guide's codes 1001-1008.
ERROR_CODES: dict[str, ErrorCode] = {
    "1001": ErrorCode.AUTHENTICATION_FAILED,
    "1002": ErrorCode.AUTHENTICATION_FAILED,
    "1003": ErrorCode.INSUFFICIENT_BALANCE,
    "1004": ErrorCode.INVALID_PHONE,
    "1005": ErrorCode.INVALID_SENDER_ID,
    "1006": ErrorCode.MESSAGE_TOO_LONG,
    "1007": ErrorCode.RATE_LIMITED,
    "1008": ErrorCode.PROVIDER_UNAVAILABLE,
}
# Status words that name the error when no code is given.
ERROR_WORDS: dict[str, ErrorCode] = {
    "invalid_phone": ErrorCode.INVALID_PHONE,
    "invalid_sender_id": ErrorCode.INVALID_SENDER_ID,
    "insufficient_balance": ErrorCode.INSUFFICIENT_BALANCE,
    "authentication_failed": ErrorCode.AUTHENTICATION_FAILED,
    "rejected": ErrorCode.PROVIDER_REJECTED,
    "failed": ErrorCode.PROVIDER_ERROR,
    "error": ErrorCode.PROVIDER_ERROR,
}
DELIVERY_WORDS: dict[str, DeliveryState] = {
    "delivered": DeliveryState.DELIVERED,
    "failed": DeliveryState.FAILED,
    "rejected": DeliveryState.FAILED,
    "undelivered": DeliveryState.FAILED,
    "expired": DeliveryState.FAILED,
    "invalid_phone": DeliveryState.FAILED,
}


class GenericProvider:
    name = "generic"
    max_numbers = 1  # the guide's API has no bulk call: a bulk request is sent number by number

    def __init__(self, base_url: str, http: HttpClient) -> None:
        self._base_url = base_url
        self._http = http

    def _auth(self, credentials: Credentials) -> dict[str, str]:
        return {"api_key": credentials.api_key, "username": credentials.username, "password": credentials.password}

    def _classify_error(self, body: dict[str, Any], word: str, status: int, headers: dict[str, str]) -> SendResult:
        code = common.text(body.get("error_code"))
        detail = common.text(body.get("error_message")) or common.text(body.get("error")) or word
        error_code = ERROR_CODES.get(code or "") or ERROR_WORDS.get(word) or ErrorCode.PROVIDER_ERROR
        if status == 429:
            error_code = ErrorCode.RATE_LIMITED
        if error_code is ErrorCode.AUTHENTICATION_FAILED and common.ip_not_allowed(detail):
            error_code, detail = (
                ErrorCode.IP_NOT_ALLOWED,
                f"{detail}: {common.IP_NOT_ALLOWED_HINT}",
            )  # no key can cure it
        outcome = error_code.outcome
        return SendResult(
            outcome,
            provider_status=f"{word}:{code}" if code else word,
            error_code=error_code,
            error_message=detail,
            auth_failed=error_code is ErrorCode.AUTHENTICATION_FAILED,
            retry_after=common.retry_after(headers) if outcome is Outcome.THROTTLED else None,
        )

    def send_bulk(self, bulk: OutboundBulk, credentials: Credentials) -> SendResult:
        """One number only (max_numbers): the same request as send."""
        if len(bulk.phones) != 1:
            raise ValueError(f"the generic dialect sends one number per request, not {len(bulk.phones)}")
        text = bulk.text if bulk.text is not None else (bulk.texts or ("",))[0]
        sms = OutboundSms(
            bulk.phones[0], text, bulk.sender_id, transactional=bulk.transactional, campaign_id=bulk.campaign_id
        )
        return self.send(sms, credentials)

    def send(self, sms: OutboundSms, credentials: Credentials) -> SendResult:
        payload: dict[str, Any] = {
            **self._auth(credentials),
            "sender_id": sms.sender_id,
            "phone": sms.phone,
            "message": sms.text,
            "priority": sms.priority,
        }
        try:
            response = self._http.post_json(f"{self._base_url}/send-sms", payload)
        except TransportError as exc:
            return SendResult(exc.outcome, error_code=exc.code, error_message=exc.detail)
        body = response.json()
        word = (common.text(body.get("status")) or "").lower() if isinstance(body, dict) else ""
        if not isinstance(body, dict) or not word:
            return common.by_http_status(response)
        if word in SUCCESS:
            if response.status == 429:
                return common.by_http_status(response)
            return SendResult(
                Outcome.ACCEPTED,
                message_id=common.text(body.get("message_id")),
                provider_status=word,
                cost=common.to_float(body.get("cost")),
            )
        return self._classify_error(body, word, response.status, response.headers)

    def balance(self, credentials: Credentials) -> BalanceResult:
        try:
            response = self._http.post_json(f"{self._base_url}/balance", self._auth(credentials))
        except TransportError as exc:
            return BalanceResult(None, Outcome.NOT_SENT, ErrorCode.TRANSPORT_ERROR, exc.detail)
        body = response.json()
        if isinstance(body, dict) and (common.text(body.get("status")) or "").lower() in SUCCESS:
            amount = common.to_float(body.get("balance"))
            if amount is not None:
                return BalanceResult(amount, Outcome.ACCEPTED)
        failure = (
            self._classify_error(
                body, (common.text(body.get("status")) or "").lower(), response.status, response.headers
            )
            if isinstance(body, dict) and body.get("status")
            else common.by_http_status(response)
        )
        return BalanceResult(None, failure.outcome, failure.error_code, failure.error_message, failure.auth_failed)

    def delivery_report(self, message_id: str, phone: str, credentials: Credentials) -> DeliveryReport:
        try:
            response = self._http.post_json(
                f"{self._base_url}/status", {**self._auth(credentials), "message_id": message_id}
            )
        except TransportError as exc:
            return DeliveryReport(
                None, Outcome.NOT_SENT, error_code=ErrorCode.TRANSPORT_ERROR, error_message=exc.detail
            )
        body = response.json()
        word = (common.text(body.get("status")) or "").lower() if isinstance(body, dict) else ""
        if not isinstance(body, dict) or not word or (word == "error" and body.get("error_code")):
            failure = (
                self._classify_error(body, word, response.status, response.headers)
                if word
                else common.by_http_status(response)
            )
            return DeliveryReport(
                None, failure.outcome, failure.provider_status, failure.error_code, failure.error_message
            )
        state = DELIVERY_WORDS.get(word, DeliveryState.PENDING)
        if state is not DeliveryState.FAILED:
            return DeliveryReport(state, Outcome.ACCEPTED, provider_status=word)
        # The guide gives no reason field; an operator word in `error` is used when there is one.
        reason = common.text(body.get("error")) or word
        code = common.FINAL_FAILURES.get(common.letters(reason), "undelivered")
        return DeliveryReport(state, Outcome.ACCEPTED, provider_status=word, error_code=code, error_message=reason)
