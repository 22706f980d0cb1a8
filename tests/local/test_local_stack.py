"""The local tooling as a user runs it: make run, the kept-up stack, and the built artifact under the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import ROOT

from devstack import invoke
from devstack import stack as local
from devstack.motoserver import free_port
from devstack.template import load_template

ENV = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def run_module(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize("dialect", ["official", "generic"])
def test_make_run_ends_with_every_message_where_it_should_be(dialect: str) -> None:
    result = run_module("devstack.run", "--count", "10", "--dialect", dialect, "--timeout", "60")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "RESULT: every message reached the state it should" in out
    assert (
        "10 messages, 6 SMS accepted by the provider, 0 sent twice, 0 refused for the rate limit, 9 status events"
        in out
    )
    for label, status in [
        ("OTP, Bangla", "delivered"),
        ("invalid number", "invalid_phone"),
        ("not JSON", "invalid_request"),
        ("barred subscriber", "barred_subscriber"),
    ]:
        (line,) = [row for row in out.splitlines() if row.startswith(label)]
        assert status in line
        assert line.endswith("yes")


def test_make_run_fails_when_a_message_does_not_end_as_expected(tmp_path: Path) -> None:
    # An unapproved sender ID is refused by the provider: valid by the contract, but it fails, so the run fails.
    messages = tmp_path / "messages.json"
    messages.write_text(json.dumps([{"phone": "01712345678", "message": "hi", "sender_id": "NOTAPPROVED"}]))
    result = run_module("devstack.run", "--messages", str(messages), "--timeout", "30")
    assert result.returncode == 1
    assert "RESULT: some messages did not" in result.stdout


def test_the_local_stack_is_made_from_the_template() -> None:
    template = load_template()
    stack = local.start("generic", speed=1.0)
    try:
        table = stack.client("dynamodb").describe_table(TableName=stack.table)["Table"]
        props = template["Resources"]["MessagesTable"]["Properties"]
        assert table["KeySchema"] == props["KeySchema"]
        made = {index["IndexName"]: index["KeySchema"] for index in table["GlobalSecondaryIndexes"]}
        assert made == {index["IndexName"]: index["KeySchema"] for index in props["GlobalSecondaryIndexes"]}

        sqs = stack.client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=stack.event_source.queue_url, AttributeNames=["All"])[
            "Attributes"
        ]
        queue = template["Resources"]["SendQueue"]["Properties"]
        assert int(attributes["VisibilityTimeout"]) == queue["VisibilityTimeout"]
        assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == queue["RedrivePolicy"]["maxReceiveCount"]
        event = template["Resources"]["SendQueueEventSource"]["Properties"]
        assert stack.event_source.batch_size == event["BatchSize"]

        variables = template["Globals"]["Function"]["Environment"]["Variables"]
        assert set(variables) <= set(stack.environment)
        assert stack.environment["MIMSMS_API"] == "generic"
        assert stack.environment["MIMSMS_BASE_URL"] == stack.simulator.base_url
        assert stack.environment["MESSAGES_TABLE"] == stack.table
        gate = stack.client("ssm").get_parameter(Name=stack.environment["BALANCE_GATE_PARAMETER"])["Parameter"]
        assert gate["Value"] == template["Resources"]["BalanceGateParameter"]["Properties"]["Value"]
        assert stack.poll_interval == 60.0  # rate(1 minute), uncompressed at speed 1
        assert set(template["Outputs"]) <= set(stack.outputs)
    finally:
        stack.stop()


def _wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_kept_up_stack_sends_what_another_program_publishes(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "stack.log").open("w")
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "devstack.run", "--count", "8", "--keep-running", "--moto-port", str(port)],
        cwd=ROOT,
        env=ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(lambda: "Local stack is up" in (tmp_path / "stack.log").read_text(), 90, "the stack")
        endpoint = f"http://127.0.0.1:{port}"
        session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=local.REGION
        )
        sqs = session.client("sqs", endpoint_url=endpoint)
        queue = sqs.get_queue_url(QueueName=f"{local.STACK_NAME}-SendQueue")["QueueUrl"]
        assert queue in (tmp_path / "stack.log").read_text()
        sqs.send_message(
            QueueUrl=queue,
            MessageBody=json.dumps(
                {"phone": "01712345999", "message": "From another program", "request_id": "outside-1"}
            ),
        )
        dynamodb = session.client("dynamodb", endpoint_url=endpoint)

        def delivered() -> bool:
            item = dynamodb.get_item(
                TableName=f"{local.STACK_NAME}-MessagesTable", Key={"request_id": {"S": "outside-1"}}
            ).get("Item")
            return bool(item) and item["status"]["S"] == "delivered"

        _wait_for(delivered, 30, "the published message to be delivered")
        _wait_for(lambda: "outside-1: delivered" in (tmp_path / "stack.log").read_text(), 10, "the stack's report")
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def built() -> Path:
    template = load_template()
    if invoke.runtime_python(template) is None:
        pytest.skip(f"{template['Globals']['Function']['Runtime']} is not installed on this machine")
    if not (invoke.BUILD / "SendSmsFunction" / "app.py").exists():
        subprocess.run(["make", "build"], cwd=ROOT, check=True, capture_output=True)  # noqa: S607
    return invoke.BUILD


@pytest.mark.parametrize(
    ("function", "event", "expected"),
    [
        ("send_sms", "events/send_sms_batch.json", {"batchItemFailures": []}),
        ("send_sms", "events/send_sms_single.json", {"batchItemFailures": []}),
        ("poll_status", "events/poll_status_schedule.json", None),
        ("status_events", "events/status_events_final.json", {"batchItemFailures": []}),
    ],
)
def test_make_invoke_runs_the_built_artifact(
    built: Path, function: str, event: str, expected: Any, tmp_path: Path
) -> None:
    output = tmp_path / "response.json"
    result = run_module("devstack.invoke", function, event, "--emulator", "--output", str(output), timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "START RequestId" in result.stdout  # it really ran under the emulator
    response = json.loads(output.read_text())
    if expected is not None:
        assert response == expected
    else:
        assert response["balance"] == 1000.0
        assert response["gate_open"] is True


def test_make_soak_holds_the_limits_with_several_consumer_processes() -> None:
    result = run_module("devstack.soak", "--count", "150", "--consumers", "3", timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "RESULT: no duplicate, no loss, no dead letter, no rate refusal" in out
    assert "refused for the rate limit 0" in out
    (otp,) = [line.split() for line in out.splitlines() if line.startswith("OTP ")]
    assert (otp[1], otp[5], otp[6]) == ("15", "0", "0")  # 15 OTPs, none unsettled, none sent twice


def test_make_soak_sends_a_bulk_campaign_number_by_number_in_the_generic_dialect() -> None:
    result = run_module(
        "devstack.soak", "--count", "150", "--consumers", "3", "--bulk", "50", "--dialect", "generic", timeout=400
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Published 150 messages in 18 requests" in out  # 135 numbers in 3 bulk requests, 15 OTPs
    assert "RESULT: no duplicate, no loss, no dead letter, no rate refusal" in out
    (campaign,) = [line.split() for line in out.splitlines() if line.startswith("campaign ")]
    assert (campaign[1], campaign[5], campaign[6]) == ("135", "0", "0")  # none unsettled, none sent twice


def test_make_stack_ends_cleanly_on_ctrl_c() -> None:
    """Ctrl-C reaches the terminal's whole process group: the stack's servers must not die under the loop."""
    import signal
    import socket

    moto_port = free_port()
    process = subprocess.Popen(  # noqa: S603 - as `make stack` runs it, in a process group of its own
        [sys.executable, "-m", "devstack.run", "--keep-running", "--count", "4", "--moto-port", str(moto_port)],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Local stack is up" in line or not line:
            break
    assert any("Local stack is up" in line for line in lines), "".join(lines)[-3000:]
    os.killpg(process.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
    output = "".join(lines) + process.communicate(timeout=60)[0]
    assert "Traceback" not in output, output[-3000:]
    assert process.returncode == 0, output[-3000:]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", moto_port)) != 0  # moto's server was stopped, not left behind
