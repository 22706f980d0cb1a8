"""Look up what became of a message: `sms-status REQUEST_ID` and `status_of(...)`, for producers.

The status record as the contract describes it (docs/contract.md, "The status record"): the phone masked, the
service's bookkeeping left out. The table is named directly or found from a deployed stack's outputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

import boto3

from smsgw.cli import Failed, aws_options, clients, reported
from smsgw.phone import mask
from smsgw.producer import stack_outputs
from smsgw.records import StatusRecord
from smsgw.store import BULK, MessageStore

# The attributes other systems may read (docs/contract.md); the rest is the service's own bookkeeping.
CONTRACT_ATTRIBUTES = (
    "request_id",
    "status",
    "phone",
    "message_id",
    "provider_status",
    "error_code",
    "error_message",
    "parts",
    "encoding",
    "cost",
    "priority",
    "type",
    "campaign_id",
    "schedule_time",
    "metadata",
    "attempts",
    "created_at",
    "sent_at",
    "final_at",
    "cancel_requested_at",
    "cancel_result",
    "kind",
    "children",
    "children_invalid",
    "parent_id",
)


def status_of(
    request_id: str,
    *,
    table: str | None = None,
    stack_name: str | None = None,
    dynamodb: Any = None,
    cloudformation: Any = None,
) -> dict[str, Any] | None:
    """The record of `request_id` (phone masked), or None when the service has no record of it (yet)."""
    if table is None:
        if stack_name is None:
            raise ValueError("name the table (table) or the deployed stack (stack_name)")
        outputs = stack_outputs(stack_name, cloudformation)
        if "MessagesTableName" not in outputs:
            raise LookupError(f"stack {stack_name} has no MessagesTableName output")
        table = outputs["MessagesTableName"]
    store = MessageStore(dynamodb or boto3.client("dynamodb"), table, retention_days=1)
    record = store.get(request_id)
    if record is None:
        return None
    view = _view(record)
    if record.kind == BULK:  # a bulk request: each number's record too
        view["numbers"] = [_view(child) for child in store.children(request_id)]
    return view


def _view(record: StatusRecord) -> dict[str, Any]:
    values = asdict(record)
    view = {name: values[name] for name in CONTRACT_ATTRIBUTES if values.get(name) not in (None, {})}
    view["status"] = str(record.status)
    if record.cancel_result is not None:
        view["cancel_result"] = str(record.cancel_result)
    if record.phone:
        view["phone"] = mask(record.phone)
    return view


def arguments() -> argparse.ArgumentParser:
    """The console script's arguments, every one with its help text."""
    parser = argparse.ArgumentParser(prog="sms-status", description="Show the status record of one SMS.")
    parser.add_argument("request_id", help="the request_id the message was published with (or its SQS message id)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--table-name", help="the status table (stack output MessagesTableName)")
    target.add_argument("--stack-name", help="a deployed stack; its MessagesTableName output is used")
    aws_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = arguments().parse_args(argv)
    dynamodb, cloudformation = clients(args, "dynamodb", "cloudformation")

    def look_up() -> dict[str, Any] | None:
        return status_of(
            args.request_id,
            table=args.table_name,
            stack_name=args.stack_name,
            dynamodb=dynamodb,
            cloudformation=cloudformation,
        )

    try:
        found = reported("look it up", look_up)
    except Failed:
        return 2
    if found is None:
        print(f"no record of {args.request_id!r} (not received yet, or expired)", file=sys.stderr)
        return 1
    print(json.dumps(found, indent=2, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
