import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from smsgw.message import FIELDS, InvalidRequest, parse_request


def body(**fields: Any) -> str:
    return json.dumps({"phone": "01712345678", "message": "Hello", **fields}, ensure_ascii=False)


def test_minimal_message_takes_the_defaults() -> None:
    request = parse_request(body(), default_request_id="sqs-id-1")
    assert request.request_id == "sqs-id-1"
    assert request.phone == "8801712345678"
    assert (request.priority, request.type) == ("normal", "transactional")
    assert request.sender_id is None
    assert request.schedule_time is None
    assert request.metadata == {}
    assert (request.segmentation.encoding, request.segmentation.parts) == ("gsm7", 1)


def test_every_contract_field_is_read() -> None:
    request = parse_request(
        body(
            request_id="order:42.otp-1_A",
            sender_id="ShopBD",
            priority="high",
            schedule_time="2026-12-01 09:30:00",
            type="promotional",
            campaign_id="CMP-1",
            metadata={"tenant": "shop", "order": "42"},
        ),
        default_request_id="unused",
    )
    assert request.request_id == "order:42.otp-1_A"
    assert request.sender_id == "ShopBD"
    assert request.priority == "high"
    assert request.schedule_time == datetime(2026, 12, 1, 3, 30, tzinfo=UTC)  # Asia/Dhaka is UTC+6
    assert (request.type, request.campaign_id) == ("promotional", "CMP-1")
    assert request.metadata == {"tenant": "shop", "order": "42"}


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("2026-12-01T09:30:00+06:00", datetime(2026, 12, 1, 3, 30, tzinfo=UTC)),
        ("2026-12-01T03:30:00Z", datetime(2026, 12, 1, 3, 30, tzinfo=UTC)),
        ("2026-12-01T03:30:00+00:00", datetime(2026, 12, 1, 3, 30, tzinfo=UTC)),
    ],
)
def test_schedule_time_iso_with_offset(value: str, utc: datetime) -> None:
    assert parse_request(body(schedule_time=value), default_request_id="x").schedule_time == utc


def test_valid_until_is_read_like_schedule_time() -> None:
    request = parse_request(body(valid_until="2026-12-01 09:35:00"), default_request_id="x")
    assert request.valid_until == datetime(2026, 12, 1, 3, 35, tzinfo=UTC)
    with pytest.raises(InvalidRequest, match="valid_until must be"):
        parse_request(body(valid_until="soon"), default_request_id="x")


def test_message_text_is_never_in_the_repr() -> None:
    request = parse_request(body(message="secret code 991"), default_request_id="x")
    assert "991" not in repr(request)


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        ("not json at all", "invalid_request", "not valid JSON"),
        ("[1, 2]", "invalid_request", "JSON object"),
        ('"just a string"', "invalid_request", "JSON object"),
        (json.dumps({"message": "hi"}), "invalid_phone", "phone is required"),
        (body(phone="0171234567"), "invalid_phone", "phone"),
        (body(phone=1712345678), "invalid_phone", "phone must be a string"),
        (json.dumps({"phone": "01712345678"}), "invalid_request", "message is required"),
        (body(message=""), "invalid_request", "message is empty"),
        (body(message="   "), "invalid_request", "message is empty"),
        (body(message=42), "invalid_request", "message"),
        (body(message="a" * 1531), "message_too_long", "at most 10"),
        (body(message="আ" * 671), "message_too_long", "UCS2"),
        (body(request_id=""), "invalid_request", "request_id"),
        (body(request_id="has space"), "invalid_request", "request_id"),
        (body(request_id="x" * 129), "invalid_request", "request_id"),
        (body(request_id=17), "invalid_request", "request_id"),
        (body(sender_id=""), "invalid_request", "sender_id"),
        (body(sender_id="A" * 21), "invalid_sender_id", "sender_id"),
        (body(priority="urgent"), "invalid_request", "priority"),
        (body(type="marketing"), "invalid_request", "type"),
        (body(schedule_time="tomorrow"), "invalid_request", "schedule_time"),
        (body(schedule_time="2026-12-01T09:30:00"), "invalid_request", "schedule_time"),
        (body(schedule_time=1764000000), "invalid_request", "schedule_time"),
        (body(campaign_id=5), "invalid_request", "campaign_id"),
        (body(metadata=["a"]), "invalid_request", "metadata"),
        (body(metadata={"n": 1}), "invalid_request", "metadata"),
        (body(metadata={"k": "v" * 2100}), "invalid_request", "2048"),
        (body(phones=["01712345678"]), "invalid_request", "give one of phone, phones and messages"),
        # what a hostile or careless producer sends
        (body(metadata={"k": "v" * 270_000}), "invalid_request", "at most 262144"),  # never held in a record
        ("[" * 30_000 + "]" * 30_000, "invalid_request", "nested too deeply"),  # RecursionError, not a crash
        ('{"phone": "01712345678", "message": "hi", "phone": "01812345678"}', "invalid_request", "more than once"),
        (body(message="hi", metadata={"k": "\ud800"}), "invalid_request", "metadata contains a lone surrogate"),
        (body(message="hi \ud800"), "invalid_request", "message contains a lone surrogate"),
        (
            body(
                phone=None,
                messages=[{"phone": "01712345678", "message": "hi"}, {"phone": "01812345678", "message": "\ud800"}],
            ),
            "invalid_request",
            "messages[2].message contains a lone surrogate",
        ),
        (
            body(phone=None, message="hi", phones=["01712345678", "\udfff"]),
            "invalid_request",
            "phones[2] contains a lone surrogate",
        ),
        ('{"phone": "01712345678", "message": "hi", "\\udc00": "x"}', "invalid_request", "field name"),
        (body(metadata={"": "v"}), "invalid_request", "metadata keys"),  # DynamoDB refuses empty names
        (body(metadata={"  ": "v"}), "invalid_request", "metadata keys"),
        (body(metadata={"k" * 129: "v"}), "invalid_request", "metadata keys"),
        (body(message="code\x00 1234"), "invalid_request", "U+0000 at position 4"),
        (body(message="bell\x07"), "invalid_request", "U+0007"),
        (body(message="tab\there"), "invalid_request", "U+0009"),
        (body(message="c1 \x85"), "invalid_request", "U+0085"),
        (body(campaign_id="C" * 129), "invalid_request", "at most 128"),
        (body(campaign_id="CMP\n1"), "invalid_request", "control characters"),
        (body(schedule_time="9999-12-31T23:59:59-14:00"), "invalid_request", "between 2000 and 2099"),
        (body(schedule_time="0001-01-01T00:00:00+14:00"), "invalid_request", "between 2000 and 2099"),
        (body(valid_until="1970-01-01 05:00:00"), "invalid_request", "between 2000 and 2099"),
        (body(phone="01312345\uff16\uff17\uff18"), "invalid_phone", "FULLWIDTH DIGIT SIX"),
        (body(priority=False), "invalid_request", "priority"),
        (body(priority=["high"]), "invalid_request", "priority"),
    ],
)
def test_contract_violations_name_the_field(raw: str, code: str, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(raw, default_request_id="sqs-1")
    assert caught.value.code == code
    assert field in caught.value.message


def test_null_means_absent_for_every_optional_field() -> None:
    optional = FIELDS - {"phone", "message"}
    nulls = dict.fromkeys(optional)
    request = parse_request(body(**nulls), default_request_id="sqs-1")
    assert (request.request_id, request.priority, request.type, request.metadata) == (
        "sqs-1",
        "normal",
        "transactional",
        {},
    )


def test_line_breaks_are_text_not_control_characters() -> None:
    assert parse_request(body(message="Line one\nLine two\r\nThree"), default_request_id="x").text.count("\n") == 2


def test_bangla_digits_in_the_phone_are_understood() -> None:
    assert parse_request(body(phone="০১৭১২৩৪৫৬৭৮"), default_request_id="x").phone == "8801712345678"


def test_error_messages_are_bounded_and_escaped_whatever_the_body_holds() -> None:
    huge = "f" * 200_000
    with pytest.raises(InvalidRequest) as caught:
        parse_request(
            json.dumps({"phone": "01712345678", "message": "hi", huge: 1})[:60_000] + "}", default_request_id="x"
        )
    assert len(caught.value.message) <= 300
    names = {f"x{n}\x00\u202e": "v" for n in range(20)}
    with pytest.raises(InvalidRequest) as caught:
        parse_request(body(**names), default_request_id="x")
    message = caught.value.message
    assert len(message) <= 300
    assert "\x00" not in message
    assert "\u202e" not in message  # no right-to-left override reaches a log viewer
    assert "15 more" in message


def test_any_body_raises_invalid_request_and_nothing_else() -> None:
    for raw in (
        "",
        " ",
        "\ufeff{}",
        "nul\x00",
        '{"a": 1e999999}',
        "1" * 5000,
        '{"phone": "' + "9" * 5000 + '"}',
        '{"message": NaN, "phone": Infinity}',
        "\ud800",
        '"\\ud800"',
        "{" * 10 + "}" * 10,
    ):
        with pytest.raises(InvalidRequest):
            parse_request(raw, default_request_id="x")


def test_a_body_too_large_or_with_a_repeated_field_keeps_the_producers_request_id() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(body(request_id="big-1", metadata={"k": "v" * 270_000}), default_request_id="sqs-1")
    assert caught.value.request_id == "big-1"
    with pytest.raises(InvalidRequest) as caught:
        parse_request(
            '{"request_id": "r-2", "phone": "01712345678", "phone": "01812345678", "message": "hi"}',
            default_request_id="sqs-1",
        )
    assert caught.value.request_id == "r-2"
    with pytest.raises(InvalidRequest) as caught:  # which one? neither: the SQS message id keys the record
        parse_request(
            '{"request_id": "r-3", "request_id": "r-4", "phone": "01712345678", "message": "hi"}',
            default_request_id="sqs-1",
        )
    assert caught.value.request_id is None


def test_a_violation_keeps_the_producers_request_id() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(body(request_id="order-9", phone="029876543"), default_request_id="sqs-1")
    assert caught.value.request_id == "order-9"


def test_stored_error_messages_are_bounded() -> None:
    from smsgw.message import bounded

    assert bounded("short") == "short"
    assert len(bounded("<html>" + "x" * 10_000)) == 300  # a proxy's error page, say


def test_the_request_carries_the_text_as_it_will_be_sent_and_its_parts() -> None:
    curly = "Your parcel \u201cA-17\u201d is on its way \u2014 it\u2019ll arrive today."
    smart = parse_request(body(message=curly), default_request_id="x")
    assert smart.text == 'Your parcel "A-17" is on its way - it\'ll arrive today.'
    assert (smart.segmentation.encoding, smart.segmentation.parts) == ("gsm7", 1)
    exact = parse_request(body(message=curly), default_request_id="x", smart_encoding=False)
    assert exact.text == curly
    assert exact.segmentation.encoding == "ucs2"


def test_a_schedule_is_checked_against_the_horizon_and_valid_until() -> None:
    from datetime import timedelta

    from smsgw.message import MAX_SCHEDULE_DAYS

    soon = datetime.now(UTC) + timedelta(days=2)
    assert parse_request(body(schedule_time=soon.isoformat()), default_request_id="x").schedule_time == soon
    too_far = datetime.now(UTC) + timedelta(days=MAX_SCHEDULE_DAYS + 1)
    with pytest.raises(InvalidRequest, match=f"more than {MAX_SCHEDULE_DAYS} days ahead"):
        parse_request(body(schedule_time=too_far.isoformat()), default_request_id="x")
    with pytest.raises(InvalidRequest, match="valid_until is before schedule_time"):
        parse_request(
            body(schedule_time=soon.isoformat(), valid_until=(soon - timedelta(hours=1)).isoformat()),
            default_request_id="x",
        )


def bulk_body(**fields: Any) -> str:
    return json.dumps({"request_id": "eid", "message": "Eid sale", **fields})


def test_phones_give_a_record_per_number_duplicates_once_and_bad_numbers_their_own() -> None:
    from smsgw.message import BulkRequest, parse_message

    parsed = parse_message(
        bulk_body(phones=["01712345678", "+880 1712-345678", "0171", "০১৮১২৩৪৫৬৭৮", 5]), default_request_id="x"
    )
    assert isinstance(parsed, BulkRequest)
    assert [c.request_id for c in parsed.children] == ["eid:8801712345678", "eid:8801812345678"]
    assert {c.parent_id for c in parsed.children} == {"eid"}
    assert [(i.request_id, i.code) for i in parsed.invalid] == [
        ("eid:invalid-3", "invalid_phone"),
        ("eid:invalid-5", "invalid_phone"),
    ]
    assert parsed.invalid[0].message.startswith("phones[3]: ")
    assert "0171" not in parsed.invalid[0].message  # by position: an almost-number may be someone's
    assert not parsed.personal


def test_messages_give_each_number_its_text_and_refuse_a_number_twice() -> None:
    from smsgw.message import BulkRequest, parse_message

    entries = [{"phone": "01712345678", "message": "one"}, {"phone": "01812345678", "message": "a" * 1600}]
    parsed = parse_message(json.dumps({"request_id": "b", "messages": entries}), default_request_id="x")
    assert isinstance(parsed, BulkRequest)
    assert parsed.personal
    assert [(c.request_id, c.text) for c in parsed.children] == [("b:8801712345678", "one")]
    assert [(i.request_id, i.code) for i in parsed.invalid] == [("b:8801812345678", "message_too_long")]
    twice = [{"phone": "01712345678", "message": "one"}, {"phone": "8801712345678", "message": "two"}]
    with pytest.raises(InvalidRequest, match="twice"):
        parse_message(json.dumps({"request_id": "b", "messages": twice}), default_request_id="x")
    # Twice, the first time with a text that cannot be sent: still which one was meant?
    twice[0]["message"] = "a" * 1600
    with pytest.raises(InvalidRequest, match="twice"):
        parse_message(json.dumps({"request_id": "b", "messages": twice}), default_request_id="x")


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"phones": [], "request_id": "eid"}, "1 to 1000"),
        ({"phones": ["01712345678"] * 1001}, "1 to 1000"),
        ({"phones": "01712345678"}, "must be a list"),
        ({"phones": ["01712345678"], "phone": "01712345678"}, "not phone and phones"),
        ({"phones": ["01712345678"], "request_id": "r" * 115}, "at most 114"),
        ({"messages": [{"phone": "01712345678", "message": "x"}], "message": "y"}, "no message beside it"),
        ({"messages": [{"phone": "01712345678"}], "message": None}, "messages[1] must be an object"),
    ],
)
def test_a_bulk_request_that_breaks_the_contract_is_invalid_as_a_whole(fields: dict[str, Any], words: str) -> None:
    from smsgw.message import parse_message

    with pytest.raises(InvalidRequest, match=re.escape(words)):
        parse_message(bulk_body(**fields), default_request_id="x")
