"""Shared fixtures: a fake AWS (moto), the provider simulator on loopback, and the send path wired to both."""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack import template as devstack_template
from devstack.atomic_moto import serialise_dynamodb_writes
from devstack.lambdas import load_handler
from devstack.streams import StreamEventSource, filters_of, streams_client
from mimsms_simulator import Account, MimSmsSimulator, ProviderState
from smsgw import runtime
from smsgw.deferral import work_of
from smsgw.records import DueWork, WorkKind

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
TEMPLATE = ROOT / "template.yaml"
REGION = "ap-southeast-1"
SECRET_NAME = "test/mimsms"
USERNAME, API_KEY, PASSWORD = "ops@example.com", "sim-key-3f9a8c1d2e7b4a60", "sim-pass-77d1e0c4"
SENDER_ID = "MIMSMS"
GATE_PARAMETER = "/sms-gateway-test/balance-gate"


def load_template() -> dict[str, Any]:
    return devstack_template.load_template(TEMPLATE)


def load_event(name: str) -> dict[str, Any]:
    """An event from events/, stamped as just published (as `make invoke` does)."""
    from devstack.invoke import stamp_now

    return stamp_now(json.loads((EVENTS / name).read_text()))


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No real AWS, no stray settings: every test starts from a clean, fake environment."""
    for key in list(os.environ):
        if key.startswith(
            (
                "AWS_",
                "MIMSMS_",
                "MESSAGES_",
                "PRICE_",
                "SEND_",
                "HTTP_",
                "SECRET_",
                "RECORD_",
                "STATUS_",
                "BALANCE_",
                "TRACKING_",
                "MAYBE_",
                "REPORT_",
                "POLL_",
                "CONTROL_",
                "PRIORITY_",
                "OTP_",
                "MAX_DEFER",
            )
        ):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "SmsGatewayTest")
    runtime.configure(clock=time.time)
    yield
    runtime.configure(clock=time.time)


@pytest.fixture
def provider_state() -> ProviderState:
    state = ProviderState(delivery_delay=0.0, seed=7)
    state.add_account(
        Account(USERNAME, API_KEY, PASSWORD, balance=500.0, sender_ids={SENDER_ID, "ShopBD"}, campaigns={"CMP-1"})
    )
    return state


@pytest.fixture
def simulator(provider_state: ProviderState) -> Iterator[MimSmsSimulator]:
    with MimSmsSimulator(state=provider_state) as sim:
        yield sim


@dataclass(frozen=True)
class Deferred:
    """A message back in its queue with a delay: its body, seconds left, and how often it has waited."""

    body: dict[str, Any]
    delay: int
    deferrals: int
    work: DueWork | None = None  # what it waits for (its turn for capacity, a retry)

    @property
    def turn(self) -> float | None:
        return self.work.due_at if self.work is not None and self.work.kind is WorkKind.TURN else None


@dataclass
class Stack:
    """What a test needs of the fake AWS: clients and names."""

    dynamodb: Any
    secrets: Any
    table: str
    secret_id: str
    sqs: Any = None
    ssm: Any = None
    send_queue_url: str = ""
    events_queue_url: str = ""
    priority_queue_url: str = ""
    control_table: str = "control-test"
    gate_parameter: str = GATE_PARAMETER
    stream: StreamEventSource | None = None  # the status table's stream, read as Lambda's poller reads it

    def gate(self) -> dict[str, Any]:
        return dict(json.loads(self.ssm.get_parameter(Name=self.gate_parameter)["Parameter"]["Value"]))

    def drain(self, queue_url: str) -> list[str]:
        """Every body waiting in a queue (received and deleted)."""
        bodies = []
        while batch := self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                bodies.append(message["Body"])
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def status_events(self) -> list[dict[str, Any]]:
        """Every status event that reached the bus so far: the table's stream goes through the
        status_events function first, as Lambda's poller would take it; a rule forwards the bus to a queue."""
        assert self.stream is not None
        self.stream.drain()
        return [json.loads(body) for body in self.drain(self.events_queue_url)]

    def queued_bodies(self) -> list[str]:
        return self.drain(self.send_queue_url)

    @staticmethod
    def _moto_queue(queue_url: str) -> Any:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.sqs.models import sqs_backends

        return sqs_backends[DEFAULT_ACCOUNT_ID][REGION].get_queue(queue_url.rsplit("/", 1)[1])

    def in_queue(self, queue_url: str | None = None) -> list[dict[str, Any]]:
        """The bodies of every message in a queue, visible or delayed, without receiving them."""
        return [json.loads(m.body) for m in self._moto_queue(queue_url or self.send_queue_url)._messages]

    def deferred(self, queue_url: str | None = None) -> list[Deferred]:
        """Messages waiting in a queue with a delay (waiting for capacity), without receiving them."""

        queue = self._moto_queue(queue_url or self.send_queue_url)
        now_ms = time.time() * 1000
        return [
            Deferred(
                json.loads(m.body),
                round((m.delayed_until - now_ms) / 1000),
                int(m.message_attributes.get("deferrals", {}).get("StringValue", 0)),
                work_of({name: {"StringValue": a["StringValue"]} for name, a in m.message_attributes.items()}),
            )
            for m in queue._messages
            if m.delayed_until > now_ms
        ]

    def rate_window_passes(self) -> None:
        """The limiter's windows and any provider block are over (as after a day): its item starts afresh."""

        self.dynamodb.delete_item(TableName=self.control_table, Key={"name": {"S": "rate-limiter"}})
        runtime.configure()  # the process's cached copy of the item goes too

    def end_delays(self, queue_url: str | None = None) -> None:
        """Let time pass for the queue's delayed or hidden messages: they are visible now (no test waits)."""
        for message in self._moto_queue(queue_url or self.send_queue_url)._messages:
            message.delayed_until = 0.0
            message.visible_at = 0.0

    def sqs_event_from_queue(self, queue_url: str | None = None) -> dict[str, Any]:
        """Receive up to 10 messages as Lambda's poller would, attributes included, and delete them."""
        from devstack.lambdas import sqs_record

        url = queue_url or self.send_queue_url
        messages = self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        for message in messages:
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return {"Records": [sqs_record(m, f"arn:aws:sqs:{REGION}:123456789012:q", REGION) for m in messages]}

    def record(self, request_id: str) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        item = self.dynamodb.get_item(
            TableName=self.table, Key={"request_id": {"S": request_id}}, ConsistentRead=True
        ).get("Item")
        return {k: TypeDeserializer().deserialize(v) for k, v in item.items()} if item else None

    def records(self) -> list[dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        items = self.dynamodb.scan(TableName=self.table)["Items"]
        return [{k: TypeDeserializer().deserialize(v) for k, v in item.items()} for item in items]

    def put_credentials(self, **values: str) -> None:
        secret = {"username": USERNAME, "api_key": API_KEY, "password": PASSWORD, "sender_id": SENDER_ID, **values}
        self.secrets.put_secret_value(SecretId=self.secret_id, SecretString=json.dumps(secret))


@pytest.fixture
def aws(template: dict[str, Any]) -> Iterator[Stack]:
    # The send path runs a batch on several threads against this one moto: make its writes atomic.
    serialise_dynamodb_writes()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        secrets = boto3.client("secretsmanager", region_name=REGION)
        devstack_template.create_table(dynamodb, template, "messages-test")
        devstack_template.create_table(dynamodb, template, "control-test", "ControlTable")
        arn = secrets.create_secret(Name=SECRET_NAME, SecretString="{}")["ARN"]
        sqs = boto3.client("sqs", region_name=REGION)
        ssm = boto3.client("ssm", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        send_queue = sqs.create_queue(QueueName="send-test")["QueueUrl"]
        priority_queue = sqs.create_queue(QueueName="priority-send-test")["QueueUrl"]
        events_queue = sqs.create_queue(QueueName="status-events-test")["QueueUrl"]
        events_arn = sqs.get_queue_attributes(QueueUrl=events_queue, AttributeNames=["QueueArn"])["Attributes"]
        events.put_rule(Name="final-status", EventPattern=json.dumps({"source": ["sms-gateway"]}))
        events.put_targets(Rule="final-status", Targets=[{"Id": "q", "Arn": events_arn["QueueArn"]}])
        ssm.put_parameter(Name=GATE_PARAMETER, Type="String", Value=json.dumps({"open": True}))
        stack = Stack(dynamodb, secrets, "messages-test", arn, sqs, ssm, send_queue, events_queue, priority_queue)
        stream_arn = dynamodb.describe_table(TableName="messages-test")["Table"]["LatestStreamArn"]
        filters = filters_of(template["Resources"]["StatusEventsStreamSource"]["Properties"])
        stack.stream = StreamEventSource(streams_client(REGION), stream_arn, status_events_handler(), filters=filters)
        stack.put_credentials()
        yield stack


@pytest.fixture(params=["generic", "official"])
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def configured(aws: Stack, simulator: MimSmsSimulator, dialect: str, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The send path's environment pointed at moto and the simulator, in the dialect under test."""
    monkeypatch.setenv("MESSAGES_TABLE", aws.table)
    monkeypatch.setenv("MIMSMS_SECRET_ID", SECRET_NAME)
    monkeypatch.setenv("MIMSMS_API", dialect)
    monkeypatch.setenv("MIMSMS_BASE_URL", simulator.base_url)
    monkeypatch.setenv("HTTP_READ_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("BALANCE_GATE_PARAMETER", aws.gate_parameter)
    monkeypatch.setenv("SEND_QUEUE_URL", aws.send_queue_url)
    monkeypatch.setenv("PRIORITY_QUEUE_URL", aws.priority_queue_url)
    monkeypatch.setenv("CONTROL_TABLE", aws.control_table)
    # The handler tests send dozens of messages in one instant; bulk's pacing (which would spread them
    # over the window) is tested in test_limiter and in the soak.
    monkeypatch.setenv("BULK_BURST_SHARE", "1")
    runtime.configure()
    return aws


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(configured: Stack, simulator: MimSmsSimulator) -> Clock:
    """One test clock for the send path and MiM (modules with a clock of their own override this)."""
    fake = Clock()
    simulator.state.clock = fake
    runtime.configure(clock=fake)
    return fake


@pytest.fixture
def poller(configured: Stack, clock: Clock) -> Any:
    """poll_status's work on the test clock."""
    return runtime.make_poller(clock)


class FakeContext:
    """The parts of the Lambda context the handlers and Powertools read."""

    function_name = "send-sms-test"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:send-sms-test"
    aws_request_id = "00000000-0000-4000-8000-000000000000"

    def __init__(self, remaining_ms: int = 30_000) -> None:
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


@pytest.fixture
def lambda_context() -> FakeContext:
    return FakeContext()


def sqs_event(*bodies: str, start: int = 1) -> dict[str, Any]:
    """An SQS event as Lambda delivers it, one record per body."""
    records = []
    for index, body in enumerate(bodies, start=start):
        records.append(
            {
                "messageId": f"00000000-0000-4000-8000-{index:012d}",
                "receiptHandle": f"handle-{index}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(int(time.time() * 1000)),
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1764000000000",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:send-queue",
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


@functools.cache
def status_events_handler() -> Any:
    return load_handler("status_events")


@pytest.fixture(scope="session")
def send_handler() -> Any:
    return load_handler("send_sms")


@pytest.fixture
def log_output(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Everything the service writes: Powertools JSON log lines and EMF metric lines, as one string."""
    import io
    import logging

    from smsgw.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.service).addHandler(handler)

    def read() -> str:
        captured = capsys.readouterr()
        return stream.getvalue() + captured.out + captured.err

    yield read
    logging.getLogger(logger.service).removeHandler(handler)
