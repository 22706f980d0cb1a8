"""Cancel: a message that has not gone to MiM ends `cancelled`, wherever it waits; too late is answered once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import USERNAME, Clock, FakeContext, Stack, sqs_event

from mimsms_simulator import MimSmsSimulator
from smsgw import runtime
from smsgw.limiter import Lane
from smsgw.polling import Poller
from smsgw.status import status_of


def body(request_id: str, phone: str = "01712345678", **fields: Any) -> str:
    return json.dumps({"phone": phone, "message": "Your parcel ships today", "request_id": request_id, **fields})


def cancel(request_id: str) -> str:
    return json.dumps({"action": "cancel", "request_id": request_id})


def invoke(handler: Any, *bodies: str, start: int = 1) -> list[str]:
    response = handler(sqs_event(*bodies, start=start), FakeContext())
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def sends(sim: MimSmsSimulator) -> int:
    return sum(1 for r in sim.state.received if r.path in ("/send-sms", "/api/SmsSending/SMS"))


def status(stack: Stack, request_id: str) -> tuple[Any, ...]:
    record = stack.record(request_id)
    assert record is not None
    return record["status"], record.get("error_code"), record.get("cancel_result")


def one_cancelled_event(stack: Stack, request_id: str) -> dict[str, Any]:
    (event,) = stack.status_events()
    assert (event["detail-type"], event["detail"]["request_id"]) == ("SMS Final Status", request_id)
    assert (event["detail"]["status"], event["detail"]["error_code"]) == ("cancelled", "cancelled")
    return dict(event["detail"])


def test_a_scheduled_message_cancelled_is_never_sent(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    due = clock.now + 2 * 86400
    scheduled = body("sch-1", schedule_time=datetime.fromtimestamp(due, UTC).isoformat())
    assert invoke(send_handler, scheduled) == []
    assert invoke(send_handler, cancel("sch-1")) == []

    assert status(configured, "sch-1") == ("cancelled", "cancelled", "cancelled")
    record = configured.record("sch-1")
    assert record is not None
    assert {"payload", "poll_work", "due_at"}.isdisjoint(record)  # off the work index, its body gone
    one_cancelled_event(configured, "sch-1")

    clock.now = due + 1
    assert poller.run(deadline=clock.now + 30).scheduled_published == 0
    assert invoke(send_handler, scheduled) == []  # a copy the producer published early: a duplicate now
    assert configured.deferred() == []
    assert sends(simulator) == 0
    assert configured.status_events() == []


def test_a_held_message_cancelled_is_not_published_when_the_gate_opens(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    account = simulator.state.accounts[USERNAME]
    account.balance = 4.0
    assert poller.run(deadline=clock.now + 30).gate_open is False
    assert invoke(send_handler, body("held-1"), body("held-2", phone="01812345678")) == []
    assert invoke(send_handler, cancel("held-1")) == []
    assert status(configured, "held-1")[0] == "cancelled"

    account.balance = 200.0
    clock.now += 300
    summary = poller.run(deadline=clock.now + 30)
    assert (summary.gate_open, summary.republished) == (True, 1)
    (published,) = configured.queued_bodies()
    assert json.loads(published)["request_id"] == "held-2"
    assert sends(simulator) == 0


def test_a_message_waiting_for_a_retry_cancelled_is_not_sent_when_it_comes_back(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    simulator.state.faults.push("http_503")
    assert invoke(send_handler, body("retry-1")) == []
    assert status(configured, "retry-1") == ("sending", "provider_unavailable", None)
    assert invoke(send_handler, cancel("retry-1")) == []

    configured.end_delays()
    assert send_handler(configured.sqs_event_from_queue(), FakeContext())["batchItemFailures"] == []
    assert status(configured, "retry-1") == ("cancelled", "cancelled", "cancelled")
    assert simulator.state.sent == {}
    one_cancelled_event(configured, "retry-1")


def test_a_message_waiting_for_capacity_cancelled_takes_none_when_it_comes_back(
    send_handler: Any,
    configured: Stack,
    simulator: MimSmsSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MIMSMS_RATE_LIMITS", "4/60")
    clock = Clock()
    runtime.configure(clock=clock)
    assert invoke(send_handler, *(body(f"bulk-{i}", phone=f"0171234560{i}") for i in range(5))) == []
    waiting = configured.deferred()
    assert sorted(c.body["request_id"] for c in waiting) == ["bulk-3", "bulk-4"]
    assert configured.record("bulk-4") is None  # waiting for its turn is no attempt: no record yet

    assert invoke(send_handler, cancel("bulk-4"), start=6) == []
    assert status(configured, "bulk-4") == ("cancelled", "cancelled", "cancelled")  # created by the cancel

    configured.rate_window_passes()  # a fresh limiter: count what the returning batch asks of it
    clock.now = max(c.turn or 0 for c in waiting) + 1  # both turns have come
    limiter = runtime.limiter()
    acquire = limiter.acquire
    asked: list[tuple[Lane, int]] = []

    def counting(lane: Lane, n: int = 1, *, due: int = 0) -> Any:
        asked.append((lane, n))
        return acquire(lane, n, due=due)

    monkeypatch.setattr(limiter, "acquire", counting)
    configured.end_delays()
    assert send_handler(configured.sqs_event_from_queue(), FakeContext())["batchItemFailures"] == []

    assert asked == [(Lane.BULK, 1)]  # capacity for bulk-3 only
    assert status(configured, "bulk-3")[0] == "sent"
    assert status(configured, "bulk-4")[0] == "cancelled"
    assert "8801712345604" not in {sms.phone for sms in simulator.state.sent.values()}
    assert len(simulator.state.sent) == 4


def test_a_cancel_that_arrives_first_stops_the_message_when_it_comes(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    assert invoke(send_handler, cancel("early-1")) == []
    detail = one_cancelled_event(configured, "early-1")
    assert detail["phone"] is None  # nothing was known of it but its request_id
    assert invoke(send_handler, body("early-1")) == []
    assert status(configured, "early-1") == ("cancelled", "cancelled", "cancelled")
    assert sends(simulator) == 0
    assert configured.status_events() == []


def test_a_cancel_too_late_is_recorded_and_answered_once(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    assert invoke(send_handler, body("late-1", metadata={"order": "A-7"})) == []
    assert invoke(send_handler, cancel("late-1")) == []
    record = configured.record("late-1")
    assert record is not None
    assert (record["status"], record["cancel_result"]) == ("sent", "too_late")  # it goes on as it was
    requested = record["cancel_requested_at"]
    (event,) = configured.status_events()
    assert event["detail-type"] == "SMS Cancel Too Late"
    detail = event["detail"]
    assert (detail["request_id"], detail["status"], detail["cancel_requested_at"]) == ("late-1", "sent", requested)
    assert detail["metadata"] == {"order": "A-7"}
    assert detail["phone"] == "88017******78"

    assert invoke(send_handler, cancel("late-1")) == []  # asked again: answered already
    assert configured.record("late-1")["cancel_requested_at"] == requested  # type: ignore[index]
    assert configured.status_events() == []

    clock.now += 120
    poller.run(deadline=clock.now + 30)
    (final,) = configured.status_events()  # delivered: its final event, and no second refusal
    assert (final["detail-type"], final["detail"]["status"]) == ("SMS Final Status", "delivered")
    view = status_of("late-1", table=configured.table, dynamodb=configured.dynamodb)
    assert view is not None
    assert (view["status"], view["cancel_result"], view["cancel_requested_at"]) == ("delivered", "too_late", requested)
    assert sends(simulator) == 1


def test_a_send_and_its_cancel_in_one_batch_end_in_one_consistent_state(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    assert invoke(send_handler, body("both-1"), cancel("both-1")) == []
    status_now, _, cancel_result = status(configured, "both-1")
    # Whichever the table took first: cancelled and never sent, or sent and the cancel too late.
    assert (status_now, cancel_result, sends(simulator)) in (("cancelled", "cancelled", 0), ("sent", "too_late", 1))


@pytest.mark.parametrize(
    "bad",
    [
        '{"action": "cancel", "request_id": "kept-1", "phone": "01712345678"}',
        '{"action": "cancel", "request_id": "kept-1", "request_id": "kept-1"}',
        '{"action": "stop", "request_id": "kept-1"}',
    ],
)
def test_a_bad_cancel_is_recorded_under_its_own_message_id_never_on_its_target(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, bad: str
) -> None:
    assert invoke(send_handler, bad) == []  # final on its first delivery: never retried
    (record,) = configured.records()
    assert record["request_id"] == "00000000-0000-4000-8000-000000000001"  # the SQS message id
    assert (record["status"], record["error_code"]) == ("failed", "invalid_request")
    assert invoke(send_handler, body("kept-1"), start=2) == []
    assert status(configured, "kept-1") == ("sent", None, None)  # the message it named was not touched
