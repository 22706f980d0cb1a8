"""Waiting for capacity outside the function: the message goes back to its queue with a delay.

A message the limiter cannot serve now (or that the provider throttled) is published again to the
queue it belongs to, with `DelaySeconds` up to the time capacity is expected, and its SQS message is
acknowledged. It costs no DynamoDB write and no receive toward the dead-letter queue, however long the
backlog: a wait longer than SQS's 15-minute delay is several hops. The copy carries the request_id it
was known by (the original SQS message id when the producer gave none), so it keeps its identity and
its status record, and a copy published twice is still sent once (the claim decides).

Spread: a message refused capacity comes back at its turn (see smsgw.limiter: the lane's queue hands
out times at the pace capacity frees), carried in the `turn` attribute so that a turn further off than
SQS's 15-minute delay is kept across hops without asking the limiter again. Other waits (a throttled
answer, a not-sent retry) take the expected time plus full jitter over a span that doubles with every
deferral the message has had; OTPs use a span of a few slices, so they come back first.
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
TURN_ATTRIBUTE = "turn"  # SQS message attribute: epoch seconds of the message's turn in its lane's queue
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


def _attribute(message_attributes: dict[str, Any] | None, name: str) -> str:
    attribute = (message_attributes or {}).get(name) or {}
    return str(attribute.get("stringValue") or attribute.get("StringValue") or "")


def deferrals_of(message_attributes: dict[str, Any] | None) -> int:
    """The deferral count from a Lambda SQS record's messageAttributes (0 when absent or unreadable)."""
    raw = _attribute(message_attributes, DEFERRALS_ATTRIBUTE)
    return int(raw) if raw.isdigit() else 0


def turn_of(message_attributes: dict[str, Any] | None) -> float | None:
    """The message's turn (epoch seconds) from a Lambda SQS record's messageAttributes, if it has one."""
    try:
        turn = float(_attribute(message_attributes, TURN_ATTRIBUTE))
    except ValueError:
        return None
    return turn if math.isfinite(turn) and turn > 0 else None


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
        turn: float | None = None,
    ) -> int:
        """Publish the message again to its queue with a delay. Returns the delay in seconds.

        With a `turn`, the message comes back at it (or after the longest delay, to wait again), no jitter:
        the turns are spread already. Without, at `retry_at` plus jitter."""
        attributes = {DEFERRALS_ATTRIBUTE: {"DataType": "Number", "StringValue": str(deferrals + 1)}}
        if turn is not None:
            delay = min(self._max_delay, max(1, math.ceil(turn - self._clock())))
            attributes[TURN_ATTRIBUTE] = {"DataType": "Number", "StringValue": f"{turn:.3f}"}
        else:
            delay = self.delay(retry_at, deferrals, priority)
        self._sqs.send_message(
            QueueUrl=self._queues[priority],
            MessageBody=pin_request_id(body, request_id, valid_until),
            DelaySeconds=delay,
            MessageAttributes=attributes,
        )
        return delay
