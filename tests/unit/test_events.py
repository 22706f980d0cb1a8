"""Which stream records are final states, the template's filter agreeing, and the stable event id."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.streams import filters_of, matches
from smsgw.events import CANCEL_TOO_LATE_DETAIL_TYPE, DETAIL_TYPE, event_id, event_of, final_event, reached_final_state
from smsgw.records import Status, StatusRecord


def image(status: str, **more: str) -> dict[str, Any]:
    return {"request_id": {"S": "r-1"}, "status": {"S": status}, **{k: {"S": v} for k, v in more.items()}}


def change(
    name: str, old: str | None, new: str | None, old_more: dict[str, str] | None = None, **new_more: str
) -> dict[str, Any]:
    dynamodb: dict[str, Any] = {"Keys": {"request_id": {"S": "r-1"}}, "SequenceNumber": "1"}
    if old is not None:
        dynamodb["OldImage"] = image(old, **(old_more or {}))
    if new is not None:
        dynamodb["NewImage"] = image(new, final_at="2026-11-26T04:00:00.000Z", **new_more)
    return {"eventName": name, "dynamodb": dynamodb}


TOO_LATE = {"cancel_result": "too_late", "cancel_requested_at": "2026-11-26T04:00:00.000Z"}


CHANGES = [
    (change("INSERT", None, "failed"), True),  # an invalid request: recorded final at once
    (change("INSERT", None, "sending"), False),  # a claim
    (change("MODIFY", "sending", "sending"), False),  # released, held, maybe sent ...
    (change("MODIFY", "sending", "sent"), False),
    (change("MODIFY", "sent", "sent"), False),  # a report look-up postponed
    (change("MODIFY", "sent", "delivered"), True),
    (change("MODIFY", "sent", "failed"), True),
    (change("MODIFY", "sent", "unknown"), True),  # the tracking window passed
    (change("MODIFY", "sending", "failed"), True),  # expired, retries exhausted, refused by the provider
    (change("MODIFY", "sending", "unknown"), True),  # a maybe-sent outcome resolved
    (change("MODIFY", "delivered", "delivered"), False),  # already final: nothing new to say
    (change("REMOVE", "delivered", None), False),  # the record expired (TTL)
    (change("INSERT", None, "cancelled", cancel_result="cancelled"), True),  # a cancel came before its message
    (change("MODIFY", "scheduled", "cancelled", cancel_result="cancelled"), True),
    (change("MODIFY", "sending", "cancelled", cancel_result="cancelled"), True),  # held, or waiting for a retry
]
# A cancel that came too late: written on the record, which goes on as it was. Only the first says so.
REFUSALS = [
    (change("MODIFY", "sent", "sent", **TOO_LATE), True),
    (change("MODIFY", "delivered", "delivered", **TOO_LATE), True),
    (change("MODIFY", "sending", "sending", **TOO_LATE), True),  # in flight, or maybe sent
    (change("MODIFY", "sent", "sent", TOO_LATE, **TOO_LATE), False),  # a report postponed afterwards
    (change("MODIFY", "sent", "delivered", TOO_LATE, **TOO_LATE), False),  # its final event says the rest
]


@pytest.mark.parametrize(("record", "final"), CHANGES)
def test_a_final_state_is_a_record_created_final_or_moved_there(record: dict[str, Any], final: bool) -> None:
    assert (reached_final_state(record) is not None) is final


@pytest.mark.parametrize(("record", "final"), CHANGES)
def test_the_templates_stream_filter_lets_through_exactly_the_final_states(
    template: dict[str, Any], record: dict[str, Any], final: bool
) -> None:
    filters = filters_of(template["Resources"]["StatusEventsStreamSource"]["Properties"])
    assert any(matches(pattern, record) for pattern in filters) is final


@pytest.mark.parametrize(("record", "refused"), REFUSALS)
def test_a_cancel_too_late_is_one_event_and_the_filter_agrees(
    template: dict[str, Any], record: dict[str, Any], refused: bool
) -> None:
    event = event_of(record)
    expected = CANCEL_TOO_LATE_DETAIL_TYPE if refused else (DETAIL_TYPE if reached_final_state(record) else None)
    assert (event.detail_type if event else None) == expected
    filters = filters_of(template["Resources"]["StatusEventsStreamSource"]["Properties"])
    assert any(matches(pattern, record) for pattern in filters) is (event is not None)
    if refused:
        assert event is not None
        assert event.detail["cancel_requested_at"] == TOO_LATE["cancel_requested_at"]


def test_the_event_id_is_stable_per_final_state() -> None:
    first = StatusRecord("r-1", Status.FAILED, final_at="2026-11-26T04:00:00.000Z")
    assert event_id(first) == event_id(StatusRecord("r-1", Status.FAILED, final_at="2026-11-26T04:00:00.000Z"))
    assert event_id(first) != event_id(StatusRecord("r-1", Status.DELIVERED, final_at="2026-11-26T04:00:00.000Z"))
    # a request_id used again after its record expired reaches a new final state: a new id
    assert event_id(first) != event_id(StatusRecord("r-1", Status.FAILED, final_at="2026-12-30T04:00:00.000Z"))
    assert final_event(first)["event_id"] == event_id(first)


def test_the_event_never_carries_the_whole_phone_number() -> None:
    detail = final_event(StatusRecord("r-1", Status.DELIVERED, phone="8801712345678"))
    assert detail["phone"] == "88017******78"
