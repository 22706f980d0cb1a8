"""sms-status: what became of a message, as the contract shows it, for producers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import REGION, FakeContext, Stack, sqs_event

from mimsms_simulator import MimSmsSimulator
from smsgw.status import main, status_of


def test_the_record_as_the_contract_shows_it_with_the_phone_masked(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator
) -> None:
    body = json.dumps(
        {"phone": "01712345678", "message": "Your code is 4321", "request_id": "st-1", "metadata": {"order": "A-1"}}
    )
    assert send_handler(sqs_event(body), FakeContext())["batchItemFailures"] == []
    found = status_of("st-1", table=configured.table)
    assert found is not None
    assert (found["request_id"], found["status"], found["phone"]) == ("st-1", "sent", "88017******78")
    assert (found["parts"], found["encoding"], found["metadata"]) == (1, "gsm7", {"order": "A-1"})
    assert found["message_id"]
    for bookkeeping in ("claim_token", "lease_until", "attempt_state", "poll_work", "due_at", "payload"):
        assert bookkeeping not in found
    assert status_of("never-published", table=configured.table) is None


def test_the_console_script(
    send_handler: Any, configured: Stack, simulator: MimSmsSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    body = json.dumps({"phone": "0171234567", "message": "hi", "request_id": "st-2"})  # one digit short
    assert send_handler(sqs_event(body), FakeContext())["batchItemFailures"] == []
    capsys.readouterr()  # the handler's own log lines
    assert main(["st-2", "--table-name", configured.table, "--region", REGION]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["status"], shown["error_code"]) == ("failed", "invalid_phone")
    assert main(["nope", "--table-name", configured.table, "--region", REGION]) == 1
    assert "no record of 'nope'" in capsys.readouterr().err
