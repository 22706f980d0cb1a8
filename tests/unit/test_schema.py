"""The JSON Schema in the repository and the send function's validation agree on the contract."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import EVENTS
from jsonschema import Draft202012Validator

from smsgw.message import CancelRequest, InvalidRequest, parse_message, parse_request
from smsgw.producer import schema

VALID = [
    {"phone": "01712345678", "message": "Your OTP is 4829"},
    {"phone": "+880 1712-345678", "message": "আপনার ওটিপি কোড ৫৫৩১ 🎉", "request_id": "otp:42.a_b-c"},
    {
        "phone": "8801912345678",
        "message": "Sale",
        "type": "promotional",
        "campaign_id": "CMP-1",
        "sender_id": "ShopBD",
        "priority": "normal",
        "metadata": {"order": "A-1"},
    },
    {"phone": "01712345678", "message": "Later", "schedule_time": "2026-12-01 09:30:00"},
    {"phone": "01712345678", "message": "Later", "schedule_time": "2026-12-01T09:30:00+06:00"},
    {"phone": "01712345678", "message": "Later", "schedule_time": "2026-12-01T03:30:00Z"},
    {"phone": "01712345678", "message": "OTP", "valid_until": "2026-12-01T09:35:00+06:00", "priority": "high"},
    {"phone": "01712345678", "message": "OTP", "valid_until": "2026-12-01 09:35:00"},
    {"phone": "০১৭১২৩৪৫৬৭৮", "message": "Two\nlines", "priority": None, "type": None, "metadata": None},
]

STRUCTURALLY_INVALID = [
    {"message": "no phone"},
    {"phone": "01712345678"},
    {"phone": "01712345678", "message": ""},
    {"phone": "01712345678", "message": "   "},
    {"phone": "01712345678", "message": 42},
    {"phone": 1712345678, "message": "hi"},
    {"phone": "call me", "message": "hi"},
    {"phone": "01712345678", "message": "hi", "request_id": "has space"},
    {"phone": "01712345678", "message": "hi", "request_id": "x" * 129},
    {"phone": "01712345678", "message": "hi", "priority": "urgent"},
    {"phone": "01712345678", "message": "hi", "type": "marketing"},
    {"phone": "01712345678", "message": "hi", "schedule_time": "tomorrow"},
    {"phone": "01712345678", "message": "hi", "schedule_time": "2026-12-01T09:30:00"},
    {"phone": "01712345678", "message": "hi", "valid_until": "in five minutes"},
    {"phone": "01712345678", "message": "hi", "valid_until": "2026-12-01T09:30:00"},
    {"phone": "01712345678", "message": "hi", "metadata": {"n": 1}},
    {"phone": "01712345678", "message": "hi", "sender_id": "A" * 21},
    {"phone": "01712345678", "message": "hi", "phones": ["01712345678"]},
    {"phone": "01712345678", "message": "a" * 1531},
    {"phone": "01712345678", "message": "nul\x00"},
    {"phone": "01712345678", "message": "hi", "campaign_id": "C" * 129},
    {"phone": "01712345678", "message": "hi", "metadata": {"": "v"}},
    {"phone": "01712345678", "message": "hi", "priority": False},
]


def schema_errors(message: Any) -> list[str]:
    return [e.message for e in Draft202012Validator(schema()).iter_errors(message)]


def test_the_schema_is_a_valid_json_schema() -> None:
    Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize("message", VALID)
def test_both_accept_valid_messages(message: dict[str, Any]) -> None:
    assert schema_errors(message) == []
    parse_request(json.dumps(message), default_request_id="x")


@pytest.mark.parametrize("message", STRUCTURALLY_INVALID)
def test_both_reject_what_breaks_the_contracts_shape(message: dict[str, Any]) -> None:
    assert schema_errors(message)
    with pytest.raises(InvalidRequest):
        parse_request(json.dumps(message), default_request_id="x")


def test_every_body_the_send_function_accepts_in_the_events_folder_passes_the_schema() -> None:
    for path in EVENTS.glob("send_sms*.json"):
        for record in json.loads(path.read_text())["Records"]:
            try:
                parse_request(record["body"], default_request_id="x")
            except InvalidRequest:
                continue
            assert schema_errors(json.loads(record["body"])) == [], (path.name, record["messageId"])


def test_schema_fields_are_the_contracts_fields() -> None:
    from smsgw.message import FIELDS

    assert set(schema()["properties"]) == FIELDS
    assert [set(option["required"]) for option in schema()["else"]["oneOf"]] == [
        {"phone", "message"},
        {"phones", "message"},
        {"messages"},
    ]
    assert set(schema()["then"]["required"]) == {"request_id"}


CANCELS = [
    {"action": "cancel", "request_id": "campaign-7:8801712345678"},
    {"action": "cancel", "request_id": "otp-42"},
]
BROKEN_CANCELS = [
    {"action": "cancel"},
    {"action": "cancel", "request_id": None},
    {"action": "cancel", "request_id": "has space"},
    {"action": "cancel", "request_id": "otp-42", "phone": "01712345678"},
    {"action": "cancel", "request_id": "otp-42", "message": "why"},
    {"action": "stop", "request_id": "otp-42"},
    {"action": "stop", "phone": "01712345678", "message": "hi"},
]


@pytest.mark.parametrize("message", CANCELS)
def test_both_accept_a_cancel_naming_only_its_message(message: dict[str, Any]) -> None:
    assert schema_errors(message) == []
    assert parse_message(json.dumps(message), default_request_id="x") == CancelRequest(message["request_id"])


@pytest.mark.parametrize("message", BROKEN_CANCELS)
def test_both_refuse_a_cancel_that_names_more_or_less(message: dict[str, Any]) -> None:
    assert schema_errors(message)
    with pytest.raises(InvalidRequest) as raised:
        parse_message(json.dumps(message), default_request_id="x")
    # Recorded under the cancel's own SQS message id: never on the message it names.
    assert raised.value.request_id is None


def test_an_explicit_send_action_is_a_send() -> None:
    message = {"action": "send", "phone": "01712345678", "message": "hi", "request_id": "r-1"}
    assert schema_errors(message) == []
    assert parse_request(json.dumps(message), default_request_id="x").request_id == "r-1"
    with pytest.raises(InvalidRequest):
        parse_request(json.dumps({"action": "cancel", "request_id": "r-1"}), default_request_id="x")
