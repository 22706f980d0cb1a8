"""Lambda's DynamoDB stream poller, locally: the status table's stream through the status_events handler.

Like the service: records in order, in batches, only those the template's filter criteria let through;
a batch with failed records (ReportBatchItemFailures) is read again from the first failed one, and an
invocation error reads the whole batch again. The filter is applied with `matches`, which knows the
parts of EventBridge's pattern syntax the template uses (value lists, `anything-but` and `exists`).
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from devstack.lambdas import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]


def matches(pattern: Mapping[str, Any], data: Any) -> bool:
    """Whether `data` (a stream record) matches an event filter pattern (value lists, `anything-but`, `exists`)."""
    if not isinstance(data, Mapping):
        return False
    for key, expected in pattern.items():
        if key not in data:
            if not _absence_matches(expected):
                return False
            continue
        value = data[key]
        if isinstance(expected, Mapping):
            if not matches(expected, value):
                return False
            continue
        if not any(_matches_value(option, value) for option in expected):
            return False
    return True


def _absence_matches(expected: Any) -> bool:
    """A missing key matches only `{"exists": false}` (at the leaf of a nested pattern too)."""
    if isinstance(expected, Mapping):
        return all(_absence_matches(inner) for inner in expected.values())
    return any(option == {"exists": False} for option in expected)


def _matches_value(option: Any, value: Any) -> bool:
    if isinstance(option, Mapping):
        if set(option) == {"exists"}:
            return bool(option["exists"])  # the key is there (a missing one is _absence_matches's)
        if set(option) != {"anything-but"}:
            raise ValueError(f"filter rule not emulated: {option}")
        excluded = option["anything-but"]
        return value not in (excluded if isinstance(excluded, list) else [excluded])
    return bool(option == value)


def filters_of(mapping: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The filter patterns of an event-source mapping's properties in the template (none: every record passes)."""
    return [json.loads(f["Pattern"]) for f in mapping.get("FilterCriteria", {}).get("Filters", [])]


def streams_client(region: str, **kwargs: Any) -> Any:
    """A DynamoDB Streams client for moto: botocore would send it to an account-id endpoint moto does not serve."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodbstreams", region_name=region, config=Config(account_id_endpoint_mode="disabled"), **kwargs
    )


def _as_lambda_delivers(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):  # the API gives a datetime; Lambda's event carries epoch seconds
        change["ApproximateCreationDateTime"] = created.timestamp()
    return {**record, "dynamodb": change, "eventSourceARN": stream_arn}


class StreamEventSource:
    def __init__(
        self,
        streams_client: Any,
        stream_arn: str,
        handler: Handler,
        *,
        filters: list[dict[str, Any]] | None = None,
        batch_size: int = 100,
        timeout: float = 30.0,
    ) -> None:
        self._client = streams_client
        self._arn = stream_arn
        self._handler = handler
        self._filters = filters or []
        self._batch_size = batch_size
        self._timeout = timeout
        description = streams_client.describe_stream(StreamArn=stream_arn)["StreamDescription"]
        self._shard = description["Shards"][0]["ShardId"]
        self._position: dict[str, str] = {"ShardIteratorType": "TRIM_HORIZON"}
        self.invocations = 0

    def _read(self) -> list[dict[str, Any]]:
        iterator = self._client.get_shard_iterator(StreamArn=self._arn, ShardId=self._shard, **self._position)
        return list(
            self._client.get_records(ShardIterator=iterator["ShardIterator"], Limit=self._batch_size)["Records"]
        )

    def poll_once(self) -> int:
        """Read one batch from the position, hand what passes the filter to the handler. Returns the records read."""
        records = self._read()
        if not records:
            return 0
        passed = [r for r in records if not self._filters or any(matches(f, r) for f in self._filters)]
        retry_from: str | None = None
        if passed:
            event = {"Records": [_as_lambda_delivers(r, self._arn) for r in passed]}
            self.invocations += 1
            try:
                response = self._handler(event, LambdaContext("status_events", self._timeout))
                failed = [f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])]
                if failed:
                    retry_from = min(failed, key=int)
            except Exception:
                traceback.print_exc(file=sys.stdout)  # an invocation error: the whole batch again
                retry_from = passed[0]["dynamodb"]["SequenceNumber"]
        if retry_from is not None:
            self._position = {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": retry_from}
        else:
            last = records[-1]["dynamodb"]["SequenceNumber"]
            self._position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last}
        return len(records)

    def drain(self, max_batches: int = 1000) -> None:
        """Poll until the stream has nothing new (or a batch keeps failing: `max_batches` bounds it)."""
        for _ in range(max_batches):
            before = dict(self._position)
            if not self.poll_once() or self._position == before:
                return
