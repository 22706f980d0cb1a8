"""The status table's primitives: one conditional transition, a conditional create, reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from smsgw.fields import bounded
from smsgw.records import FINAL_STATUSES, AttemptState, DueWork, Status, StatusRecord
from smsgw.transitions import BULK, TRANSITIONS, Change, From

TTL_ATTRIBUTE = "expires_at"
# The work queue: a sparse global secondary index on (work, due_at). Only records that poll_status
# still has to look at carry `poll_work`; a final write removes it, so the index never holds history.
WORK_INDEX, WORK, DUE = "WorkIndex", "poll_work", "due_at"
# The numbers of a bulk request: a sparse index on (parent_id, request_id), keys only, so each child's
# record is written to it once, when it is created.
PARENT_INDEX, PARENT = "ParentIndex", "parent_id"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in values.items()}


def _from_dynamo(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _number(value: float) -> Decimal:
    return Decimal(str(round(value, 4)))


def _when(start: From) -> str:
    """One source state as a condition, every part of it holding at once."""
    if start.status is None:
        return "attribute_not_exists(request_id)"
    parts = [f"#status = :status_{start.status}"]
    if start.attempt:
        parts.append(f"attempt_state IN ({', '.join(f':attempt_{state}' for state in start.attempt)})")
    if start.bulk:
        parts.append("kind = :bulk")
    if start.owned:
        parts.append("claim_token = :token")
    if start.lease_expired:
        parts.append("lease_until < :now")
    if start.without_phones:
        parts.append("attribute_not_exists(phones)")
    if start.not_cancel_requested:
        parts.append("attribute_not_exists(cancel_requested_at)")
    return " AND ".join(parts)


def condition(change: Change) -> tuple[str, dict[str, Any]]:
    """`change`'s ConditionExpression, built from its sources in TRANSITIONS, and the values it names (all
    but `:token` and `:now`, which are the caller's)."""
    sources = TRANSITIONS[change].sources
    values: dict[str, Any] = {}
    for start in sources:
        if start.status is not None:
            values[f":status_{start.status}"] = start.status
        values.update({f":attempt_{state}": state for state in start.attempt})
        if start.bulk:
            values[":bulk"] = BULK
    if len(sources) == 1:
        return _when(sources[0]), values
    return " OR ".join(f"({_when(start)})" for start in sources), values


# Built once, at import: every write of every record uses one of these.
_CONDITIONS = {change: condition(change) for change in Change}


def final(status: Status, now: float, error_code: str, error_message: str) -> dict[str, Any]:
    """What every write that ends a record sets: the status, the attempt done, why, and when."""
    return {
        "status": status,
        "attempt_state": AttemptState.DONE,
        "error_code": error_code,
        "error_message": bounded(error_message),
        "final_at": iso(now),
        "updated_at": iso(now),
    }


def _pending(work: DueWork) -> dict[str, Any]:
    """The attributes that put `work` in the record's work index."""
    if not work.kind.on_record:
        raise ValueError(f"{work.kind} work waits in its queue, not on the record")
    return {WORK: work.kind, DUE: _number(work.due_at)}


def _allowed(change: Change, status: Any) -> None:
    """A write may set only a status its change allows: the table is the state machine, not a comment."""
    if status is not None and status not in TRANSITIONS[change].writes:
        raise ValueError(f"a {change} write may not set the status {status}")


@dataclass(frozen=True, eq=False)
class Claim:
    """The result of `claim`: a token to send under, or the record that already owns this request_id."""

    token: str | None
    existing: StatusRecord | None = None
    attempts: int = 0  # provider attempts this claim makes it, this one included


class TableBase:
    """The table and its primitives: every change goes through `_transition` (or, for a new record, `_create`)."""

    def __init__(self, client: Any, table: str, retention_days: int) -> None:
        self._client = client
        self._table = table
        self._retention_seconds = retention_days * 86400

    def _transition(
        self,
        request_id: str,
        change: Change,
        *,
        sets: dict[str, Any],
        sets_if_absent: dict[str, Any] | None = None,
        add: dict[str, int] | None = None,
        remove: tuple[str, ...] = (),
        token: str | None = None,
        now: float | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        """The one way a record changes: one conditional UpdateItem, applied only when the record is in one
        of `change`'s source states (TRANSITIONS); `token` and `now` are what those states compare with.

        SET `sets` (and `sets_if_absent` where the attribute is missing), ADD `add`, REMOVE `remove`.
        Returns (True, the attributes it set) or (False, the record as it is, {} when there is none).
        """
        _allowed(change, sets.get("status"))
        when, constants = _CONDITIONS[change]
        when_values = dict(constants)  # the caller's :token and :now join a copy
        for name, given in ((":token", token), (":now", None if now is None else _number(now))):
            if name in when:  # each source state that compares with it needs it
                if given is None:
                    raise ValueError(f"a {change} write compares with {name}: pass it")
                when_values[name] = given
        names: dict[str, str] = {"#status": "status"} if "#status" in when else {}  # a reserved word
        values = dict(when_values)
        clauses: list[str] = []
        for n, (name, value) in enumerate(sets.items()):
            names[f"#s{n}"], values[f":s{n}"] = name, value
            clauses.append(f"#s{n} = :s{n}")
        for n, (name, value) in enumerate((sets_if_absent or {}).items()):
            names[f"#f{n}"], values[f":f{n}"] = name, value
            clauses.append(f"#f{n} = if_not_exists(#f{n}, :f{n})")
        update = "SET " + ", ".join(clauses)
        if add:
            for n, (name, value) in enumerate(add.items()):
                names[f"#a{n}"], values[f":a{n}"] = name, value
            update += " ADD " + ", ".join(f"#a{n} :a{n}" for n in range(len(add)))
        if remove:
            names.update({f"#r{n}": name for n, name in enumerate(remove)})
            update += " REMOVE " + ", ".join(f"#r{n}" for n in range(len(remove)))
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"request_id": {"S": request_id}},
                UpdateExpression=update,
                ConditionExpression=when,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_values(values),
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False, _from_dynamo(exc.response.get("Item") or {})
        return True, _from_dynamo(response.get("Attributes") or {})

    def _create(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """Put `item` only if its request_id has no record yet: None when created, else that record ({} if
        DynamoDB did not return it)."""
        _allowed(Change.CREATE, item.get("status"))
        when, _ = _CONDITIONS[Change.CREATE]
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_values(item),
                ConditionExpression=when,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return _from_dynamo(exc.response.get("Item") or {})
        return None

    def _update(
        self,
        request_id: str,
        change: Change,
        sets: dict[str, Any],
        *,
        remove: tuple[str, ...] = (),
        add: dict[str, int] | None = None,
        token: str | None = None,
        now: float | None = None,
    ) -> bool:
        """`_transition`, answering only whether it applied."""
        return self._transition(request_id, change, sets=sets, add=add, remove=remove, token=token, now=now)[0]

    def _batch_get(
        self, request_ids: list[str], rounds: int = 3, **options: Any
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """BatchGetItem for these request_ids, 100 keys a call, asking again for the keys DynamoDB leaves
        unprocessed (up to `rounds` times): (the items found, as DynamoDB gives them; the ids left unread)."""
        keys = [{"request_id": {"S": rid}} for rid in dict.fromkeys(request_ids)]
        items: list[dict[str, Any]] = []
        unread: list[str] = []
        for start in range(0, len(keys), 100):  # BatchGetItem's most keys a call
            pending = keys[start : start + 100]
            for _ in range(rounds):
                response = self._client.batch_get_item(RequestItems={self._table: {"Keys": pending, **options}})
                items.extend(response.get("Responses", {}).get(self._table, []))
                pending = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                if not pending:
                    break
            unread.extend(key["request_id"]["S"] for key in pending)
        return items, unread

    def get(self, request_id: str) -> StatusRecord | None:
        response = self._client.get_item(
            TableName=self._table, Key={"request_id": {"S": request_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return StatusRecord.from_item(_from_dynamo(item)) if item else None

    def finished(self, request_ids: list[str]) -> set[str]:
        """Which of these request_ids have a final record (a cancelled one, say): one BatchGetItem for a
        batch, reading only the key and the status. Keys DynamoDB still leaves unprocessed count as not final
        (their messages then take capacity and meet the final record at their claim)."""
        items, _ = self._batch_get(
            request_ids, ProjectionExpression="request_id, #status", ExpressionAttributeNames={"#status": "status"}
        )
        return {item["request_id"]["S"] for item in items if item.get("status", {}).get("S") in FINAL_STATUSES}
