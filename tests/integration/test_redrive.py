"""sms-redrive: dead letters back to their own queue, keeping their identity; safe to run twice."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import REGION, FakeContext, Stack, sqs_event

from mimsms_simulator import MimSmsSimulator
from smsgw.redrive import main, redrive


@pytest.fixture
def dead_letters(aws: Stack) -> str:
    url = str(aws.sqs.create_queue(QueueName="dlq-test")["QueueUrl"])
    bodies = [
        {"phone": "01712345678", "message": "campaign", "request_id": "c-1"},
        {"phone": "01812345678", "message": "Your OTP is 1234", "request_id": "otp-1", "priority": "high"},
        {"phone": "01912345678", "message": "no request_id given"},
    ]
    for body in bodies:
        aws.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    aws.sqs.send_message(QueueUrl=url, MessageBody="not json {")
    return url


def bodies(stack: Stack, url: str) -> list[Any]:
    out = []
    for raw in stack.drain(url):
        try:
            out.append(json.loads(raw))
        except ValueError:
            out.append(raw)
    return out


def test_a_dry_run_moves_nothing(aws: Stack, dead_letters: str) -> None:
    report = redrive(aws.sqs, dead_letters, aws.send_queue_url, aws.priority_queue_url, dry_run=True)
    assert (report.total, report.unreadable) == (4, 1)
    assert aws.queued_bodies() == []
    attributes = aws.sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["All"])["Attributes"]
    assert int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 4  # still there, back in 30 s


def test_each_message_goes_back_to_its_queue_with_its_identity(aws: Stack, dead_letters: str) -> None:
    ids = {}
    for message in aws.sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10, VisibilityTimeout=0)[
        "Messages"
    ]:
        ids[message["Body"]] = message["MessageId"]
    report = redrive(aws.sqs, dead_letters, aws.send_queue_url, aws.priority_queue_url)
    assert report.moved == {aws.send_queue_url: 3, aws.priority_queue_url: 1}

    normal = bodies(aws, aws.send_queue_url)
    assert [b["request_id"] for b in bodies(aws, aws.priority_queue_url)] == ["otp-1"]
    without_id = next(b for b in normal if isinstance(b, dict) and b["message"] == "no request_id given")
    original = json.dumps({"phone": "01912345678", "message": "no request_id given"})
    assert without_id["request_id"] == ids[original]  # the id the service knew it by
    assert "not json {" in normal
    assert bodies(aws, dead_letters) == []

    again = redrive(aws.sqs, dead_letters, aws.send_queue_url, aws.priority_queue_url)
    assert again.total == 0  # a second run finds nothing and moves nothing


def test_the_console_script_reads_the_stack(aws: Stack, dead_letters: str, capsys: pytest.CaptureFixture[str]) -> None:
    import boto3

    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "DeadLetterQueueUrl": {"Value": dead_letters},
            "SendQueueUrl": {"Value": aws.send_queue_url},
            "PriorityQueueUrl": {"Value": aws.priority_queue_url},
        },
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="sms-gateway", TemplateBody=json.dumps(template)
    )
    assert main(["--stack-name", "sms-gateway", "--region", REGION, "--dry-run"]) == 0
    assert "would move 4 message(s)" in capsys.readouterr().out
    aws.end_delays(dead_letters)  # the dry run's 30 s are over
    assert main(["--stack-name", "sms-gateway", "--region", REGION, "--limit", "2"]) == 0
    assert "moved 2 message(s)" in capsys.readouterr().out


def test_a_chunk_of_a_bulk_request_goes_back_as_a_chunk(aws: Stack) -> None:
    """Without its mark a chunk would be a bulk request of its own, found handed on already: never sent."""
    url = str(aws.sqs.create_queue(QueueName="dlq-chunks")["QueueUrl"])
    chunk = json.dumps({"request_id": "eid", "phones": ["8801712345678"], "message": "Eid sale"})
    mark = {"bulk_parent": {"DataType": "String", "StringValue": "eid"}}
    aws.sqs.send_message(QueueUrl=url, MessageBody=chunk, MessageAttributes=mark)
    assert redrive(aws.sqs, url, aws.send_queue_url).total == 1
    (copy,) = aws.sqs.receive_message(QueueUrl=aws.send_queue_url, MessageAttributeNames=["All"])["Messages"]
    assert (copy["Body"], copy["MessageAttributes"]["bulk_parent"]["StringValue"]) == (chunk, "eid")


class _DeleteFails:
    """An SQS client whose delete_message fails, as a redrive interrupted after publishing would leave it."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def delete_message(self, **_: Any) -> None:
        return None  # the copy went; the dead letter stays


def test_a_null_request_id_is_redriven_as_the_id_the_service_knew(
    configured: Stack, simulator: MimSmsSimulator, send_handler: Any
) -> None:
    """`"request_id": null` means absent: the service keyed it by its SQS message id. Every copy, from a
    redrive run twice (its delete lost the first time), claims that one record: one SMS, and the record
    the dead letter left waiting for its retry is the one that ends sent."""
    dlq = str(configured.sqs.create_queue(QueueName="dlq-null-id")["QueueUrl"])
    body = json.dumps({"phone": "01712345678", "message": "Your order shipped", "request_id": None})
    configured.sqs.send_message(QueueUrl=dlq, MessageBody=body)
    (dead,) = configured.sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0)["Messages"]
    known_as = dead["MessageId"]
    configured.put_credentials(api_key="revoked-key")  # every try refused: how it reached the DLQ
    event = sqs_event(body)
    event["Records"][0]["messageId"] = known_as
    assert send_handler(event, FakeContext())["batchItemFailures"] == [{"itemIdentifier": known_as}]
    assert (configured.record(known_as) or {})["attempt_state"] == "released"

    configured.put_credentials()  # the operator fixed the key, and redrives
    assert redrive(_DeleteFails(configured.sqs), dlq, configured.send_queue_url).total == 1
    configured.end_delays(dlq)
    assert redrive(configured.sqs, dlq, configured.send_queue_url).total == 1
    copies = [json.loads(b) for b in configured.drain(configured.send_queue_url)]
    assert [copy["request_id"] for copy in copies] == [known_as, known_as]
    send_handler(sqs_event(*(json.dumps(copy) for copy in copies)), FakeContext())

    assert [sms.phone for sms in simulator.state.sent.values()] == ["8801712345678"]
    assert (configured.record(known_as) or {})["status"] == "sent"
    assert [r["request_id"] for r in configured.records()] == [known_as]
