"""Bulk requests: one text to many numbers (`phones`) or a text per number (`messages`), a record per number,
sent in chunks (OneToMany / DSMS in the official dialect, number by number in the generic one)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import Clock, FakeContext, Stack, sqs_event

from mimsms_simulator import MimSmsSimulator
from smsgw import runtime
from smsgw.polling import Poller
from smsgw.status import status_of

SEND_PATHS = {"/send-sms", "/api/SmsSending/SMS", "/api/SmsSending/OneToMany", "/api/SmsSending/DSMS"}


def bulk(request_id: str, numbers: list[Any], **fields: Any) -> str:
    return json.dumps({"phones": numbers, "message": "Eid sale: 20% off today", "request_id": request_id, **fields})


def invoke(handler: Any, *bodies: str, start: int = 1) -> list[str]:
    response = handler(sqs_event(*bodies, start=start), FakeContext())
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def drain_chunks(handler: Any, stack: Stack, queue_url: str | None = None) -> int:
    """Deliver what waits in the queue (the chunks) as Lambda's poller would, until it is empty."""
    batches = 0
    while event := stack.sqs_event_from_queue(queue_url):
        if not event["Records"]:
            break
        assert handler(event, FakeContext())["batchItemFailures"] == []
        batches += 1
    return batches


def requests(sim: MimSmsSimulator) -> list[Any]:
    return [r for r in sim.state.received if r.path in SEND_PATHS]


def statuses(stack: Stack, prefix: str) -> dict[str, str]:
    return {r["request_id"]: r["status"] for r in stack.records() if r["request_id"].startswith(prefix + ":")}


def test_one_text_to_many_numbers_is_a_record_per_number_each_sent_once(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, dialect: str
) -> None:
    numbers = ["01712345678", "+880 1812-345678", "017 1234 5678", "0171", 42, "01912345678"]
    assert invoke(send_handler, bulk("eid", numbers)) == []
    assert requests(simulator) == []  # handed on in chunks: no provider call yet
    parent = configured.record("eid")
    assert parent is not None
    assert (parent["status"], parent["kind"], parent["children"], parent["children_invalid"]) == (
        "sending",
        "bulk",
        3,
        2,
    )
    assert parent["attempt_state"] == "done"

    drain_chunks(send_handler, configured)
    assert statuses(configured, "eid") == {
        "eid:8801712345678": "sent",
        "eid:8801812345678": "sent",
        "eid:8801912345678": "sent",
        "eid:invalid-4": "failed",
        "eid:invalid-5": "failed",
    }
    invalid = configured.record("eid:invalid-4")
    assert invalid is not None
    assert (invalid["error_code"], invalid["parent_id"]) == ("invalid_phone", "eid")
    assert "phones[4]" in invalid["error_message"]
    sent = requests(simulator)
    if dialect == "official":  # one OneToMany request for the three numbers: one call of the limit
        (request,) = sent
        assert request.path == "/api/SmsSending/OneToMany"
        assert request.body["MobileNumber"] == "8801712345678,8801812345678,8801912345678"
    else:
        assert sorted(r.body["phone"] for r in sent) == ["8801712345678", "8801812345678", "8801912345678"]
    assert len(simulator.state.sent) == 3
    events = configured.status_events()  # the invalid numbers are final at once
    assert sorted(e["detail"]["request_id"] for e in events) == ["eid:invalid-4", "eid:invalid-5"]

    view = status_of("eid", table=configured.table, dynamodb=configured.dynamodb)
    assert view is not None
    assert [n["request_id"] for n in view["numbers"]] == sorted(statuses(configured, "eid"))
    assert {n.get("phone") for n in view["numbers"]} == {"88017******78", "88018******78", "88019******78", None}


def test_each_numbers_report_is_looked_up_by_its_number(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    simulator.state.script_delivery("8801812345678", [(0, "Undelivered")])
    assert invoke(send_handler, bulk("dlr", ["01712345678", "01812345678"])) == []
    drain_chunks(send_handler, configured)
    clock.now += 120
    summary = poller.run(deadline=clock.now + 30)
    assert (summary.delivered, summary.failed) == (1, 1)
    assert statuses(configured, "dlr") == {"dlr:8801712345678": "delivered", "dlr:8801812345678": "failed"}


@pytest.mark.parametrize("dialect", ["official"])
def test_a_text_per_number_goes_as_dsms_in_the_official_dialect(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    body = json.dumps(
        {
            "request_id": "bills",
            "messages": [
                {"phone": "01712345678", "message": "Rahim, your bill is 540 BDT"},
                {"phone": "01812345678", "message": "রহিম, আপনার বিল ৫৪০ টাকা"},
                {"phone": "0171", "message": "nobody"},
            ],
        }
    )
    assert invoke(send_handler, body) == []
    drain_chunks(send_handler, configured)
    (request,) = requests(simulator)
    assert (request.path, request.body["TransactionType"]) == ("/api/SmsSending/DSMS", "D")
    assert [item["MobNumber"] for item in request.body["SmsData"]] == ["8801712345678", "8801812345678"]
    texts = {sms.phone: sms.text for sms in simulator.state.sent.values()}
    assert texts["8801812345678"] == "রহিম, আপনার বিল ৫৪০ টাকা"
    bangla = configured.record("bills:8801812345678")
    assert bangla is not None
    assert (bangla["status"], bangla["encoding"]) == ("sent", "ucs2")
    assert statuses(configured, "bills")["bills:invalid-3"] == "failed"


@pytest.mark.parametrize("dialect", ["generic"])
def test_a_text_per_number_goes_number_by_number_in_the_generic_dialect(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    body = json.dumps(
        {
            "request_id": "bills",
            "messages": [
                {"phone": "01712345678", "message": "Rahim, your bill is 540 BDT"},
                {"phone": "01812345678", "message": "Karim, your bill is 120 BDT"},
            ],
        }
    )
    assert invoke(send_handler, body) == []
    drain_chunks(send_handler, configured)
    assert sorted((r.body["phone"], r.body["message"]) for r in requests(simulator)) == [
        ("8801712345678", "Rahim, your bill is 540 BDT"),
        ("8801812345678", "Karim, your bill is 120 BDT"),
    ]


def test_a_number_twice_in_messages_is_an_invalid_request(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    body = json.dumps(
        {
            "request_id": "twice",
            "messages": [
                {"phone": "01712345678", "message": "one"},
                {"phone": "+8801712345678", "message": "two"},
            ],
        }
    )
    assert invoke(send_handler, body) == []
    (record,) = configured.records()
    assert (record["request_id"], record["status"], record["error_code"]) == ("twice", "failed", "invalid_request")
    assert "twice" in record["error_message"]
    assert requests(simulator) == []


def test_chunks_are_the_configured_size_and_each_one_call(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch, dialect: str
) -> None:
    monkeypatch.setenv("BULK_CHUNK_SIZE", "2")
    runtime.configure()
    numbers = [f"0171234560{i}" for i in range(5)]
    assert invoke(send_handler, bulk("chunked", numbers)) == []
    assert len(configured.deferred()) == 0  # chunks wait for no one: published to be sent now
    drain_chunks(send_handler, configured)
    sizes = [len(r.body["MobileNumber"].split(",")) if "MobileNumber" in r.body else 1 for r in requests(simulator)]
    assert sorted(sizes) == ([1, 2, 2] if dialect == "official" else [1, 1, 1, 1, 1])
    assert set(statuses(configured, "chunked").values()) == {"sent"}


def test_a_bulk_request_delivered_twice_is_handed_on_once(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    body = bulk("twice-over", ["01712345678", "01812345678"])
    assert invoke(send_handler, body) == []
    assert invoke(send_handler, body, start=2) == []  # the producer published it again
    drain_chunks(send_handler, configured)
    assert len(simulator.state.sent) == 2


def test_a_cancelled_bulk_request_stops_what_has_not_gone(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    assert invoke(send_handler, bulk("stop", ["01712345678", "01812345678"])) == []
    assert invoke(send_handler, json.dumps({"action": "cancel", "request_id": "stop"}), start=2) == []
    drain_chunks(send_handler, configured)
    assert requests(simulator) == []
    assert statuses(configured, "stop") == {"stop:8801712345678": "cancelled", "stop:8801812345678": "cancelled"}
    parent = configured.record("stop")
    assert parent is not None
    assert parent["status"] == "cancelled"
    events = configured.status_events()
    assert sorted(e["detail"]["request_id"] for e in events) == ["stop", "stop:8801712345678", "stop:8801812345678"]
    assert {e["detail-type"] for e in events} == {"SMS Final Status"}


def test_a_scheduled_bulk_request_is_held_whole_then_handed_on_when_due(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    due = clock.now + 86400
    body = bulk("later", ["01712345678", "01812345678"], schedule_time=datetime.fromtimestamp(due, UTC).isoformat())
    assert invoke(send_handler, body) == []
    parent = configured.record("later")
    assert parent is not None
    assert (parent["status"], parent["kind"], parent["children"]) == ("scheduled", "bulk", 2)
    assert statuses(configured, "later") == {}

    clock.now = due + 1
    assert poller.run(deadline=clock.now + 30).scheduled_published == 1
    drain_chunks(send_handler, configured)  # the bulk request, then its chunk
    assert statuses(configured, "later") == {"later:8801712345678": "sent", "later:8801812345678": "sent"}
    assert all("schedule_time" not in r.body for r in requests(simulator))  # MiM is asked to send now


def test_a_copy_of_a_scheduled_bulk_request_that_comes_back_first_keeps_its_invalid_numbers(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    due = clock.now + 600
    body = bulk(
        "copied", ["01712345678", "0171", "01812345678"], schedule_time=datetime.fromtimestamp(due, UTC).isoformat()
    )
    assert invoke(send_handler, body) == []
    assert invoke(send_handler, body, start=2) == []  # published again before its time: it waits in the queue
    (copy,) = configured.deferred()
    assert copy.body["phones"] == ["01712345678", "0171", "01812345678"]  # as published, not rewritten

    clock.now = due + 1
    configured.end_delays()
    drain_chunks(send_handler, configured)  # the copy is handed on before poll_status publishes the original
    assert poller.run(deadline=clock.now + 30).scheduled_published == 0
    drain_chunks(send_handler, configured)
    assert statuses(configured, "copied") == {
        "copied:8801712345678": "sent",
        "copied:invalid-2": "failed",
        "copied:8801812345678": "sent",
    }
    assert len(simulator.state.sent) == 2


def test_a_throttled_chunk_waits_and_is_then_sent_once(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, dialect: str
) -> None:
    simulator.state.rate_limits = ((1, 60),)
    for username in simulator.state.accounts:  # MiM counts another client's call: its window is full
        simulator.state.rate_check(username)
    assert invoke(send_handler, bulk("slow", ["01712345678", "01812345678"])) == []
    drain_chunks(send_handler, configured)
    assert set(statuses(configured, "slow").values()) == {"sending"}
    assert len(configured.deferred()) == 1  # the chunk waits as one message (generic: from its throttled number on)

    simulator.state.rate_limits = ((100, 60),)
    configured.rate_window_passes()
    configured.end_delays()
    drain_chunks(send_handler, configured)
    assert set(statuses(configured, "slow").values()) == {"sent"}
    assert len(simulator.state.sent) == 2


@pytest.mark.parametrize("dialect", ["generic"])
def test_a_chunk_granted_some_of_its_calls_sends_those_numbers_and_the_rest_waits_its_turn(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIMSMS_RATE_LIMITS", "6/60")  # a call a number: a chunk of ten needs more than a window
    clock = Clock()
    runtime.configure(clock=clock)
    simulator.state.clock = clock
    simulator.state.rate_limits = ((6, 60),)
    numbers = [f"01712345{n:03d}" for n in range(25)]
    assert invoke(send_handler, bulk("paced", numbers)) == []
    drain_chunks(send_handler, configured)
    first = len(simulator.state.sent)
    assert 0 < first < 10  # the first chunk went in part
    assert sorted(len(c.body["phones"]) for c in configured.deferred()) == sorted([10 - first, 10, 5])

    while waiting := configured.deferred():  # each comes back at its turn
        clock.now = min(c.work.due_at for c in waiting if c.work is not None)
        configured.end_delays()
        drain_chunks(send_handler, configured)
    assert sorted(m.phone for m in simulator.state.sent.values()) == sorted(f"88{n}" for n in numbers)  # each once
    assert set(statuses(configured, "paced").values()) == {"sent"}
    assert simulator.state.rate_rejections == 0  # never past MiM's limit


@pytest.mark.parametrize("dialect", ["generic"])
def test_a_chunk_granted_some_of_its_calls_that_must_be_retried_leaves_its_numbers_to_the_retry(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIMSMS_RATE_LIMITS", "6/60")
    runtime.configure()
    assert invoke(send_handler, bulk("blocked", [f"01712345{n:03d}" for n in range(10)])) == []
    simulator.state.allowed_ips = {"192.0.2.1"}  # MiM does not know this address: ours to fix, so SQS retries
    event = configured.sqs_event_from_queue()
    response = send_handler(event, FakeContext())
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [event["Records"][0]["messageId"]]
    assert len(requests(simulator)) == 1
    assert configured.in_queue() == []  # the numbers not granted were not published apart: SQS brings all back


@pytest.mark.parametrize("dialect", ["generic"])
def test_a_chunk_sent_number_by_number_stops_when_the_provider_fails_and_its_numbers_wait(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    simulator.state.faults.push("http_503")
    assert invoke(send_handler, bulk("outage", ["01712345678", "01812345678", "01912345678"])) == []
    drain_chunks(send_handler, configured)
    assert len(requests(simulator)) == 1  # the first call failed: the others are not tried against a failing MiM
    (waiting,) = configured.deferred()
    assert len(waiting.body["phones"]) == 3
    assert statuses(configured, "outage") == {"outage:8801712345678": "sending"}  # released for a retry

    configured.end_delays()
    drain_chunks(send_handler, configured)
    assert set(statuses(configured, "outage").values()) == {"sent"}
    assert len(simulator.state.sent) == 3


def test_a_message_marked_as_a_chunk_without_a_number_that_can_be_sent_ends_without_a_retry(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    configured.sqs.send_message(
        QueueUrl=configured.send_queue_url,
        MessageBody=bulk("hand-made", ["0171", "12345"]),
        MessageAttributes={"bulk_parent": {"DataType": "String", "StringValue": "hand-made"}},
    )
    assert drain_chunks(send_handler, configured) == 1  # no batch item failure, so never a retry loop
    assert requests(simulator) == []
    assert configured.records() == []  # a chunk's request keeps its own records


def test_logs_never_hold_a_whole_number_of_a_bulk_request(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, log_output: Any
) -> None:
    assert invoke(send_handler, bulk("quiet", ["01712345678", "0171"])) == []
    drain_chunks(send_handler, configured)
    logged = log_output()
    assert "quiet:88017******78" in logged
    assert "8801712345678" not in logged
    assert "Eid sale" not in logged


def test_a_scheduled_bulk_request_past_its_valid_until_when_due_ends_failed_expired(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, poller: Poller, clock: Clock
) -> None:
    due = clock.now + 3600
    body = bulk(
        "stale",
        ["01712345678"],
        schedule_time=datetime.fromtimestamp(due, UTC).isoformat(),
        valid_until=datetime.fromtimestamp(due + 60, UTC).isoformat(),
    )
    assert invoke(send_handler, body) == []
    clock.now = due + 1
    assert poller.run(deadline=clock.now + 30).scheduled_published == 1
    clock.now = due + 120  # the poller published it, and it came back too late
    drain_chunks(send_handler, configured)
    parent = configured.record("stale")
    assert parent is not None
    assert (parent["status"], parent["error_code"]) == ("failed", "expired")
    assert statuses(configured, "stale") == {}
    assert requests(simulator) == []
    (event,) = configured.status_events()
    assert (event["detail"]["request_id"], event["detail"]["status"]) == ("stale", "failed")


def test_a_bulk_request_with_no_valid_number_records_each_and_sends_nothing(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    later = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat()
    assert invoke(send_handler, bulk("none", ["0171", "12345"], schedule_time=later)) == []
    assert statuses(configured, "none") == {"none:invalid-1": "failed", "none:invalid-2": "failed"}
    assert configured.queued_bodies() == []
    assert requests(simulator) == []


def cancel_of(request_id: str) -> str:
    return json.dumps({"action": "cancel", "request_id": request_id})


def test_a_cancel_after_every_number_went_is_answered_too_late(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    assert invoke(send_handler, bulk("gone", ["01712345678", "01812345678"])) == []
    drain_chunks(send_handler, configured)
    configured.status_events()  # the numbers' own events
    assert invoke(send_handler, cancel_of("gone"), start=5) == []
    parent = configured.record("gone")
    assert parent is not None
    assert (parent["status"], parent["cancel_result"]) == ("sending", "too_late")  # not "cancelled ... before"
    assert set(statuses(configured, "gone").values()) == {"sent"}
    (event,) = configured.status_events()
    assert (event["detail-type"], event["detail"]["request_id"]) == ("SMS Cancel Too Late", "gone")
    assert invoke(send_handler, cancel_of("gone"), start=6) == []  # asked again: answered already
    assert configured.status_events() == []


def test_a_cancel_between_a_chunks_check_and_its_claims_stops_every_number(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunk reads its request as not cancelled; the cancel lands before it claims its numbers: the
    claims meet the numbers' own cancelled records, so the cancel stopped what it says it stopped."""
    assert invoke(send_handler, bulk("race", ["01712345678", "01812345678"])) == []
    store = runtime.store()
    check = store.finished

    def checked_then_cancelled(request_ids: list[str]) -> set[str]:
        finished = check(request_ids)
        monkeypatch.setattr(store, "finished", check)
        assert invoke(send_handler, cancel_of("race"), start=9) == []
        return finished

    monkeypatch.setattr(store, "finished", checked_then_cancelled)
    drain_chunks(send_handler, configured)
    assert requests(simulator) == []
    assert statuses(configured, "race") == {"race:8801712345678": "cancelled", "race:8801812345678": "cancelled"}
    assert (configured.record("race") or {})["status"] == "cancelled"


def test_a_cancel_midway_stops_the_numbers_not_gone_and_says_how_many_went(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BULK_CHUNK_SIZE", "1")
    runtime.configure()
    assert invoke(send_handler, bulk("half", ["01712345678", "01812345678"])) == []
    messages = configured.sqs.receive_message(
        QueueUrl=configured.send_queue_url, MaxNumberOfMessages=1, MessageAttributeNames=["All"]
    )["Messages"]
    from devstack.lambdas import sqs_record

    configured.sqs.delete_message(QueueUrl=configured.send_queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
    event = {"Records": [sqs_record(messages[0], "arn:aws:sqs:ap-southeast-1:123456789012:q", "ap-southeast-1")]}
    assert send_handler(event, FakeContext())["batchItemFailures"] == []  # the first number goes
    assert invoke(send_handler, cancel_of("half"), start=9) == []
    configured.end_delays()
    drain_chunks(send_handler, configured)
    assert sorted(statuses(configured, "half").values()) == ["cancelled", "sent"]
    assert len(requests(simulator)) == 1
    parent = configured.record("half")
    assert parent is not None
    assert parent["status"] == "cancelled"
    assert "1 of its 2 numbers had gone" in parent["error_message"]


def test_a_chunks_calls_in_series_are_counted_when_made_not_all_at_its_grant(
    send_handler: Any,
    configured: Stack,
    simulator: MimSmsSimulator,
    monkeypatch: pytest.MonkeyPatch,
    dialect: str,
) -> None:
    """Number by number (generic), a chunk's calls go seconds after admission counted them. Counted only
    then, the limiter would free them a window after the grant while MiM still counts the late ones: the
    next window's sends were refused. The official dialect sends the chunk as one request, one call."""
    monkeypatch.setenv("MIMSMS_RATE_LIMITS", "10/60")
    clock = Clock()
    runtime.configure(clock=clock)
    simulator.state.clock = clock
    simulator.state.rate_limits = ((10, 60),)
    provider = runtime.provider()
    call = provider.send

    slow = [True]  # the chunk's calls take time; the singles after it go at one instant

    def a_call_takes_a_second_and_a_half(*args: Any, **kwargs: Any) -> Any:
        result = call(*args, **kwargs)
        clock.advance(1.5 if slow[0] else 0)
        return result

    monkeypatch.setattr(provider, "send", a_call_takes_a_second_and_a_half)
    start = clock.now
    assert invoke(send_handler, bulk("series", [f"01712345{n:03d}" for n in range(9)])) == []
    drain_chunks(send_handler, configured)
    assert set(statuses(configured, "series").values()) == {"sent"}  # calls from start to start + 12 s

    slow[0] = False
    clock.now = start + 63  # the grant's slice has aged out; the later calls have not, for MiM or the limiter
    singles = [json.dumps({"phone": f"01812345{n:03d}", "message": "hi", "request_id": f"s-{n}"}) for n in range(9)]
    assert invoke(send_handler, *singles, start=20) == []
    assert simulator.state.rate_rejections == 0
    sent = sum(1 for n in range(9) if (configured.record(f"s-{n}") or {}).get("status") == "sent")
    assert 0 < sent < 9 if dialect == "generic" else sent == 9  # official: the chunk's one call has aged out
