"""Status events come from the status table's stream: at least once, with an id stable per final state."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from botocore.exceptions import EndpointConnectionError
from conftest import FakeContext, Stack, sqs_event

from mimsms_simulator import MimSmsSimulator
from smsgw import runtime


def body(request_id: str, phone: str = "01712345678", **fields: Any) -> str:
    return json.dumps({"phone": phone, "message": "Your code is 4321", "request_id": request_id, **fields})


def invalid(request_id: str) -> str:
    return body(request_id, phone="0171234567")  # one digit short: failed / invalid_phone, no provider call


def ids_by_request(events: list[dict[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for event in events:
        found.setdefault(event["detail"]["request_id"], set()).add(event["detail"]["event_id"])
    return found


class PutEventsFaults:
    """Faults of EventBridge for the service's own client: calls that raise, entries reported failed."""

    def __init__(self) -> None:
        self.raise_calls = 0  # the next n PutEvents calls raise before anything is put
        self.fail_first_entry_calls = 0  # the next n calls put everything but report their first entry failed
        client = runtime.client("events")
        client.meta.events.register("before-call.events.PutEvents", self._before)
        client.meta.events.register("after-call.events.PutEvents", self._after)

    def _before(self, **_: Any) -> None:
        if self.raise_calls:
            self.raise_calls -= 1
            raise EndpointConnectionError(endpoint_url="https://events.ap-southeast-1.amazonaws.com")

    def _after(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.fail_first_entry_calls and parsed.get("Entries"):
            self.fail_first_entry_calls -= 1
            parsed["Entries"][0] = {"ErrorCode": "InternalFailure", "ErrorMessage": "injected"}
            parsed["FailedEntryCount"] = 1


def test_an_event_whose_put_fails_is_put_when_the_stream_is_read_again(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    faults = PutEventsFaults()
    assert send_handler(sqs_event(invalid("bad-1")), FakeContext())["batchItemFailures"] == []
    record = configured.record("bad-1")
    assert record is not None
    assert record["status"] == "failed"  # final in the table, whatever happens to its event

    faults.raise_calls = 2  # the call and its one retry: the batch reports its record failed
    assert configured.stream is not None
    configured.stream.poll_once()
    assert configured.drain(configured.events_queue_url) == []
    (event,) = configured.status_events()  # the stream is read again from the failed record
    assert (event["detail"]["request_id"], event["detail"]["status"]) == ("bad-1", "failed")


def test_a_retried_batch_may_put_an_event_twice_always_with_the_same_id(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    faults = PutEventsFaults()
    assert (
        send_handler(sqs_event(invalid("bad-1"), invalid("bad-2"), start=1), FakeContext())["batchItemFailures"] == []
    )
    faults.fail_first_entry_calls = 2  # bad-1's entry is put but reported failed, twice: the batch is retried
    events = configured.status_events()
    copies = Counter(event["detail"]["request_id"] for event in events)
    assert copies["bad-1"] >= 2  # at least once, here more than once ...
    assert copies["bad-2"] >= 1
    assert {rid: len(ids) for rid, ids in ids_by_request(events).items()} == {"bad-1": 1, "bad-2": 1}  # ... one id


def test_one_event_per_final_state_and_none_for_other_writes(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    # A sent message is written three times (claim, sent, ...) and is not final: no event yet.
    assert send_handler(sqs_event(body("ok-1"), invalid("bad-1")), FakeContext())["batchItemFailures"] == []
    events = configured.status_events()
    assert [(e["detail"]["request_id"], e["detail"]["status"]) for e in events] == [("bad-1", "failed")]
    assert configured.status_events() == []  # nothing new: nothing again
    detail = events[0]["detail"]
    assert detail["error_code"] == "invalid_phone"
    assert detail["event_id"]
    assert (events[0]["source"], events[0]["detail-type"]) == ("sms-gateway", "SMS Final Status")
