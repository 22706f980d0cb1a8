"""The stack on this machine: moto's server and the MiM simulator, resources made from template.yaml.

Everything that matters is read from the template itself: table keys and indexes, queue settings and
the redrive policy, the gate parameter, the functions' environment, the event source's batch settings
and the poll schedule. Only what cannot exist locally is substituted (account, region, endpoints).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

from devstack.motoserver import MotoServer, free_port
from devstack.streams import StreamEventSource, filters_of, streams_client
from devstack.template import create_table, load_template
from mimsms_simulator import FAULTS, Account, MimSmsSimulator, ProviderState
from smsgw.config import load_settings, parse_rate_limits

REGION = "ap-southeast-1"
ACCOUNT = "123456789012"
STACK_NAME = "sms-gateway-local"
LOCAL_USERNAME, LOCAL_API_KEY, LOCAL_PASSWORD = "local@example.com", "local-api-key", "local-password"
# The sender IDs and campaign the simulator's account has approved (events/ and the make run mix use them).
LOCAL_SENDER_IDS, LOCAL_CAMPAIGN = ("MIMSMS", "ShopBD"), "CMP-1"
LOCAL_SENDER_ID = LOCAL_SENDER_IDS[0]
STATUS_EVENTS_QUEUE = "sms-gateway-local-status-events"


def simulator_options(parser: argparse.ArgumentParser, *, default_faults: str = "") -> None:
    """--dialect, --fault and --speed, as make run and make soak take them."""
    parser.add_argument("--dialect", choices=["official", "generic"], default="official")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=RATE",
        help=f"simulator fault rate, repeatable{default_faults}; kinds: {', '.join(FAULTS)}",
    )
    parser.add_argument("--speed", type=float, default=60.0, help="time compression (60: a minute per second)")


def resolve(value: Any, refs: dict[str, Any]) -> Any:
    """Resolve Ref, Fn::GetAtt and Fn::Sub against `refs` (logical ids, `Res.Attr`, parameters, pseudo)."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return refs[arg]
        if key == "Fn::GetAtt":
            return refs[f"{arg[0]}.{arg[1]}"]
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            return re.sub(r"\$\{([^}]+)\}", lambda m: str({**refs, **extra}[m.group(1)]), text)
    if isinstance(value, dict):
        return {k: resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    return value


def rate_seconds(expression: str) -> float:
    """`rate(1 minute)` -> 60.0 (the schedule forms the template uses)."""
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|second|seconds)\)", expression.strip())
    if not match:
        raise ValueError(f"unsupported schedule expression {expression!r}")
    unit = {"second": 1, "minute": 60, "hour": 3600}[match.group(2).rstrip("s")]
    return float(match.group(1)) * unit


@dataclass
class EventSource:
    queue_url: str
    batch_size: int
    batching_window: float
    visibility_timeout: float
    max_receive_count: int
    dead_letter_url: str


@dataclass
class LocalStack:
    """What the runner and other programs need to use the local stack."""

    endpoint: str
    region: str
    dialect: str
    simulator: MimSmsSimulator
    moto: MotoServer
    environment: dict[str, str]
    event_sources: list[EventSource]  # the send function's queues, the normal one first
    poll_interval: float
    table: str
    status_events_url: str
    outputs: dict[str, str] = field(default_factory=dict)
    stream_arn: str = ""  # the status table's stream, which the status_events function reads
    stream_filters: list[dict[str, Any]] = field(default_factory=list)  # its event source's filter criteria

    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        """A client of the local endpoint, made once per service (progress loops ask every second)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service, endpoint_url=self.endpoint, region_name=self.region)
        return self._clients[service]

    def stream_source(self, handler: Any) -> StreamEventSource:
        """Lambda's stream poller for the status_events function, on this stack."""
        client = streams_client(self.region, endpoint_url=self.endpoint)
        return StreamEventSource(client, self.stream_arn, handler, filters=self.stream_filters)

    @property
    def event_source(self) -> EventSource:
        """The normal send queue's event source (the priority queue's is `event_sources[1]`)."""
        return self.event_sources[0]

    def records(self) -> dict[str, dict[str, Any]]:
        """Every status record in the table, by request_id (a scan: local tooling only)."""
        dynamodb, deserializer = self.client("dynamodb"), TypeDeserializer()
        records: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"TableName": self.table}
        while True:
            page = dynamodb.scan(**kwargs)
            for item in page["Items"]:
                record = {k: deserializer.deserialize(v) for k, v in item.items()}
                records[record["request_id"]] = record
            if "LastEvaluatedKey" not in page:
                return records
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def queue_depth(self, url: str) -> int:
        """Messages in a queue: visible, in flight, and delayed (those waiting for capacity)."""
        attributes = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        kinds = (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
        return sum(int(attributes.get(kind, 0)) for kind in kinds)

    def queue_for(self, body: str) -> str:
        """The queue a producer publishes `body` to: the priority queue for priority "high"."""
        try:
            high = json.loads(body).get("priority") == "high"
        except (ValueError, AttributeError):
            high = False
        return self.outputs["PriorityQueueUrl"] if high else self.event_source.queue_url

    def stop(self) -> None:
        self.simulator.stop()
        self.moto.stop()


def mappings_of(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """The properties of the event-source mappings that feed `function`, in template order."""
    return [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping" and r["Properties"]["FunctionName"] == {"Ref": function}
    ]


def _parameter_defaults(template: dict[str, Any]) -> dict[str, Any]:
    return {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}


def start(
    dialect: str = "official",
    *,
    speed: float = 60.0,
    provider: ProviderState | None = None,
    moto_port: int | None = None,
    simulator_port: int = 0,
    parameters: dict[str, str] | None = None,
) -> LocalStack:
    """Start moto and the simulator, create the template's resources, return the running stack.

    `speed` compresses the template's times (visibility timeout, schedule, report delays) for a demo:
    60 turns a minute into a second. Set AWS credentials for the process before calling.
    """
    template = load_template()
    state = provider or ProviderState(delivery_delay=2.0)
    if LOCAL_USERNAME not in state.accounts:
        state.add_account(
            Account(
                LOCAL_USERNAME,
                LOCAL_API_KEY,
                LOCAL_PASSWORD,
                balance=1000.0,
                sender_ids=set(LOCAL_SENDER_IDS),
                campaigns={LOCAL_CAMPAIGN},
            )
        )
    moto = MotoServer(moto_port or free_port()).start()
    simulator = MimSmsSimulator(port=simulator_port, state=state).start()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    try:
        return _create(template, dialect, speed, moto, simulator, parameters or {})
    except BaseException:
        simulator.stop()
        moto.stop()
        raise


def _create(
    template: dict[str, Any],
    dialect: str,
    speed: float,
    moto: MotoServer,
    sim: MimSmsSimulator,
    parameters: dict[str, str],
) -> LocalStack:
    resources = template["Resources"]
    refs: dict[str, Any] = {**_parameter_defaults(template), **parameters}  # as `sam deploy --parameter-overrides`
    refs.update(
        {
            "MimSmsApi": dialect,
            "MimSmsBaseUrl": sim.base_url,
            "AWS::StackName": STACK_NAME,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
        }
    )

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=moto.endpoint, region_name=REGION)

    sqs, ssm, secrets, events = client("sqs"), client("ssm"), client("secretsmanager"), client("events")

    # Queues: the dead-letter queue first, so the send queue's redrive policy can name it.
    queues = [name for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"]
    queues.sort(key=lambda name: "RedrivePolicy" in resources[name].get("Properties", {}))
    for name in queues:
        props = resolve(resources[name].get("Properties", {}), refs)
        attributes = {k: str(v) for k, v in props.items() if k in ("VisibilityTimeout", "MessageRetentionPeriod")}
        if "VisibilityTimeout" in attributes:
            attributes["VisibilityTimeout"] = str(max(1, round(int(attributes["VisibilityTimeout"]) / speed)))
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = sqs.create_queue(QueueName=f"{STACK_NAME}-{name}", Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        refs.update({name: url, f"{name}.Arn": arn, f"{name}.QueueName": f"{STACK_NAME}-{name}"})

    for name in (name for name, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table"):
        create_table(client("dynamodb"), template, f"{STACK_NAME}-{name}", name)
        arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{STACK_NAME}-{name}"
        refs.update({name: f"{STACK_NAME}-{name}", f"{name}.Arn": arn})
    table = refs["MessagesTable"]
    stream_arn = client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]

    secret_values = {
        "username": LOCAL_USERNAME,
        "api_key": LOCAL_API_KEY,
        "password": LOCAL_PASSWORD,
        "sender_id": LOCAL_SENDER_ID,
    }
    secret = secrets.create_secret(Name=f"{STACK_NAME}/mimsms", SecretString=json.dumps(secret_values))
    refs["CredentialsSecret"] = secret["ARN"]

    gate = resolve(resources["BalanceGateParameter"]["Properties"], refs)
    ssm.put_parameter(Name=gate["Name"], Value=gate["Value"], Type=gate["Type"])
    refs["BalanceGateParameter"] = gate["Name"]

    # Status events: a rule on the bus forwards them to a queue, so the run can show them.
    events_url = sqs.create_queue(QueueName=STATUS_EVENTS_QUEUE)["QueueUrl"]
    events_arn = sqs.get_queue_attributes(QueueUrl=events_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = refs["StatusEventBusName"]
    if bus != "default":
        events.create_event_bus(Name=bus)
    source = resolve(template["Globals"]["Function"]["Environment"]["Variables"]["STATUS_EVENT_SOURCE"], refs)
    events.put_rule(Name="final-status", EventBusName=bus, EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule="final-status", EventBusName=bus, Targets=[{"Id": "events", "Arn": events_arn}])

    environment = {
        k: str(v) for k, v in resolve(template["Globals"]["Function"]["Environment"]["Variables"], refs).items()
    }
    # Compressed time for a demo: report look-ups and the maybe-sent grace period scale with the speed.
    declared = load_settings(environment)  # the declared defaults of what the template does not set
    environment["REPORT_DELAY_SECONDS"] = str(declared.report_delay_seconds / speed)
    environment["MAYBE_SENT_GRACE_SECONDS"] = str(max(1, round(declared.maybe_sent_grace_seconds / speed)))
    environment["MAX_DEFER_SECONDS"] = str(max(1, round(declared.max_defer_seconds / speed)))
    environment["BALANCE_CHECK_SECONDS"] = str(round(declared.balance_check_seconds / speed))
    # The local processes share one clock: the skew the limiter allows for is compressed like the windows.
    environment["MAX_CLOCK_SKEW_SECONDS"] = str(declared.max_clock_skew_seconds / speed)
    # MiM's limits in the same compressed time, on both sides: the simulator enforces what the limiter keeps.
    limits = [
        (limit.count, max(1, round(limit.seconds / speed)))
        for limit in parse_rate_limits(environment["MIMSMS_RATE_LIMITS"])
    ]
    environment["MIMSMS_RATE_LIMITS"] = ",".join(f"{count}/{seconds}" for count, seconds in limits)
    sim.state.rate_limits = tuple(limits)
    environment.update(
        {"AWS_ENDPOINT_URL": moto.endpoint, "AWS_DEFAULT_REGION": REGION, "POWERTOOLS_TRACE_DISABLED": "true"}
    )

    event_sources = []
    for send_event in mappings_of(template, "SendSmsFunction"):
        source_queue = send_event["EventSourceArn"]["Fn::GetAtt"][0]
        queue_redrive = resolve(resources[source_queue]["Properties"]["RedrivePolicy"], refs)
        dlq = queue_redrive["deadLetterTargetArn"].rsplit(":", 1)[1]
        event_sources.append(
            EventSource(
                queue_url=refs[source_queue],
                batch_size=int(send_event.get("BatchSize", 10)),
                batching_window=float(send_event.get("MaximumBatchingWindowInSeconds", 0)) / speed,
                visibility_timeout=float(resources[source_queue]["Properties"]["VisibilityTimeout"]) / speed,
                max_receive_count=int(queue_redrive["maxReceiveCount"]),
                dead_letter_url=sqs.get_queue_url(QueueName=dlq)["QueueUrl"],
            )
        )
    event_sources.sort(key=lambda source: source.queue_url != refs["SendQueue"])
    schedule = resources["PollStatusFunction"]["Properties"]["Events"]["PollSchedule"]["Properties"]
    poll_interval = rate_seconds(str(resolve(schedule["ScheduleExpression"], refs))) / speed

    outputs = {
        name: str(
            resolve(
                spec["Value"],
                {
                    **refs,
                    "SendSmsFunction": "send_sms",
                    "PollStatusFunction": "poll_status",
                    "CodeLayer": "local",
                    "DependenciesLayer": "local",
                    "StatusEventsFunction": "status_events",
                    "Dashboard": "local",
                    "AlertTopic": "local",
                },
            )
        )
        for name, spec in template.get("Outputs", {}).items()
    }
    return LocalStack(
        endpoint=moto.endpoint,
        region=REGION,
        dialect=refs["MimSmsApi"],
        simulator=sim,
        moto=moto,
        environment=environment,
        event_sources=event_sources,
        poll_interval=poll_interval,
        table=table,
        status_events_url=events_url,
        outputs=outputs,
        stream_arn=stream_arn,
        stream_filters=filters_of(*mappings_of(template, "StatusEventsFunction")),
    )
