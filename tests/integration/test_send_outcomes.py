"""Every provider answer of both dialects leads to the right status record and retry decision."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import FakeContext, Stack, sqs_event

from mimsms_simulator import MimSmsSimulator

RETRY, DONE = True, False
HELD = DONE  # parked in the status record by the balance gate; poll_status publishes it again
DEFERRED = DONE  # back in its queue with a delay (capacity, or back-off): no receive spent
# Not sent, and another try may work: these wait in the queue with back-off rather than SQS redelivery.
WAITING_CODES = {"rate_limited", "provider_unavailable", "provider_error", "provider_send_failed"}


def one(request_id: str = "r-1", **fields: Any) -> str:
    return json.dumps({"phone": "01712345678", "message": "Your code is 1234", "request_id": request_id, **fields})


def run(handler: Any, *bodies: str) -> list[str]:
    """Invoke the send handler; return the message ids it asks SQS to redeliver."""
    response = handler(sqs_event(*bodies), FakeContext())
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


GENERIC_ERRORS = [
    # (HTTP status, body) -> (status, error_code, retried)
    (
        (401, {"status": "error", "error_code": "1001", "error_message": "Invalid API key"}),
        ("sending", "authentication_failed", RETRY),
    ),
    (
        (401, {"status": "error", "error_code": "1002", "error_message": "Invalid username/password"}),
        ("sending", "authentication_failed", RETRY),
    ),
    (
        (200, {"status": "error", "error_code": "1003", "error_message": "Insufficient balance"}),
        ("sending", "insufficient_balance", HELD),
    ),
    (
        (200, {"status": "error", "error_code": "1004", "error_message": "Invalid phone number"}),
        ("failed", "invalid_phone", DONE),
    ),
    (
        (200, {"status": "error", "error_code": "1005", "error_message": "Invalid sender ID"}),
        ("failed", "invalid_sender_id", DONE),
    ),
    (
        (200, {"status": "error", "error_code": "1006", "error_message": "Message too long"}),
        ("failed", "message_too_long", DONE),
    ),
    (
        (429, {"status": "error", "error_code": "1007", "error_message": "Rate limit exceeded"}),
        ("sending", "rate_limited", DEFERRED),
    ),
    (
        (200, {"status": "error", "error_code": "1007", "error_message": "Rate limit exceeded"}),
        ("sending", "rate_limited", DEFERRED),
    ),
    (
        (503, {"status": "error", "error_code": "1008", "error_message": "Service temporarily unavailable"}),
        ("sending", "provider_unavailable", DEFERRED),
    ),
    ((200, {"status": "rejected"}), ("failed", "provider_rejected", DONE)),
    ((200, {"status": "invalid_sender_id"}), ("failed", "invalid_sender_id", DONE)),
    ((200, {"status": "insufficient_balance"}), ("sending", "insufficient_balance", HELD)),
    ((200, {"status": "authentication_failed"}), ("sending", "authentication_failed", RETRY)),
    ((200, {"status": "failed", "error": "temporary"}), ("sending", "provider_error", DEFERRED)),
    ((500, b"<html>oops</html>"), ("sending", "maybe_sent", DONE)),
    ((502, b"Bad Gateway"), ("sending", "maybe_sent", DONE)),
    ((503, b"Service Unavailable"), ("sending", "provider_unavailable", DEFERRED)),
    ((429, b"Too Many Requests"), ("sending", "rate_limited", DEFERRED)),
    ((404, b"Not Found"), ("sending", "provider_error", DEFERRED)),
    ((200, b"<html>ok</html>"), ("sending", "maybe_sent", DONE)),
    ((200, {"unexpected": True}), ("sending", "maybe_sent", DONE)),
    # The body's word wins over an HTTP status that disagrees with it.
    ((500, {"status": "success", "message_id": "mim_77", "cost": "0.45"}), ("sent", None, DONE)),
    ((200, {"status": "accepted", "message_id": 12345, "cost": "0.45"}), ("sent", None, DONE)),
]

OFFICIAL_ERRORS = [
    (
        (200, {"statusCode": "401", "status": "Failed", "trxnId": "X1", "responseResult": "Invalid User or API Key"}),
        ("sending", "authentication_failed", RETRY),
    ),
    (
        (200, {"statusCode": "401", "status": "Failed", "trxnId": "X1", "responseResult": "IP Black List"}),
        ("sending", "ip_not_allowed", RETRY),
    ),
    (
        (200, {"statusCode": "205", "status": "Failed", "trxnId": "X", "responseResult": "Invalid Message Content"}),
        ("failed", "invalid_content", DONE),
    ),
    (
        (200, {"statusCode": "206", "status": "Failed", "trxnId": "X", "responseResult": "Invalid Mobile Number"}),
        ("failed", "invalid_phone", DONE),
    ),
    (
        (200, {"statusCode": "207", "status": "Failed", "trxnId": "X", "responseResult": "Invalid Transaction Type"}),
        ("failed", "invalid_transaction_type", DONE),
    ),
    (
        (200, {"statusCode": "208", "status": "Failed", "trxnId": "X", "responseResult": "Invalid Sender ID"}),
        ("failed", "invalid_sender_id", DONE),
    ),
    (
        (200, {"statusCode": "209", "status": "Failed", "trxnId": "X", "responseResult": "Message Length Exceeded"}),
        ("failed", "message_too_long", DONE),
    ),
    (
        (200, {"statusCode": "210", "status": "Failed", "trxnId": "X", "responseResult": "Invalid Campaign ID"}),
        ("failed", "invalid_campaign", DONE),
    ),
    (
        (200, {"statusCode": "213", "status": "Failed", "trxnId": "X", "responseResult": "Parameter Mismatch"}),
        ("failed", "invalid_request", DONE),
    ),
    (
        (200, {"statusCode": "216", "status": "Failed", "trxnId": "X", "responseResult": "Insufficient Balance"}),
        ("sending", "insufficient_balance", HELD),
    ),
    (
        (200, {"statusCode": "221", "status": "Failed", "trxnId": "X", "responseResult": "Sending Failed"}),
        ("sending", "provider_send_failed", DEFERRED),
    ),
    (
        (200, {"statusCode": "500", "status": "Failed", "trxnId": "X", "responseResult": "Internal Error"}),
        ("sending", "maybe_sent", DONE),
    ),
    (
        (429, {"statusCode": "429", "status": "Failed", "trxnId": "", "responseResult": "Too Many Requests"}),
        ("sending", "rate_limited", DEFERRED),
    ),
    (
        (200, {"statusCode": "999", "status": "Failed", "trxnId": "", "responseResult": "Something new"}),
        ("sending", "provider_error", DEFERRED),
    ),
    # HTTP status mirroring the body's code, as some gateways do.
    (
        (208, {"statusCode": "208", "status": "Failed", "trxnId": "X", "responseResult": "Invalid Sender ID"}),
        ("failed", "invalid_sender_id", DONE),
    ),
    (
        (401, {"statusCode": "401", "status": "Failed", "trxnId": "", "responseResult": "Invalid User or API Key"}),
        ("sending", "authentication_failed", RETRY),
    ),
    ((500, b"<html>Runtime Error</html>"), ("sending", "maybe_sent", DONE)),
    ((200, b"An error has occurred."), ("sending", "maybe_sent", DONE)),
    (
        (500, {"statusCode": 200, "status": "Success", "trxnId": 133611051403609881, "responseResult": "ok"}),
        ("sent", None, DONE),
    ),
]


def _check(
    handler: Any, stack: Stack, sim: MimSmsSimulator, reply: tuple[int, Any], expected: tuple[str, str | None, bool]
) -> None:
    sim.state.push_reply(*reply)
    if expected[1] == "authentication_failed":
        sim.state.push_reply(*reply)  # the retry with re-fetched credentials fails the same way
    retried = run(handler, one())
    record = stack.record("r-1")
    assert record is not None
    status, error_code, retry = expected
    assert (record["status"], record.get("error_code"), bool(retried)) == (status, error_code, retry)
    if status == "failed":
        assert record["error_message"]
        assert record["final_at"]
    if status == "sent":
        assert record["message_id"] in ("mim_77", "12345", "133611051403609881")
    if status == "sending" and error_code in WAITING_CODES:
        (copy,) = stack.deferred()
        assert (copy.body["request_id"], copy.deferrals) == ("r-1", 1)
        assert record["attempt_state"] == "released"  # the next copy may claim it


@pytest.mark.parametrize("dialect", ["generic"])
@pytest.mark.parametrize(("reply", "expected"), GENERIC_ERRORS, ids=lambda v: str(v)[:50])
def test_generic_answers(
    send_handler: Any,
    configured: Stack,
    simulator: MimSmsSimulator,
    reply: tuple[int, Any],
    expected: tuple[str, str | None, bool],
) -> None:
    _check(send_handler, configured, simulator, reply, expected)


@pytest.mark.parametrize("dialect", ["official"])
@pytest.mark.parametrize(("reply", "expected"), OFFICIAL_ERRORS, ids=lambda v: str(v)[:50])
def test_official_answers(
    send_handler: Any,
    configured: Stack,
    simulator: MimSmsSimulator,
    reply: tuple[int, Any],
    expected: tuple[str, str | None, bool],
) -> None:
    _check(send_handler, configured, simulator, reply, expected)


def test_an_address_mim_has_not_allow_listed_waits_with_the_fix_named(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    """MiM refuses unknown caller IPs in both dialects: not a bad key (no re-fetch of the secret), not the
    message's fault (it is kept for redelivery), and the record says what the operator must do."""
    simulator.state.allowed_ips = {"192.0.2.10"}  # the NAT gateway's address; the tests call from loopback
    assert len(run(send_handler, one("ip-1"))) == 1
    record = configured.record("ip-1")
    assert record is not None
    assert (record["status"], record["error_code"]) == ("sending", "ip_not_allowed")
    assert "EgressSubnetIds" in record["error_message"]
    assert "allow-list" in record["error_message"]
    assert len(simulator.state.received) == 1  # one call: fresh credentials would not help

    simulator.state.allowed_ips.add("127.0.0.1")  # MiM allow-lists the egress address
    assert run(send_handler, one("ip-1")) == []
    record = configured.record("ip-1")
    assert record is not None
    assert record["status"] == "sent"
