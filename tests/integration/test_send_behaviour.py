"""Retries, duplicates, maybe-sent, credentials rotation, concurrency and log hygiene of the send path."""

from __future__ import annotations

import itertools
import json
import socket
import time
from typing import Any

import pytest
from conftest import API_KEY, PASSWORD, USERNAME, FakeContext, Stack, sqs_event

from mimsms_simulator import MimSmsSimulator
from smsgw import runtime
from smsgw.limiter import SLICES, SPAN, LimiterState


def body(request_id: str, phone: str = "01712345678", **fields: Any) -> str:
    return json.dumps({"phone": phone, "message": "Your code is 4321", "request_id": request_id, **fields})


def invoke(handler: Any, *bodies: str, start: int = 1) -> list[str]:
    response = handler(sqs_event(*bodies, start=start), FakeContext())
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def sends(sim: MimSmsSimulator) -> int:
    return sum(1 for r in sim.state.received if r.path in ("/send-sms", "/api/SmsSending/SMS"))


def test_not_sent_waits_with_back_off_and_is_then_sent_once(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    simulator.state.faults.push("http_503")
    assert invoke(send_handler, body("r-1")) == []  # no SQS redelivery: no receive spent
    record = configured.record("r-1")
    assert record is not None
    assert (record["status"], record["error_code"], record["attempt_state"]) == (
        "sending",
        "provider_unavailable",
        "released",
    )
    (copy,) = configured.deferred()
    assert copy.delay >= 10  # the first back-off step (RETRY_BASE_SECONDS)

    configured.end_delays()
    assert send_handler(configured.sqs_event_from_queue(), FakeContext())["batchItemFailures"] == []

    record = configured.record("r-1")
    assert record is not None
    assert (record["status"], record["attempts"]) == ("sent", 2)
    assert "error_code" not in record
    assert len(simulator.state.sent) == 1


def test_not_sent_every_time_ends_failed_with_a_clear_code(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_SEND_ATTEMPTS", "3")
    monkeypatch.setenv("OUTAGE_FAILURES", "100")  # this test is about one message, not an outage
    runtime.configure()
    delays = []
    event = sqs_event(body("r-1"))
    for _ in range(3):
        simulator.state.faults.push("http_503")
        assert send_handler(event, FakeContext())["batchItemFailures"] == []
        delays.extend(copy.delay for copy in configured.deferred())
        configured.end_delays()
        event = configured.sqs_event_from_queue()
    assert event["Records"] == []  # no fourth copy: the third attempt was the last
    assert delays[0] < delays[1]  # the back-off grows (10 s, 20 s, plus jitter)
    record = configured.record("r-1")
    assert record is not None
    assert (record["status"], record["error_code"], record["attempts"]) == ("failed", "retries_exhausted", 3)
    assert "provider_unavailable" in record["error_message"]
    (event_out,) = configured.status_events()
    assert event_out["detail"]["error_code"] == "retries_exhausted"
    assert len(simulator.state.sent) == 0


def test_an_outage_pauses_every_caller_instead_of_spending_retries(
    send_handler: Any,
    configured: Stack,
    simulator: MimSmsSimulator,
    monkeypatch: pytest.MonkeyPatch,
    log_output: Any,
) -> None:
    monkeypatch.setenv("OUTAGE_FAILURES", "3")
    runtime.configure()
    simulator.state.faults.push("http_503", "http_503", "http_503")
    bodies = [body(f"r-{i}", phone=f"0171234560{i}") for i in range(3)]
    assert invoke(send_handler, *bodies) == []
    assert '"ProviderCooldowns":[1.0]' in log_output().replace(" ", "")  # the alarm's metric
    calls = len(simulator.state.received)
    assert calls == 3

    # The next messages find the cool-down: no provider call, no attempt counted, back in the queue.
    later = [body(f"later-{i}", phone=f"0181234560{i}") for i in range(4)]
    assert invoke(send_handler, *later, start=20) == []
    assert len(simulator.state.received) == calls
    assert all(configured.record(f"later-{i}") is None for i in range(4))
    waiting = configured.deferred()
    assert sorted(c.body["request_id"] for c in waiting) == sorted(
        [f"later-{i}" for i in range(4)] + [f"r-{i}" for i in range(3)]
    )
    assert min(c.delay for c in waiting if c.body["request_id"].startswith("later")) >= 60  # the cool-down


@pytest.mark.parametrize("fault", ["timeout", "drop_after", "non_json"])
def test_maybe_sent_is_never_resent(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, fault: str
) -> None:
    simulator.state.faults.timeout_seconds = 2.0  # longer than the 1 s read timeout of the tests
    simulator.state.faults.push(fault)

    assert invoke(send_handler, body("r-1")) == []  # acknowledged: the status record owns it now
    record = configured.record("r-1")
    assert record is not None
    assert (record["status"], record["error_code"], record["attempt_state"]) == ("sending", "maybe_sent", "maybe_sent")
    assert len(simulator.state.sent) == 1  # the provider did take it

    # A producer publishing the same request_id again, or SQS redelivering: no second SMS.
    assert invoke(send_handler, body("r-1"), start=2) == []
    assert sends(simulator) == 1


def test_connection_dropped_before_an_answer_is_maybe_sent(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    simulator.state.faults.push("drop_before")
    assert invoke(send_handler, body("r-1")) == []
    record = configured.record("r-1")
    assert record is not None
    assert (record["status"], record["error_code"]) == ("sending", "maybe_sent")


def test_connection_refused_is_not_sent_and_waits(
    send_handler: Any, configured: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MIMSMS_BASE_URL", f"http://127.0.0.1:{port}")
    runtime.configure()

    assert invoke(send_handler, body("r-1")) == []
    record = configured.record("r-1")
    assert record is not None
    assert (record["status"], record["error_code"], record["attempt_state"]) == (
        "sending",
        "transport_error",
        "released",
    )
    assert [copy.body["request_id"] for copy in configured.deferred()] == ["r-1"]


def test_an_abandoned_claim_is_resolved_as_maybe_sent(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    # An earlier invocation claimed the message and died (timeout) before recording anything.
    from smsgw.message import parse_request

    request = parse_request(body("r-1"), default_request_id="x")
    past = time.time() - 600
    runtime.store().claim(request, now=past, lease_until=past + 60, resolve_at=past + 960, sqs_message_id="m-0")

    assert invoke(send_handler, body("r-1")) == []

    record = configured.record("r-1")
    assert record is not None
    assert (record["status"], record["attempt_state"]) == ("sending", "maybe_sent")
    assert sends(simulator) == 0


def test_the_same_request_id_in_two_batches_is_sent_once(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    assert invoke(send_handler, body("dup-1"), body("other-1", phone="01812345678")) == []
    assert invoke(send_handler, body("dup-1"), start=5) == []
    assert sends(simulator) == 2
    record = configured.record("dup-1")
    assert record is not None
    assert record["attempts"] == 1


def test_copies_of_one_request_id_in_a_batch_are_decided_once(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    first = body("r-1", phone="01712345678")
    others = [body("r-1", phone="01812345678"), json.dumps({"request_id": "r-1", "phone": "bad"}), first]
    for _ in range(20):  # the first copy wins every time, however the threads are scheduled
        simulator.state.received.clear()
        configured.dynamodb.delete_item(TableName=configured.table, Key={"request_id": {"S": "r-1"}})
        assert invoke(send_handler, first, *others) == []
        assert [r.body.get("phone") or r.body.get("MobileNumber") for r in simulator.state.received] == [
            "8801712345678"
        ]
        record = configured.record("r-1")
        assert record is not None
        assert (record["status"], record["phone"], record["attempts"]) == ("sent", "8801712345678", 1)


def test_a_later_bad_body_does_not_overwrite_a_sent_record(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    invoke(send_handler, body("r-1"))
    invoke(send_handler, body("r-1", phone="0171234"), start=2)
    record = configured.record("r-1")
    assert record is not None
    assert record["status"] == "sent"


def test_a_throttled_message_waits_in_its_queue_and_is_then_sent_once(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    # MiM counts another client's calls too: it throttles although our limiter had room.
    simulator.state.rate_limits = ((3, 60),)
    bodies = [body(f"r-{i}", phone=f"0171234560{i}") for i in range(5)]

    assert invoke(send_handler, *bodies) == []  # nothing goes back through SQS redelivery

    statuses = sorted(record["status"] for record in configured.records())
    assert statuses == ["sending", "sending", "sent", "sent", "sent"]
    throttled = [r for r in configured.records() if r["status"] == "sending"]
    assert {(r["error_code"], r["attempt_state"]) for r in throttled} == {("rate_limited", "released")}
    copies = configured.deferred()
    assert sorted(c.body["request_id"] for c in copies) == sorted(r["request_id"] for r in throttled)
    assert all(c.delay >= 1 for c in copies)

    simulator.state.rate_limits = ((100, 60),)
    configured.rate_window_passes()
    configured.end_delays()
    assert send_handler(configured.sqs_event_from_queue(), FakeContext())["batchItemFailures"] == []
    assert sorted(record["status"] for record in configured.records()) == ["sent"] * 5
    assert len(simulator.state.sent) == 5


def test_without_capacity_messages_wait_outside_the_function_otps_first(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIMSMS_RATE_LIMITS", "4/60")
    runtime.configure()
    bulk = [body(f"bulk-{i}", phone=f"0171234560{i}") for i in range(4)]
    otp = body("otp-1", phone="01812345678", priority="high")
    no_id = json.dumps({"phone": "01912345678", "message": "no request_id given"})

    assert invoke(send_handler, *bulk, otp, no_id) == []

    # 4 calls a minute, one kept for the balance check: the OTP and two campaign messages go now.
    assert sorted(sms.phone for sms in simulator.state.sent.values()) == [
        "8801712345600",
        "8801712345601",
        "8801812345678",
    ]
    waiting = configured.deferred()
    # the one without a request_id keeps its SQS message id as its identity
    assert sorted(c.body.get("request_id") for c in waiting) == [
        "00000000-0000-4000-8000-000000000006",
        "bulk-2",
        "bulk-3",
    ]
    assert all(c.deferrals == 1 and 1 <= c.delay <= 900 for c in waiting)
    # Waiting is not an attempt: no record was claimed for them, no receive was spent.
    assert configured.record("bulk-2") is None


def test_a_backlog_comes_back_at_turns_spread_at_the_pace_capacity_frees(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIMSMS_RATE_LIMITS", "4/60")
    runtime.configure()
    assert invoke(send_handler, *(body(f"bulk-{i}", phone=f"0171234560{i}") for i in range(8))) == []

    waiting = sorted(configured.deferred(), key=lambda c: c.turn or 0)
    assert [c.body["request_id"] for c in waiting] == [f"bulk-{i}" for i in range(3, 8)]  # in order
    turns = [c.turn for c in waiting]
    assert all(turn is not None for turn in turns)
    # Three bulk calls a minute (one kept for the balance check, due): a turn every span / 3, none together.
    gaps = [b - a for a, b in itertools.pairwise(turns)]  # type: ignore[operator]
    assert gaps == pytest.approx([SPAN * 60 / SLICES / 3] * 4, abs=0.01)
    assert [c.delay for c in waiting] == sorted(c.delay for c in waiting)
    assert waiting[0].delay >= 1


def test_a_message_whose_turn_is_ahead_waits_again_without_asking_the_limiter(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    turn = time.time() + 7200  # further than SQS's longest delay: it comes back early, and waits again
    event = sqs_event(body("r-1"))
    event["Records"][0]["messageAttributes"] = {
        "work": {"stringValue": "turn", "dataType": "String"},
        "due_at": {"stringValue": f"{turn:.3f}", "dataType": "Number"},
        "deferrals": {"stringValue": "3", "dataType": "Number"},
    }
    writes = runtime.limiter().writes

    assert send_handler(event, FakeContext())["batchItemFailures"] == []

    (copy,) = configured.deferred()
    assert (copy.body["request_id"], copy.turn, copy.deferrals, copy.delay) == ("r-1", pytest.approx(turn), 4, 900)
    assert runtime.limiter().writes == writes
    assert configured.record("r-1") is None
    assert not simulator.state.sent


def test_a_message_past_its_valid_until_is_never_sent(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    past = body("late-1", valid_until="2020-01-01T10:00:00+06:00")
    fresh = body("fresh-1", phone="01812345678", valid_until="2099-01-01 10:00:00")
    assert invoke(send_handler, past, fresh) == []
    record = configured.record("late-1")
    assert record is not None
    assert (record["status"], record["error_code"], record["attempts"]) == ("failed", "expired", 0)
    assert configured.record("fresh-1")["status"] == "sent"  # type: ignore[index]
    assert [sms.phone for sms in simulator.state.sent.values()] == ["8801812345678"]
    (event,) = configured.status_events()
    assert (event["detail"]["request_id"], event["detail"]["error_code"]) == ("late-1", "expired")


def test_a_message_older_than_the_maximum_age_is_never_sent(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_MESSAGE_AGE_SECONDS", "3600")
    runtime.configure()
    event = sqs_event(body("old-1"), body("new-1", phone="01812345678"))
    event["Records"][0]["attributes"]["SentTimestamp"] = str(int((time.time() - 3601) * 1000))
    assert send_handler(event, FakeContext())["batchItemFailures"] == []
    assert configured.record("old-1")["error_code"] == "expired"  # type: ignore[index]
    assert configured.record("new-1")["status"] == "sent"  # type: ignore[index]


def test_a_waiting_copy_keeps_its_deadline_and_expires_rather_than_come_back_late(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIMSMS_RATE_LIMITS", "2/3600")  # one send an hour after the balance call
    runtime.configure()
    soon = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 600))
    later = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 86400))
    first, urgent, patient = body("a-1"), body("a-2", valid_until=soon), body("a-3", valid_until=later)
    assert invoke(send_handler, first, urgent, patient) == []
    # a-2 would wait past its valid_until: it ends now instead of being sent late.
    assert configured.record("a-2")["error_code"] == "expired"  # type: ignore[index]
    (copy,) = configured.deferred()
    assert (copy.body["request_id"], copy.body["valid_until"]) == ("a-3", later)


def test_a_deferred_copy_published_twice_is_sent_once(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    copy = body("r-1")
    assert invoke(send_handler, copy) == []
    assert invoke(send_handler, copy, start=7) == []  # a second copy (a crash after the re-publish)
    assert len(simulator.state.sent) == 1


def test_a_rotated_key_works_without_a_redeploy(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    assert invoke(send_handler, body("r-1")) == []  # caches the current credentials
    simulator.state.accounts[USERNAME].api_key = "rotated-key-0a1b2c3d4e5f"
    configured.put_credentials(api_key="rotated-key-0a1b2c3d4e5f")

    assert invoke(send_handler, body("r-2"), start=2) == []

    assert configured.record("r-2")["status"] == "sent"  # type: ignore[index]
    assert sends(simulator) == 3  # r-1; r-2 refused with the cached key, then sent with the fresh one


def test_the_send_again_with_a_rotated_key_takes_capacity_first(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIMSMS_RATE_LIMITS", "14/60,1000/3600")
    runtime.configure()
    assert invoke(send_handler, body("r-0")) == []  # caches the current credentials
    simulator.state.accounts[USERNAME].api_key = "rotated-key-0a1b2c3d4e5f"
    configured.put_credentials(api_key="rotated-key-0a1b2c3d4e5f")

    retried = invoke(send_handler, *(body(f"r-{n}", phone=f"0171234{n:04d}") for n in range(1, 11)), start=2)

    item = configured.dynamodb.get_item(TableName=configured.control_table, Key={"name": {"S": "rate-limiter"}})
    counted = sum(LimiterState.from_item(item["Item"]).slices[60].values())
    assert sends(simulator) == counted  # every provider request was counted first ...
    assert counted <= 13  # ... and none past the limit (one call kept for the balance check)
    # Sent again now while capacity lasted; SQS brings the rest back, and they go with the new key.
    statuses = [configured.record(f"r-{n}")["status"] for n in range(1, 11)]  # type: ignore[index]
    assert statuses.count("sent") == 10 - len(retried)
    configured.rate_window_passes()
    assert invoke(send_handler, *(body(f"r-{n}", phone=f"0171234{n:04d}") for n in range(1, 11)), start=2) == []
    assert {configured.record(f"r-{n}")["status"] for n in range(1, 11)} == {"sent"}  # type: ignore[index]


def test_wrong_credentials_are_retried_later_not_resent_now(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    configured.put_credentials(api_key="not-the-key")
    assert len(invoke(send_handler, body("r-1"))) == 1
    assert sends(simulator) == 1  # the re-fetched secret was unchanged: no second call
    assert configured.record("r-1")["error_code"] == "authentication_failed"  # type: ignore[index]


def test_placeholder_credentials_keep_messages_waiting(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    configured.put_credentials(username="REPLACE_ME", api_key="REPLACE_ME")
    # SQS keeps it (and, after maxReceiveCount, the DLQ does): nothing is claimed that cannot be sent.
    assert len(invoke(send_handler, body("r-1"))) == 1
    assert configured.record("r-1") is None
    assert sends(simulator) == 0
    configured.put_credentials()  # the operator puts the real credentials in
    runtime.configure()  # (the cached copy expires)
    assert invoke(send_handler, body("r-1")) == []
    record = configured.record("r-1")
    assert record is not None
    assert (record["status"], record["attempts"]) == ("sent", 1)


def test_a_settled_message_is_a_duplicate_even_while_credentials_are_broken(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    assert invoke(send_handler, body("r-1")) == []
    configured.put_credentials(username="REPLACE_ME", api_key="REPLACE_ME")
    runtime.configure()
    assert invoke(send_handler, body("r-1")) == []  # acknowledged, not sent to the DLQ


def test_a_batch_is_sent_concurrently(send_handler: Any, configured: Stack, simulator: MimSmsSimulator) -> None:
    simulator.state.gather = 10  # each request waits until all ten are in flight: sequential would be 1 at a time
    bodies = [body(f"r-{i}", phone=f"0181234560{i}") for i in range(10)]
    assert invoke(send_handler, *bodies) == []
    assert simulator.state.max_in_flight == 10
    assert len(simulator.state.sent) == 10


@pytest.mark.parametrize("dialect", ["official"])
def test_official_checks_before_calling(send_handler: Any, configured: Stack, simulator: MimSmsSimulator) -> None:
    promo = body("promo-1", type="promotional")
    assert invoke(send_handler, promo) == []
    promo_record = configured.record("promo-1")
    assert promo_record is not None
    assert (promo_record["status"], promo_record["error_code"]) == ("failed", "invalid_request")
    assert "campaign_id" in promo_record["error_message"]
    assert sends(simulator) == 0


@pytest.mark.parametrize("dialect", ["official"])
def test_official_request_fields(send_handler: Any, configured: Stack, simulator: MimSmsSimulator) -> None:
    invoke(send_handler, body("p-1", type="promotional", campaign_id="CMP-1"), body("t-1", phone="01812345678"))
    requests = {r.body["MobileNumber"]: r for r in simulator.state.received}
    promo, otp = requests["8801712345678"], requests["8801812345678"]
    assert promo.content_type == "application/json"
    assert promo.body["TransactionType"] == "P"
    assert promo.body["CampaignId"] == "CMP-1"
    assert otp.body["TransactionType"] == "T"
    assert otp.body["CampaignId"] == "null"
    assert (otp.body["UserName"], otp.body["Apikey"], otp.body["SenderName"]) == (USERNAME, API_KEY, "MIMSMS")


@pytest.mark.parametrize("dialect", ["generic"])
def test_generic_request_fields(send_handler: Any, configured: Stack, simulator: MimSmsSimulator) -> None:
    invoke(send_handler, body("g-1", priority="high", schedule_time="2020-01-01T04:00:00Z"))  # past: now
    (request,) = simulator.state.received
    assert "schedule_time" not in request.body  # the service holds scheduled messages itself
    assert request.body["priority"] == "high"
    assert (request.body["username"], request.body["api_key"], request.body["password"]) == (
        USERNAME,
        API_KEY,
        PASSWORD,
    )
    record = configured.record("g-1")
    assert record is not None
    assert record["schedule_time"] == "2020-01-01T04:00:00+00:00"


def test_logs_hold_no_secrets_numbers_or_text(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, log_output: Any
) -> None:
    simulator.state.faults.push("http_503")
    invoke(
        send_handler,
        body("r-1"),
        body("r-2", phone="01812345678"),
        body("r-3", phone="0171234"),
        "not json",
    )
    configured.put_credentials(api_key="wrong-key-for-this-test")
    runtime.configure()
    invoke(send_handler, body("r-4", phone="01912345678"), start=5)

    logs = log_output()
    assert "sms sent" in logs  # the logger did write
    for secret in (API_KEY, PASSWORD, "wrong-key-for-this-test"):
        assert secret not in logs
    for number in ("8801712345678", "01712345678", "8801812345678", "8801912345678", "0171234"):
        assert number not in logs
    assert "Your code is 4321" not in logs
    assert "88017******78" in logs  # masked numbers are there to correlate


def test_the_sender_id_is_the_messages_else_the_secrets_else_the_stacks_default(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured.put_credentials(sender_id="")  # the secret names no sender
    assert invoke(send_handler, body("r-1")) != []  # nothing names one: not sent, not claimed, SQS retries
    assert configured.record("r-1") is None

    monkeypatch.setenv("DEFAULT_SENDER_ID", "ShopBD")  # the template's SenderId parameter
    runtime.configure()
    assert invoke(send_handler, body("r-1"), body("r-2", phone="01812345678", sender_id="OwnBrand"), start=3) == []
    configured.put_credentials(sender_id="SecretBrand")
    runtime.configure()
    assert invoke(send_handler, body("r-3", phone="01912345678"), start=5) == []
    senders = {r.body.get("sender_id") or r.body.get("SenderName") for r in simulator.state.received}
    assert senders == {"ShopBD", "OwnBrand", "SecretBrand"}


@pytest.mark.parametrize("smart", ["true", "false"])
def test_smart_encoding_sends_english_text_as_gsm7_and_records_what_was_sent(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch, smart: str
) -> None:
    monkeypatch.setenv("SMART_ENCODING", smart)
    runtime.configure()
    text = (
        "Dear customer, your order #4821 has shipped and will arrive tomorrow. We\u2019ll text you "
        "when it is out for delivery \u2014 thank you\u2026"
    )
    bangla = "\u0986\u09aa\u09a8\u09be\u09b0 \u201c\u0995\u09cb\u09a1\u201d \u09ea\u09e9\u09e8\u09e7"
    assert invoke(send_handler, body("en-1", message=text), body("bn-1", phone="01812345678", message=bangla)) == []
    sent = {sms.phone: sms for sms in simulator.state.sent.values()}
    english, native = configured.record("en-1"), configured.record("bn-1")
    assert english is not None
    assert native is not None
    if smart == "true":
        assert sent["8801712345678"].text == text.replace("\u2019", "'").replace("\u2014", "-").replace("\u2026", "...")
        assert (english["encoding"], english["parts"]) == ("gsm7", 1)
    else:
        assert sent["8801712345678"].text == text
        assert (english["encoding"], english["parts"]) == ("ucs2", 2)
    assert sent["8801812345678"].text == bangla  # needs UCS-2 anyway: never touched
    assert native["encoding"] == "ucs2"


def _unavailable(*_: Any, **__: Any) -> Any:
    from botocore.exceptions import ClientError

    raise ClientError({"Error": {"Code": "InternalServerError", "Message": "try again"}}, "Shared")


@pytest.mark.parametrize("step", ["capacity", "cancel check", "gate"])
def test_a_shared_step_that_fails_defers_what_needs_it_and_settles_the_rest(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    from devstack.lambdas import sqs_record

    # A chunk of a bulk request (it needs the cancel check and capacity), in the queue as the hand-on left it.
    assert invoke(send_handler, json.dumps({"request_id": "eid", "phones": ["01812345678"], "message": "Eid"})) == []
    (chunk,) = configured.sqs.receive_message(QueueUrl=configured.send_queue_url, MessageAttributeNames=["All"])[
        "Messages"
    ]
    target = {
        "capacity": (runtime.limiter(), "acquire"),
        "cancel check": (runtime.store(), "finished"),
        "gate": (runtime.gate(), "is_open"),
    }[step]
    monkeypatch.setattr(*target, _unavailable)
    event = sqs_event(body("needs-1"), "not json", json.dumps({"action": "cancel", "request_id": "other-1"}), start=2)
    event["Records"].append(sqs_record(chunk, "arn:aws:sqs:ap-southeast-1:123456789012:q", "ap-southeast-1"))

    assert send_handler(event, FakeContext())["batchItemFailures"] == []  # no receive spent, none to the DLQ

    records = {r["request_id"]: r for r in configured.records()}
    assert records["other-1"]["status"] == "cancelled"  # the cancel needs none of it: settled
    assert [r["error_code"] for r in records.values() if r["status"] == "failed"] == ["invalid_request"]
    # What needs the step waits, with its identity, for a retry's back-off; a new message needs no cancel check.
    waiting = sorted(copy.body["request_id"] for copy in configured.deferred())
    assert waiting == (["eid"] if step == "cancel check" else ["eid", "needs-1"])
    assert sends(simulator) == (1 if step == "cancel check" else 0)
