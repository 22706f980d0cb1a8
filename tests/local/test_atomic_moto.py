"""The local moto server's shortcuts answer exactly as moto does, only faster."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from conftest import REGION
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import Queue, sqs_backends

from devstack.atomic_moto import cheap_sqs_counts

SHORTCUTS = (
    "messages",
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)


def _answers(queue: Any) -> tuple[Any, ...]:
    return (
        [m.id for m in queue.messages],
        queue.approximate_number_of_messages,
        queue.approximate_number_of_messages_delayed,
        queue.approximate_number_of_messages_not_visible,
    )


def test_cheap_sqs_counts_answer_as_moto_does(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SHORTCUTS:  # restored when the test ends: other tests keep moto as it is
        monkeypatch.setattr(Queue, name, getattr(Queue, name))
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="counts")["QueueUrl"]
        for n in range(30):
            sqs.send_message(QueueUrl=url, MessageBody=str(n), DelaySeconds=0 if n % 3 else 600)
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=5, VisibilityTimeout=600)  # five in flight
        queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].get_queue("counts")
        expected = _answers(queue)
        assert expected[1:] == (15, 10, 5)  # the case covers every kind of message

        cheap_sqs_counts()

        assert _answers(queue) == expected
