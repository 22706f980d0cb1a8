"""poll_status end to end: delivery reports, the tracking window, the balance gate and status events."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import USERNAME, Clock, FakeContext, Stack, load_handler, sqs_event

from mimsms_simulator import MimSmsSimulator
from smsgw import runtime
from smsgw.limiter import Lane
from smsgw.message import parse_request
from smsgw.polling import MAX_REPORT_LOOKUPS, Poller
from smsgw.records import WorkKind


class TickingClock:
    """Each reading moves time on by `step`: work that takes time, without waiting for it."""

    def __init__(self, start: float, step: float) -> None:
        self.now = start
        self._step = step
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now += self._step
            return self.now


@pytest.fixture
def clock(simulator: MimSmsSimulator) -> Clock:
    fake = Clock()
    simulator.state.clock = fake
    runtime.configure(clock=fake)  # the send path and the poller on the test's clock
    return fake


def make_poller(clock: Any) -> Poller:
    return runtime.make_poller(clock)


@pytest.fixture
def poller(configured: Stack, clock: Clock) -> Poller:
    return make_poller(clock)


def body(request_id: str, phone: str = "01712345678", **fields: Any) -> str:
    return json.dumps({"phone": phone, "message": "Your code is 4321", "request_id": request_id, **fields})


def sends(sim: MimSmsSimulator) -> int:
    return sum(1 for r in sim.state.received if r.path in ("/send-sms", "/api/SmsSending/SMS"))


def send(handler: Any, *bodies: str) -> list[str]:
    response = handler(sqs_event(*bodies), FakeContext())
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def test_a_message_progresses_to_delivered_with_one_event(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    simulator.state.script_delivery("8801712345678", [(0, "Absent subscriber"), (300, "Delivered")])
    send(send_handler, body("r-1", metadata={"order": "A-1"}))
    assert configured.status_events() == []

    poller.run(deadline=clock.now + 30)  # not due yet: reports are first looked at a minute after sending
    assert configured.record("r-1")["status"] == "sent"  # type: ignore[index]
    clock.advance(61)
    summary = poller.run(deadline=clock.now + 30)
    assert (summary.reports_checked, summary.still_pending) == (1, 1)
    record = configured.record("r-1")
    assert record is not None
    assert record["status"] == "sent"
    assert record["provider_status"] in ("Absent subscriber", "sent")
    clock.advance(400)
    summary = poller.run(deadline=clock.now + 30)

    assert summary.delivered == 1
    record = configured.record("r-1")
    assert record is not None
    assert record["status"] == "delivered"
    assert record["final_at"] > record["sent_at"]
    assert "poll_work" not in record
    (event,) = configured.status_events()
    assert (event["source"], event["detail-type"]) == ("sms-gateway", "SMS Final Status")
    detail = event["detail"]
    assert (detail["request_id"], detail["status"], detail["error_code"]) == ("r-1", "delivered", None)
    assert detail["phone"] == "88017******78"
    assert detail["metadata"] == {"order": "A-1"}
    clock.advance(3600)
    poller.run(deadline=clock.now + 30)
    assert configured.status_events() == []  # nothing more to say about a final record


FINAL_FAILURES = {
    "Undelivered": "undelivered",
    "Unidentified subscriber": "unidentified_subscriber",
    "Barred subscriber": "barred_subscriber",
    "Illegal subscriber": "illegal_subscriber",
    "SMS Failed - sender ID blocked": "sender_id_blocked",
}
OPERATOR_RETRIES = [
    "Absent subscriber",
    "Subscriber Busy",
    "SMS Failed - network failure in SMSC link",
    "System failure",
    "SMSC Timeout-abort",
]


@pytest.mark.parametrize("dialect", ["official"])
@pytest.mark.parametrize("operator_status", [*FINAL_FAILURES, *OPERATOR_RETRIES, "Delivered"])
def test_every_operator_status(
    send_handler: Any,
    configured: Stack,
    simulator: MimSmsSimulator,
    poller: Poller,
    clock: Clock,
    operator_status: str,
) -> None:
    simulator.state.script_delivery("8801712345678", [(0, operator_status)])
    send(send_handler, body("r-1"))
    clock.advance(61)
    poller.run(deadline=clock.now + 30)

    record = configured.record("r-1")
    assert record is not None
    assert record["provider_status"] == operator_status
    if operator_status == "Delivered":
        assert record["status"] == "delivered"
    elif operator_status in FINAL_FAILURES:
        assert (record["status"], record["error_code"]) == ("failed", FINAL_FAILURES[operator_status])
        assert record["error_message"] == operator_status
        (event,) = configured.status_events()
        assert event["detail"]["error_code"] == FINAL_FAILURES[operator_status]
    else:  # the operator retries by itself: keep waiting, with back-off
        assert record["status"] == "sent"
        assert record["report_checks"] == 1
        assert float(record["due_at"]) >= clock.now + 59  # a minute of back-off at least


@pytest.mark.parametrize("dialect", ["generic"])
def test_generic_failure_reports(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    simulator.state.script_delivery("8801712345678", [(0, "Undelivered")])
    send(send_handler, body("r-1"))
    clock.advance(61)
    poller.run(deadline=clock.now + 30)
    record = configured.record("r-1")
    assert record is not None
    assert (record["status"], record["provider_status"]) == ("failed", "failed")


def test_the_tracking_window_ends_in_unknown(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKING_WINDOW_HOURS", "1")
    runtime.configure()
    poller = make_poller(clock)
    simulator.state.script_delivery("8801712345678", [(0, "Absent subscriber")])
    send(send_handler, body("r-1"))
    for _ in range(14):  # polled with back-off, never more often than due
        clock.advance(300)
        poller.run(deadline=clock.now + 30)
    record = configured.record("r-1")
    assert record is not None
    assert record["status"] == "unknown"
    assert record["report_checks"] < 14
    (event,) = configured.status_events()
    assert event["detail"]["status"] == "unknown"


def test_reports_never_move_a_record_backward(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, clock: Clock
) -> None:
    simulator.state.script_delivery("8801712345678", [(0, "Delivered"), (120, "Absent subscriber")])
    send(send_handler, body("r-1"))
    clock.advance(61)
    # Two overlapping runs (a retried schedule) read the same due record; the second acts on its stale copy.
    # (Sequential on purpose: moto does not serialise conditional writes across threads as DynamoDB does.)
    stale = list(runtime.store().due(WorkKind.REPORT, clock.now))
    assert len(stale) == 1
    make_poller(clock).run(clock.now + 30)
    _, result = make_poller(clock)._check_one(runtime.credentials().get(), stale[0])
    assert result == {"stale": True}
    assert len(configured.status_events()) == 1

    store = runtime.store()
    clock.advance(200)
    # A late, contradicting report and a repeated one change nothing.
    assert not store.postpone_report("r-1", now=clock.now, due=clock.now, provider_status="Absent subscriber")
    assert not store.finish_report("r-1", "failed", now=clock.now, provider_status="Undelivered", error_code="x")
    assert not store.finish_report("r-1", "delivered", now=clock.now, provider_status="Delivered")
    record = configured.record("r-1")
    assert record is not None
    assert (record["status"], record["provider_status"].lower()) == ("delivered", "delivered")


def test_maybe_sent_is_resolved_as_unknown_after_the_grace_period(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    simulator.state.faults.timeout_seconds = 2.0
    simulator.state.faults.push("timeout")
    send(send_handler, body("r-1"))
    poller.run(deadline=clock.now + 30)
    assert configured.record("r-1")["status"] == "sending"  # type: ignore[index]
    clock.advance(910)  # past the 900 s grace period (the send itself took a real second or two)
    summary = poller.run(deadline=clock.now + 30)
    assert summary.resolved_unknown_outcome == 1
    record = configured.record("r-1")
    assert record is not None
    # Not `failed`: under faults more than half of these were in fact delivered.
    assert (record["status"], record["error_code"]) == ("unknown", "outcome_unknown")
    (event,) = configured.status_events()
    assert (event["detail"]["status"], event["detail"]["error_code"]) == ("unknown", "outcome_unknown")
    assert len(simulator.state.sent) == 1  # never resent


def test_a_redelivery_inside_the_lease_of_a_crashed_attempt_still_ends_unknown(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    # An invocation claimed the message and died before recording anything (its lease is still running).
    store = runtime.store()
    request = parse_request(body("r-1"), default_request_id="x")
    lease_until = time.time() + 60
    claim = store.claim(
        request, now=time.time(), lease_until=lease_until, resolve_at=lease_until + 900, sqs_message_id="m-0"
    )
    assert claim.token is not None
    assert send(send_handler, body("r-1")) == []  # a copy inside the lease: a duplicate, acknowledged
    record = configured.record("r-1")
    assert record is not None
    assert (record["status"], record["attempt_state"]) == ("sending", "in_flight")
    assert record["poll_work"] == WorkKind.UNRESOLVED  # the claim itself left the work that resolves it

    clock.now = lease_until + 899
    assert poller.run(deadline=clock.now + 30).resolved_unknown_outcome == 0  # the grace is not over
    clock.now = lease_until + 901
    assert poller.run(deadline=clock.now + 30).resolved_unknown_outcome == 1
    record = configured.record("r-1")
    assert record is not None
    assert (record["status"], record["error_code"]) == ("unknown", "outcome_unknown")
    assert "poll_work" not in record
    assert "ended without recording its outcome" in record["error_message"]
    (event,) = configured.status_events()
    assert event["detail"]["status"] == "unknown"
    assert sends(simulator) == 0


def test_a_fault_of_ours_after_the_claim_is_resolved_never_left_in_flight(
    send_handler: Any,
    configured: Stack,
    simulator: MimSmsSimulator,
    poller: Poller,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = runtime.provider()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OverflowError("a bug of ours, after the claim")

    monkeypatch.setattr(provider, "send", broken)
    assert send(send_handler, body("r-1")) == []  # not a batch failure: SQS would only redeliver it
    record = configured.record("r-1")
    assert record is not None
    assert (record["status"], record["attempt_state"], record["error_code"]) == ("sending", "maybe_sent", "maybe_sent")
    assert "OverflowError" in record["error_message"]
    clock.now = time.time() + 901
    assert poller.run(deadline=clock.now + 30).resolved_unknown_outcome == 1
    assert configured.record("r-1")["status"] == "unknown"  # type: ignore[index]


def test_every_record_not_final_has_pending_work_or_a_message_in_its_queue(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    simulator.state.faults.push("http_503")  # not sent: released, its message waits in the queue
    simulator.state.faults.push("timeout")  # maybe sent
    simulator.state.faults.timeout_seconds = 2.0
    assert send(send_handler, body("r-1"), body("r-2", phone="01812345678"), body("r-3", phone="01912345678")) == []
    queued = {copy.body["request_id"] for copy in configured.deferred()}  # waiting out their back-off
    for record in configured.records():
        if record["status"] in ("delivered", "failed", "unknown"):
            assert "poll_work" not in record
        elif record.get("attempt_state") == "released":
            assert record["request_id"] in queued
        else:
            assert record.get("poll_work") in (WorkKind.REPORT, WorkKind.UNRESOLVED, WorkKind.HELD), record


def test_a_message_dearer_than_the_balance_above_the_floor_does_not_flap_the_gate(
    send_handler: Any,
    configured: Stack,
    simulator: MimSmsSimulator,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    log_output: Any,
) -> None:
    from smsgw.observability import metrics

    monkeypatch.setenv("BALANCE_FLOOR_BDT", "1")
    runtime.configure()
    poller = make_poller(clock)
    account = simulator.state.accounts[USERNAME]
    account.balance = 2.0  # above the floor, below a 10-part message (5 BDT)
    assert poller.run(deadline=clock.now + 30).gate_open is True
    long_text = "x" * 1500  # 10 GSM-7 parts
    assert send(send_handler, body("big", message=long_text)) == []
    record = configured.record("big")
    assert record is not None
    assert (record["attempt_state"], record["error_code"]) == ("held", "insufficient_balance")
    assert configured.gate()["open"] is False
    refusals = len(simulator.state.received)

    for _ in range(3):  # run after run: the balance is above the floor but below what the message needs
        clock.advance(120)
        summary = poller.run(deadline=clock.now + 30)
        assert (summary.gate_open, summary.balance_needed, summary.republished) == (False, 5.0, 0)
        assert configured.queued_bodies() == []
    assert configured.gate()["open"] is False
    assert len(simulator.state.received) == refusals + 3  # balance checks only: the message was not tried again
    metrics.flush_metrics()  # as the handler's log_metrics does at the end of a run
    assert '"BalanceNeeded":[5.0,5.0,5.0]' in log_output()

    account.balance = 6.0
    clock.advance(120)
    summary = poller.run(deadline=clock.now + 30)
    assert (summary.gate_open, summary.republished) == (True, 1)
    send(send_handler, *configured.queued_bodies())
    assert configured.record("big")["status"] == "sent"  # type: ignore[index]


def test_a_message_scheduled_days_ahead_is_held_by_the_service_and_sent_once_when_due(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    due = clock.now + 3 * 86400  # three days ahead: past SQS's 15-minute delay, held in the work index
    when = datetime.fromtimestamp(due, UTC).isoformat()
    scheduled = body("sch-1", schedule_time=when)
    assert send(send_handler, scheduled) == []
    record = configured.record("sch-1")
    assert record is not None
    assert (record["status"], record["poll_work"]) == ("scheduled", WorkKind.SCHEDULED)
    assert float(record["due_at"]) == pytest.approx(due, abs=0.001)
    assert sends(simulator) == 0  # no provider call, and no capacity taken
    assert configured.status_events() == []  # not a final state

    clock.now = due - 60
    assert poller.run(deadline=clock.now + 30).scheduled_published == 0  # not due yet
    assert configured.queued_bodies() == []

    clock.now = due + 1
    assert poller.run(deadline=clock.now + 30).scheduled_published == 1
    (published,) = configured.queued_bodies()
    assert json.loads(published)["request_id"] == "sch-1"
    # Published twice (a crash between the publish and the record's update): sent once.
    assert send(send_handler, published) == []
    assert send(send_handler, published) == []
    assert sends(simulator) == 1
    request = simulator.state.received[-1].body
    assert "schedule_time" not in request  # MiM is asked to send now, in both dialects
    record = configured.record("sch-1")
    assert record is not None
    assert (record["status"], record["attempts"]) == ("sent", 1)
    assert poller.run(deadline=clock.now + 30).scheduled_published == 0


def test_a_scheduled_message_published_again_early_waits_in_its_queue_not_dropped(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, clock: Clock
) -> None:
    due = clock.now + 3600
    scheduled = body("sch-2", schedule_time=datetime.fromtimestamp(due, UTC).isoformat())
    assert send(send_handler, scheduled) == []
    assert send(send_handler, scheduled) == []  # the producer publishes it again before it is due
    (copy,) = configured.deferred()
    assert copy.body["request_id"] == "sch-2"  # kept for its time, not acknowledged as a duplicate
    assert sends(simulator) == 0
    record = configured.record("sch-2")
    assert record is not None
    assert record["status"] == "scheduled"


def test_a_copy_of_a_scheduled_message_never_changes_the_originals_fate(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    """Copies published before their time wait in the queue, jittered like any wait; one that would come
    back past its short valid_until must not fail the original, which the service holds for its time."""
    due = clock.now + 3600
    at, until = (datetime.fromtimestamp(t, UTC).isoformat() for t in (due, due + 2))
    bodies = [body(f"short-{n}", phone=f"0171234{n:04d}", schedule_time=at, valid_until=until) for n in range(20)]
    for copy in (1, 2):  # each published twice before its time
        for first in range(0, 20, 10):
            assert send(send_handler, *bodies[first : first + 10]) == [], copy
    records = [configured.record(f"short-{n}") for n in range(20)]
    assert {r["status"] for r in records if r is not None} == {"scheduled"}
    assert len(records) == 20

    clock.now = due + 1  # due: poll_status publishes each once, and each is sent once
    assert poller.run(deadline=clock.now + 30).scheduled_published == 20
    published = configured.queued_bodies()
    assert send(send_handler, *published[:10]) == []
    assert send(send_handler, *published[10:]) == []
    assert {configured.record(f"short-{n}")["status"] for n in range(20)} == {"sent"}  # type: ignore[index]
    assert sends(simulator) == 20


def test_the_balance_gate_holds_messages_without_losing_any(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    account = simulator.state.accounts[USERNAME]
    account.balance = 4.0
    summary = poller.run(deadline=clock.now + 30)
    assert (summary.balance, summary.gate_open) == (4.0, False)
    assert configured.gate()["open"] is False

    bodies = [body(f"r-{i}", phone=f"0171234567{i}") for i in range(5)]
    assert send(send_handler, *bodies) == []  # acknowledged: parked in their records, not retried by SQS
    assert len(simulator.state.sent) == 0
    for i in range(5):
        record = configured.record(f"r-{i}")
        assert record is not None
        assert (record["status"], record["attempt_state"], record["error_code"]) == ("sending", "held", "balance_low")

    poller.run(deadline=clock.now + 30)  # still closed: nothing is published again
    assert configured.queued_bodies() == []

    account.balance = 200.0
    clock.advance(10)
    summary = poller.run(deadline=clock.now + 30)
    assert (summary.gate_open, summary.republished) == (True, 5)
    assert configured.gate()["open"] is True
    queued = configured.queued_bodies()
    # The same requests, with their deadline written in (publishing again must not restart their maximum age).
    assert sorted(json.loads(q)["request_id"] for q in queued) == [f"r-{i}" for i in range(5)]
    assert all(
        {**json.loads(q), "valid_until": None} == {**json.loads(b), "valid_until": None}
        for q, b in zip(sorted(queued), sorted(bodies), strict=True)
    )

    runtime.gate().forget()  # the send function's cached view of the gate expires
    assert send(send_handler, *queued) == []
    assert sorted(r["status"] for r in configured.records()) == ["sent"] * 5
    assert [r["attempts"] for r in configured.records()] == [1] * 5  # parking was not an attempt
    assert len(simulator.state.sent) == 5


def test_a_held_message_without_a_request_id_keeps_its_identity_and_is_sent_once(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    account = simulator.state.accounts[USERNAME]
    account.balance = 4.0
    poller.run(deadline=clock.now + 30)  # the gate closes
    event = sqs_event(json.dumps({"phone": "01712345678", "message": "no request_id given"}))
    sqs_id = event["Records"][0]["messageId"]
    assert send_handler(event, FakeContext())["batchItemFailures"] == []
    assert configured.record(sqs_id)["attempt_state"] == "held"  # type: ignore[index]

    account.balance = 200.0
    clock.advance(10)
    assert poller.run(deadline=clock.now + 30).republished == 1
    (republished,) = configured.queued_bodies()
    assert json.loads(republished)["request_id"] == sqs_id  # the same request, not a new SQS message id
    # Published twice (a crash between the publish and the record's update, an SDK retry): sent once.
    runtime.gate().forget()
    assert send(send_handler, republished) == []
    assert send(send_handler, republished) == []
    assert len(simulator.state.sent) == 1
    assert [r["request_id"] for r in configured.records()] == [sqs_id]  # no record under a new id
    assert configured.record(sqs_id)["status"] == "sent"  # type: ignore[index]


def test_an_insufficient_balance_answer_closes_the_gate(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    simulator.state.accounts[USERNAME].balance = 0.2
    assert send(send_handler, body("r-1"), body("r-2", phone="01812345678")) == []
    assert configured.gate()["open"] is False
    assert {r["attempt_state"] for r in configured.records()} == {"held"}
    # The next batch does not even try the provider.
    calls = len(simulator.state.received)
    send(send_handler, body("r-3", phone="01912345678"))
    assert len(simulator.state.received) == calls

    simulator.state.accounts[USERNAME].balance = 50.0
    clock.advance(10)
    poller.run(deadline=clock.now + 30)
    runtime.gate().forget()
    assert send(send_handler, *configured.queued_bodies()) == []
    assert sorted(r["status"] for r in configured.records()) == ["sent"] * 3


def seed_sent(count: int, clock: Clock, start: int = 0) -> list[str]:
    """`sent` records with real provider ids, due for a report now, oldest first."""
    store, provider, credentials = runtime.store(), runtime.provider(), runtime.credentials().get()
    from smsgw.provider import OutboundSms

    ids = []
    for n in range(start, start + count):
        request = parse_request(body(f"s-{n:05d}", phone=f"0171{n:07d}"), default_request_id="x")
        claim = store.claim(
            request, now=clock.now, lease_until=clock.now + 60, resolve_at=clock.now + 960, sqs_message_id=f"m-{n}"
        )
        assert claim.token is not None
        result = provider.send(OutboundSms(request.phone, "hi", "MIMSMS"), credentials)
        store.mark_sent(
            request.request_id,
            claim.token,
            now=clock.now,
            message_id=result.message_id,
            provider_status="sent",
            cost=0.5,
            report_due=clock.now - 1000 + n,
        )
        ids.append(request.request_id)
    return ids


def test_a_run_stops_within_its_time_budget_and_the_next_carries_on_oldest_first(
    configured: Stack, simulator: MimSmsSimulator, clock: Clock
) -> None:
    simulator.state.accounts[USERNAME].balance = 1e6
    simulator.state.rate_limits = ((10_000, 60),)
    ids = seed_sent(30, clock)
    ticking = TickingClock(clock.now, step=1.0)  # every reading of the clock is a second of work
    poller = runtime.make_poller(ticking)
    summary = poller.run(deadline=ticking.now + 15)

    assert summary.stopped_early == "time"
    assert 0 < summary.delivered < 30
    done = {r["request_id"] for r in configured.records() if r["status"] == "delivered"}
    assert done == set(ids[: len(done)])  # the oldest first: no message starves

    summary = poller.run(deadline=ticking.now + 1000)
    assert {r["status"] for r in configured.records()} == {"delivered"}


def test_reports_take_only_the_capacity_sending_leaves(
    configured: Stack, simulator: MimSmsSimulator, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIMSMS_RATE_LIMITS", "20/60")
    runtime.configure()
    simulator.state.accounts[USERNAME].balance = 1e6
    seed_sent(40, clock)
    sender_side = runtime.make_limiter(clock)
    # Sending took 15 of the minute's 20 calls (15 sends back at their turns: no pacing to wait for).
    assert sender_side.acquire(Lane.BULK, 15, due=15).granted == 15
    calls = len(simulator.state.received)

    summary = make_poller(clock).run(deadline=clock.now + 60)

    # The balance check takes a call; reports get the rest (the next check is 4 minutes off: none kept).
    assert summary.stopped_early == "capacity"
    assert len(simulator.state.received) - calls == 1 + 4
    assert summary.delivered == 4

    assert sender_side.acquire(Lane.BULK, 1).granted == 0  # a send now waits for capacity ...
    clock.advance(61)  # ... and even with the window free again, reports leave it to the send
    assert make_poller(clock).run(deadline=clock.now + 60).delivered == 0
    clock.advance(120)  # sending idle: reports catch up, within the window (the next check's call kept)
    summary = make_poller(clock).run(deadline=clock.now + 60)
    assert (summary.delivered, summary.stopped_early) == (19, "capacity")


def test_reads_grow_with_pending_messages_not_with_history(
    configured: Stack, simulator: MimSmsSimulator, clock: Clock
) -> None:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    for start in range(0, 3000, 25):  # three thousand final records of history
        configured.dynamodb.batch_write_item(
            RequestItems={
                configured.table: [
                    {
                        "PutRequest": {
                            "Item": {
                                k: serializer.serialize(v)
                                for k, v in {
                                    "request_id": f"old-{n}",
                                    "status": "delivered",
                                    "phone": "8801712345678",
                                    "parts": 1,
                                }.items()
                            }
                        }
                    }
                    for n in range(start, start + 25)
                ]
            }
        )
    seed_sent(5, clock)
    read: list[int] = []
    runtime.client("dynamodb").meta.events.register(
        "after-call.dynamodb.Query", lambda parsed, **_: read.append(parsed.get("ScannedCount", 0))
    )
    summary = make_poller(clock).run(deadline=clock.now + 30)
    assert summary.delivered == 5
    assert sum(read) == 5


def test_the_balance_is_read_every_few_minutes_while_the_gate_is_open_and_every_run_while_closed(
    configured: Stack, simulator: MimSmsSimulator, clock: Clock
) -> None:
    def balance_checks() -> int:
        return sum(1 for r in simulator.state.received if "alance" in r.path)

    poller = make_poller(clock)
    assert poller.run(deadline=clock.now + 30).balance == 500.0
    for _ in range(3):  # three more runs within the 240 s: no call spent on the balance
        clock.advance(60)
        assert poller.run(deadline=clock.now + 30).balance is None
    clock.advance(60)
    assert poller.run(deadline=clock.now + 30).balance == 500.0
    assert balance_checks() == 2

    simulator.state.accounts[USERNAME].balance = 2.0
    clock.advance(240)
    assert poller.run(deadline=clock.now + 30).gate_open is False
    clock.advance(60)  # closed: every run looks, so sending resumes as soon as the account is topped up
    simulator.state.accounts[USERNAME].balance = 300.0
    assert poller.run(deadline=clock.now + 30).gate_open is True
    assert balance_checks() == 4


def test_failing_report_look_ups_start_the_cool_down_sending_shares(
    send_handler: Any,
    configured: Stack,
    simulator: MimSmsSimulator,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OUTAGE_FAILURES", "3")
    monkeypatch.setenv("POLL_CONCURRENCY", "1")
    runtime.configure()
    seed_sent(3, clock)
    simulator.state.faults.push("http_503", "http_503", "http_503", "http_503")  # the balance check, then 3 look-ups
    make_poller(clock).run(deadline=clock.now + 30)
    calls = len(simulator.state.received)
    assert send(send_handler, body("later-1")) == []  # the send waits out the cool-down instead of failing
    assert len(simulator.state.received) == calls
    assert [copy.body["request_id"] for copy in configured.deferred()] == ["later-1"]


@pytest.mark.parametrize("dialect", ["generic", "official"])
def test_look_ups_the_provider_answers_with_an_error_are_no_outage_sign(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTAGE_FAILURES", "3")
    runtime.configure()
    seed_sent(4, clock)
    simulator.state.sent.clear()  # the provider no longer knows these ids: it says so, it is not down
    make_poller(clock).run(deadline=clock.now + 30)
    calls = len(simulator.state.received)
    assert send(send_handler, body("later-1")) == []
    assert len(simulator.state.received) == calls + 1  # sent at once: no cool-down was started
    assert configured.record("later-1")["status"] == "sent"  # type: ignore[index]


def test_held_otps_go_back_to_the_priority_queue(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    account = simulator.state.accounts[USERNAME]
    account.balance = 4.0
    poller.run(deadline=clock.now + 30)
    assert send(send_handler, body("otp-1", priority="high"), body("promo-1", phone="01812345678")) == []
    account.balance = 200.0
    clock.advance(10)
    assert poller.run(deadline=clock.now + 30).republished == 2
    assert [json.loads(b)["request_id"] for b in configured.drain(configured.priority_queue_url)] == ["otp-1"]
    assert [json.loads(b)["request_id"] for b in configured.queued_bodies()] == ["promo-1"]


def test_a_run_reads_only_the_records_it_looks_up(
    configured: Stack, simulator: MimSmsSimulator, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIMSMS_RATE_LIMITS", "9/60")
    runtime.configure()
    seed_sent(25, clock)
    read: list[int] = []
    runtime.client("dynamodb").meta.events.register(
        "after-call.dynamodb.Query", lambda parsed, **_: read.append(parsed.get("ScannedCount", 0))
    )
    summary = make_poller(clock).run(deadline=clock.now + 30)
    # 9 calls a minute: the balance check, then 8 look-ups (the next check is 4 minutes off: no call kept).
    assert (summary.reports_checked, summary.stopped_early) == (8, "capacity")
    assert sum(read) == summary.reports_checked


@pytest.mark.parametrize(
    ("policy", "tracked"),
    [("all", {"otp-1", "promo-1"}), ("high", {"otp-1"}), ("none", set()), ("sample:1", {"otp-1", "promo-1"})],
)
def test_the_tracking_policy_decides_which_messages_get_reports(
    send_handler: Any,
    configured: Stack,
    simulator: MimSmsSimulator,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
    tracked: set[str],
) -> None:
    monkeypatch.setenv("TRACKING_POLICY", policy)

    runtime.configure()
    send(send_handler, body("otp-1", priority="high"), body("promo-1", phone="01812345678"))
    records = {r["request_id"]: r for r in configured.records()}
    assert {rid for rid, r in records.items() if r.get("poll_work") == "report"} == tracked
    assert all(records[rid].get("tracking") == "off" for rid in set(records) - tracked)
    calls = len(simulator.state.received)
    clock.advance(120)
    summary = make_poller(clock).run(deadline=clock.now + 30)
    assert summary.delivered == len(tracked)
    assert len(simulator.state.received) - calls == 1 + len(tracked)  # the balance check and the look-ups


def test_handler_returns_the_summary(configured: Stack, simulator: MimSmsSimulator) -> None:
    handler = load_handler("poll_status")
    simulator.state.accounts[USERNAME].balance = 321.5
    result = handler({"source": "aws.scheduler"}, FakeContext(remaining_ms=120_000))
    assert result["balance"] == 321.5
    assert result["gate_open"] is True


def test_a_gate_that_cannot_be_written_still_holds_the_message(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BALANCE_GATE_PARAMETER", "/aws/reserved/balance-gate")  # SSM refuses to write here
    runtime.configure()

    runtime.configure()
    simulator.state.accounts[USERNAME].balance = 0.2
    assert send(send_handler, body("r-1")) == []
    record = configured.record("r-1")
    assert record is not None
    assert (record["status"], record["attempt_state"], record["error_code"]) == (
        "sending",
        "held",
        "insufficient_balance",
    )


def test_a_run_goes_on_when_the_credentials_cannot_be_reread(
    configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    configured.put_credentials(api_key="stale-key")
    runtime.credentials().get()  # cached: the stale key
    configured.secrets.delete_secret(SecretId=configured.secret_id, ForceDeleteWithoutRecovery=True)
    summary = poller.run(deadline=clock.now + 30)  # balance refused, re-read fails: no crash
    assert summary.balance is None


def test_a_report_look_up_that_always_fails_backs_off_and_is_bounded(
    configured: Stack, simulator: MimSmsSimulator, clock: Clock
) -> None:
    """Look-ups share the account's limit with sending: one message whose look-ups keep failing must not
    spend a call a minute for the whole tracking window."""
    (rid,) = seed_sent(1, clock)
    simulator.state.sent.clear()  # the provider no longer knows the id: every look-up fails

    def lookups() -> int:
        return sum(1 for r in simulator.state.received if r.path in ("/status", "/api/SmsSending/DlrApi"))

    for _ in range(180):  # three hours of runs, one a minute
        clock.advance(60)
        make_poller(clock).run(deadline=clock.now + 30)
    assert lookups() <= 8  # 1, 2, 5, 15, 30, 60 and 120 minutes apart: not 180
    for _ in range(100):  # on to the end of the tracking window, run by run as work falls due
        record = configured.record(rid)
        assert record is not None
        if record["status"] != "sent":
            break
        clock.now = max(clock.now, float(record["due_at"])) + 1
        make_poller(clock).run(deadline=clock.now + 30)
    record = configured.record(rid)
    assert record is not None
    assert record["status"] == "unknown"
    assert lookups() <= MAX_REPORT_LOOKUPS
