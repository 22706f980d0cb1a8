"""The limiter's rules, on a state read from the control table: what each lane may take now, when the
rest may come back, the pace and the turns. Nothing here reads or writes DynamoDB."""

from __future__ import annotations

import math
from dataclasses import replace

from smsgw.config import RateLimit
from smsgw.limiter.state import (
    MARK_PRECISION,
    OTP_HOLD_SLICES,
    QUEUED_LANES,
    Grant,
    Lane,
    LimiterState,
    slice_of,
    width_of,
)


class Rules:
    """The rules of one limiter's configuration (its windows, shares, spans), set by RateLimiter."""

    _limits: tuple[RateLimit, ...]
    _spans: dict[int, int]  # window seconds -> slices whose grants count against it
    _otp_share: float
    _bulk_burst: float
    _balance_every: float | None

    def _control_due(self, limit: RateLimit, state: LimiterState, now: float) -> bool:
        """Whether the balance check's call is kept in `limit`: always in the longer windows; in the shortest
        from a span before the next check is due (a call kept in every minute would idle 1 % of the limit)."""
        if self._balance_every is None or limit is not self._limits[0]:
            return True
        span_seconds = self._spans[limit.seconds] * width_of(limit)
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
        current = slice_of(limit, now)
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
            current = slice_of(limit, now)
            span = self._spans[limit.seconds]
            live = sorted((i, n) for i, n in state.slices.get(limit.seconds, {}).items() if current - span < i)
            for index, count in live:
                used -= count
                if ceiling - used >= 1:
                    at = max(at, (index + span) * width_of(limit))
                    break
            else:  # a ceiling of zero (an OTP share of 100 %): look again after a whole window
                at = max(at, now + limit.seconds)
        return at

    def _granted(self, state: LimiterState, n: int, now: float) -> LimiterState:
        slices: dict[int, dict[int, int]] = {}
        for limit in self._limits:
            current = slice_of(limit, now)
            span = self._spans[limit.seconds]
            counts = {i: c for i, c in state.slices.get(limit.seconds, {}).items() if current - span < i <= current}
            counts[current] = counts.get(current, 0) + n
            slices[limit.seconds] = counts
        return replace(state, slices=slices)

    def pace(self, lane: Lane, state: LimiterState, now: float) -> float:
        """Seconds between turns: the lane's ceiling spread over its span, in the shortest window.

        The ceiling with the OTP share lent out: OTPs seldom use all of it, and turns paced for the
        lane's smallest ceiling would leave that idle. A return that finds no room gets a later turn."""
        shortest = self._limits[0]
        lent = replace(state, otp_waiting_until=0.0)
        ceiling = max(self._ceiling(lane, shortest, lent, now), 1)
        return self._spans[shortest.seconds] * width_of(shortest) / ceiling

    def _burst(self, pace: float) -> float:
        """Bulk calls the pace lets go at once: `bulk_burst` of the shortest window's ceiling, one at least."""
        shortest = self._limits[0]
        return max(1.0, self._bulk_burst * self._spans[shortest.seconds] * width_of(shortest) / pace)

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
            until = max(state.otp_waiting_until, back + 1.0 + OTP_HOLD_SLICES * width_of(self._limits[0]))
            state = replace(state, otps_waiting=waiting, otp_waiting_until=until)
        # Reports wait a whole window after a refused send: sending has the capacity while a backlog lasts.
        hold = self._limits[0].seconds
        if state.send_waiting_until < back + hold / 2:
            state = replace(state, send_waiting_until=back + hold)
        return state

    def _less(self, state: LimiterState, grant: Grant, n: int) -> LimiterState | None:
        """`state` without `n` calls of `grant`, taken from the slices it was counted in (None: aged out)."""
        slices = dict(state.slices)
        for limit in self._limits:
            counts = dict(state.slices.get(limit.seconds, {}))
            index = slice_of(limit, grant.at)
            if counts.get(index, 0) < n:
                return None
            counts[index] -= n
            slices[limit.seconds] = {i: c for i, c in counts.items() if c}
        return replace(state, slices=slices)
