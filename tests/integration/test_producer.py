"""sms-publish: checks a message against the contract, then publishes it to a queue or a stack's queue."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from conftest import REGION
from moto import mock_aws

from smsgw.producer import InvalidMessage, cancel, main, publish, validate


@pytest.fixture
def queue() -> Iterator[str]:
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION).create_queue(QueueName="send")["QueueUrl"]


def received(queue_url: str) -> list[dict[str, object]]:
    messages = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_validate_returns_what_the_send_function_will_see() -> None:
    request = validate({"phone": "+880 1712-345678", "message": "আপনার কোড ১২৩৪"})
    assert request.phone == "8801712345678"
    assert (request.segmentation.encoding, request.segmentation.parts) == ("ucs2", 1)


def test_validate_lists_every_problem() -> None:
    with pytest.raises(InvalidMessage) as caught:
        validate({"phone": "01712345678", "message": "hi", "priority": "urgent", "colour": "red"})
    assert len(caught.value.problems) == 2


def test_validate_applies_the_send_functions_own_checks() -> None:
    with pytest.raises(InvalidMessage, match="invalid_phone"):
        validate({"phone": "0171234567", "message": "hi"})


def test_publish_sends_the_message_as_json(queue: str) -> None:
    message = {"phone": "01712345678", "message": "আপনার কোড ১২৩৪", "request_id": "p-1"}
    assert publish(message, queue_url=queue)
    assert received(queue) == [message]


def test_publish_refuses_an_invalid_message(queue: str) -> None:
    with pytest.raises(InvalidMessage):
        publish({"phone": "029876543", "message": "hi"}, queue_url=queue)
    assert received(queue) == []


def test_publish_finds_the_queue_from_the_stack_outputs(queue: str) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"SendQueueUrl": {"Value": queue}},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="sms-gateway", TemplateBody=json.dumps(template)
    )
    publish({"phone": "01712345678", "message": "hi"}, stack_name="sms-gateway")
    assert received(queue) == [{"phone": "01712345678", "message": "hi"}]


def test_otps_go_to_the_priority_queue_named_or_from_the_stack(queue: str) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    priority = sqs.create_queue(QueueName="priority")["QueueUrl"]
    otp = {"phone": "01712345678", "message": "Your OTP is 1234", "priority": "high"}
    campaign = {"phone": "01712345678", "message": "Sale!", "priority": "normal"}
    publish(otp, queue_url=queue, priority_queue_url=priority)
    publish(campaign, queue_url=queue, priority_queue_url=priority)
    assert (received(priority), received(queue)) == ([otp], [campaign])

    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"SendQueueUrl": {"Value": queue}, "PriorityQueueUrl": {"Value": priority}},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="sms-gateway", TemplateBody=json.dumps(template)
    )
    publish(otp, stack_name="sms-gateway")
    assert received(priority) == [otp]
    # Without a priority queue, an OTP still goes to the send queue (the function honours it there too).
    publish(otp, queue_url=queue)
    assert received(queue) == [otp]


def test_a_cancel_goes_ahead_of_the_campaign_it_cancels(queue: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Cancels go to the priority queue: behind a campaign's backlog they would come too late."""
    priority = boto3.client("sqs", region_name=REGION).create_queue(QueueName="priority")["QueueUrl"]
    assert cancel("campaign-7:8801712345678", queue_url=queue, priority_queue_url=priority)
    assert (received(priority), received(queue)) == (
        [{"action": "cancel", "request_id": "campaign-7:8801712345678"}],
        [],
    )
    with pytest.raises(InvalidMessage):
        cancel("not an id", queue_url=queue)

    assert main(["--queue-url", queue, "--priority-queue-url", priority, "--region", REGION, "--cancel", "otp-9"]) == 0
    assert received(priority) == [{"action": "cancel", "request_id": "otp-9"}]
    assert main(["--check-only", "--cancel", "otp-9"]) == 0
    assert "a cancel of otp-9" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # a cancel carries no message
        main(["--check-only", "--cancel", "otp-9", "--phone", "01712345678", "--message", "x"])
    assert "--cancel takes no message" in capsys.readouterr().err


def test_a_bulk_request_from_the_console_script_and_python(queue: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "--queue-url",
        queue,
        "--region",
        REGION,
        "--phones",
        "01712345678, 01812345678",
        "--message",
        "Eid sale",
        "--request-id",
        "eid",
    ]
    assert main(args) == 0
    assert received(queue) == [{"message": "Eid sale", "phones": ["01712345678", "01812345678"], "request_id": "eid"}]
    assert main(["--check-only", "--phones", "01712345678,0171", "--message", "hi"]) == 0
    assert "1 number(s) to send, 1 that cannot be" in capsys.readouterr().out
    personal = {"request_id": "bills", "messages": [{"phone": "01712345678", "message": "Your bill is 540 BDT"}]}
    publish(personal, queue_url=queue)
    assert received(queue) == [personal]
    with pytest.raises(InvalidMessage):  # a number twice in messages: which text?
        validate({"messages": [{"phone": "01712345678", "message": "a"}, {"phone": "01712345678", "message": "b"}]})


def test_the_console_script(queue: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--queue-url",
            queue,
            "--region",
            REGION,
            "--phone",
            "01712345678",
            "--message",
            "Hello",
            "--request-id",
            "cli-1",
            "--priority",
            "high",
            "--metadata",
            "order=A-1",
        ]
    )
    assert code == 0
    assert received(queue) == [
        {
            "phone": "01712345678",
            "message": "Hello",
            "request_id": "cli-1",
            "priority": "high",
            "metadata": {"order": "A-1"},
        }
    ]
    assert main(["--queue-url", queue, "--region", REGION, "--phone", "0171", "--message", "Hello"]) == 2
    assert "invalid_phone" in capsys.readouterr().err
    assert main(["--queue-url", queue, "--check-only", "--json", '{"phone":"01712345678","message":"ok"}']) == 0


def test_the_console_script_checks_without_a_queue_and_explains_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check-only", "--phone", "01712345678", "--message", "Hello"]) == 0  # no queue, no AWS
    assert "1 part(s), gsm7" in capsys.readouterr().out
    assert main(["--check-only", "--phone", "01712345678", "--message", "Hi", "--metadata", "order"]) == 2
    assert "--metadata must be KEY=VALUE, got 'order'" in capsys.readouterr().err
    assert main(["--check-only", "--json", "{not json"]) == 2
    assert "--json is not valid JSON" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # publishing needs a queue
        main(["--phone", "01712345678", "--message", "Hello"])
    assert "--queue-url or --stack-name" in capsys.readouterr().err


def test_every_flag_of_every_console_script_has_help() -> None:
    from smsgw import producer, redrive, status

    for script in (producer, redrive, status):
        every = script.arguments()._actions  # flags and positionals alike
        assert len(every) >= 5
        assert [a.option_strings or a.dest for a in every if not a.help] == [], script.__name__
