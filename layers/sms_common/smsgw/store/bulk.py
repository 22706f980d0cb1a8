"""A bulk request's own record, and its numbers' records."""

from __future__ import annotations

from typing import Any

from smsgw.message import BulkRequest
from smsgw.records import AttemptState, Status, StatusRecord
from smsgw.store.base import (
    DUE,
    PARENT,
    PARENT_INDEX,
    TTL_ATTRIBUTE,
    WORK,
    _from_dynamo,
    _values,
    final,
    iso,
)
from smsgw.store.work import PendingWork
from smsgw.transitions import BULK, Change


class BulkRecords(PendingWork):
    """A bulk request's own record: opened, handed on, failed; and the records of its numbers."""

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
            Change.OPEN_BULK,
            sets=sets,
            sets_if_absent={"created_at": iso(now), "attempts": 0},
            remove=(WORK, DUE, "payload"),
        )
        if opened:
            return True, None
        return False, StatusRecord.from_item(item) if item else self.get(bulk.request_id)

    def fail_bulk(self, request_id: str, *, now: float, error_code: str, error_message: str) -> bool:
        """A bulk request that cannot go at all (past its valid_until when due): `failed`, no number sent."""
        return self._update(request_id, Change.BULK_PROGRESS, final(Status.FAILED, now, error_code, error_message))

    def handed_on(self, request_id: str, *, now: float) -> bool:
        """Every number of the bulk request is in a chunk of its own queue: a later copy is a duplicate."""
        return self._update(
            request_id, Change.BULK_PROGRESS, {"attempt_state": AttemptState.DONE, "updated_at": iso(now)}
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
