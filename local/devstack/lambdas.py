"""Drive the real handlers the way Lambda does: an SQS event-source loop and a schedule."""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the stack module uses this one's stream poller: no cycle at run time
    from devstack.stack import EventSource, LocalStack

ROOT = Path(__file__).resolve().parents[2]
Handler = Callable[[dict[str, Any], Any], Any]


def load_handler(function: str) -> Handler:
    """Import functions/<function>/app.py by file, as the Lambda runtime does."""
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"{function}_app", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Handler = module.lambda_handler
    return handler


class LambdaContext:
    """The context Lambda passes: name, request id and the time left before `timeout`."""

    memory_limit_in_mb = 512

    def __init__(self, function_name: str, timeout: float) -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:ap-southeast-1:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as it appears in a Lambda event."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        # Lambda spells message attributes in camel case (stringValue, dataType); the SQS API does not.
        "messageAttributes": {
            name: {key[0].lower() + key[1:]: value for key, value in attribute.items()}
            for name, attribute in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class EventSourceMapping:
    """Polls the queue like Lambda's SQS poller: batches, partial failures, redelivery, dead letters.

    Successes are deleted; reported failures are left alone, so SQS makes them visible again after the
    queue's visibility timeout, and moves them to the dead-letter queue after maxReceiveCount receives.
    """

    def __init__(
        self, stack: LocalStack, handler: Handler, timeout: float = 30.0, source: EventSource | None = None
    ) -> None:
        self._stack = stack
        self._handler = handler
        self._timeout = timeout
        self._sqs = stack.client("sqs")
        self._source = source = source or stack.event_source
        self._arn = self._sqs.get_queue_attributes(QueueUrl=source.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.invocations = 0

    def poll_once(self) -> int:
        """Receive one batch and invoke the handler with it. Returns how many records it carried."""
        source = self._source
        messages = self._sqs.receive_message(
            QueueUrl=source.queue_url,
            MaxNumberOfMessages=source.batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [sqs_record(m, self._arn, self._stack.region) for m in messages]}
        self.invocations += 1
        try:
            response = self._handler(event, LambdaContext("send_sms", self._timeout))
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        except Exception:
            # An invocation error: the whole batch comes back. Lambda logs it; so does this.
            traceback.print_exc(file=sys.stdout)
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
            ]
            self._sqs.delete_message_batch(QueueUrl=source.queue_url, Entries=entries)
        return len(messages)


class Schedule:
    """Invokes a handler every `interval` seconds (EventBridge Scheduler, time compressed)."""

    def __init__(self, handler: Handler, interval: float, timeout: float = 120.0) -> None:
        self._handler = handler
        self._interval = interval
        self._timeout = timeout
        self._next = time.monotonic()
        self.invocations = 0
        self.last_result: Any = None

    def tick(self) -> bool:
        if time.monotonic() < self._next:
            return False
        self._next = time.monotonic() + self._interval
        self.invocations += 1
        event = {"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}}
        self.last_result = self._handler(event, LambdaContext("poll_status", self._timeout))
        return True
