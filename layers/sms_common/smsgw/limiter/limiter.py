"""The account-wide rate limiter: its item in the control table, changed only by conditional writes."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from smsgw.config import RateLimit
from smsgw.limiter.rules import Rules
from smsgw.limiter.state import (
    BULK_BURST,
    DEFAULT_BLOCK_SLICES,
    LIMITER_KEY,
    MAX_CLOCK_SKEW,
    MAX_WRITE_ATTEMPTS,
    SLICES,
    Grant,
    Lane,
    LimiterState,
    width_of,
)


class RateLimiter(Rules):
    """Every provider call, from every instance of both functions, takes capacity here first."""

    def __init__(
        self,
        client: Any,
        table: str,
        limits: tuple[RateLimit, ...],
        *,
        otp_share: float = 0.2,
        bulk_burst: float = BULK_BURST,
        outage_failures: int = 5,
        outage_cooldown: float = 60.0,
        slack: float = 1.0,
        max_skew: float = MAX_CLOCK_SKEW,
        balance_every: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._balance_every = balance_every  # how often poll_status checks the balance (None: unknown)
        self._table = table
        self._limits = limits
        self._otp_share = otp_share
        self._bulk_burst = bulk_burst
        self._outage_failures = outage_failures
        self._outage_cooldown = outage_cooldown
        # Slices whose grants count against each window: the window, one for alignment, the spare for the
        # slack and the clocks' skew.
        self._spans = {
            limit.seconds: SLICES + 1 + max(1, math.ceil((slack + max_skew) / width_of(limit))) for limit in limits
        }
        self._clock = clock
        self._state: LimiterState | None = None  # the last state this process saw; refreshed by failed writes
        self.writes = 0  # DynamoDB requests made, for the benchmarks
        # The batch's threads share this instance: one at a time, so they do not race each other's writes.
        self._lock = threading.RLock()
        self.reads = 0

    def _now(self, state: LimiterState) -> float:
        """This instance's clock, or the item's when that is ahead: the limiter's time never goes back."""
        return max(self._clock(), state.clock)

    def _load(self) -> LimiterState:
        self.reads += 1
        item = self._client.get_item(TableName=self._table, Key={"name": {"S": LIMITER_KEY}}, ConsistentRead=True)
        return LimiterState.from_item(item.get("Item"))

    def _write(self, expected: LimiterState, new: LimiterState) -> tuple[bool, LimiterState]:
        """Store `new` if the item is still at `expected`'s version: (True, as stored); else (False, the
        item as it is now)."""
        self.writes += 1
        stored = replace(new, version=expected.version + 1, clock=max(new.clock, self._now(expected)))
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "name": {"S": LIMITER_KEY},
                    "v": {"N": str(stored.version)},
                    "state": {"S": stored.to_json()},
                },
                ConditionExpression="attribute_not_exists(#name) OR v = :v",
                ExpressionAttributeNames={"#name": "name"},
                ExpressionAttributeValues={":v": {"N": str(expected.version)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            current = LimiterState.from_item(exc.response.get("Item"))
            self._state = current
            return False, current
        self._state = stored
        return True, stored

    def acquire(self, lane: Lane, n: int = 1, *, due: int = 0) -> Grant:
        """Take up to `n` calls' worth of capacity now. What is not granted should wait until `retry_at`
        (or its turn). The first `due` of the calls are back at turns this limiter gave them (waiting
        OTPs are counted by that)."""
        with self._lock:
            return self._acquire(lane, n, min(max(due, 0), n))

    def _acquire(self, lane: Lane, n: int, due: int) -> Grant:
        if n <= 0:
            return Grant(0, self._clock())
        fresh = self._state is None
        state = self._state if self._state is not None else self._load()
        for _ in range(MAX_WRITE_ATTEMPTS):
            now = self._now(state)
            granted = min(n, self.available(lane, state, now))
            if granted <= 0 and not fresh:
                state, fresh = self._load(), True  # our copy may be old: others' grants age out too
                continue
            if lane is Lane.BULK:
                granted = min(granted, self._allowance(state, now))
            new = self._granted(state, granted, now) if granted else state
            due_granted = min(due, granted)
            new = self._mark_waiting(lane, new, now, due=(due_granted, due - due_granted), refused=n - granted)
            turns, new = self._queue(lane, new, now, granted=granted, refused=n - granted)
            if new == state:
                return Grant(0, self.retry_at(lane, state, now))
            written, stored = self._write(state, new)
            if not written:
                state, fresh = stored, True
                continue
            return Grant(granted, now if granted == n else self.retry_at(lane, stored, now), turns, at=now)
        # Contention beyond reason: grant nothing rather than risk the account's limit.
        now = self._clock()
        return Grant(0, now + width_of(self._limits[0]))

    def _update(self, change: Callable[[LimiterState, float], LimiterState | None]) -> LimiterState | None:
        """Apply `change` (None: nothing to write) with the usual conditional write; the stored state or None."""
        with self._lock:
            return self._update_locked(change)

    def _update_locked(self, change: Callable[[LimiterState, float], LimiterState | None]) -> LimiterState | None:
        state = self._state if self._state is not None else self._load()
        for _ in range(MAX_WRITE_ATTEMPTS):
            new = change(state, self._now(state))
            if new is None or new == state:
                return None
            written, state = self._write(state, new)
            if written:
                return state
        return None

    def claim_balance_check(self, every: float) -> bool:
        """True (and recorded) when no balance check was made in the last `every` seconds, by anyone."""

        def change(state: LimiterState, now: float) -> LimiterState | None:
            return None if now < state.balance_checked_at + every else replace(state, balance_checked_at=now)

        return self._update(change) is not None

    def release(self, grant: Grant, n: int) -> None:
        """Give back `n` calls of `grant` not made (the work was gone), to the slices the grant was counted in:
        never another instance's grant, counted in a later slice."""
        n = min(n, grant.granted)
        if n > 0:
            self._update(lambda state, _: self._less(state, grant, n))  # aged out: nothing there to give back

    def renew(self, grant: Grant, lane: Lane, *, within: float) -> float | None:
        """One call of `grant` about to be made more than `within` seconds after it was granted (calls in
        series): counted again now instead, so MiM's windows see it where the limiter counts it. None when
        the call may go; else when capacity is expected (the call stays counted at its grant: release it)."""
        with self._lock:
            state = self._state if self._state is not None else self._load()
            if self._now(state) < grant.at + within:
                return None
            for fresh in (False, True):
                if fresh:
                    state = self._load()
                now = self._now(state)
                moved = self._less(state, grant, 1) or state  # aged out of the item: only the new count
                if self.available(lane, moved, now) < 1:
                    continue
                written, _ = self._write(state, self._granted(moved, 1, now))
                if written:
                    return None
            return self.retry_at(lane, state, self._now(state))

    def provider_failed(self) -> float | None:
        """A call certainly not sent (5xx, refused connection). Returns the cool-down's end when one starts."""

        started: list[float] = []  # set by the attempt whose write lands

        def change(state: LimiterState, now: float) -> LimiterState:
            started.clear()
            failures = state.failures_in_a_row + 1
            if failures < self._outage_failures or state.blocked_until > now:
                return replace(state, failures_in_a_row=failures)
            # Each cool-down in a row lasts twice the one before, up to an hour.
            cooldown = min(self._outage_cooldown * 2**state.cooldowns, 3600.0)
            started.append(now + cooldown)
            return replace(state, failures_in_a_row=0, cooldowns=state.cooldowns + 1, blocked_until=now + cooldown)

        stored = self._update(change)
        return started[0] if stored is not None and started else None

    def provider_answered(self) -> None:
        """A call the provider answered: the failures in a row (as this process last saw them) are over."""
        state = self._state
        if state is None or (state.failures_in_a_row == 0 and state.cooldowns == 0):
            return  # the common case costs nothing
        self._update(lambda s, _: replace(s, failures_in_a_row=0, cooldowns=0))

    def throttled(self, retry_after: float | None) -> None:
        """The provider refused a call for its rate: nobody calls again before `retry_after` seconds."""
        default = DEFAULT_BLOCK_SLICES * width_of(self._limits[0])
        wait = max(min(retry_after if retry_after is not None else default, self._limits[-1].seconds), default)

        def change(state: LimiterState, now: float) -> LimiterState | None:
            return None if state.blocked_until >= now + wait else replace(state, blocked_until=now + wait)

        self._update(change)
