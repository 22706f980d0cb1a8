"""Cancels: a message not yet gone ends cancelled; too late is written on its record, once."""

from __future__ import annotations

from typing import Any

from smsgw.errors import ErrorCode
from smsgw.records import CancelResult, Status, StatusRecord
from smsgw.store.base import (
    DUE,
    PARENT,
    TTL_ATTRIBUTE,
    WORK,
    final,
    iso,
)
from smsgw.store.bulk import BulkRecords
from smsgw.transitions import Change


class MessageStore(BulkRecords):
    """The status table (docs/contract.md, "The status record"), changed only through conditional transitions."""

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
            Change.CANCEL,
            now=now,
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
            Change.BULK_PROGRESS,
            now=now,
            message=f"cancelled by its producer before its numbers went to the provider{gone}",
        )
        return CancelResult.CANCELLED if cancelled else None

    def _cancel(
        self,
        request_id: str,
        change: Change,
        *,
        now: float,
        message: str,
        created: dict[str, Any] | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        """To `cancelled` by `change`; `created` is written only where the record had none of it."""
        return self._transition(
            request_id,
            change,
            sets={
                **final(Status.CANCELLED, now, ErrorCode.CANCELLED, message),
                "cancel_requested_at": iso(now),
                "cancel_result": CancelResult.CANCELLED,
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
            Change.TOO_LATE,
            sets={"cancel_requested_at": iso(now), "cancel_result": CancelResult.TOO_LATE, "updated_at": iso(now)},
        )
        return CancelResult.TOO_LATE if refused else None
