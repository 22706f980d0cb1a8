"""The state machine is the table: records only move forward, and the store writes only what it allows."""

from __future__ import annotations

import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from devstack import template as devstack_template
from smsgw.records import FINAL_STATUSES, AttemptState, Status
from smsgw.store import MessageStore
from smsgw.store.base import condition
from smsgw.transitions import RANK, TRANSITIONS, Change

STORE = Path(__file__).resolve().parents[2] / "layers" / "sms_common" / "smsgw" / "store"


@pytest.mark.parametrize("change", list(Change))
def test_every_change_moves_a_record_forward_only(change: Change) -> None:
    transition = TRANSITIONS[change]
    for start in transition.sources:
        assert all(RANK[status] >= RANK[start.status] for status in transition.writes), (change, start)
        if start.status in FINAL_STATUSES:  # a final record changes no more: only a late cancel is noted on it
            assert transition.writes == frozenset(), (change, start)


def test_only_a_record_certainly_not_sent_is_claimed_again() -> None:
    """The duplicate rule: an attempt in flight, maybe sent or done is never taken by another claim."""
    states = {state for start in TRANSITIONS[Change.CLAIM].sources for state in start.attempt}
    assert states == {AttemptState.RELEASED, AttemptState.HELD}
    assert {start.status for start in TRANSITIONS[Change.CLAIM].sources} == {None, Status.SCHEDULED, Status.SENDING}


@pytest.mark.parametrize("change", list(Change))
def test_each_condition_names_only_the_values_it_carries_or_asks_for(change: Change) -> None:
    when, values = condition(change)
    named = set(re.findall(r":\w+", when))
    assert named - set(values) <= {":token", ":now"}
    assert set(values) <= named


def test_every_change_in_the_table_is_written_by_the_store() -> None:
    source = "\n".join(module.read_text() for module in STORE.glob("*.py"))
    assert {change for change in Change if f"Change.{change.name}" in source} == set(Change)


def test_the_store_refuses_a_status_its_change_does_not_allow() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="ap-southeast-1")
        template = devstack_template.load_template(Path(__file__).resolve().parents[2] / "template.yaml")
        devstack_template.create_table(client, template, "messages-unit")
        store = MessageStore(client, "messages-unit", retention_days=1)
        with pytest.raises(ValueError, match="may not set the status sending"):
            store._transition("r-1", Change.REPORT, sets={"status": Status.SENDING})
        with pytest.raises(ValueError, match="compares with :token"):
            store._transition("r-1", Change.SETTLE, sets={"status": Status.SENT})
        assert store.get("r-1") is None
