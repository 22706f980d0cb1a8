"""A 10,000-number campaign scheduled for one time, and an OTP published at that moment: the campaign
goes out at MiM's limit, and the OTP is accepted within one rate window, in both dialects (the official
one sends a chunk of numbers in one request; the generic one a chunk number by number, a call each)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import Clock, FakeContext, Stack, sqs_event

from mimsms_simulator import MimSmsSimulator
from smsgw import runtime
from smsgw.sending import CALLS_PER_CHUNK

PER_REQUEST = 1_000  # a bulk request carries at most 1,000 numbers
CAMPAIGN = 10_000
WINDOW = 60.0  # MiM's shortest window: 100 requests a minute
MIM_LIMITS = "100/60,1000/3600,10000/86400"
CHUNK = 100  # BULK_CHUNK_SIZE's default


def campaign_bodies(schedule_time: str, size: int) -> list[str]:
    numbers = [f"01{3 + n // 10_000_000 % 7}{n:08d}" for n in range(size)]
    return [
        json.dumps(
            {
                "request_id": f"eid-{part}",
                "phones": numbers[part * PER_REQUEST : (part + 1) * PER_REQUEST],
                "message": "Eid Mubarak! 20% off everything until Friday.",
                "type": "transactional",
                "schedule_time": schedule_time,
            }
        )
        for part in range(size // PER_REQUEST)
    ]


def deliver(handler: Any, stack: Stack, queue_url: str) -> None:
    """Every message visible in the queue, ten at a time, as Lambda's poller would take them."""
    while (event := stack.sqs_event_from_queue(queue_url))["Records"]:
        assert handler(event, FakeContext())["batchItemFailures"] == []


def deliver_until_refused(handler: Any, stack: Stack, sim: MimSmsSimulator) -> int:
    """The send queue's batches until one sends nothing: the campaign has taken what it may of the window
    (the rest of its chunks would only wait their turns). Returns the batches delivered."""
    batches = 0
    while (event := stack.sqs_event_from_queue(stack.send_queue_url))["Records"]:
        before = len(sends(sim))
        assert handler(event, FakeContext())["batchItemFailures"] == []
        batches += 1
        chunks_only = all(r["messageAttributes"].get("bulk_parent") for r in event["Records"])
        if chunks_only and len(sends(sim)) == before:
            return batches
    return batches


def sends(sim: MimSmsSimulator) -> list[Any]:
    paths = {"/send-sms", "/api/SmsSending/SMS", "/api/SmsSending/OneToMany"}
    return [r for r in sim.state.received if r.path in paths]


@pytest.fixture
def clock(configured: Stack, simulator: MimSmsSimulator, monkeypatch: pytest.MonkeyPatch) -> Clock:
    monkeypatch.setenv("MIMSMS_RATE_LIMITS", MIM_LIMITS)  # the service knows the account's limits
    monkeypatch.setenv("BULK_BURST_SHARE", "0.1667")  # the template's: a campaign paces over the window
    fake = Clock()
    runtime.configure(clock=fake)
    simulator.state.clock = fake
    return fake


def test_an_otp_published_as_a_10000_number_campaign_starts_is_accepted_within_one_window(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, clock: Clock, dialect: str
) -> None:
    simulator.state.rate_limits = ((100, 60), (1000, 3600), (10000, 86400))  # MiM's, enforced by the simulator
    for account in simulator.state.accounts.values():
        account.balance = 1_000_000.0
    poller = runtime.make_poller(clock)
    due = clock.now + 3600
    when = datetime.fromtimestamp(due, UTC).isoformat()
    size = CAMPAIGN
    for n, body in enumerate(campaign_bodies(when, size)):
        assert send_handler(sqs_event(body, start=n + 1), FakeContext())["batchItemFailures"] == []
    assert sends(simulator) == []  # held by the service until its time
    assert {r["status"] for r in configured.records()} == {"scheduled"}

    clock.now = due
    assert poller.run(deadline=clock.now + 30).scheduled_published == size // PER_REQUEST
    otp = {"phone": "01812345678", "message": "Your login code is 482913", "request_id": "otp-1", "priority": "high"}
    configured.sqs.send_message(QueueUrl=configured.priority_queue_url, MessageBody=json.dumps(otp))

    # The campaign first, worst case for the OTP: handed on, then its chunks ask for capacity until the
    # limiter refuses them (the rest wait their turns outside the function).
    deliver_until_refused(send_handler, configured, simulator)
    handed_on = [r for r in configured.records() if r.get("kind") == "bulk" and r["attempt_state"] == "done"]
    assert len(handed_on) == size // PER_REQUEST
    campaign_calls = len(sends(simulator))
    assert 0 < campaign_calls <= 17  # paced: a sixth of the window at once, the rest over the minute
    if dialect == "official":  # a chunk of numbers a request
        assert all(len(r.body["MobileNumber"].split(",")) == CHUNK for r in sends(simulator))
    waiting = configured.deferred()
    assert all(c.turn is not None for c in waiting)  # waiting for capacity, not failing
    if dialect == "generic":  # chunks of ten numbers, a call each; the chunk granted only some waits with the rest
        chunks = [body["phones"] for body in configured.in_queue()]  # waiting, or not yet delivered
        assert all(len(numbers) <= CALLS_PER_CHUNK for numbers in chunks)
        assert len(chunks) <= size // CALLS_PER_CHUNK
        assert sum(map(len, chunks)) + campaign_calls == size  # every number sent once or in its queue

    deliver(send_handler, configured, configured.priority_queue_url)
    (sent_otp,) = [r for r in sends(simulator) if "8801812345678" in json.dumps(r.body)]
    assert sent_otp.at - due <= WINDOW  # accepted within one rate window of the campaign's start
    record = configured.record("otp-1")
    assert record is not None
    assert record["status"] == "sent"
    assert simulator.state.rate_rejections == 0  # MiM never had to refuse a call
