"""The typed status record: what the table holds, read back into enums and plain numbers."""

from decimal import Decimal

import pytest

from smsgw.deferral import work_of
from smsgw.records import AttemptState, DueWork, Status, StatusRecord, WorkKind


def test_an_item_reads_into_typed_fields() -> None:
    item = {
        "request_id": "r-1",
        "status": "sent",
        "attempt_state": "done",
        "poll_work": "report",
        "due_at": Decimal("1764000060.5"),
        "attempts": Decimal("2"),
        "parts": Decimal("1"),
        "cost": Decimal("0.25"),
        "lease_until": Decimal("1764000030"),
        "metadata": {"order": "A-1", "tries": Decimal("3")},
        "expires_at": Decimal("1766592000"),  # TTL: bookkeeping this code never reads
    }
    record = StatusRecord.from_item(item)
    assert (record.status, record.attempt_state, record.poll_work) == (Status.SENT, AttemptState.DONE, WorkKind.REPORT)
    assert (record.attempts, record.parts, record.cost, record.due_at) == (2, 1, 0.25, 1764000060.5)
    assert isinstance(record.attempts, int)
    assert record.lease_until == 1764000030.0
    assert record.metadata == {"order": "A-1", "tries": 3}
    assert record.report_checks == 0
    assert not record.final


def test_absent_bookkeeping_reads_as_none_or_zero() -> None:
    record = StatusRecord.from_item({"request_id": "r-2", "status": "failed", "error_code": "invalid_request"})
    assert record.final
    assert (record.attempt_state, record.claim_token, record.attempts, record.lease_until) == (None, None, 0, 0.0)


def test_a_status_outside_the_contract_is_refused() -> None:
    with pytest.raises(ValueError, match="'queued' is not a valid Status"):
        StatusRecord.from_item({"request_id": "r-3", "status": "queued"})


def test_deferred_work_has_one_shape_and_its_kind_says_where_it_waits() -> None:
    on_record = {WorkKind.REPORT, WorkKind.UNRESOLVED, WorkKind.HELD, WorkKind.SCHEDULED}
    assert {kind for kind in WorkKind if kind.on_record} == on_record
    # A message in its queue carries the same two fields as message attributes ...
    attributes = {"work": {"stringValue": "turn"}, "due_at": {"stringValue": "1764000061.250"}}
    assert work_of(attributes) == DueWork(WorkKind.TURN, 1764000061.25)
    # ... and what belongs on a record, or cannot be read, is no work for the queue.
    assert work_of({"work": {"stringValue": "report"}, "due_at": {"stringValue": "1764000061"}}) is None
    assert work_of({"work": {"stringValue": "turn"}, "due_at": {"stringValue": "soon"}}) is None
    assert work_of({"work": {"stringValue": "turn"}, "due_at": {"stringValue": "nan"}}) is None
    assert work_of(None) is None
