"""A send attempt on the status record: claimed, then sent, failed, released, held or maybe-sent."""

from __future__ import annotations

import uuid
from typing import Any

from smsgw.errors import ErrorCode
from smsgw.message import SmsRequest, bounded
from smsgw.records import AttemptState, DueWork, Status, StatusRecord, WorkKind
from smsgw.store.base import (
    DUE,
    PARENT,
    TTL_ATTRIBUTE,
    WORK,
    Claim,
    TableBase,
    _number,
    _pending,
    final,
    iso,
)
from smsgw.transitions import Change

# What a settled attempt no longer has: its lease.
SETTLED = ("lease_until",)


class Attempts(TableBase):
    """A send attempt's writes, each conditional on the claim that owns the record (Change.SETTLE)."""

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
            Change.CLAIM,
            sets=sets,
            sets_if_absent={"created_at": iso(now)},
            add={"attempts": 1},
            remove=("payload",),
        )
        if not claimed:
            return Claim(token=None, existing=StatusRecord.from_item(item) if item else None)
        return Claim(token=token, attempts=int(item.get("attempts", 1)))

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
        return self._update(request_id, Change.SETTLE, sets, remove=(*remove, *SETTLED), token=token)

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
        sets = final(Status.FAILED, now, error_code, error_message)
        if provider_status:
            sets["provider_status"] = provider_status
        uncounted = None if attempted else {"attempts": -1}
        return self._update(request_id, Change.SETTLE, sets, remove=(WORK, DUE, *SETTLED), add=uncounted, token=token)

    def release(self, request_id: str, token: str, *, now: float, error_code: str, error_message: str) -> bool:
        """The attempt certainly did not reach the provider: let the next delivery of the message claim it.

        Its pending work is that message, back in its queue (a retry) or in the dead-letter queue."""
        sets = {
            "attempt_state": AttemptState.RELEASED,
            "error_code": error_code,
            "error_message": bounded(error_message),
            "updated_at": iso(now),
        }
        return self._update(request_id, Change.SETTLE, sets, remove=(WORK, DUE, *SETTLED), token=token)

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
        uncounted = None if attempted else {"attempts": -1}
        return self._update(request_id, Change.SETTLE, sets, remove=SETTLED, add=uncounted, token=token)

    def mark_maybe_sent(
        self, request_id: str, token: str, *, now: float, error_message: str, resolve_at: float
    ) -> bool:
        """The provider may have sent it: keep `sending`, never resend blindly (the contract's maybe-sent policy)."""
        sets = {
            "attempt_state": AttemptState.MAYBE_SENT,
            "error_code": ErrorCode.MAYBE_SENT,
            "error_message": bounded(error_message),
            "updated_at": iso(now),
            **_pending(DueWork(WorkKind.UNRESOLVED, resolve_at)),
        }
        return self._update(request_id, Change.SETTLE, sets, remove=SETTLED, token=token)
