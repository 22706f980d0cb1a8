"""The send function end to end: SQS event -> handler -> simulator over HTTP -> status records in moto."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from conftest import SENDER_ID, FakeContext, Stack, load_event

from mimsms_simulator import MimSmsSimulator

SENT = {
    # request_id -> (phone, parts, encoding)
    "otp-1001": ("8801712345678", 1, "gsm7"),
    "otp-1002": ("8801812345678", 1, "ucs2"),
    "notice-2001": ("8801912345678", 2, "gsm7"),
    "greeting-3001": ("8801512345678", 1, "ucs2"),
    "meta-5001": ("8801312345678", 1, "gsm7"),
    "4f3c2a10-0000-4000-8000-000000000009": ("8801612345678", 1, "gsm7"),  # no request_id: the SQS message id
    "promo-6001": ("8801412345678", 1, "gsm7"),
}


def _sent_phones(sim: MimSmsSimulator) -> list[str]:
    return sorted(sms.phone for sms in sim.state.sent.values())


def test_mixed_batch_gives_exactly_the_right_calls_and_records(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, dialect: str, lambda_context: FakeContext
) -> None:
    event = load_event("send_sms_batch.json")

    response = send_handler(event, lambda_context)

    assert response == {"batchItemFailures": []}
    # One provider call per distinct valid request: the repeated otp-1001 is not sent twice.
    send_paths = [r.path for r in simulator.state.received]
    assert len(send_paths) == len(SENT)
    assert _sent_phones(simulator) == sorted(phone for phone, _, _ in SENT.values())
    assert all(sms.dialect == dialect for sms in simulator.state.sent.values())

    for request_id, (phone, parts, encoding) in SENT.items():
        record = configured.record(request_id)
        assert record is not None, request_id
        assert record["status"] == "sent", (request_id, record)
        assert record["phone"] == phone
        assert record["parts"] == parts
        assert record["encoding"] == encoding
        assert record["attempts"] == 1
        assert record["cost"] == Decimal(str(parts * 0.5))
        assert record["message_id"] in simulator.state.sent
        assert record["sent_at"].endswith("Z")
        assert record["created_at"].endswith("Z")

    bad_phone = configured.record("bad-phone-4001")
    assert bad_phone is not None
    assert bad_phone["status"] == "failed"
    assert bad_phone["error_code"] == "invalid_phone"
    assert "wrong length" in bad_phone["error_message"]
    not_json = configured.record("4f3c2a10-0000-4000-8000-000000000006")
    assert not_json is not None
    assert (not_json["status"], not_json["error_code"]) == ("failed", "invalid_request")
    assert "not valid JSON" in not_json["error_message"]
    assert len(configured.records()) == len(SENT) + 2

    meta = configured.record("meta-5001")
    assert meta is not None
    assert meta["metadata"] == {"order_id": "A-1782", "tenant": "shop-bd"}
    senders = {sms.phone: sms.sender_id for sms in simulator.state.sent.values()}
    assert senders["8801312345678"] == "ShopBD"
    assert senders["8801712345678"] == SENDER_ID
    # Text reaches the provider intact, Bangla and emoji included.
    texts = {sms.phone: sms.text for sms in simulator.state.sent.values()}
    bodies = {json.loads(r["body"]).get("request_id"): json.loads(r["body"]) for r in event["Records"][:4]}
    assert texts["8801512345678"] == bodies["greeting-3001"]["message"]
    # Balance was charged per part by the provider: 8 parts at 0.50.
    assert simulator.state.accounts["ops@example.com"].balance == 500.0 - 8 * 0.5


def test_redelivered_batch_sends_nothing_again(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, lambda_context: FakeContext
) -> None:
    event = load_event("send_sms_batch.json")
    send_handler(event, lambda_context)
    calls = len(simulator.state.received)

    assert send_handler(event, lambda_context) == {"batchItemFailures": []}

    assert len(simulator.state.received) == calls
    assert configured.record("otp-1001")["attempts"] == 1  # type: ignore[index]
