"""Waiting for capacity outside the function: the message goes back to its queue with a delay.

A message the limiter cannot serve now (or that the provider throttled) is published again to the
queue it belongs to, with `DelaySeconds` up to the time capacity is expected, and its SQS message is
acknowledged. It costs no DynamoDB write and no receive toward the dead-letter queue, however long the
backlog: a wait longer than SQS's 15-minute delay is several hops. The copy carries the request_id it
was known by (the original SQS message id when the producer gave none), so it keeps its identity and
its status record, and a copy published twice is still sent once (the claim decides).

Spread: a backlog all refused in one moment would all come back in one moment. Each message waits for
the expected capacity plus full jitter over a span that doubles with every deferral it has had, so a
long backlog thins out instead of churning; OTPs use a span of a few slices, so they come back first.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from smsgw.message import Priority

DEFERRALS_ATTRIBUTE = "deferrals"  # SQS message attribute: how often this message has waited for capacity
MAX_SPREAD_DOUBLINGS = 6


def pin_request_id(body: str, request_id: str, valid_until: float | None = None) -> str:
    """The body with its request_id (and deadline) written in, so a copy is the same request.

    A copy is a new SQS message: without these it would get a new id and a new publishing time.
    """
    data = json.loads(body)
    pins: dict[str, str] = {"request_id": request_id}
    if valid_until is not None:
        pins["valid_until"] = datetime.fromtimestamp(valid_until, UTC).isoformat(timespec="seconds")
    if all(data.get(name) == value for name, value in pins.items()):
        return body
    data.update(pins)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def deferrals_of(message_attributes: dict[str, Any] | None) -> int:
    """The deferral count from a Lambda SQS record's messageAttributes (0 when absent or unreadable)."""
    attribute = (message_attributes or {}).get(DEFERRALS_ATTRIBUTE) or {}
    raw = attribute.get("stringValue") or attribute.get("StringValue") or "0"
    return int(raw) if str(raw).isdigit() else 0


class Deferrer:
    def __init__(
        self,
        sqs: Any,
        send_queue_url: str,
        priority_queue_url: str | None,
        *,
        max_delay: int,
        base_spread: float,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._sqs = sqs
        self._queues: dict[str, str] = {"normal": send_queue_url, "high": priority_queue_url or send_queue_url}
        self._max_delay = max_delay
        self._base_spread = base_spread  # seconds: a slice of the shortest rate window, scaled per deferral
        self._clock = clock
        self._rng = rng or random.Random()  # jitter, not security

    def delay(self, retry_at: float, deferrals: int, priority: Priority) -> int:
        """Whole seconds to wait: until `retry_at`, plus jitter that widens with each earlier deferral."""
        doublings = min(deferrals, MAX_SPREAD_DOUBLINGS)
        span = self._base_spread * (1 if priority == "high" else 10) * 2**doublings
        wait = max(retry_at - self._clock(), 0.0) + self._rng.uniform(0, span)
        return min(self._max_delay, max(1, math.ceil(wait)))

    def defer(
        self,
        body: str,
        request_id: str,
        priority: Priority,
        retry_at: float,
        deferrals: int,
        valid_until: float | None = None,
    ) -> int:
        """Publish the message again to its queue with a delay. Returns the delay in seconds."""
        delay = self.delay(retry_at, deferrals, priority)
        self._sqs.send_message(
            QueueUrl=self._queues[priority],
            MessageBody=pin_request_id(body, request_id, valid_until),
            DelaySeconds=delay,
            MessageAttributes={DEFERRALS_ATTRIBUTE: {"DataType": "Number", "StringValue": str(deferrals + 1)}},
        )
        return delay
