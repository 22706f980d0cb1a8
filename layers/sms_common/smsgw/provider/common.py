"""What both dialects share: reading loose values and judging an answer by its HTTP status alone."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from smsgw.errors import ErrorCode, Outcome
from smsgw.provider.base import SendResult
from smsgw.provider.http import HttpResponse

# Operator words (lower case, letters only) -> state and our error code for failures.
# Absent subscriber, busy, SMSC link/system failures and SMSC timeouts are retried by the operator
# itself, so they stay pending like any word not listed here; the words below are final.
FINAL_FAILURES: dict[str, str] = {
    "undelivered": "undelivered",
    "unidentifiedsubscriber": "unidentified_subscriber",
    "barredsubscriber": "barred_subscriber",
    "illegalsubscriber": "illegal_subscriber",
    "smsfailedsenderidblocked": "sender_id_blocked",
    "rejected": "rejected",
    "expired": "expired",
}


# MiM answers callers whose IP it has not allow-listed with "IP Black List" (a 401), in either dialect.
# Fresh credentials cannot cure that; the operator must give the functions a fixed address.
IP_NOT_ALLOWED_HINT = (
    "MiM does not know this caller's IP: deploy with a fixed egress IP (parameters EgressSubnetIds and "
    "EgressSecurityGroupIds; docs/operations.md, 'A fixed egress IP') and ask MiM to allow-list it"
)


def ip_not_allowed(detail: str | None) -> bool:
    """Whether an authentication refusal is MiM's allow-list speaking ("IP Black List"), not a bad key."""
    return "blacklist" in letters(detail or "")


def _letters(value: str) -> str:
    return re.sub(r"[^a-z]", "", value.lower())


def letters(value: str) -> str:
    """Operator words compared loosely: lower case, letters only ("SMS Failed - sender ID blocked")."""
    return re.sub(r"[^a-z]", "", value.lower())


def to_float(value: Any) -> float | None:
    """Numbers arrive as numbers or strings ("12812.5"); anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", ""))
        except ValueError:
            return None
    return None


def text(value: Any) -> str | None:
    """A field as a stripped string, whatever JSON type it came as; None when absent or empty."""
    if value is None or isinstance(value, (dict, list)):
        return None
    result = str(value).strip()
    return result or None


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from Retry-After or X-RateLimit-Reset (an epoch time or a delay)."""
    if value := to_float(headers.get("retry-after")):
        return max(value, 0.0)
    reset = to_float(headers.get("x-ratelimit-reset"))
    if reset is None:
        return None
    now = time.time() if now is None else now
    return max(reset - now, 0.0) if reset > 1_000_000_000 else max(reset, 0.0)


# Statuses that say what happened without a body: (outcome, error code, what to say when the body does not).
_BY_STATUS: dict[int, tuple[Outcome, ErrorCode, str]] = {
    429: (Outcome.THROTTLED, ErrorCode.RATE_LIMITED, "the provider's rate limit was reached"),
    401: (Outcome.NOT_SENT, ErrorCode.AUTHENTICATION_FAILED, "the provider refused the credentials"),
    403: (Outcome.NOT_SENT, ErrorCode.AUTHENTICATION_FAILED, "the provider refused the credentials"),
    503: (Outcome.NOT_SENT, ErrorCode.PROVIDER_UNAVAILABLE, "the provider is temporarily unavailable"),
}


def by_http_status(response: HttpResponse, detail: str | None = None) -> SendResult:
    """Classify an answer whose body does not say what happened."""
    status = response.status
    if status in _BY_STATUS:
        outcome, code, said = _BY_STATUS[status]
    elif status >= 500 or 200 <= status < 300:
        # The request reached the provider and may have been acted on: a 200 we cannot read,
        # or a server error after the body was written.
        outcome, code = Outcome.MAYBE_SENT, ErrorCode.PROVIDER_ERROR
        said = "the provider's answer does not say whether it sent the SMS"
    else:
        # Other 3xx/4xx: the request was refused as a whole (wrong URL, bad gateway config): ours to fix,
        # so retry and let the DLQ keep it rather than fail the message.
        outcome, code, said = (
            Outcome.NOT_SENT,
            ErrorCode.PROVIDER_ERROR,
            f"the provider refused the request with HTTP {status}",
        )
    return SendResult(
        outcome,
        provider_status=f"HTTP {status}",
        error_code=code,
        error_message=detail or said,
        auth_failed=code is ErrorCode.AUTHENTICATION_FAILED,
        retry_after=retry_after(response.headers) if outcome is Outcome.THROTTLED else None,
    )
