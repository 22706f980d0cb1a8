"""Everything a hostile or careless producer sends, through the real handler, delivered twice (SQS is
at least once): each body ends as one final record with a clear code on its first delivery, no
provider call is made, nothing is retried and nothing reaches the dead-letter queue."""

from __future__ import annotations

import json
from typing import Any

from conftest import FakeContext, Stack, sqs_event

from mimsms_simulator import MimSmsSimulator
from smsgw.message import REQUEST_ID_PATTERN

PHONE = "01712345678"


def msg(n: int, **fields: Any) -> str:
    """A body that is right but for `fields` (a field set to ... is left out)."""
    data: dict[str, Any] = {"phone": PHONE, "message": "Your code is 4321", "request_id": f"bad-{n}"}
    data.update(fields)
    return json.dumps({k: v for k, v in data.items() if v is not ...}, ensure_ascii=False)


def bulk(n: int, **fields: Any) -> str:
    """A bulk request's body with its request_id; lone surrogates given escaped, as JSON carries them."""
    return json.dumps({"request_id": f"bad-{n}", **fields}).replace("\\\\u", "\\u")


BAD_BODIES: list[tuple[str, str]] = [
    # not one JSON object
    ("", "invalid_request"),
    ("   ", "invalid_request"),
    ("null", "invalid_request"),
    ("true", "invalid_request"),
    ("42", "invalid_request"),
    ('"just text"', "invalid_request"),
    ("[]", "invalid_request"),
    ('[{"phone": "01712345678", "message": "hi"}]', "invalid_request"),
    ('{"phone": "01712345678", "message": "hi"', "invalid_request"),
    ('{"phone": "01712345678", "message": "hi"} trailing', "invalid_request"),
    ("\ufeff" + msg(0), "invalid_request"),  # a byte-order mark before the object
    ("[" * 50_000 + "]" * 50_000, "invalid_request"),  # RecursionError in json.loads
    ('{"a":' * 5_000 + "1" + "}" * 5_000, "invalid_request"),
    (msg(1, metadata={"k": "v" * 270_000}), "invalid_request"),  # over 256 KiB: never held in a record
    (msg(2, **{"x" * 60_000: "y"}), "invalid_request"),  # a 60 KB field name: the error stays short
    ('{"phone": "01712345678", "message": "hi", "request_id": "bad-3", "phone": "01812345678"}', "invalid_request"),
    (msg(4, message="NaN").replace('"NaN"', "NaN"), "invalid_request"),
    (msg(5, message="x").replace('"x"', "Infinity"), "invalid_request"),
    (msg(6, message="x").replace('"x"', "1" * 5000), "invalid_request"),  # past int's digit limit
    ('{"phone": "01712345678", "message": "\\ud800", "request_id": "bad-7"}', "invalid_request"),
    (
        '{"phone": "01712345678", "message": "hi", "request_id": "bad-8", "metadata": {"k": "\\udfff"}}',
        "invalid_request",
    ),
    (
        '{"phone": "01712345678", "message": "hi", "request_id": "bad-9", "metadata": {"\\ud83d": "v"}}',
        "invalid_request",
    ),
    ('{"phone": "01712345678", "message": "hi", "request_id": "bad-10", "\\ud800": "v"}', "invalid_request"),
    ('{"phone": "01712345678", "message": "hi", "request_id": "bad-11", "campaign_id": "\\ud800"}', "invalid_request"),
    # phone
    (msg(12, phone=...), "invalid_phone"),
    (msg(13, phone=None), "invalid_phone"),
    (msg(14, phone=1712345678), "invalid_phone"),
    (msg(15, phone=[PHONE]), "invalid_phone"),
    (msg(16, phone=""), "invalid_phone"),
    (msg(17, phone="call me"), "invalid_phone"),
    (msg(18, phone="0171234567"), "invalid_phone"),
    (msg(19, phone="029876543"), "invalid_phone"),
    (msg(20, phone="+447911123456"), "invalid_phone"),
    (msg(21, phone="01312345\uff16\uff17\uff18"), "invalid_phone"),  # fullwidth digits
    (msg(22, phone="0171234\u0665\u0666\u0667\u0668"), "invalid_phone"),  # Arabic-Indic digits
    (msg(23, phone="017123456\u00b28"), "invalid_phone"),  # a superscript two
    (msg(24, phone="01712#345678"), "invalid_phone"),
    (msg(25, phone="01112345678"), "invalid_phone"),
    # message
    (msg(26, message=...), "invalid_request"),
    (msg(27, message=None), "invalid_request"),
    (msg(28, message=4321), "invalid_request"),
    (msg(29, message=["hi"]), "invalid_request"),
    (msg(30, message={"text": "hi"}), "invalid_request"),
    (msg(31, message=""), "invalid_request"),
    (msg(32, message=" \n\t "), "invalid_request"),
    (msg(33, message="a" * 1531), "message_too_long"),
    (msg(34, message="আ" * 671), "message_too_long"),
    (msg(35, message="code\x00 1234"), "invalid_request"),
    (msg(36, message="tab\there"), "invalid_request"),
    (msg(37, message="bell\x07"), "invalid_request"),
    (msg(38, message="del\x7f"), "invalid_request"),
    (msg(39, message="c1 \x9b"), "invalid_request"),
    (msg(40, message="escape \x1b[31m red"), "invalid_request"),
    # request_id (recorded under the SQS message id, since the body's own is unusable)
    (msg(41, request_id=""), "invalid_request"),
    (msg(42, request_id="has space"), "invalid_request"),
    (msg(43, request_id="x" * 129), "invalid_request"),
    (msg(44, request_id=17), "invalid_request"),
    (msg(45, request_id=["a"]), "invalid_request"),
    (msg(46, request_id="বাংলা"), "invalid_request"),
    # the other fields
    (msg(47, sender_id=""), "invalid_request"),
    (msg(48, sender_id="A" * 21), "invalid_sender_id"),
    (msg(49, sender_id="Shop<script>"), "invalid_sender_id"),
    (msg(50, priority="urgent"), "invalid_request"),
    (msg(51, priority=False), "invalid_request"),
    (msg(52, priority=["high"]), "invalid_request"),
    (msg(53, type="marketing"), "invalid_request"),
    (msg(54, type=1), "invalid_request"),
    (msg(55, schedule_time="tomorrow"), "invalid_request"),
    (msg(56, schedule_time="2026-12-01T09:30:00"), "invalid_request"),  # no offset
    (msg(57, schedule_time="9999-12-31T23:59:59-14:00"), "invalid_request"),  # OverflowError once
    (msg(58, schedule_time="0001-01-01T00:00:00+14:00"), "invalid_request"),
    (msg(59, schedule_time=1764000000), "invalid_request"),
    (msg(60, valid_until="in five minutes"), "invalid_request"),
    (msg(61, valid_until="2026-13-45 99:00:00"), "invalid_request"),
    (msg(62, campaign_id=5), "invalid_request"),
    (msg(63, campaign_id="C" * 129), "invalid_request"),
    (msg(64, campaign_id="CMP\n1"), "invalid_request"),
    (msg(65, metadata=["a"]), "invalid_request"),
    (msg(66, metadata={"n": 1}), "invalid_request"),
    (msg(67, metadata={"": "v"}), "invalid_request"),  # DynamoDB refuses empty names (moto does not)
    (msg(68, metadata={"nested": {"a": "b"}}), "invalid_request"),
    (msg(69, metadata={"k": "v" * 2100}), "invalid_request"),
    (msg(70, phones=[PHONE]), "invalid_request"),
    (msg(71, Phone=PHONE), "invalid_request"),  # a typo is not the field
    # a bulk request's nested texts, checked as a single message's are: the whole request fails before
    # any number is claimed or handed on (a lone surrogate cannot even be written to the queue again)
    (
        bulk(73, messages=[{"phone": PHONE, "message": "hi"}, {"phone": "01812345678", "message": "\ud800"}]),
        "invalid_request",
    ),
    (
        bulk(
            74,
            messages=[{"phone": PHONE, "message": "hi"}, {"phone": "01812345678", "message": "\ud800"}],
            schedule_time="2099-01-01T09:00:00+06:00",
        ),
        "invalid_request",
    ),
    (
        bulk(75, messages=[{"phone": "\udfff", "message": "hi"}, {"phone": "01812345678", "message": "hi"}]),
        "invalid_request",
    ),
    (bulk(76, phones=[PHONE, "0181234567\ud800"], message="hi"), "invalid_request"),
    (bulk(77, messages=[{"phone": PHONE, "message": {"text": "\udfff"}}]), "invalid_request"),
    # right in shape, wrong in time: no provider call at all
    (msg(72, valid_until="2020-01-01T00:00:00+06:00"), "expired"),
]


def record_key(body: str, message_id: str) -> str:
    """Where the body's record is: its own request_id when usable, else the SQS message id."""
    try:
        data = json.loads(body)
        rid = data.get("request_id") if isinstance(data, dict) else None
    except (ValueError, RecursionError):
        rid = None
    return rid if isinstance(rid, str) and REQUEST_ID_PATTERN.fullmatch(rid) else message_id


def test_the_suite_is_large_and_every_body_is_distinct() -> None:
    assert len(BAD_BODIES) >= 60
    assert len({body for body, _ in BAD_BODIES}) == len(BAD_BODIES)


def test_every_bad_body_ends_in_one_final_record_on_its_first_delivery(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    bodies = [body for body, _ in BAD_BODIES]
    expected_codes: dict[str, str] = {}
    for first in range(0, len(bodies), 10):
        event = sqs_event(*bodies[first : first + 10], start=first + 1)
        for record, (_, code) in zip(event["Records"], BAD_BODIES[first : first + 10], strict=True):
            expected_codes[record_key(record["body"], record["messageId"])] = code
        for delivery in (1, 2):  # SQS delivers at least once: the same batch again changes nothing
            response = send_handler(event, FakeContext())
            assert response["batchItemFailures"] == [], (delivery, response)  # none retried, none to the DLQ

    assert len(expected_codes) == len(BAD_BODIES)  # one record key per body
    records = {r["request_id"]: r for r in configured.records()}
    assert set(records) == set(expected_codes)  # one record per body, none more
    for key, code in expected_codes.items():
        record = records[key]
        assert (record["status"], record["error_code"]) == ("failed", code), (key, record.get("error_message"))
        assert 0 < len(record["error_message"]) <= 300
        assert "poll_work" not in record  # final: no work left behind
    assert simulator.state.received == []  # not one provider call
    # one status event per body, for each final state
    events = configured.status_events()
    assert sorted(e["detail"]["request_id"] for e in events) == sorted(expected_codes)


def test_odd_but_valid_bodies_are_sent_once_as_written(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    bodies = [
        msg(100, priority=None, type=None, sender_id=None, metadata=None, schedule_time=None, valid_until=None),
        msg(101, phone="০১৭১২৩৪৫৬৭৮"),  # Bangla digits: the same number
        msg(102, message="Line one\nLine two\r\nLine three"),  # line breaks are text
        msg(103, message="আপনার কোড ৪৩২১", phone="+৮৮০ ১৮১২-৩৪৫৬৭৮"),
        msg(104, metadata={"নাম": "মান", "k": ""}),  # any key but an empty one; any string value
    ]
    for _ in (1, 2):  # delivered twice: sent once
        assert send_handler(sqs_event(*bodies), FakeContext())["batchItemFailures"] == []
    records = {r["request_id"]: r for r in configured.records()}
    assert {rid: r["status"] for rid, r in records.items()} == {f"bad-{n}": "sent" for n in range(100, 105)}
    assert len(simulator.state.sent) == len(bodies)
    assert (records["bad-100"]["priority"], records["bad-100"]["type"]) == ("normal", "transactional")
    assert records["bad-101"]["phone"] == "8801712345678"
    assert records["bad-103"]["phone"] == "8801812345678"
    texts = {sms.text for sms in simulator.state.sent.values()}
    assert "Line one\nLine two\r\nLine three" in texts
