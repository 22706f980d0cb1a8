"""One SQS record parsed once (Inbound), which records of a batch are copies, and the bodies of a bulk
request's chunks."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from smsgw.deferral import deferrals_of, parent_of, work_of
from smsgw.message import (
    BulkRequest,
    CancelRequest,
    InvalidRequest,
    Priority,
    SmsRequest,
    parse_message,
)
from smsgw.records import DueWork, WorkKind


@dataclass(frozen=True, eq=False)
class Inbound:
    """One SQS record, parsed once: the request, or why it breaks the contract."""

    body: str
    sqs_message_id: str
    request: SmsRequest | None = None
    cancel: CancelRequest | None = None  # a cancel of another message (request_id names that one)
    bulk: BulkRequest | None = None  # phones or messages: handed on in chunks, or (a chunk) sent
    chunk_of: str | None = None  # the bulk request this body is a chunk of (the `bulk_parent` attribute)
    invalid: InvalidRequest | None = None
    published_at: float | None = None  # SQS SentTimestamp: when the producer (or a deferral) published it
    deferrals: int = 0  # times it has waited in its queue (the `deferrals` attribute)
    work: DueWork | None = None  # what it waited for, when it comes back from a wait (a turn, a retry)

    @classmethod
    def parse(
        cls, body: str, sqs_message_id: str, published_at: float | None = None, *, smart_encoding: bool = True
    ) -> Inbound:
        try:
            parsed = parse_message(body, default_request_id=sqs_message_id, smart_encoding=smart_encoding)
        except InvalidRequest as exc:
            return cls(body, sqs_message_id, invalid=exc, published_at=published_at)
        if isinstance(parsed, CancelRequest):
            return cls(body, sqs_message_id, cancel=parsed, published_at=published_at)
        if isinstance(parsed, BulkRequest):
            return cls(body, sqs_message_id, bulk=parsed, published_at=published_at)
        return cls(body, sqs_message_id, request=parsed, published_at=published_at)

    @classmethod
    def from_record(cls, record: dict[str, Any], *, smart_encoding: bool = True) -> Inbound:
        sent = str(record.get("attributes", {}).get("SentTimestamp", ""))
        published_at = int(sent) / 1000 if sent.isdigit() else None
        inbound = cls.parse(record["body"], record["messageId"], published_at, smart_encoding=smart_encoding)
        attributes = record.get("messageAttributes")
        chunk_of = parent_of(attributes) if inbound.bulk is not None else None
        return replace(inbound, deferrals=deferrals_of(attributes), work=work_of(attributes), chunk_of=chunk_of)

    @property
    def sms(self) -> SmsRequest:
        """The request of a record that parsed as one (the only records the send path asks for it)."""
        if self.request is None:
            raise ValueError(f"record {self.sqs_message_id} carries no send request")
        return self.request

    @property
    def sendable(self) -> SmsRequest | BulkRequest | None:
        return self.request or self.bulk

    @property
    def sends_now(self) -> bool:
        """Whether this record makes a provider call when it goes: one SMS, or a chunk of a bulk request
        (a bulk request itself is handed on to its chunks, which take capacity a call each)."""
        return self.request is not None or (self.bulk is not None and self.chunk_of is not None)

    def calls(self, max_numbers: int) -> int:
        """Provider calls this record makes when it goes: a chunk's numbers `max_numbers` to a call."""
        if self.bulk is None:
            return 1
        return max(1, math.ceil(len(self.bulk.children) / max_numbers))

    def with_numbers(self, children: tuple[SmsRequest, ...]) -> Inbound:
        """This chunk with only `children` (some of its numbers): its body written for them."""
        if self.bulk is None:
            raise ValueError(f"record {self.sqs_message_id} is not a chunk of a bulk request")
        bulk = replace(self.bulk, children=children)
        return replace(self, bulk=bulk, body=chunk_body(json.loads(self.body), bulk))

    @property
    def priority(self) -> Priority:
        sendable = self.sendable
        return sendable.priority if sendable is not None else "normal"

    def deadline(self, max_age: int) -> float | None:
        """The moment after which this message must not be sent: valid_until, or the default maximum age."""
        sendable = self.sendable
        if sendable is None:
            return None
        limits = []
        if sendable.valid_until is not None:
            limits.append(sendable.valid_until.timestamp())
        if max_age and self.published_at is not None:
            # A scheduled message's age counts from its schedule_time: it was meant to wait until then.
            start = self.published_at
            if sendable.schedule_time is not None:
                start = max(start, sendable.schedule_time.timestamp())
            limits.append(start + max_age)
        return min(limits) if limits else None

    @property
    def request_id(self) -> str:
        """The request this record is about (a cancel's: the message it cancels)."""
        if self.request is not None:
            return self.request.request_id
        if self.cancel is not None:
            return self.cancel.request_id
        if self.bulk is not None:
            return self.bulk.request_id
        return (self.invalid.request_id if self.invalid else None) or self.sqs_message_id

    @property
    def key(self) -> str:
        """What makes two records of a batch copies of each other: a send and a cancel of one request_id
        are not (both are processed; the store decides which came first)."""
        if self.cancel is not None:
            return f"cancel:{self.request_id}"
        if self.chunk_of is not None and self.bulk is not None and self.bulk.children:
            return f"chunk:{self.bulk.children[0].request_id}"  # the chunks of one request differ by their numbers
        return self.request_id


def first_copies(inbound: list[Inbound]) -> set[str]:
    """SQS message ids of the records to process: the first record of each request_id (each cancel) in the batch.

    Later copies are duplicates, decided here and not by racing the first copy's claim.
    """
    seen: set[str] = set()
    first: set[str] = set()
    for item in inbound:
        if item.key not in seen:
            seen.add(item.key)
            first.add(item.sqs_message_id)
    return first


def chunk_bodies(body: str, bulk: BulkRequest, size: int, deadline: float | None) -> list[str]:
    """The bodies of a bulk request's chunks: the request as published (a schedule_time, now past, kept
    as the start of its age), its numbers `size` at a time (normalised, duplicates gone) and its deadline
    written in (a chunk is a new SQS message, published now)."""
    data = json.loads(body)
    data["request_id"] = bulk.request_id
    if deadline is not None:
        data["valid_until"] = datetime.fromtimestamp(deadline, UTC).isoformat(timespec="seconds")
    children = bulk.children
    return [chunk_body(data, replace(bulk, children=children[at : at + size])) for at in range(0, len(children), size)]


def chunk_body(data: dict[str, Any], bulk: BulkRequest) -> str:
    """A chunk's body: the request's fields in `data`, with the numbers (and texts) of `bulk`."""
    if bulk.personal:
        numbers: dict[str, Any] = {
            "messages": [{"phone": child.phone, "message": child.text} for child in bulk.children]
        }
    else:
        numbers = {"phones": [child.phone for child in bulk.children]}
    return json.dumps({**data, **numbers}, ensure_ascii=False, separators=(",", ":"))


# Work this close is due: SQS delays by whole seconds, and the message may come back a little early.
DUE_TOLERANCE_SECONDS = 1.0


def scheduled_later(item: Inbound, now: float) -> bool:
    """Whether the message is due after now (beyond the tolerance for SQS's whole-second delays)."""
    schedule = item.sendable.schedule_time if item.sendable is not None else None
    return schedule is not None and schedule.timestamp() > now + DUE_TOLERANCE_SECONDS


def calls_provider(item: Inbound, max_age: int, now: float) -> bool:
    """Whether the record would call the provider now: a message or a chunk, neither expired nor due later."""
    if not item.sends_now:
        return False
    deadline = item.deadline(max_age)
    return not (deadline is not None and now >= deadline) and not scheduled_later(item, now)


def turn_of(item: Inbound) -> float | None:
    """The turn this record is back at, if it waited for one."""
    return item.work.due_at if item.work is not None and item.work.kind is WorkKind.TURN else None
