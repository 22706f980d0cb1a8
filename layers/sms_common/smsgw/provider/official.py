"""Dialect `official`: MiM's published API (`/api/SmsSending/...`, PascalCase fields, string values)."""

from __future__ import annotations

from typing import Any

from smsgw.credentials import Credentials
from smsgw.errors import ErrorCode, Outcome
from smsgw.provider import common
from smsgw.provider.base import BalanceResult, DeliveryReport, DeliveryState, OutboundBulk, OutboundSms, SendResult
from smsgw.provider.http import HttpClient, HttpResponse, TransportError

# statusCode -> our error code (which carries its outcome class). 401 also covers "IP Black List", told
# apart below. A 500 may have been acted on: maybe-sent whatever its code.
STATUS_CODES: dict[str, ErrorCode] = {
    "401": ErrorCode.AUTHENTICATION_FAILED,
    "205": ErrorCode.INVALID_CONTENT,
    "206": ErrorCode.INVALID_PHONE,
    "207": ErrorCode.INVALID_TRANSACTION_TYPE,
    "208": ErrorCode.INVALID_SENDER_ID,
    "209": ErrorCode.MESSAGE_TOO_LONG,
    "210": ErrorCode.INVALID_CAMPAIGN,
    "213": ErrorCode.INVALID_REQUEST,
    "216": ErrorCode.INSUFFICIENT_BALANCE,
    "221": ErrorCode.PROVIDER_SEND_FAILED,
    "429": ErrorCode.RATE_LIMITED,
    "500": ErrorCode.PROVIDER_ERROR,
}
MAYBE_ACTED_ON = frozenset({"500"})


def _campaign_required() -> SendResult:
    return SendResult(
        Outcome.PERMANENT,
        error_code=ErrorCode.INVALID_REQUEST,
        error_message="campaign_id is required for promotional messages in the official MiM API",
    )


class OfficialProvider:
    name = "official"
    # MiM documents no maximum for OneToMany and DSMS; BULK_CHUNK_SIZE (default 100) sets the chunks.
    max_numbers = 1000

    def __init__(self, base_url: str, http: HttpClient) -> None:
        self._base_url = base_url
        self._http = http

    def _post(self, path: str, payload: dict[str, Any]) -> HttpResponse:
        return self._http.post_json(f"{self._base_url}/api/SmsSending/{path}", payload)

    def _judge(self, response: HttpResponse) -> tuple[SendResult | None, dict[str, Any]]:
        """(None, body) when statusCode is 200; otherwise (the failure, body)."""
        body = response.json()
        code = common.text(body.get("statusCode")) if isinstance(body, dict) else None
        if not isinstance(body, dict) or code is None:
            return common.by_http_status(response), {}
        if code == "200" and response.status != 429:
            return None, body
        detail = common.text(body.get("responseResult")) or common.text(body.get("status")) or f"statusCode {code}"
        error_code = STATUS_CODES.get(code, ErrorCode.PROVIDER_ERROR)
        if response.status == 429:
            error_code = ErrorCode.RATE_LIMITED
        ip_blocked = code == "401" and common.ip_not_allowed(detail)
        if ip_blocked:
            error_code = ErrorCode.IP_NOT_ALLOWED  # fresh credentials will not help: MiM must allow-list the egress IP
            detail = f"{detail}: {common.IP_NOT_ALLOWED_HINT}"
        outcome = Outcome.MAYBE_SENT if code in MAYBE_ACTED_ON else error_code.outcome
        return SendResult(
            outcome,
            message_id=None,
            provider_status=f"{code}:{detail}",
            error_code=error_code,
            error_message=detail,
            auth_failed=code == "401" and not ip_blocked,
            retry_after=common.retry_after(response.headers) if outcome is Outcome.THROTTLED else None,
        ), body

    def send(self, sms: OutboundSms, credentials: Credentials) -> SendResult:
        if not sms.transactional and not sms.campaign_id:
            return _campaign_required()
        payload = {
            "UserName": credentials.username,
            "Apikey": credentials.api_key,
            "MobileNumber": sms.phone,
            "CampaignId": sms.campaign_id or "null",
            "SenderName": sms.sender_id,
            "TransactionType": "T" if sms.transactional else "P",
            "Message": sms.text,
        }
        return self._sent(self._post_send("SMS", payload))

    def send_bulk(self, bulk: OutboundBulk, credentials: Credentials) -> SendResult:
        """One text to many numbers through OneToMany; a text per number through DSMS (TransactionType D)."""
        if bulk.texts is not None:
            payload: dict[str, Any] = {
                "UserName": credentials.username,
                "Apikey": credentials.api_key,
                "SenderName": bulk.sender_id,
                "TransactionType": "D",
                "SmsData": [
                    {"MobNumber": phone, "Message": text} for phone, text in zip(bulk.phones, bulk.texts, strict=True)
                ],
            }
            return self._sent(self._post_send("DSMS", payload))
        if not bulk.transactional and not bulk.campaign_id:
            return _campaign_required()
        payload = {
            "UserName": credentials.username,
            "Apikey": credentials.api_key,
            "MobileNumber": ",".join(bulk.phones),
            "CampaignId": bulk.campaign_id or "null",
            "SenderName": bulk.sender_id,
            "TransactionType": "T" if bulk.transactional else "P",
            "Message": bulk.text,
        }
        return self._sent(self._post_send("OneToMany", payload))

    def _post_send(self, path: str, payload: dict[str, Any]) -> HttpResponse | SendResult:
        try:
            return self._post(path, payload)
        except TransportError as exc:
            return SendResult(exc.outcome, error_code=exc.code, error_message=exc.detail)

    def _sent(self, response: HttpResponse | SendResult) -> SendResult:
        if isinstance(response, SendResult):
            return response
        failure, body = self._judge(response)
        if failure is not None:
            return failure
        return SendResult(
            Outcome.ACCEPTED,
            message_id=common.text(body.get("trxnId")),
            provider_status=common.text(body.get("status")) or "Success",
        )

    def balance(self, credentials: Credentials) -> BalanceResult:
        try:
            response = self._post("balanceCheck", {"UserName": credentials.username, "Apikey": credentials.api_key})
        except TransportError as exc:
            return BalanceResult(None, Outcome.NOT_SENT, ErrorCode.TRANSPORT_ERROR, exc.detail)
        failure, body = self._judge(response)
        amount = common.to_float(body.get("responseResult")) if failure is None else None
        if amount is not None:
            return BalanceResult(amount, Outcome.ACCEPTED)
        if failure is None:
            return BalanceResult(
                None, Outcome.NOT_SENT, ErrorCode.PROVIDER_ERROR, "the balance answer carries no amount"
            )
        return BalanceResult(None, failure.outcome, failure.error_code, failure.error_message, failure.auth_failed)

    def delivery_report(self, message_id: str, phone: str, credentials: Credentials) -> DeliveryReport:
        payload = {
            "UserName": credentials.username,
            "ApiKey": credentials.api_key,
            "MobileNumber": phone,
            "trxnId": message_id,
        }
        try:
            response = self._post("DlrApi", payload)
        except TransportError as exc:
            return DeliveryReport(
                None, Outcome.NOT_SENT, error_code=ErrorCode.TRANSPORT_ERROR, error_message=exc.detail
            )
        failure, body = self._judge(response)
        if failure is not None:
            return DeliveryReport(
                None, failure.outcome, failure.provider_status, failure.error_code, failure.error_message
            )
        word = common.text(body.get("operatorStatus")) or ""
        key = common.letters(word)
        if key == "delivered":
            return DeliveryReport(DeliveryState.DELIVERED, Outcome.ACCEPTED, provider_status=word)
        if key in common.FINAL_FAILURES:
            return DeliveryReport(
                DeliveryState.FAILED,
                Outcome.ACCEPTED,
                provider_status=word,
                error_code=common.FINAL_FAILURES[key],
                error_message=word,
            )
        return DeliveryReport(DeliveryState.PENDING, Outcome.ACCEPTED, provider_status=word or None)
