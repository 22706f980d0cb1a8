"""Move messages from the dead-letter queue back to the queue they belong to (`sms-redrive`, `make redrive`).

The DLQ holds what SQS could not deliver after every try: setup problems (credentials, sender ID, MiM's
IP allow-list) and crashes. Once the cause is fixed, redrive them. Safe to run twice, or while the
service runs: every copy keeps its request_id (a body without one gets the id the service knew it by,
the SQS message id, which the DLQ keeps), so a message published twice is still sent once; a message is
deleted from the DLQ only after its copy is published. `--dry-run` lists what would move.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from smsgw.cli import aws_options, clients
from smsgw.deferral import PARENT_ATTRIBUTE, pin_request_id
from smsgw.producer import stack_outputs


@dataclass
class RedriveReport:
    """What a redrive moved, and where."""

    moved: Counter[str] = field(default_factory=Counter)  # target queue -> messages
    unreadable: int = 0  # bodies that are not JSON objects: moved as they are (the service records them)

    @property
    def total(self) -> int:
        return sum(self.moved.values())


def _copy(message: dict[str, Any], queue_url: str, priority_queue_url: str | None) -> tuple[str, str, bool]:
    """(queue, body to publish, readable): priority high to the priority queue, request_id pinned.

    A body without a request_id (or with `"request_id": null`, which means the same) was known by its SQS
    message id, which the DLQ keeps: the copy says so.
    A body that is not a JSON object goes back as it is (the service records it as invalid_request).
    """
    body = message["Body"]
    try:
        data = json.loads(body)
    except ValueError:
        return queue_url, body, False
    if not isinstance(data, dict):
        return queue_url, body, False
    target = priority_queue_url if data.get("priority") == "high" and priority_queue_url else queue_url
    if data.get("request_id") is None:  # absent or null alike: the service keyed it by its SQS message id
        body = pin_request_id(body, message["MessageId"])
    return target, body, True


def redrive(
    sqs: Any,
    dead_letter_url: str,
    queue_url: str,
    priority_queue_url: str | None = None,
    *,
    dry_run: bool = False,
    limit: int | None = None,
) -> RedriveReport:
    """Move up to `limit` messages (all, by default). In a dry run nothing is published or deleted."""
    report = RedriveReport()
    seen: set[str] = set()
    while limit is None or report.total < limit:
        batch = sqs.receive_message(
            QueueUrl=dead_letter_url,
            MaxNumberOfMessages=10 if limit is None else max(1, min(10, limit - report.total)),
            WaitTimeSeconds=0,
            # Hidden while this run looks at the rest; a dry run's become visible again 30 s later.
            VisibilityTimeout=30 if dry_run else 60,
            MessageAttributeNames=[PARENT_ATTRIBUTE],  # a bulk request's chunk stays one
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            target, body, readable = _copy(message, queue_url, priority_queue_url)
            report.unreadable += not readable
            report.moved[target] += 1
            if dry_run:
                continue
            attributes = message.get("MessageAttributes") or {}
            kept = {
                name: {"DataType": a["DataType"], "StringValue": a["StringValue"]} for name, a in attributes.items()
            }
            sqs.send_message(QueueUrl=target, MessageBody=body, MessageAttributes=kept)
            sqs.delete_message(QueueUrl=dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
    return report


def arguments() -> argparse.ArgumentParser:
    """The console script's arguments, every one with its help text."""
    parser = argparse.ArgumentParser(prog="sms-redrive", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stack-name", help="a deployed stack: its queue outputs are used")
    parser.add_argument("--dead-letter-url", help="the dead-letter queue (stack output DeadLetterQueueUrl)")
    parser.add_argument("--queue-url", help="the send queue (stack output SendQueueUrl)")
    parser.add_argument("--priority-queue-url", help="the priority queue (stack output PriorityQueueUrl)")
    aws_options(parser)
    parser.add_argument("--limit", type=int, help="move at most this many messages")
    parser.add_argument("--dry-run", action="store_true", help="count what would move; publish and delete nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = arguments()
    args = parser.parse_args(argv)
    sqs, cloudformation = clients(args, "sqs", "cloudformation")
    dead_letter_url, queue_url, priority_queue_url = args.dead_letter_url, args.queue_url, args.priority_queue_url
    try:
        if args.stack_name:
            outputs = stack_outputs(args.stack_name, cloudformation)
            dead_letter_url = dead_letter_url or outputs.get("DeadLetterQueueUrl")
            queue_url = queue_url or outputs.get("SendQueueUrl")
            priority_queue_url = priority_queue_url or outputs.get("PriorityQueueUrl")
        if not dead_letter_url or not queue_url:
            parser.error("give --stack-name, or --dead-letter-url and --queue-url")
        report = redrive(sqs, dead_letter_url, queue_url, priority_queue_url, dry_run=args.dry_run, limit=args.limit)
    except (BotoCoreError, ClientError) as exc:
        print(f"redrive failed: {exc}", file=sys.stderr)
        return 1
    verb = "would move" if args.dry_run else "moved"
    print(f"{verb} {report.total} message(s)")
    for target, count in sorted(report.moved.items()):
        print(f"  {count:6d} -> {target}")
    if report.unreadable:
        print(f"  ({report.unreadable} not JSON: moved as they are; the service records them as invalid_request)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
