"""Work that waits on a record (the work index): scheduled messages, reports to look up, outcomes to resolve."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from smsgw.errors import ErrorCode
from smsgw.message import BulkRequest, SmsRequest, bounded
from smsgw.records import DueWork, Status, StatusRecord, WorkKind
from smsgw.store.attempts import Attempts
from smsgw.store.base import (
    DUE,
    TTL_ATTRIBUTE,
    WORK,
    WORK_INDEX,
    _from_dynamo,
    _number,
    _pending,
    _values,
    final,
    iso,
)
from smsgw.transitions import BULK, Change

# The records poll_status publishes again when their work is due, and the change that takes them off the work queue.
_PUBLISHED_BY = {WorkKind.HELD: Change.PUBLISH_HELD, WorkKind.SCHEDULED: Change.PUBLISH_SCHEDULED}


class PendingWork(Attempts):
    """Records with work due in the work index, and the writes that do or postpone that work."""

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
        return self._update(request_id, Change.REPORT, sets, remove=(WORK, DUE))

    def postpone_report(self, request_id: str, *, now: float, due: float, provider_status: str | None) -> bool:
        """Still no final report: look again at `due`. False when the record is no longer `sent`."""
        sets: dict[str, Any] = {"updated_at": iso(now), **_pending(DueWork(WorkKind.REPORT, due))}
        if provider_status:
            sets["provider_status"] = provider_status
        return self._update(request_id, Change.REPORT, sets, add={"report_checks": 1})

    def resolve_maybe_sent(self, request_id: str, *, now: float, error_message: str) -> bool:
        """A maybe-sent record past its grace period, or an attempt that ended without recording its outcome
        (still in flight after its lease): `unknown` with `outcome_unknown` (the contract's policy)."""
        sets = final(Status.UNKNOWN, now, ErrorCode.OUTCOME_UNKNOWN, error_message)
        return self._update(request_id, Change.RESOLVE, sets, remove=(WORK, DUE, "lease_until"), now=now)

    def published_again(self, request_id: str, kind: WorkKind, *, now: float) -> bool:
        """A held or scheduled message was published again: off the work queue; its delivery claims it."""
        return self._update(request_id, _PUBLISHED_BY[kind], {"updated_at": iso(now)}, remove=(WORK, DUE))
