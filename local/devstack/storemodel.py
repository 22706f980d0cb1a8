"""A latency model of DynamoDB for `make bench`: every call takes a fixed time and no server CPU.

moto's CPU per write (it parses each update expression in Python, tens of milliseconds for the claim)
is not DynamoDB's, and on a small machine it is what a concurrent batch waits for. To measure the
send path's own concurrency, the bench also runs it against this model: each DynamoDB call sleeps
`latency` seconds (releasing the GIL, as waiting on the network does) and gets the answer DynamoDB
gives a lone writer on fresh keys: the write applies, the condition holds, UPDATED_NEW returns what
the update set, reads find nothing. It models the happy path only; the bench shows moto's figure
beside it, and correctness is the tests' job, against moto.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse

_SET = re.compile(r"(#\w+) = (?:if_not_exists\(#\w+, )?(:\w+)")
_ADD = re.compile(r"(#\w+) (:\w+)")


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data

    def read(self, *_: Any) -> bytes:
        return self._data


def _clauses(expression: str, keyword: str) -> str:
    """The text of one clause (SET, ADD, REMOVE) of an update expression."""
    parts = re.split(r"\b(SET|ADD|REMOVE|DELETE) ", expression)
    return next((parts[i + 1] for i in range(1, len(parts) - 1, 2) if parts[i] == keyword), "")


def _answer(operation: str, body: dict[str, Any]) -> dict[str, Any]:
    if operation == "UpdateItem" and body.get("ReturnValues") == "UPDATED_NEW":
        names, values = body.get("ExpressionAttributeNames", {}), body.get("ExpressionAttributeValues", {})
        expression = body["UpdateExpression"]
        pairs = _SET.findall(_clauses(expression, "SET")) + _ADD.findall(_clauses(expression, "ADD"))
        return {"Attributes": {names.get(name, name): values[value] for name, value in pairs}}
    if operation in ("Query", "Scan"):
        return {"Items": [], "Count": 0, "ScannedCount": 0}
    return {}  # PutItem, DeleteItem, a plain UpdateItem; GetItem finds no item


class ModelledDynamoDB:
    """`ModelledDynamoDB(0.005).attach(client)`: the client's DynamoDB calls are answered by the model."""

    def __init__(self, latency: float) -> None:
        self.latency = latency

    def attach(self, client: Any) -> None:
        client.meta.events.register_first("before-send.dynamodb", self._send)

    def _send(self, request: Any, **_: Any) -> AWSResponse:
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
        time.sleep(self.latency)
        data = json.dumps(_answer(operation, json.loads(request.body or b"{}"))).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "modelled"}
        return AWSResponse(request.url, 200, headers, _Body(data))
