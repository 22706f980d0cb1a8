"""Make moto's DynamoDB item writes atomic, as DynamoDB's are.

moto evaluates a ConditionExpression and then writes, with nothing stopping another thread from
writing in between: two conditional claims of one key can both succeed. Real DynamoDB serialises
writes to an item, and the service's idempotency and rate limiting rely on that. Wherever threads share
one moto (the in-process `mock_aws` of the tests, moto's threaded server for `make run` and the
multi-process tests), every item write goes through one lock.

`python -m devstack.atomic_moto -H 127.0.0.1 -p PORT` runs moto's server with the lock in place, and
with SQS's message counts made cheap (`cheap_sqs_counts`).
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.RLock()
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_PATCHED = "_smsgw_serialised"


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    setattr(locked, _PATCHED, True)
    return locked


def serialise_dynamodb_writes() -> None:
    """Patch moto's DynamoDB backend (once per process) so that each item write is atomic."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        method = getattr(DynamoDBBackend, name)
        if not getattr(method, _PATCHED, False):
            setattr(DynamoDBBackend, name, _serialised(method))


def cheap_sqs_counts() -> None:
    """moto works out a queue's attributes on every send, and the visible messages on every receive,
    with two datetime conversions per message: queueing 10,000 messages took many minutes, and a
    receive from a big queue starved every other client of the server. The same answers, one clock
    reading each."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Queue

    def delayed(queue: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in queue._messages if now < m.delayed_until)

    def not_visible(queue: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in queue._messages if not now > m.visible_at)

    def visible(queue: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in queue._messages if now > m.visible_at and not now < m.delayed_until)

    def messages(queue: Any) -> list[Any]:
        now = unix_time_millis()
        return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]

    Queue.messages = property(messages)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages_delayed = property(delayed)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages_not_visible = property(not_visible)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages = property(visible)  # type: ignore[assignment,method-assign]


def main(argv: list[str] | None = None) -> None:
    serialise_dynamodb_writes()
    cheap_sqs_counts()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
