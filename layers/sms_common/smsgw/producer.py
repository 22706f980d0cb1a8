"""Publish "send this SMS" messages (and cancels of them) from another system, checked before they leave.

Importable (`from smsgw.producer import publish`) and a console script (`sms-publish`). A message is
checked twice: against the JSON Schema in this package (`message.schema.json`, the contract's shape)
and by the send function's own validation (phone numbers, part counts), so what the queue accepts is
what the service will send. The queue is named directly or found from a deployed stack's outputs.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from importlib import resources
from typing import Any

import boto3

from smsgw.cli import Failed, aws_options, clients, reported
from smsgw.message import BulkRequest, CancelRequest, InvalidRequest, SmsRequest, parse_message


class InvalidMessage(ValueError):
    """The message breaks the contract; `problems` lists every reason found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@functools.cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(resources.files("smsgw").joinpath("message.schema.json").read_text())
    return loaded


def validate(message: dict[str, Any], *, smart_encoding: bool = True) -> SmsRequest | BulkRequest | CancelRequest:
    """Return the request the send function would see (by default the stack's: smart encoding on), or
    raise InvalidMessage."""
    from jsonschema import Draft202012Validator  # only producers need it; the layer does not ship it

    problems = [
        f"{'/'.join(str(p) for p in error.absolute_path) or 'message'}: {error.message}"
        for error in sorted(Draft202012Validator(schema()).iter_errors(message), key=lambda e: list(e.absolute_path))
    ]
    if problems:
        raise InvalidMessage(problems)
    try:
        body = json.dumps(message, ensure_ascii=False)
        return parse_message(body, default_request_id="unset", smart_encoding=smart_encoding)
    except InvalidRequest as exc:
        raise InvalidMessage([f"{exc.code}: {exc.message}"]) from None


def stack_outputs(stack_name: str, cloudformation: Any = None) -> dict[str, str]:
    """A deployed stack's outputs by name (SendQueueUrl, PriorityQueueUrl, DeadLetterQueueUrl ...)."""
    cloudformation = cloudformation or boto3.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {output["OutputKey"]: str(output["OutputValue"]) for output in stack.get("Outputs", [])}


def queue_urls_of_stack(stack_name: str, cloudformation: Any = None) -> tuple[str, str | None]:
    """(send queue, priority queue) from a deployed stack's outputs; a stack without a priority queue gives None."""
    outputs = stack_outputs(stack_name, cloudformation)
    if "SendQueueUrl" not in outputs:
        raise LookupError(f"stack {stack_name} has no SendQueueUrl output")
    return outputs["SendQueueUrl"], outputs.get("PriorityQueueUrl")


def publish(
    message: dict[str, Any],
    *,
    queue_url: str | None = None,
    priority_queue_url: str | None = None,
    stack_name: str | None = None,
    sqs: Any = None,
    cloudformation: Any = None,
) -> str:
    """Validate `message` and publish it; returns the SQS message id.

    Priority "high" goes to the priority queue (so an OTP never waits behind a campaign) when there is
    one: `priority_queue_url`, or the stack's PriorityQueueUrl output. Otherwise to the send queue.
    So do cancels: a cancel waiting behind the campaign it cancels would come too late.
    """
    request = validate(message)
    urgent = isinstance(request, CancelRequest) or request.priority == "high"
    if queue_url is None:
        if stack_name is None:
            raise ValueError("name the queue (queue_url) or the deployed stack (stack_name)")
        queue_url, stack_priority_queue = queue_urls_of_stack(stack_name, cloudformation)
        priority_queue_url = priority_queue_url or stack_priority_queue
    target = priority_queue_url if urgent and priority_queue_url else queue_url
    sqs = sqs or boto3.client("sqs")
    response = sqs.send_message(QueueUrl=target, MessageBody=json.dumps(message, ensure_ascii=False))
    return str(response["MessageId"])


def cancel(request_id: str, **target: Any) -> str:
    """Publish a cancel of `request_id` (to the priority queue when there is one); returns the SQS message
    id. `target` as for publish (queue_url, priority_queue_url, stack_name, sqs, cloudformation). The
    outcome arrives as the record's `cancelled` status event, or an `SMS Cancel Too Late` event."""
    return publish({"action": "cancel", "request_id": request_id}, **target)


def _message_from_args(args: argparse.Namespace) -> dict[str, Any]:
    if args.cancel:
        return {"action": "cancel", "request_id": args.cancel}
    if args.json:
        try:
            loaded = json.loads(args.json)
        except ValueError as exc:
            raise InvalidMessage([f"--json is not valid JSON ({exc})"]) from None
        if not isinstance(loaded, dict):
            raise InvalidMessage(["--json must be a JSON object"])
        return loaded
    message: dict[str, Any] = {"message": args.message}
    if args.phones:
        message["phones"] = [number.strip() for number in args.phones.split(",") if number.strip()]
    else:
        message["phone"] = args.phone
    for name in ("request_id", "sender_id", "priority", "schedule_time", "valid_until", "type", "campaign_id"):
        if getattr(args, name) is not None:
            message[name] = getattr(args, name)
    if args.metadata:
        malformed = [item for item in args.metadata if "=" not in item or not item.split("=", 1)[0].strip()]
        if malformed:
            raise InvalidMessage([f"--metadata must be KEY=VALUE, got {item!r}" for item in malformed])
        message["metadata"] = dict(item.split("=", 1) for item in args.metadata)
    return message


def arguments() -> argparse.ArgumentParser:
    """The console script's arguments, every one with its help text."""
    parser = argparse.ArgumentParser(
        prog="sms-publish",
        description="Check an SMS request against the contract and publish it to the gateway's send queue.",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--queue-url", help="the send queue (stack output SendQueueUrl)")
    target.add_argument("--stack-name", help="a deployed stack; its SendQueueUrl and PriorityQueueUrl outputs are used")
    parser.add_argument("--priority-queue-url", help="with --queue-url: where priority high goes (PriorityQueueUrl)")
    aws_options(parser)
    parser.add_argument("--json", help="the whole message as a JSON object (instead of the fields below)")
    parser.add_argument(
        "--cancel", metavar="REQUEST_ID", help="cancel that message unless it has gone to MiM (instead of a message)"
    )
    parser.add_argument("--phone", help="Bangladesh mobile number, e.g. 01712345678 or +880 1712-345678")
    parser.add_argument(
        "--phones",
        metavar="NUMBER,NUMBER,...",
        help="one text to up to 1,000 numbers, comma-separated: a record per number",
    )
    parser.add_argument("--message", help="the text (Bangla and emoji allowed; at most 10 SMS parts)")
    parser.add_argument("--request-id", dest="request_id", help="your key for this SMS; never sent twice")
    parser.add_argument("--sender-id", dest="sender_id", help="overrides the account's default sender ID")
    parser.add_argument("--priority", choices=["normal", "high"], help="high for OTPs (the priority queue)")
    parser.add_argument(
        "--schedule-time",
        dest="schedule_time",
        help="send at or after this time (held by the service; at most 30 days ahead)",
    )
    parser.add_argument(
        "--valid-until", dest="valid_until", help="not sent after this time (ISO 8601, or YYYY-MM-DD HH:MM:SS Dhaka)"
    )
    parser.add_argument("--type", choices=["transactional", "promotional"], help="default transactional")
    parser.add_argument("--campaign-id", dest="campaign_id", help="MiM campaign ID (promotional traffic)")
    parser.add_argument(
        "--metadata",
        action="append",
        metavar="KEY=VALUE",
        help="stored with the record and echoed in its status event; repeat for more",
    )
    parser.add_argument("--check-only", action="store_true", help="validate and show the parts; publish nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = arguments()
    args = parser.parse_args(argv)
    if not (args.json or args.cancel) and ((args.phone is None and not args.phones) or args.message is None):
        parser.error("give --json, --cancel REQUEST_ID, or --phone (or --phones) and --message")
    if args.cancel and (args.json or args.phone is not None or args.phones or args.message is not None):
        parser.error("--cancel takes no message: give it alone")
    if args.phone is not None and args.phones:
        parser.error("give --phone or --phones, not both")
    if not args.check_only and not (args.queue_url or args.stack_name):
        parser.error("give --queue-url or --stack-name (or --check-only to validate without a queue)")

    try:
        message = _message_from_args(args)
        request = validate(message)
    except (InvalidMessage, ValueError) as exc:
        print(f"invalid message: {exc}", file=sys.stderr)
        return 2
    if args.check_only:
        if isinstance(request, CancelRequest):
            print(f"valid: a cancel of {request.request_id}")
        elif isinstance(request, BulkRequest):
            print(f"valid: {len(request.children)} number(s) to send, {len(request.invalid)} that cannot be")
        else:
            print(f"valid: {request.segmentation.parts} part(s), {request.segmentation.encoding}")
        return 0
    sqs, cloudformation = clients(args, "sqs", "cloudformation")
    targets = {
        "queue_url": args.queue_url,
        "priority_queue_url": args.priority_queue_url,
        "stack_name": args.stack_name,
    }
    try:
        message_id = reported("publish", lambda: publish(message, **targets, sqs=sqs, cloudformation=cloudformation))
    except Failed:
        return 1
    print(message_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
