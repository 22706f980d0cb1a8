"""`make bench`: how much a batch of 10 costs compared with one provider round trip.

Runs the real send path in process against moto's server (a separate process, as AWS is) and the
simulator with a fixed provider latency, and prints ratios, not absolute times, so the result means
the same on a slow or a fast machine.
Target: the pooled batch of 10 is at least 3x faster than sending the same 10 one after another
(what Powertools' BatchProcessor does). The ideal is 10x; moto's server evaluates every conditional
UpdateItem in one Python process (about 10-20 ms each here), which real DynamoDB does not, so part of
the batch still queues behind the fake store. The batch/one ratio is printed for that reason.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

import boto3

from devstack.motoserver import MotoServer
from devstack.template import create_table, load_template
from mimsms_simulator import Account, MimSmsSimulator, ProviderState
from smsgw import sending
from smsgw.observability import logger, metrics

LATENCY = 0.10  # seconds the simulator holds every request, standing in for the network to MiM
ROUNDS = 5
TARGET_SPEEDUP = 3.0


class _Context:
    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _event(count: int, start: int) -> dict[str, Any]:
    records = []
    for n in range(start, start + count):
        body = {"phone": f"0171{n % 10_000_000:07d}", "message": "Your OTP is 482913", "request_id": f"bench-{n}"}
        records.append(
            {
                "messageId": f"m-{n}",
                "receiptHandle": f"h-{n}",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:ap-southeast-1:1:q",
            }
        )
    return {"Records": records}


def _timed(count: int, start: int) -> float:
    began = time.perf_counter()
    response = sending.process_batch(_event(count, start), _Context())
    elapsed = time.perf_counter() - began
    assert response["batchItemFailures"] == [], response
    metrics.clear_metrics()
    return elapsed


def main() -> None:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "ap-southeast-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "MESSAGES_TABLE": "bench-messages",
            "MIMSMS_SECRET_ID": "bench/mimsms",
            "MIMSMS_API": "official",
            "MIMSMS_RATE_LIMITS": "1000000/60",
            "CONTROL_TABLE": "bench-control",
        }
    )
    logger.setLevel("ERROR")
    state = ProviderState(rate_limits=((1_000_000, 60),))
    state.add_account(Account("bench@example.com", "bench-key", balance=1e9))
    state.faults.latency = LATENCY
    with MotoServer() as moto, MimSmsSimulator(state=state) as sim:
        os.environ["AWS_ENDPOINT_URL"] = moto.endpoint
        create_table(boto3.client("dynamodb"), load_template(), "bench-messages")
        create_table(boto3.client("dynamodb"), load_template(), "bench-control", "ControlTable")
        os.environ["SEND_QUEUE_URL"] = boto3.client("sqs").create_queue(QueueName="bench-send")["QueueUrl"]
        boto3.client("secretsmanager").create_secret(
            Name="bench/mimsms",
            SecretString=json.dumps({"username": "bench@example.com", "api_key": "bench-key", "sender_id": "MIMSMS"}),
        )
        os.environ["MIMSMS_BASE_URL"] = sim.base_url
        results: dict[str, list[float]] = {"one": [], "batch": [], "sequential": []}
        serial = 0
        for concurrency, label, count in (("10", "one", 1), ("10", "batch", 10), ("1", "sequential", 10)):
            os.environ["SEND_CONCURRENCY"] = concurrency
            sending.reset()
            _timed(1, 10_000_000 + serial)  # warm: clients, pool, credentials cache
            serial += 1
            for _ in range(ROUNDS):
                results[label].append(_timed(count, serial))
                serial += count
    one, batch, sequential = (statistics.median(results[k]) for k in ("one", "batch", "sequential"))
    speedup = sequential / batch
    print(f"send path, provider latency {LATENCY * 1000:.0f} ms, median of {ROUNDS} rounds")
    print(f"  one record           {one * 1000:8.1f} ms")
    print(f"  batch of 10, pooled  {batch * 1000:8.1f} ms   batch/one ratio {batch / one:5.2f}")
    print(f"  batch of 10, serial  {sequential * 1000:8.1f} ms")
    verdict = "OK" if speedup >= TARGET_SPEEDUP else "MISSED"
    print(f"  serial/pooled ratio  {speedup:8.2f}      target >= {TARGET_SPEEDUP:.1f}  {verdict}")
    if speedup < TARGET_SPEEDUP:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
