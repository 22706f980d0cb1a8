"""The status table (README, "The status record"): the only module that touches it (the limiter has the control table).

The status record is also the idempotency record. `claim` is one conditional write that either
creates the record as `sending` or takes back a record whose previous attempt certainly did not reach
the provider (`attempt_state` released or held). Anything else is a duplicate and is not sent again.
Every later write is conditional on the claim token, so a record only ever moves forward. Every change
but the record of an invalid request (a conditional put) goes through one primitive, `_transition`.

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

from smsgw.message import BulkRequest, SmsRequest, bounded
from smsgw.records import FINAL_STATUSES, AttemptState, CancelResult, DueWork, Status, StatusRecord, WorkKind

TTL_ATTRIBUTE = "expires_at"
# The work queue: a sparse global secondary index on (work, due_at). Only records that poll_status
# still has to look at carry `poll_work`; a final write removes it, so the index never holds history.
WORK_INDEX, WORK, DUE = "WorkIndex", "poll_work", "due_at"
# The numbers of a bulk request: a sparse index on (parent_id, request_id), keys only, so each child's
# record is written to it once, when it is created.
PARENT_INDEX, PARENT = "ParentIndex", "parent_id"
BULK = "bulk"  # the `kind` of a bulk request's own record

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


# The records poll_status publishes again when their work is due, and the state each must still be in.
_PUBLISHED_FROM: dict[WorkKind, tuple[str, dict[str, Any]]] = {
    WorkKind.HELD: (
        "#status = :sending AND attempt_state = :held",
        {":sending": Status.SENDING, ":held": AttemptState.HELD},
    ),
    WorkKind.SCHEDULED: ("#status = :scheduled", {":scheduled": Status.SCHEDULED}),
}


def _pending(work: DueWork) -> dict[str, Any]:
    """The attributes that put `work` in the record's work index."""
    if not work.kind.on_record:
        raise ValueError(f"{work.kind} work waits in its queue, not on the record")
    return {WORK: work.kind, DUE: _number(work.due_at)}


@dataclass(frozen=True, eq=False)
class Claim:
    """The result of `claim`: a token to send under, or the record that already owns this request_id."""

    token: str | None
    existing: StatusRecord | None = None
    attempts: int = 0  # provider attempts this claim makes it, this one included


class MessageStore:
    def __init__(self, client: Any, table: str, retention_days: int) -> None:
        self._client = client
        self._table = table
        self._retention_seconds = retention_days * 86400

    def _transition(
        self,
        request_id: str,
        *,
        when: str,
        when_values: dict[str, Any],
        sets: dict[str, Any],
        sets_if_absent: dict[str, Any] | None = None,
        add: dict[str, int] | None = None,
        remove: tuple[str, ...] = (),
    ) -> tuple[bool, dict[str, Any]]:
        """The one way a record changes: one conditional UpdateItem, applied only when `when` holds.

        SET `sets` (and `sets_if_absent` where the attribute is missing), ADD `add`, REMOVE `remove`.
        Returns (True, the attributes it set) or (False, the record as it is, {} when there is none).
        """
        names: dict[str, str] = {"#status": "status"}  # `when` may name the status (a reserved word)
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

    def claim(
        self, request: SmsRequest, *, now: float, lease_until: float, resolve_at: float, sqs_message_id: str
    ) -> Claim:
        """Create or take back the record as this attempt's. It is in the work index as unresolved from
        `resolve_at` (after the lease) on, in the same write: an attempt that dies before it records an
        outcome (a timeout, a crash) still leaves work that poll_status resolves, redelivered or not."""
        token = uuid.uuid4().hex
        sets: dict[str, Any] = {
            "status": Status.SENDING,
            "phone": request.phone,
            "parts": request.segmentation.parts,
            "encoding": request.segmentation.encoding,
            "priority": request.priority,
            "type": request.type,
            "metadata": request.metadata,
            "sqs_message_id": sqs_message_id,
            "attempt_state": AttemptState.IN_FLIGHT,
            "claim_token": token,
            "lease_until": _number(lease_until),
            "updated_at": iso(now),
            TTL_ATTRIBUTE: int(now) + self._retention_seconds,
            **_pending(DueWork(WorkKind.UNRESOLVED, resolve_at)),
        }
        optional = {
            "sender_id": request.sender_id,
            "campaign_id": request.campaign_id,
            "schedule_time": request.schedule_time.isoformat() if request.schedule_time else None,
            PARENT: request.parent_id,
        }
        sets.update({name: value for name, value in optional.items() if value is not None})
        claimed, item = self._transition(
            request.request_id,
            # A scheduled record is taken when its message comes back due (the send path checks the time).
            when="attribute_not_exists(request_id) OR #status = :scheduled"
            " OR (#status = :sending AND attempt_state IN (:released, :held))",
            when_values={
                ":scheduled": Status.SCHEDULED,
                ":sending": Status.SENDING,
                ":released": AttemptState.RELEASED,
                ":held": AttemptState.HELD,
            },
            sets=sets,
            sets_if_absent={"created_at": iso(now)},
            add={"attempts": 1},
            remove=("payload",),
        )
        if not claimed:
            return Claim(token=None, existing=StatusRecord.from_item(item) if item else None)
        return Claim(token=token, attempts=int(item.get("attempts", 1)))

    def schedule(self, request: SmsRequest | BulkRequest, *, now: float, payload: str) -> StatusRecord | None:
        """Record a message (or a bulk request) due later as `scheduled`, its body kept, in the work index
        at its schedule_time.

        No provider call and no claim: poll_status publishes it again when it is due, and that delivery
        claims it like any other. Returns None when it was recorded; else the record this request_id
        already has (a duplicate, however early or late)."""
        if request.schedule_time is None:
            raise ValueError("only a message with a schedule_time can be scheduled")
        head = request.children[0] if isinstance(request, BulkRequest) else request
        described: dict[str, Any] = (
            {"kind": BULK, "children": len(request.children), "children_invalid": len(request.invalid)}
            if isinstance(request, BulkRequest)
            else {"phone": head.phone, "parts": head.segmentation.parts, "encoding": head.segmentation.encoding}
        )
        item = {
            "request_id": request.request_id,
            "status": Status.SCHEDULED,
            **described,
            "priority": head.priority,
            "type": head.type,
            "metadata": head.metadata,
            "schedule_time": request.schedule_time.isoformat(),
            "payload": payload,
            "attempts": 0,
            "created_at": iso(now),
            "updated_at": iso(now),
            TTL_ATTRIBUTE: int(request.schedule_time.timestamp()) + self._retention_seconds,
            **_pending(DueWork(WorkKind.SCHEDULED, request.schedule_time.timestamp())),
        }
        item.update({k: v for k, v in (("sender_id", head.sender_id), ("campaign_id", head.campaign_id)) if v})
        existing = self._create(item)
        if existing is None:
            return None
        return StatusRecord.from_item(existing) if existing else self.get(request.request_id)

    def _create(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """Put `item` only if its request_id has no record yet: None when created, else that record ({} if
        DynamoDB did not return it)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_values(item),
                ConditionExpression="attribute_not_exists(request_id)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return _from_dynamo(exc.response.get("Item") or {})
        return None

    def record_invalid(
        self,
        request_id: str,
        error_code: str,
        error_message: str,
        *,
        now: float,
        sqs_message_id: str,
        parent_id: str | None = None,
    ) -> bool:
        """Record a request (or one number of a bulk request) that breaks the contract as `failed`. False
        when the request_id already has a record."""
        item = {
            "request_id": request_id,
            "status": Status.FAILED,
            "error_code": error_code,
            "error_message": bounded(error_message),
            "attempts": 0,
            "created_at": iso(now),
            "updated_at": iso(now),
            "final_at": iso(now),
            "attempt_state": AttemptState.DONE,
            "sqs_message_id": sqs_message_id,
            TTL_ATTRIBUTE: int(now) + self._retention_seconds,
        }
        if parent_id is not None:
            item[PARENT] = parent_id
        return self._create(item) is None

    def open_bulk(self, bulk: BulkRequest, *, now: float, sqs_message_id: str) -> tuple[bool, StatusRecord | None]:
        """A bulk request due now: its own record (`kind` bulk) becomes `sending` while its numbers are
        handed to their chunks. Created, or taken from `scheduled`, or taken again from an earlier delivery
        that stopped before it had handed them all on (the chunks are idempotent: each number is claimed).
        (False, the record) when it was handed on already, or cancelled."""
        head = bulk.children[0] if bulk.children else None
        sets: dict[str, Any] = {
            "status": Status.SENDING,
            "kind": BULK,
            "children": len(bulk.children),
            "children_invalid": len(bulk.invalid),
            # Its numbers, before any chunk is published: a cancel stops each by its own record.
            "phones": [child.phone for child in bulk.children],
            "priority": bulk.priority,
            "attempt_state": AttemptState.IN_FLIGHT,
            "sqs_message_id": sqs_message_id,
            "updated_at": iso(now),
            TTL_ATTRIBUTE: int(now) + self._retention_seconds,
        }
        if head is not None:
            sets.update({"type": head.type, "metadata": head.metadata})
            sets.update({k: v for k, v in (("sender_id", head.sender_id), ("campaign_id", head.campaign_id)) if v})
        opened, item = self._transition(
            bulk.request_id,
            when="attribute_not_exists(request_id) OR #status = :scheduled"
            " OR (#status = :sending AND kind = :bulk AND attempt_state = :in_flight)",
            when_values={
                ":scheduled": Status.SCHEDULED,
                ":sending": Status.SENDING,
                ":bulk": BULK,
                ":in_flight": AttemptState.IN_FLIGHT,
            },
            sets=sets,
            sets_if_absent={"created_at": iso(now), "attempts": 0},
            remove=(WORK, DUE, "payload"),
        )
        if opened:
            return True, None
        return False, StatusRecord.from_item(item) if item else self.get(bulk.request_id)

    def fail_bulk(self, request_id: str, *, now: float, error_code: str, error_message: str) -> bool:
        """A bulk request that cannot go at all (past its valid_until when due): `failed`, no number sent."""
        sets = {
            "status": Status.FAILED,
            "attempt_state": AttemptState.DONE,
            "error_code": error_code,
            "error_message": bounded(error_message),
            "final_at": iso(now),
            "updated_at": iso(now),
        }
        return self._update(
            request_id, sets, "#status = :sending AND kind = :bulk", {":sending": Status.SENDING, ":bulk": BULK}
        )

    def handed_on(self, request_id: str, *, now: float) -> bool:
        """Every number of the bulk request is in a chunk of its own queue: a later copy is a duplicate."""
        return self._update(
            request_id,
            {"attempt_state": AttemptState.DONE, "updated_at": iso(now)},
            "#status = :sending AND kind = :bulk",
            {":sending": Status.SENDING, ":bulk": BULK},
        )

    def children(self, parent_id: str, page_size: int = 100) -> list[StatusRecord]:
        """Every number's record of a bulk request, in request_id order (the index keeps keys only)."""
        ids: list[str] = []
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": PARENT_INDEX,
                "KeyConditionExpression": "#parent = :parent",
                "ExpressionAttributeNames": {"#parent": PARENT},
                "ExpressionAttributeValues": _values({":parent": parent_id}),
                "Limit": page_size,
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self._client.query(**kwargs)
            ids.extend(item["request_id"]["S"] for item in page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        items, unread = self._batch_get(ids, ConsistentRead=True)
        if unread:
            raise RuntimeError(f"DynamoDB left {len(unread)} of the numbers' records unread; ask again")
        records = {record.request_id: record for record in (StatusRecord.from_item(_from_dynamo(i)) for i in items)}
        return [records[rid] for rid in sorted(records)]

    def _update(
        self,
        request_id: str,
        sets: dict[str, Any],
        condition: str,
        condition_values: dict[str, Any],
        remove: tuple[str, ...] = (),
        add: dict[str, int] | None = None,
    ) -> bool:
        """`_transition`, answering only whether it applied."""
        return self._transition(
            request_id, when=condition, when_values=condition_values, sets=sets, add=add, remove=remove
        )[0]

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
        """`sent`, and in the work index for a report look-up from `report_due` on (None: not tracked)."""
        sets: dict[str, Any] = {
            "status": Status.SENT,
            "attempt_state": AttemptState.DONE,
            "sent_at": iso(now),
            "updated_at": iso(now),
            "cost": _number(cost),
        }
        remove: tuple[str, ...] = ("error_code", "error_message")
        if report_due is not None:
            sets.update(_pending(DueWork(WorkKind.REPORT, report_due)))
        else:
            sets["tracking"] = "off"
            remove += (WORK, DUE)
        if message_id:
            sets["message_id"] = message_id
        if provider_status:
            sets["provider_status"] = provider_status
        return self._finish_attempt(request_id, token, sets, remove=remove)

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
            "error_message": bounded(error_message),
            "final_at": iso(now),
            "updated_at": iso(now),
        }
        if provider_status:
            sets["provider_status"] = provider_status
        return self._finish_attempt(
            request_id, token, sets, remove=(WORK, DUE), add=None if attempted else {"attempts": -1}
        )

    def release(self, request_id: str, token: str, *, now: float, error_code: str, error_message: str) -> bool:
        """The attempt certainly did not reach the provider: let the next delivery of the message claim it.

        Its pending work is that message, back in its queue (a retry) or in the dead-letter queue."""
        sets = {
            "attempt_state": AttemptState.RELEASED,
            "error_code": error_code,
            "error_message": bounded(error_message),
            "updated_at": iso(now),
        }
        return self._finish_attempt(request_id, token, sets, remove=(WORK, DUE))

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
            "error_message": bounded(error_message),
            "updated_at": iso(now),
            "payload": payload,
            **_pending(DueWork(WorkKind.HELD, now)),
        }
        return self._finish_attempt(request_id, token, sets, add=None if attempted else {"attempts": -1})

    def mark_maybe_sent(
        self, request_id: str, token: str, *, now: float, error_message: str, resolve_at: float
    ) -> bool:
        """The provider may have sent it: keep `sending`, never resend blindly (README: maybe-sent policy)."""
        sets = {
            "attempt_state": AttemptState.MAYBE_SENT,
            "error_code": "maybe_sent",
            "error_message": bounded(error_message),
            "updated_at": iso(now),
            **_pending(DueWork(WorkKind.UNRESOLVED, resolve_at)),
        }
        return self._finish_attempt(request_id, token, sets)

    # --- the work queue: a sparse index of records that still need poll_status -------------------
    def due(self, work: WorkKind, now: float, page_size: int = 100) -> Iterator[StatusRecord]:
        """Records waiting for `work` whose time has come, oldest due first; reads only those records."""
        start: dict[str, Any] | None = None
        while True:
            items, start = self.due_page(work, now, page_size, start)
            yield from items
            if start is None:
                return

    def due_page(
        self, work: WorkKind, now: float, limit: int, start: dict[str, Any] | None = None
    ) -> tuple[list[StatusRecord], dict[str, Any] | None]:
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
        records = [StatusRecord.from_item(_from_dynamo(item)) for item in page.get("Items", [])]
        return records, page.get("LastEvaluatedKey")

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
            sets["error_message"] = bounded(error_message or error_code)
        return self._update(request_id, sets, "#status = :sent", {":sent": Status.SENT}, remove=(WORK, DUE))

    def postpone_report(self, request_id: str, *, now: float, due: float, provider_status: str | None) -> bool:
        """Still no final report: look again at `due`. False when the record is no longer `sent`."""
        sets: dict[str, Any] = {"updated_at": iso(now), **_pending(DueWork(WorkKind.REPORT, due))}
        if provider_status:
            sets["provider_status"] = provider_status
        return self._update(request_id, sets, "#status = :sent", {":sent": Status.SENT}, add={"report_checks": 1})

    def resolve_maybe_sent(self, request_id: str, *, now: float, error_message: str) -> bool:
        """A maybe-sent record past its grace period, or an attempt that ended without recording its outcome
        (still in flight after its lease): `unknown` with `outcome_unknown` (README policy)."""
        sets = {
            "status": Status.UNKNOWN,
            "attempt_state": AttemptState.DONE,
            "error_code": "outcome_unknown",
            "error_message": bounded(error_message),
            "final_at": iso(now),
            "updated_at": iso(now),
        }
        return self._update(
            request_id,
            sets,
            "#status = :sending AND (attempt_state = :maybe OR (attempt_state = :in_flight AND lease_until < :now))",
            {
                ":sending": Status.SENDING,
                ":maybe": AttemptState.MAYBE_SENT,
                ":in_flight": AttemptState.IN_FLIGHT,
                ":now": _number(now),
            },
            remove=(WORK, DUE, "lease_until"),
        )

    def published_again(self, request_id: str, kind: WorkKind, *, now: float) -> bool:
        """A held or scheduled message was published again: off the work queue; its delivery claims it."""
        when, values = _PUBLISHED_FROM[kind]
        return self._update(request_id, {"updated_at": iso(now)}, when, values, remove=(WORK, DUE))

    def cancel(
        self,
        request_id: str,
        *,
        now: float,
        answer_too_late: bool = True,
        parent_id: str | None = None,
        phone: str | None = None,
    ) -> tuple[CancelResult | None, StatusRecord | None]:
        """Cancel a message that has not gone to the provider: scheduled, held, released for a retry, or not
        seen yet (waiting in its queue for capacity, or not yet arrived: the `cancelled` record then stops
        it when it comes). One conditional write; its later copies find a final record and are duplicates.

        Returns (CANCELLED, None); (TOO_LATE, the record) when it had gone or may have (the cancel is
        written on the record, which goes on as it was); (None, the record) when this cancel was already
        answered (a copy of it, or another cancel of the same message), or when it is too late and
        `answer_too_late` is off (a number of a cancelled bulk request that had gone), or when the record is
        a bulk request whose numbers are to be cancelled one by one first (`cancels_by_number`). A number of
        a bulk request cancelled before its record exists gets one that names its request and phone."""
        cancelled, item = self._cancel(
            request_id,
            now=now,
            # A bulk request handed on before its numbers were kept on its record (sending, no phones): its
            # chunks cancel those of its numbers that have not gone (their records say which went).
            when="attribute_not_exists(request_id) OR #status = :scheduled"
            " OR (#status = :sending AND (attempt_state IN (:released, :held)"
            " OR (kind = :bulk AND attribute_not_exists(phones))))",
            when_values={
                ":scheduled": Status.SCHEDULED,
                ":sending": Status.SENDING,
                ":released": AttemptState.RELEASED,
                ":held": AttemptState.HELD,
                ":bulk": BULK,
            },
            message="cancelled by its producer before it went to the provider",
            created={name: value for name, value in ((PARENT, parent_id), ("phone", phone)) if value is not None},
        )
        if cancelled:
            return CancelResult.CANCELLED, None
        existing = StatusRecord.from_item(item) if item else self.get(request_id)
        if existing is None or existing.cancel_requested_at is not None or not answer_too_late:
            return None, existing
        if existing.cancels_by_number:  # the caller cancels its numbers first, then answers (cancel_bulk)
            return None, existing
        return self._too_late(request_id, now=now), existing

    def cancel_bulk(self, request_id: str, *, now: float, stopped: int, total: int) -> CancelResult | None:
        """The answer to a cancel of a bulk request whose numbers were each cancelled first (`stopped` of
        `total` had not gone): `cancelled` when any was stopped, else too late. None: answered already."""
        if not stopped:
            return self._too_late(request_id, now=now)
        gone = f"; {total - stopped} of its {total} numbers had gone and go on" if stopped < total else ""
        cancelled, _ = self._cancel(
            request_id,
            now=now,
            when="#status = :sending AND kind = :bulk",
            when_values={":sending": Status.SENDING, ":bulk": BULK},
            message=f"cancelled by its producer before its numbers went to the provider{gone}",
        )
        return CancelResult.CANCELLED if cancelled else None

    def _cancel(
        self,
        request_id: str,
        *,
        now: float,
        when: str,
        when_values: dict[str, Any],
        message: str,
        created: dict[str, Any] | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        """To `cancelled` when `when` holds; `created` is written only where the record had none of it."""
        return self._transition(
            request_id,
            when=when,
            when_values=when_values,
            sets={
                "status": Status.CANCELLED,
                "attempt_state": AttemptState.DONE,
                "error_code": "cancelled",
                "error_message": message,
                "cancel_requested_at": iso(now),
                "cancel_result": CancelResult.CANCELLED,
                "final_at": iso(now),
                "updated_at": iso(now),
            },
            sets_if_absent={
                "created_at": iso(now),
                "attempts": 0,
                TTL_ATTRIBUTE: int(now) + self._retention_seconds,
                **(created or {}),
            },
            remove=(WORK, DUE, "payload", "lease_until", "claim_token"),
        )

    def _too_late(self, request_id: str, *, now: float) -> CancelResult | None:
        """The cancel came after the message went (or may have): written on its record, which goes on."""
        refused, _ = self._transition(
            request_id,
            when="attribute_exists(request_id) AND attribute_not_exists(cancel_requested_at) AND #status <> :cancelled",
            when_values={":cancelled": Status.CANCELLED},
            sets={"cancel_requested_at": iso(now), "cancel_result": CancelResult.TOO_LATE, "updated_at": iso(now)},
        )
        return CancelResult.TOO_LATE if refused else None

    def finished(self, request_ids: list[str]) -> set[str]:
        """Which of these request_ids have a final record (a cancelled one, say): one BatchGetItem for a
        batch, reading only the key and the status. Keys DynamoDB still leaves unprocessed count as not final
        (their messages then take capacity and meet the final record at their claim)."""
        items, _ = self._batch_get(request_ids, ProjectionExpression="request_id, #status",
                                   ExpressionAttributeNames={"#status": "status"})  # fmt: skip
        return {item["request_id"]["S"] for item in items if item.get("status", {}).get("S") in FINAL_STATUSES}

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
