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

from smsgw.limiter.limiter import RateLimiter
from smsgw.limiter.state import (
    BULK_BURST,
    LIMITER_KEY,
    MAX_CLOCK_SKEW,
    QUEUED_LANES,
    SLICES,
    SPAN,
    Grant,
    Lane,
    LimiterState,
)

__all__ = [
    "BULK_BURST",
    "LIMITER_KEY",
    "MAX_CLOCK_SKEW",
    "QUEUED_LANES",
    "SLICES",
    "SPAN",
    "Grant",
    "Lane",
    "LimiterState",
    "RateLimiter",
]
