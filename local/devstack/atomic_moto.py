"""Make moto's DynamoDB item writes atomic, as DynamoDB's are.

moto evaluates a ConditionExpression and then writes, with nothing stopping another thread from
writing in between: two conditional claims of one key can both succeed. Real DynamoDB serialises
writes to an item, and the service's idempotency and rate limiting rely on that. Wherever threads share
one moto (the in-process `mock_aws` of the tests, moto's threaded server for `make run` and the
multi-process tests), every item write goes through one lock.

`python -m devstack.atomic_moto -H 127.0.0.1 -p PORT` runs moto's server with the lock in place.
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


def main(argv: list[str] | None = None) -> None:
    serialise_dynamodb_writes()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
