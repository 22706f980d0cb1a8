"""The account-wide rate limiter: every provider call, from every instance of both functions, takes capacity first.

MiM limits the account as a whole (by default 100 requests a minute, 1,000 an hour and 10,000 a day),
counting sends, delivery-report look-ups and balance checks alike. One DynamoDB item holds what was
granted recently; every grant is one conditional write on the item's version, so instances running
at once never hand out the same capacity twice (a lost race re-reads the item from the failed write).

Fixed or sliding windows alike: each window of `s` seconds is cut into `SLICES` slices, a grant counts
in the slice of its time, and every run of `SLICES + 1 + spare` consecutive slices may hold at most the
limit. Any `s`-second interval, however MiM aligns it, lies inside `SLICES + 1` slices, so MiM never
counts more than its limit; the spare slices cover `slack` seconds between the grant and the request's
arrival at MiM (a claim write, a connection), and `max_skew` seconds by which the instances' clocks may
differ: at least one slice. The price: `SLICES / (SLICES + 1 + spare)` of the limit is used: 96 % of a
one-minute window with a second of slack and a second of skew (four half-second slices). Finer slices
would use more, at the price of a larger item (every write carries it).

Clocks: each instance reads its own clock, and Lambda's differ by milliseconds (more on a bad day). The
item keeps the latest time any instance wrote (`clock`), and an instance whose clock is behind it uses
that instead: the item's time never goes back, so no write prunes, or counts in an earlier slice, what an
instance with a clock ahead granted. A grant is then counted at most `max_skew` away from when MiM sees
it, which the spare slices cover.

Lanes share the capacity in order of need:
- CONTROL (balance checks) may use all of it: they always get their call, kept from the other lanes
  in the shortest window from a span before the next check is due (`balance_every`; each check made
  is recorded in the item), and always in the longer windows;
- OTP (priority "high") all but the control call;
- BULK (other sends) and REPORT (delivery-report look-ups) leave OTPs a share (`otp_share`) of every
  window: always in the longer windows (what a campaign takes from an hour stays taken for the hour);
  in the shortest one, one call for every OTP that waits (refused OTPs count themselves in, granted
  ones out), up to the share, so capacity is held for OTPs only as far as OTPs need it. REPORT takes
  only what sending leaves: nothing while a send is waiting for capacity.
- Sends are paced: `paced_until` moves on by bulk's pace (its ceiling over the span) with every send
  granted, OTP or bulk, and bulk may run at most `bulk_burst` of the ceiling ahead of it (a generic
  cell rate check; OTPs are never held to it). A campaign's start therefore fills the shortest window
  over the window, not in its first seconds, whatever the OTPs take: no stretch of the window is left
  with nothing to free, so an OTP published at any moment finds a call within seconds. Calls back at
  their turn are held to the pace too: OTPs that came since may have taken it (they get later turns).
The provider's own word wins: a throttled answer blocks every lane until its Retry-After.

Turns: a refused OTP or bulk call gets a turn, the time the lane's queue reaches it. Each lane keeps the
tail of its queue in the item; refused calls are placed after it, spaced by the lane's sustainable pace
in the shortest window (its ceiling per span), starting no earlier than capacity is expected. A backlog
therefore comes back at the pace capacity frees, neither all at once (refused again, churning) nor
spread too thin (capacity idle while messages wait); it costs nothing beyond the write the refusal
makes. Capacity is still granted to whoever asks when it is there: a turn is a time to come back, not
a reservation, so the account's limit never depends on turns being kept.

Outage cool-down: not-sent failures in a row (5xx, refused connections), counted across instances,
stop every caller for a cool-down, so a provider outage defers the work instead of spending every
message's retries; a success clears the count.
"""

from __future__ import annotations

import enum
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from smsgw.config import RateLimit

SLICES = 120
MAX_CLOCK_SKEW = 1.0  # seconds the instances' clocks may differ by while the limit holds (Lambda's: milliseconds)
# Slices whose grants count against a one-minute window: four spare, for a second's slack and a second's skew.
SPAN = SLICES + 5
LIMITER_KEY = "rate-limiter"
MAX_WRITE_ATTEMPTS = 8
DEFAULT_BLOCK_SLICES = 10  # a throttle answer without Retry-After blocks this many slices of the shortest window
OTP_HOLD_SLICES = 10  # after a refused OTP's expected return, what it holds stays held this long
MARK_DIGITS = 3  # times in the item are stored to the millisecond: it stays small
MARK_PRECISION = 10.0**-MARK_DIGITS
BULK_BURST = 1 / 6  # of the shortest window's ceiling: how far ahead of the sends' pace bulk calls may run


class Lane(enum.Enum):
    CONTROL = "control"
    OTP = "otp"
    BULK = "bulk"
    REPORT = "report"


QUEUED_LANES = (Lane.OTP, Lane.BULK)


@dataclass(frozen=True, eq=False)
class Grant:
    """What an acquire got: calls granted now, and when the rest should come back."""

    granted: int
    retry_at: float  # when capacity for the rest is expected (the grant time when everything was granted)
    turns: tuple[float, ...] = ()  # queued lanes: when each refused call, in order, should come back
    at: float = 0.0  # the limiter's time of the grant: release() gives back to the slice it was counted in


@dataclass(frozen=True)
class LimiterState:
    """What the item holds: per window, calls granted per slice; and the marks that steer the lanes."""

    version: int = 0
    slices: dict[int, dict[int, int]] = field(default_factory=dict)  # window seconds -> slice index -> calls
    blocked_until: float = 0.0  # the provider throttled us: nobody calls before this
    otp_waiting_until: float = 0.0  # an OTP was refused: bulk and reports leave it a call, until then
    otps_waiting: int = 0  # OTPs refused and not yet granted (while otp_waiting_until lasts)
    paced_until: float = 0.0  # the sends' pace: one bulk pace further on for every send granted
    send_waiting_until: float = 0.0  # a send was refused: reports wait
    failures_in_a_row: int = 0  # not-sent failures since the last success, every instance together
    cooldowns: int = 0  # cool-downs in a row (each one longer), cleared by a success
    balance_checked_at: float = 0.0  # the last balance check, by any poller
    queues: dict[str, float] = field(default_factory=dict)  # lane -> the tail of its queue of turns
    clock: float = 0.0  # the latest time any instance wrote: the limiter's time never goes back from it

    def to_json(self) -> str:
        windows = {}
        for seconds, counts in self.slices.items():
            if counts:
                base = min(counts)
                windows[str(seconds)] = [base, [counts.get(i, 0) for i in range(base, max(counts) + 1)]]
        marks = {
            "b": self.blocked_until,
            "o": self.otp_waiting_until,
            "n": self.otps_waiting,
            "p": self.paced_until,
            "s": self.send_waiting_until,
            "f": self.failures_in_a_row,
            "c": self.cooldowns,
            "k": self.balance_checked_at,
            "t": self.clock,
        }
        queues = {lane: round(tail, MARK_DIGITS) for lane, tail in self.queues.items()}
        compact = {k: round(v, MARK_DIGITS) for k, v in marks.items() if v}
        return json.dumps({"w": windows, **compact, **({"q": queues} if queues else {})}, separators=(",", ":"))

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> LimiterState:
        if not item:
            return cls()
        data = json.loads(item["state"]["S"])
        slices = {
            int(seconds): {base + i: n for i, n in enumerate(counts) if n}
            for seconds, (base, counts) in data.get("w", {}).items()
        }
        return cls(
            version=int(item["v"]["N"]),
            slices=slices,
            blocked_until=float(data.get("b", 0)),
            otp_waiting_until=float(data.get("o", 0)),
            otps_waiting=int(data.get("n", 0)),
            paced_until=float(data.get("p", 0)),
            send_waiting_until=float(data.get("s", 0)),
            failures_in_a_row=int(data.get("f", 0)),
            cooldowns=int(data.get("c", 0)),
            balance_checked_at=float(data.get("k", 0)),
            clock=float(data.get("t", 0)),
            queues={lane: float(tail) for lane, tail in data.get("q", {}).items()},
        )


def _width(limit: RateLimit) -> float:
    return limit.seconds / SLICES


def _slice(limit: RateLimit, now: float) -> int:
    return math.floor(now / _width(limit))


class RateLimiter:
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
            limit.seconds: SLICES + 1 + max(1, math.ceil((slack + max_skew) / _width(limit))) for limit in limits
        }
        self._clock = clock
        self._state: LimiterState | None = None  # the last state this process saw; refreshed by failed writes
        self.writes = 0  # DynamoDB requests made, for the benchmarks
        # The batch's threads share this instance: one at a time, so they do not race each other's writes.
        self._lock = threading.RLock()
        self.reads = 0

    # --- the rules -------------------------------------------------------------------------------
    def _control_due(self, limit: RateLimit, state: LimiterState, now: float) -> bool:
        """Whether the balance check's call is kept in `limit`: always in the longer windows; in the shortest
        from a span before the next check is due (a call kept in every minute would idle 1 % of the limit)."""
        if self._balance_every is None or limit is not self._limits[0]:
            return True
        span_seconds = self._spans[limit.seconds] * _width(limit)
        return now >= state.balance_checked_at + self._balance_every - span_seconds

    def _ceiling(self, lane: Lane, limit: RateLimit, state: LimiterState, now: float) -> int:
        control = 1 if limit.count > 1 and self._control_due(limit, state, now) else 0
        if lane is Lane.CONTROL:
            return limit.count
        if lane is Lane.OTP:
            return limit.count - control
        # Capacity a campaign takes from a long window stays taken for that whole window: an hour's limit
        # spent by bulk would keep OTPs waiting for up to an hour. So the OTP share of every longer window
        # is always theirs; the shortest window frees within a minute, and is lent out but for a call
        # for each OTP that waits.
        share = math.ceil(limit.count * self._otp_share)
        if limit is not self._limits[0]:
            otp = share
        else:
            otp = min(share, state.otps_waiting) if state.otp_waiting_until > now else 0
        return max(limit.count - control - otp, 0)

    def _used(self, limit: RateLimit, state: LimiterState, now: float) -> int:
        current = _slice(limit, now)
        counts = state.slices.get(limit.seconds, {})
        span = self._spans[limit.seconds]
        return sum(n for i, n in counts.items() if current - span < i <= current)

    def available(self, lane: Lane, state: LimiterState, now: float) -> int:
        if state.blocked_until > now or (lane is Lane.REPORT and state.send_waiting_until > now):
            return 0
        return max(0, min(self._ceiling(lane, w, state, now) - self._used(w, state, now) for w in self._limits))

    def retry_at(self, lane: Lane, state: LimiterState, now: float) -> float:
        """When the lane can expect one call's worth of capacity, from the slices that will age out."""
        at = max(now, state.blocked_until)
        if lane is Lane.REPORT:
            at = max(at, state.send_waiting_until)
        for limit in self._limits:
            ceiling = self._ceiling(lane, limit, state, now)
            used = self._used(limit, state, now)
            if ceiling - used >= 1:
                continue
            current = _slice(limit, now)
            span = self._spans[limit.seconds]
            live = sorted((i, n) for i, n in state.slices.get(limit.seconds, {}).items() if current - span < i)
            for index, count in live:
                used -= count
                if ceiling - used >= 1:
                    at = max(at, (index + span) * _width(limit))
                    break
            else:  # a ceiling of zero (an OTP share of 100 %): look again after a whole window
                at = max(at, now + limit.seconds)
        return at

    def _granted(self, state: LimiterState, n: int, now: float) -> LimiterState:
        slices: dict[int, dict[int, int]] = {}
        for limit in self._limits:
            current = _slice(limit, now)
            span = self._spans[limit.seconds]
            counts = {i: c for i, c in state.slices.get(limit.seconds, {}).items() if current - span < i <= current}
            counts[current] = counts.get(current, 0) + n
            slices[limit.seconds] = counts
        return replace(state, slices=slices)

    def _now(self, state: LimiterState) -> float:
        """This instance's clock, or the item's when that is ahead: the limiter's time never goes back."""
        return max(self._clock(), state.clock)

    # --- DynamoDB --------------------------------------------------------------------------------
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

    # --- what callers use ------------------------------------------------------------------------
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
        return Grant(0, now + _width(self._limits[0]))

    def pace(self, lane: Lane, state: LimiterState, now: float) -> float:
        """Seconds between turns: the lane's ceiling spread over its span, in the shortest window.

        The ceiling with the OTP share lent out: OTPs seldom use all of it, and turns paced for the
        lane's smallest ceiling would leave that idle. A return that finds no room gets a later turn."""
        shortest = self._limits[0]
        lent = replace(state, otp_waiting_until=0.0)
        ceiling = max(self._ceiling(lane, shortest, lent, now), 1)
        return self._spans[shortest.seconds] * _width(shortest) / ceiling

    def _burst(self, pace: float) -> float:
        """Bulk calls the pace lets go at once: `bulk_burst` of the shortest window's ceiling, one at least."""
        shortest = self._limits[0]
        return max(1.0, self._bulk_burst * self._spans[shortest.seconds] * _width(shortest) / pace)

    def _allowance(self, state: LimiterState, now: float) -> int:
        """Bulk calls the lane's pace allows now: the burst, less what the lane is already ahead of its pace."""
        pace = self.pace(Lane.BULK, state, now)
        # The marks are stored to the millisecond: a lane exactly on its pace must not lose a call to that.
        ahead = max(state.paced_until - now - MARK_PRECISION, 0.0) / pace
        return max(0, math.floor(self._burst(pace) - ahead + 1e-9))

    def _queue(
        self, lane: Lane, state: LimiterState, now: float, *, granted: int, refused: int
    ) -> tuple[tuple[float, ...], LimiterState]:
        """The sends' pace moves on for the calls granted; `refused` calls get turns after the lane's tail,
        no earlier than capacity is expected (for bulk: than its pace allows a call)."""
        if lane not in QUEUED_LANES:
            return (), state
        pace = self.pace(lane, state, now)
        start = self.retry_at(lane, state, now)
        bulk_pace = pace if lane is Lane.BULK else self.pace(Lane.BULK, state, now)
        paced = max(state.paced_until, now) + granted * bulk_pace
        state = replace(state, paced_until=paced) if granted else state
        if lane is Lane.BULK:
            start = max(start, paced - (self._burst(pace) - 1) * pace)
        if refused <= 0:
            return (), state
        start = max(start, state.queues.get(lane.value, 0.0))
        turns = tuple(start + i * pace for i in range(refused))
        return turns, replace(state, queues={**state.queues, lane.value: start + refused * pace})

    def _mark_waiting(
        self, lane: Lane, state: LimiterState, now: float, *, due: tuple[int, int], refused: int
    ) -> LimiterState:
        """OTPs refused count themselves in until they are granted at a turn (`due`: granted, refused
        among the calls back at their turns); a refused send holds reports back."""
        due_granted, due_refused = due
        if lane is Lane.OTP and due_granted and state.otps_waiting:
            state = replace(state, otps_waiting=max(0, state.otps_waiting - due_granted))
        if refused <= 0 or lane not in (Lane.OTP, Lane.BULK):
            return state
        # Held until a little after the refused call is expected back (SQS delays by whole seconds): it
        # then finds its call free. Holding longer would idle capacity while no OTP waits.
        back = max(self.retry_at(lane, state, now), now)
        if lane is Lane.OTP:
            live = state.otp_waiting_until > now  # else the count is stale: only these wait
            waiting = state.otps_waiting + refused - due_refused if live else refused
            until = max(state.otp_waiting_until, back + 1.0 + OTP_HOLD_SLICES * _width(self._limits[0]))
            state = replace(state, otps_waiting=waiting, otp_waiting_until=until)
        # Reports wait a whole window after a refused send: sending has the capacity while a backlog lasts.
        hold = self._limits[0].seconds
        if state.send_waiting_until < back + hold / 2:
            state = replace(state, send_waiting_until=back + hold)
        return state

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

    def _less(self, state: LimiterState, grant: Grant, n: int) -> LimiterState | None:
        """`state` without `n` calls of `grant`, taken from the slices it was counted in (None: aged out)."""
        slices = dict(state.slices)
        for limit in self._limits:
            counts = dict(state.slices.get(limit.seconds, {}))
            index = _slice(limit, grant.at)
            if counts.get(index, 0) < n:
                return None
            counts[index] -= n
            slices[limit.seconds] = {i: c for i, c in counts.items() if c}
        return replace(state, slices=slices)

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
        default = DEFAULT_BLOCK_SLICES * _width(self._limits[0])
        wait = max(min(retry_after if retry_after is not None else default, self._limits[-1].seconds), default)

        def change(state: LimiterState, now: float) -> LimiterState | None:
            return None if state.blocked_until >= now + wait else replace(state, blocked_until=now + wait)

        self._update(change)
