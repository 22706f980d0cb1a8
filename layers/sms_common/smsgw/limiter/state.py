"""The limiter's vocabulary and its item: lanes, grants, and what the control table holds."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field
from typing import Any

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


def width_of(limit: RateLimit) -> float:
    return limit.seconds / SLICES


def slice_of(limit: RateLimit, now: float) -> int:
    return math.floor(now / width_of(limit))
