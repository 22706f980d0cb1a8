"""The account-wide limiter: MiM's windows are never overdrawn, by one process or several; OTPs first."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from conftest import REGION

from devstack.limiter_load import LoadPlan, run_load
from devstack.motoserver import MotoServer
from devstack.template import create_table
from smsgw.config import parse_rate_limits
from smsgw.limiter import MAX_CLOCK_SKEW, SLICES, SPAN, Lane, RateLimiter

START = 1_800_000_000.0  # a round number of seconds, so slice boundaries are easy to reason about
SPAN_SECONDS = SPAN * 60 / SLICES  # how long a grant counts against a one-minute window


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def table(aws: Any) -> str:
    return str(aws.control_table)


def limiter(
    table: str,
    clock: Clock,
    limits: str = "10/60",
    otp_share: float = 0.2,
    bulk_burst: float = 1.0,
    balance_every: float | None = None,
) -> RateLimiter:
    """A limiter on the test table. Bulk may burst a whole window unless a test asks for the pacing."""
    client = boto3.client("dynamodb", region_name=REGION)
    return RateLimiter(
        client,
        table,
        parse_rate_limits(limits),
        otp_share=otp_share,
        bulk_burst=bulk_burst,
        balance_every=balance_every,
        clock=clock,
    )


def most_in_any_window(grants: list[tuple[float, int]], seconds: float) -> int:
    """The largest number of calls granted in any interval of `seconds`, wherever it starts (sliding)."""
    grants = sorted(grants)
    most = 0
    for i, (start, _) in enumerate(grants):
        most = max(most, sum(n for t, n in grants[i:] if t < start + seconds))
    return most


def test_a_window_is_never_overdrawn_however_the_demand_comes(table: str, clock: Clock) -> None:
    limits = "20/60,50/600"
    one = limiter(table, clock, limits)
    rng = random.Random(3)
    grants = []
    for _ in range(600):
        clock.now += rng.choice([0.1, 0.5, 1, 3, 7])
        lane = rng.choice([Lane.BULK, Lane.OTP, Lane.REPORT, Lane.CONTROL])
        grant = one.acquire(lane, rng.randint(1, 10))
        grants.append((clock.now, grant.granted))
    for limit in parse_rate_limits(limits):
        assert most_in_any_window(grants, limit.seconds) <= limit.count
    # ... and it is not met by refusing: the longest window's limit is nearly reached.
    elapsed = clock.now - START
    assert sum(n for _, n in grants) >= 0.9 * 50 * elapsed / 600 * SLICES / SPAN


def test_a_partial_grant_says_when_capacity_comes_back(table: str, clock: Clock) -> None:
    one = limiter(table, clock)
    first = one.acquire(Lane.BULK, 20)
    assert first.granted == 9  # 10 a minute, one kept for the balance check
    assert first.retry_at > clock.now
    clock.now = first.retry_at - 0.01
    assert one.acquire(Lane.BULK, 1, due=1).granted == 0
    clock.now = first.retry_at
    assert one.acquire(Lane.BULK, 9, due=9).granted == 9


def test_the_balance_check_always_gets_its_call(table: str, clock: Clock) -> None:
    one = limiter(table, clock)
    assert one.acquire(Lane.OTP, 20).granted == 9
    assert one.acquire(Lane.BULK, 1).granted == 0
    assert one.acquire(Lane.CONTROL, 1).granted == 1
    assert one.acquire(Lane.CONTROL, 1).granted == 0  # and never more than the limit


def test_while_an_otp_waits_campaigns_leave_it_its_call(table: str, clock: Clock) -> None:
    one = limiter(table, clock, "10/60", otp_share=0.2)
    assert one.acquire(Lane.BULK, 9).granted == 9
    clock.now += 1
    refused = one.acquire(Lane.OTP, 1)
    assert refused.granted == 0
    clock.now = refused.retry_at  # the campaign's calls have aged out of the window
    # One OTP waits: the campaign leaves it one call (of the 2 in its share), and takes 10 - 1 - 1 ...
    assert one.acquire(Lane.BULK, 20).granted == 8
    assert one.acquire(Lane.OTP, 5, due=1).granted == 1  # ... which the OTP, back at its turn, finds
    clock.now += 3 * 60  # ... and once no OTP waits, all but the balance call again
    assert one.acquire(Lane.BULK, 20, due=20).granted == 9


def test_waiting_otps_hold_a_call_each_up_to_their_share(table: str, clock: Clock) -> None:
    one = limiter(table, clock, "20/60", otp_share=0.2)  # a share of 4 calls
    assert one.acquire(Lane.BULK, 19).granted == 19
    assert one.acquire(Lane.OTP, 2).granted == 0  # two wait
    assert one.acquire(Lane.OTP, 1, due=1).granted == 0  # one of them back too early: still two, not three
    clock.now += SPAN_SECONDS  # the window is free
    assert one.acquire(Lane.BULK, 30, due=30).granted == 20 - 1 - 2
    assert one.acquire(Lane.OTP, 1, due=1).granted == 1  # one granted at its turn: one still waits
    clock.now += 1
    assert one.acquire(Lane.OTP, 7).granted == 1  # a burst of OTPs takes the held call; seven wait, share four
    clock.now += SPAN_SECONDS
    assert one.acquire(Lane.BULK, 30, due=30).granted == 20 - 1 - 4


def test_a_campaign_start_is_paced_so_capacity_frees_every_slice(table: str, clock: Clock) -> None:
    one = limiter(table, clock, "100/60", bulk_burst=1 / 6)
    pace = SPAN_SECONDS / 99  # the lane's ceiling (all but the balance call) over the window's span
    first = one.acquire(Lane.BULK, 40)
    assert first.granted == 16  # a sixth of the window's ceiling at once ...
    assert first.turns[0] == pytest.approx(clock.now + pace)  # ... the rest at the pace, in turn
    assert [b - a for a, b in zip(first.turns, first.turns[1:], strict=False)] == pytest.approx([pace] * 23)
    grants = [(clock.now, first.granted)]
    dynamodb, key = boto3.client("dynamodb", region_name=REGION), {"name": {"S": "rate-limiter"}}
    while clock.now < START + 2 * 60:
        clock.now += 0.5
        grant = one.acquire(Lane.BULK, 10)  # newcomers all the while
        grants.append((clock.now, grant.granted))
        if clock.now == START + 45:  # the limiter as it stands mid-window, for the OTP below
            mid_window = dynamodb.get_item(TableName=table, Key=key)["Item"]
    # Never more than the burst and the pace allow in any stretch of the first window ...
    for stretch in (1, 10, 30):
        early = [(t, n) for t, n in grants if t < START + 60]
        assert most_in_any_window(early, stretch) <= 16 + stretch / pace + 1
    # ... so an OTP finds a call at any moment of it, while bulk still gets its whole window.
    assert sum(n for t, n in grants if t < START + SPAN_SECONDS) >= 98
    clock.now = START + 45  # the limiter's time never goes back: put its item back as it was then
    dynamodb.put_item(TableName=table, Item=mid_window)
    assert limiter(table, clock, "100/60").acquire(Lane.OTP, 1).granted == 1


def test_otps_are_never_paced_but_bulk_paces_around_them(table: str, clock: Clock) -> None:
    one = limiter(table, clock, "100/60", bulk_burst=1 / 6)
    pace = SPAN_SECONDS / 99
    assert one.acquire(Lane.OTP, 30).granted == 30  # an OTP burst goes at once ...
    assert one.acquire(Lane.BULK, 10).granted == 0  # ... and bulk leaves the window's flow even
    clock.now = START + 15 * pace + 0.001  # 30 sends at the pace, less bulk's burst of 16.5: 13.5 paces on
    assert one.acquire(Lane.BULK, 10).granted == 1


def test_campaigns_never_take_the_otp_share_of_a_long_window(table: str, clock: Clock) -> None:
    one = limiter(table, clock, "100/60,50/3600", otp_share=0.2)
    assert one.acquire(Lane.BULK, 100).granted == 50 - 1 - 10  # the hour's OTP share is kept back
    clock.now += 120  # the minute is long over; the hour is not
    assert one.acquire(Lane.BULK, 1).granted == 0
    assert one.acquire(Lane.OTP, 20).granted == 10  # an OTP need not wait for the hour to pass


def test_reports_take_what_sending_leaves(table: str, clock: Clock) -> None:
    one = limiter(table, clock)
    assert one.acquire(Lane.REPORT, 3).granted == 3
    assert one.acquire(Lane.BULK, 20).granted == 6
    assert one.acquire(Lane.REPORT, 1).granted == 0
    refused_send = one.acquire(Lane.BULK, 1)
    clock.now = refused_send.retry_at  # the window is free again, but the refused sends come back first
    assert one.acquire(Lane.REPORT, 1).granted == 0
    assert one.acquire(Lane.BULK, 2, due=2).granted == 2
    clock.now += 60  # a window after the sends' return, sending has been idle: reports catch up
    assert one.acquire(Lane.REPORT, 1).granted == 1


def test_a_throttle_answer_stops_every_lane_until_its_reset(table: str, clock: Clock) -> None:
    one = limiter(table, clock)
    one.throttled(30)
    for lane in (Lane.CONTROL, Lane.OTP, Lane.BULK):
        grant = one.acquire(lane, 1)
        assert (grant.granted, grant.retry_at) == (0, START + 30)
    assert one.acquire(Lane.REPORT, 1).granted == 0
    clock.now += 30
    assert one.acquire(Lane.BULK, 1).granted == 1


def test_failures_in_a_row_from_any_instance_start_a_cool_down(table: str, clock: Clock) -> None:
    first, second = limiter(table, clock), limiter(table, clock)
    first.acquire(Lane.BULK, 1)
    for n in range(4):
        assert (first if n % 2 else second).provider_failed() is None
    ends = first.provider_failed()  # the fifth in a row, counted across both instances
    assert ends == START + 60
    for lane in Lane:
        assert second.acquire(lane, 1).granted == 0  # every caller waits out the cool-down
    clock.now = ends
    assert second.acquire(Lane.BULK, 1).granted == 1
    for _ in range(5):
        cooled = second.provider_failed()
    assert cooled == ends + 120  # the outage goes on: the next cool-down is twice as long
    clock.now = cooled
    first.acquire(Lane.BULK, 1)
    first.provider_answered()  # the provider is back: the count starts again
    for _ in range(4):
        assert first.provider_failed() is None


def test_the_balance_checks_call_is_kept_only_when_a_check_is_due(table: str, clock: Clock) -> None:
    one = limiter(table, clock, "10/60,1000/3600", balance_every=240)
    assert one.claim_balance_check(240)  # checked now: the next one is due in 4 minutes
    assert one.acquire(Lane.BULK, 20).granted == 10  # the whole minute: no check comes in it
    clock.now += 240 - SPAN_SECONDS  # a span before the next check: its call is kept again
    assert one.acquire(Lane.BULK, 20).granted == 9
    clock.now = START + 240
    assert one.claim_balance_check(240)
    assert one.acquire(Lane.CONTROL).granted == 1  # the check finds its call
    clock.now += SPAN_SECONDS  # the window is free, the next check 3 minutes off
    assert one.acquire(Lane.BULK, 20).granted == 10


def test_instances_with_stale_copies_never_grant_the_same_capacity(table: str, clock: Clock) -> None:
    first, second = limiter(table, clock), limiter(table, clock)
    assert first.acquire(Lane.BULK, 5).granted == 5
    assert second.acquire(Lane.BULK, 5).granted == 4  # second read the item, not its own empty copy
    assert first.acquire(Lane.BULK, 5).granted == 0  # first's copy is stale: its write fails, it re-reads
    assert first.writes <= 3


def test_a_grant_costs_one_write_without_contention(table: str, clock: Clock) -> None:
    one = limiter(table, clock, "1000/60")
    for _ in range(50):
        clock.now += 1
        one.acquire(Lane.BULK, 10)
    assert (one.writes, one.reads) == (50, 1)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


def test_several_processes_share_the_limit(moto_server: MotoServer) -> None:
    """Four processes, as four Lambda instances: together they never pass any window, fixed or sliding."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=moto_server.endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    from conftest import load_template

    create_table(client, load_template(), "control-load", "ControlTable")
    limits = "20/10,60/60"
    plan = LoadPlan(moto_server.endpoint, "control-load", limits, rounds=240, step=0.5, start=START)

    grants, writes, reads = run_load(plan, workers=4)

    for limit in parse_rate_limits(limits):
        assert most_in_any_window(grants, limit.seconds) <= limit.count, limit
    granted = sum(n for _, n in grants)
    elapsed = plan.rounds * plan.step
    ceiling = 60 - 1 - 12  # per minute: one call kept for balance checks, the OTPs' 20 % of the longer window
    assert granted >= 0.9 * ceiling * elapsed / 60 * SLICES / SPAN  # close to the limit, not far below it
    # Every ask writes once (a grant, or turns for what is refused); four asking at one instant contend.
    assert writes <= 3 * len(grants)  # some retries, not a storm
    assert reads <= len(grants)


def test_refused_calls_get_turns_at_the_pace_capacity_frees(table: str, clock: Clock) -> None:
    one = limiter(table, clock, "10/60")
    assert one.acquire(Lane.BULK, 9).granted == 9  # the window's bulk capacity (one call kept for balance)
    refused = one.acquire(Lane.BULK, 4)
    assert refused.granted == 0
    assert len(refused.turns) == 4
    pace = SPAN_SECONDS / 9  # the window's span over the lane's ceiling
    assert refused.turns[0] == pytest.approx(refused.retry_at)  # the first when capacity frees
    assert [b - a for a, b in zip(refused.turns, refused.turns[1:], strict=False)] == pytest.approx([pace] * 3)
    later = one.acquire(Lane.BULK, 2)  # a second refusal queues behind the first: no bunching
    assert later.turns[0] == pytest.approx(refused.turns[-1] + pace)


def test_turns_are_shared_by_instances_and_kept_per_lane(table: str, clock: Clock) -> None:
    first, second = limiter(table, clock), limiter(table, clock)
    first.acquire(Lane.BULK, 9)
    a = first.acquire(Lane.BULK, 3)
    b = second.acquire(Lane.BULK, 3)  # another instance continues the same queue
    assert b.turns[0] > a.turns[-1]
    otp = second.acquire(Lane.OTP, 1)  # bulk borrowed the minute's OTP share: the OTP waits, in its own queue
    assert otp.granted == 0
    assert otp.turns[0] == pytest.approx(otp.retry_at)
    assert otp.turns[0] < b.turns[0]


def test_an_empty_queue_starts_again_from_the_capacity(table: str, clock: Clock) -> None:
    one = limiter(table, clock, "10/60")
    one.acquire(Lane.BULK, 9)
    first = one.acquire(Lane.BULK, 3)
    clock.now += 3600  # the queue drained long ago, capacity is back
    assert one.acquire(Lane.BULK, 9).granted == 9
    again = one.acquire(Lane.BULK, 1)
    assert again.turns[0] == pytest.approx(again.retry_at)
    assert again.turns[0] > first.turns[-1] + 3000


def test_reports_and_balance_checks_get_no_turns(table: str, clock: Clock) -> None:
    one = limiter(table, clock, "10/60")
    one.acquire(Lane.BULK, 9)
    one.acquire(Lane.CONTROL, 1)
    assert one.acquire(Lane.REPORT, 2).turns == ()
    assert one.acquire(Lane.CONTROL, 1).turns == ()


def test_a_change_another_instance_already_made_costs_no_second_write(table: str, clock: Clock) -> None:
    first, second = limiter(table, clock), limiter(table, clock)
    first.provider_failed()
    second.acquire(Lane.BULK, 1)  # reads the failure
    second.provider_answered()  # and ends it
    writes = first.writes
    first.provider_answered()  # first's copy still shows the failure: its write fails, it re-reads
    # The state it read is already what it meant to write (compared by value): no second write.
    assert first.writes == writes + 1


@pytest.mark.parametrize(
    "skews",
    [(-0.01, 0.01, -0.01, 0.01), (-0.5, 0.5, 0.0, 0.25)],
    ids=["10ms-each-way", "a-second-apart"],
)
def test_instances_whose_clocks_differ_never_pass_the_limit(moto_server: MotoServer, skews: tuple[float, ...]) -> None:
    """Four processes whose clocks are apart by up to MAX_CLOCK_SKEW: MiM, counting on its own clock,
    never sees a window overdrawn, and no instance erases what another granted."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=moto_server.endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    from conftest import load_template

    table = f"control-skew-{abs(hash(skews))}"
    create_table(client, load_template(), table, "ControlTable")
    limits = "100/60"
    # Rounds fall on slice boundaries now and then: a behind clock is in the slice before an ahead one.
    plan = LoadPlan(moto_server.endpoint, table, limits, rounds=200, step=0.4, start=START, skews=skews)

    grants, _, _ = run_load(plan, workers=4)

    assert max(skews) - min(skews) <= MAX_CLOCK_SKEW
    assert most_in_any_window(grants, 60) <= 100
    granted = sum(n for _, n in grants)
    assert granted >= 0.9 * 99 * plan.rounds * plan.step / 60 * SLICES / SPAN  # held, and not by refusing


def test_an_instance_whose_clock_is_behind_never_erases_a_later_grant(table: str, clock: Clock) -> None:
    ahead = limiter(table, clock, "10/60")
    behind_clock = Clock()
    behind = limiter(table, behind_clock, "10/60")
    clock.now, behind_clock.now = START + 0.51, START + 0.49  # 20 ms apart, across a slice boundary
    assert ahead.acquire(Lane.BULK, 5).granted == 5
    assert behind.acquire(Lane.BULK, 9).granted == 4  # the later slice's grants still count
    clock.now += 30
    assert ahead.acquire(Lane.BULK, 9).granted == 0


def test_a_release_gives_back_to_the_slice_its_grant_was_counted_in(table: str, clock: Clock) -> None:
    poller, sender = limiter(table, clock, "10/60"), limiter(table, clock, "10/60")
    report = poller.acquire(Lane.REPORT, 4)
    clock.now += 5  # slices later, another instance takes the rest
    assert sender.acquire(Lane.BULK, 9).granted == 5
    poller.release(report, 3)  # three look-ups were not needed after all
    assert sender.acquire(Lane.BULK, 9).granted == 3
    # The report's slice has aged out; the 8 sends' have not (given back from their slice, 4 would be free).
    clock.now = START + SPAN_SECONDS + 1
    assert sender.acquire(Lane.BULK, 9).granted == 1
