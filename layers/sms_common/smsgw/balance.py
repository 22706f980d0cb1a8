"""The balance gate: when the account is (nearly) empty, the send path stops calling the provider.

The gate lives in one SSM parameter as JSON (`{"open": true, "balance": 812.5, ...}`). poll_status
reads the balance on every run and opens or closes it against the floor; the send path reads it once
per batch (cached briefly) and closes it itself when the provider answers "insufficient balance",
noting what the refused message costs (`need`): the gate opens again only once the balance covers
both the floor and that, so a message dearer than a balance still above the floor cannot flap it.
While it is closed, messages are parked in their status records and published again on reopening.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.utilities.parameters import SSMProvider
from botocore.exceptions import BotoCoreError, ClientError

from smsgw.observability import logger
from smsgw.store import iso


class BalanceGate:
    def __init__(self, ssm_client: Any, parameter: str | None, max_age: int = 30) -> None:
        self._client = ssm_client
        self._parameter = parameter
        self._max_age = max_age
        self._provider = SSMProvider(boto3_client=ssm_client) if parameter else None
        self._override: tuple[bool, float] | None = None  # our own recent write wins over the cache

    @property
    def enabled(self) -> bool:
        return self._parameter is not None

    def state(self, *, fresh: bool = False) -> dict[str, Any]:
        if self._provider is None or self._parameter is None:
            return {"open": True}
        try:
            value = self._provider.get(self._parameter, max_age=self._max_age, transform="json", force_fetch=fresh)
        except Exception as exc:
            # Failing open is safe: the provider itself refuses sends without balance, which closes the gate.
            logger.warning("balance gate unreadable; treating it as open", extra={"error": type(exc).__name__})
            return {"open": True}
        return value if isinstance(value, dict) else {"open": True}

    def forget(self) -> None:
        """Drop this container's own view of its last write: the next read is the parameter's (after its cache)."""
        self._override = None

    def is_open(self) -> bool:
        if self._override is not None and self._override[1] > time.time():
            return self._override[0]
        return bool(self.state().get("open", True))

    def needed(self, floor: float) -> float:
        """The balance at which a closed gate opens: the floor, or more when the provider refused a message
        that costs more (opening below that would only refuse it again, and close, on every run)."""
        state = self.state(fresh=True)
        try:
            need = float(state.get("need") or 0.0)
        except (TypeError, ValueError):
            need = 0.0
        return max(floor, need)

    def _write(self, is_open: bool, balance: float | None, reason: str, now: float, need: float | None = None) -> None:
        if self._parameter is None:
            return
        value: dict[str, Any] = {"open": is_open, "balance": balance, "reason": reason, "updated_at": iso(now)}
        if need is not None:
            value["need"] = need
        self._override = (is_open, now + self._max_age)  # this container acts on it at once either way
        if self._provider is not None:
            self._provider.clear_cache()  # type: ignore[no-untyped-call]  # then it reads what it wrote, not an older state
        try:
            self._client.put_parameter(Name=self._parameter, Value=json.dumps(value), Type="String", Overwrite=True)
        except (BotoCoreError, ClientError) as exc:
            # Best effort: poll_status writes the gate from the balance on its next run anyway, and a
            # failure here must not turn a message the provider refused into an unknown outcome.
            logger.warning("balance gate not written", extra={"error": type(exc).__name__})

    def close(
        self, reason: str, *, balance: float | None = None, now: float | None = None, need: float | None = None
    ) -> None:
        """Close the gate; `need`: what the message the provider refused costs (it opens again at that)."""
        logger.warning("balance gate closed", extra={"reason": reason, "balance": balance, "need": need})
        self._write(False, balance, reason, time.time() if now is None else now, need)

    def open(self, balance: float, *, now: float | None = None) -> None:
        logger.info("balance gate opened", extra={"balance": balance})
        self._write(True, balance, "balance above the floor", time.time() if now is None else now)
