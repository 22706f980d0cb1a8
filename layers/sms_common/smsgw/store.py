"""The status table (CONTRACT.md section 2): the only module that touches DynamoDB.

The status record is also the idempotency record. `claim` is one conditional write that either
creates the record as `sending` or takes back a record whose previous attempt certainly did not reach
the provider (`attempt_state` released or held). Anything else is a duplicate and is not sent again.
Every later write is conditional on the claim token, so a record only ever moves forward.

Internal attributes (not part of the contract): `attempt_state` (in_flight, released, held, maybe_sent,
done), `claim_token`, `lease_until` (epoch seconds after which an in-flight claim is known to be
abandoned), `sqs_message_id`, `updated_at`, `expires_at` (the TTL attribute), `poll_work` and `due_at` (the
work queue below), `payload` (a held message's SQS body), `report_checks`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from smsgw.message import SmsRequest
from smsgw.records import AttemptState, Status, WorkKind

TTL_ATTRIBUTE = "expires_at"
# The work queue: a sparse global secondary index on (work, due_at). Only records that poll_status
# still has to look at carry `poll_work`; a final write removes it, so the index never holds history.
WORK_INDEX, WORK, DUE = "WorkIndex", "poll_work", "due_at"

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


@dataclass(frozen=True)
class Claim:
    """The result of `claim`: a token to send under, or the record that already owns this request_id."""

    token: str | None
    existing: dict[str, Any] | None = None
    attempts: int = 0  # provider attempts this claim makes it, this one included


class MessageStore:
    def __init__(self, client: Any, table: str, retention_days: int) -> None:
        self._client = client
        self._table = table
        self._retention_seconds = retention_days * 86400

    def _conditional_update(
        self, key: str, update: str, condition: str, values: dict[str, Any], names: dict[str, str] | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """Run one conditional UpdateItem: (True, the attributes it set) or (False, the item as it is)."""
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"request_id": {"S": key}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status", **(names or {})},
                ExpressionAttributeValues=_values(values),
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False, _from_dynamo(exc.response.get("Item") or {})
        return True, _from_dynamo(response.get("Attributes") or {})

    def claim(self, request: SmsRequest, *, now: float, lease_until: float, sqs_message_id: str) -> Claim:
        token = uuid.uuid4().hex
        values: dict[str, Any] = {
            ":sending": Status.SENDING,
            ":released": AttemptState.RELEASED,
            ":held": AttemptState.HELD,
            ":in_flight": AttemptState.IN_FLIGHT,
            ":token": token,
            ":lease": _number(lease_until),
            ":now": iso(now),
            ":one": 1,
            ":phone": request.phone,
            ":parts": request.segmentation.parts,
            ":encoding": request.segmentation.encoding,
            ":priority": request.priority,
            ":type": request.type,
            ":metadata": request.metadata,
            ":sqs": sqs_message_id,
            ":expires": int(now) + self._retention_seconds,
        }
        sets = [
            "#status = :sending",
            "phone = :phone",
            "parts = :parts",
            "encoding = :encoding",
            "priority = :priority",
            "#type = :type",
            "metadata = :metadata",
            "sqs_message_id = :sqs",
            "attempt_state = :in_flight",
            "claim_token = :token",
            "lease_until = :lease",
            "created_at = if_not_exists(created_at, :now)",
            "updated_at = :now",
            f"{TTL_ATTRIBUTE} = :expires",
        ]
        optional = {
            "sender_id": request.sender_id,
            "campaign_id": request.campaign_id,
            "schedule_time": request.schedule_time.isoformat() if request.schedule_time else None,
        }
        for name, value in optional.items():
            if value is not None:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = value
        claimed, item = self._conditional_update(
            request.request_id,
            "SET " + ", ".join(sets) + f" ADD attempts :one REMOVE {WORK}, {DUE}, payload",
            "attribute_not_exists(request_id) OR (#status = :sending AND attempt_state IN (:released, :held))",
            values,
            {"#type": "type"},
        )
        if not claimed:
            return Claim(token=None, existing=item)
        return Claim(token=token, attempts=int(item.get("attempts", 1)))

    def record_invalid(
        self, request_id: str, error_code: str, error_message: str, *, now: float, sqs_message_id: str
    ) -> bool:
        """Record a request that breaks the contract as `failed`. False when the request_id already has a record."""
        item = {
            "request_id": request_id,
            "status": Status.FAILED,
            "error_code": error_code,
            "error_message": error_message,
            "attempts": 0,
            "created_at": iso(now),
            "updated_at": iso(now),
            "final_at": iso(now),
            "attempt_state": AttemptState.DONE,
            "sqs_message_id": sqs_message_id,
            TTL_ATTRIBUTE: int(now) + self._retention_seconds,
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_values(item),
                ConditionExpression="attribute_not_exists(request_id)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _update(
        self,
        request_id: str,
        sets: dict[str, Any],
        condition: str,
        condition_values: dict[str, Any],
        remove: tuple[str, ...] = (),
        add: dict[str, int] | None = None,
    ) -> bool:
        """SET `sets` (ADD `add`, REMOVE `remove`) when `condition` holds. False when it does not."""
        values = {f":{name}": value for name, value in sets.items()}
        values.update(condition_values)
        update = "SET " + ", ".join(f"{'#status' if name == 'status' else name} = :{name}" for name in sets)
        if add:
            values.update({f":add_{name}": value for name, value in add.items()})
            update += " ADD " + ", ".join(f"{name} :add_{name}" for name in add)
        if remove:
            update += " REMOVE " + ", ".join(remove)
        return self._conditional_update(request_id, update, condition, values)[0]

    def _finish_attempt(
        self,
        request_id: str,
        token: str,
        sets: dict[str, Any],
        remove: tuple[str, ...] = (),
        add: dict[str, int] | None = None,
    ) -> bool:
        """Apply `sets` if this claim still owns a `sending` record. False when it no longer does."""
        return self._update(
            request_id,
            sets,
            "claim_token = :token AND #status = :sending",
            {":token": token, ":sending": Status.SENDING},
            (*remove, "lease_until"),
            add,
        )

    def mark_sent(
        self,
        request_id: str,
        token: str,
        *,
        now: float,
        message_id: str | None,
        provider_status: str | None,
        cost: float,
        report_due: float | None,
    ) -> bool:
        """`sent`, and queued for delivery-report polling from `report_due` on (None: not tracked)."""
        sets: dict[str, Any] = {
            "status": Status.SENT,
            "attempt_state": AttemptState.DONE,
            "sent_at": iso(now),
            "updated_at": iso(now),
            "cost": _number(cost),
        }
        if report_due is not None:
            sets.update({WORK: WorkKind.REPORT, DUE: _number(report_due)})
        else:
            sets["tracking"] = "off"
        if message_id:
            sets["message_id"] = message_id
        if provider_status:
            sets["provider_status"] = provider_status
        return self._finish_attempt(request_id, token, sets, remove=("error_code", "error_message"))

    def mark_failed(
        self,
        request_id: str,
        token: str,
        *,
        now: float,
        error_code: str,
        error_message: str,
        provider_status: str | None,
        attempted: bool = True,
    ) -> bool:
        """`failed`. `attempted` is False when the provider was not called (the claim's count is undone)."""
        sets: dict[str, Any] = {
            "status": Status.FAILED,
            "attempt_state": AttemptState.DONE,
            "error_code": error_code,
            "error_message": error_message,
            "final_at": iso(now),
            "updated_at": iso(now),
        }
        if provider_status:
            sets["provider_status"] = provider_status
        return self._finish_attempt(
            request_id, token, sets, remove=(WORK, DUE), add=None if attempted else {"attempts": -1}
        )

    def release(self, request_id: str, token: str, *, now: float, error_code: str, error_message: str) -> bool:
        """The attempt certainly did not reach the provider: let the next delivery of the message claim it."""
        sets = {
            "attempt_state": AttemptState.RELEASED,
            "error_code": error_code,
            "error_message": error_message,
            "updated_at": iso(now),
        }
        return self._finish_attempt(request_id, token, sets)

    def hold(
        self,
        request_id: str,
        token: str,
        *,
        now: float,
        payload: str,
        error_code: str,
        error_message: str,
        attempted: bool,
    ) -> bool:
        """Park the message in its record (the SQS body kept as `payload`) until poll_status publishes it again.

        `attempted` is False when the provider was not called: the claim's attempt is then not counted.
        """
        sets = {
            "attempt_state": AttemptState.HELD,
            "error_code": error_code,
            "error_message": error_message,
            "updated_at": iso(now),
            "payload": payload,
            WORK: WorkKind.HELD,
            DUE: _number(now),
        }
        return self._finish_attempt(request_id, token, sets, add=None if attempted else {"attempts": -1})

    def mark_maybe_sent(
        self, request_id: str, token: str, *, now: float, error_message: str, resolve_at: float
    ) -> bool:
        """The provider may have sent it: keep `sending`, never resend blindly (README: maybe-sent policy)."""
        sets = {
            "attempt_state": AttemptState.MAYBE_SENT,
            "error_code": "maybe_sent",
            "error_message": error_message,
            "updated_at": iso(now),
            WORK: WorkKind.UNRESOLVED,
            DUE: _number(resolve_at),
        }
        return self._finish_attempt(request_id, token, sets)

    # --- the work queue: a sparse index of records that still need poll_status -------------------
    def due(self, work: str, now: float, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Records waiting for `work` whose time has come, oldest due first; reads only those records."""
        start: dict[str, Any] | None = None
        while True:
            items, start = self.due_page(work, now, page_size, start)
            yield from items
            if start is None:
                return

    def due_page(
        self, work: str, now: float, limit: int, start: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """At most `limit` records due for `work`, oldest first, from `start` on: (records, where to go on).

        Reads exactly what the caller will work on, so a run that stops early has read nothing more.
        """
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": WORK_INDEX,
            "KeyConditionExpression": "#work = :work AND #due <= :now",
            "ExpressionAttributeNames": {"#work": WORK, "#due": DUE},
            "ExpressionAttributeValues": _values({":work": work, ":now": _number(now)}),
            "ScanIndexForward": True,
            "Limit": limit,
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = self._client.query(**kwargs)
        return [_from_dynamo(item) for item in page.get("Items", [])], page.get("LastEvaluatedKey")

    def finish_report(
        self,
        request_id: str,
        status: str,
        *,
        now: float,
        provider_status: str | None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> bool:
        """`sent` -> `delivered`, `failed` or `unknown`. False when the record is no longer `sent`."""
        sets: dict[str, Any] = {"status": status, "final_at": iso(now), "updated_at": iso(now)}
        if provider_status:
            sets["provider_status"] = provider_status
        if error_code:
            sets["error_code"] = error_code
            sets["error_message"] = error_message or error_code
        return self._update(request_id, sets, "#status = :sent", {":sent": Status.SENT}, remove=(WORK, DUE))

    def postpone_report(self, request_id: str, *, now: float, due: float, provider_status: str | None) -> bool:
        """Still no final report: look again at `due`. False when the record is no longer `sent`."""
        values: dict[str, Any] = {":now": iso(now), ":due": _number(due), ":sent": Status.SENT, ":one": 1}
        update = f"SET updated_at = :now, {DUE} = :due"
        if provider_status:
            update += ", provider_status = :ps"
            values[":ps"] = provider_status
        update += " ADD report_checks :one"
        return self._conditional_update(request_id, update, "#status = :sent", values)[0]

    def resolve_maybe_sent(self, request_id: str, *, now: float, error_message: str) -> bool:
        """A maybe-sent record past its grace period: `unknown` with `outcome_unknown` (README policy)."""
        sets = {
            "status": Status.UNKNOWN,
            "attempt_state": AttemptState.DONE,
            "error_code": "outcome_unknown",
            "error_message": error_message,
            "final_at": iso(now),
            "updated_at": iso(now),
        }
        return self._update(
            request_id,
            sets,
            "#status = :sending AND attempt_state = :maybe",
            {":sending": Status.SENDING, ":maybe": AttemptState.MAYBE_SENT},
            remove=(WORK, DUE),
        )

    def republished(self, request_id: str, *, now: float) -> bool:
        """A held message was published again: take it off the work queue; it stays claimable."""
        return self._update(
            request_id,
            {"updated_at": iso(now)},
            "#status = :sending AND attempt_state = :held",
            {":sending": Status.SENDING, ":held": AttemptState.HELD},
            remove=(WORK, DUE),
        )

    def get(self, request_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key={"request_id": {"S": request_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return _from_dynamo(item) if item else None
