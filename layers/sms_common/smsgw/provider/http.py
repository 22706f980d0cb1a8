"""One pooled urllib3 client for every provider call, and what a transport fault means for a send.

The distinction that matters is whether the request may have reached the provider:
- the connection never opened (refused, DNS, TLS handshake, connect timeout): NOT_SENT, safe to retry;
- the request was written and the answer was lost (read timeout, connection dropped): MAYBE_SENT.
urllib3 retries only the connect step, which is safe for a POST; reads are never retried here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    SSLError,
)

from smsgw.errors import ErrorCode, Outcome


class TransportError(Exception):
    """No usable HTTP answer. `outcome` says whether the request may have been delivered."""

    def __init__(self, outcome: Outcome, detail: str, code: ErrorCode = ErrorCode.TRANSPORT_ERROR) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.code = code


@dataclass(frozen=True, eq=False)
class HttpResponse:
    """An HTTP answer, read whole."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The decoded body, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None


def _classify(exc: BaseException) -> TransportError:
    reason: BaseException = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
    if isinstance(reason, (NewConnectionError, ConnectTimeoutError, SSLError)):
        return TransportError(Outcome.NOT_SENT, f"connection failed: {type(reason).__name__}")
    return TransportError(Outcome.MAYBE_SENT, f"no answer after sending: {type(reason).__name__}")


class HttpClient:
    def __init__(self, connect_timeout: float, read_timeout: float, maxsize: int = 10) -> None:
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=maxsize,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=urllib3.Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0, raise_on_status=False),
        )

    def post_json(self, url: str, payload: dict[str, Any]) -> HttpResponse:
        """POST `payload` as JSON. Raises TransportError; never lets credentials reach an exception."""
        try:
            body = json.dumps(payload, ensure_ascii=False).encode()
        except (ValueError, TypeError) as exc:  # UnicodeEncodeError is a ValueError: nothing left this process
            detail = f"the request could not be encoded: {type(exc).__name__}"
            raise TransportError(Outcome.PERMANENT, detail, code=ErrorCode.INVALID_CONTENT) from None
        try:
            response = self._pool.request(
                "POST",
                url,
                body=body,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
        except HTTPError as exc:
            raise _classify(exc) from None
        return HttpResponse(response.status, {k.lower(): v for k, v in response.headers.items()}, response.data)
