"""Several processes asking one limiter for capacity at once, as Lambda instances do.

Used by the tests that prove the limiter is account-wide. Time is a shared number the driver moves
in rounds: in each round every worker asks once (at the same instant of limiter time), then waits at a
barrier for the next round, so the outcome does not depend on how the processes are scheduled. A worker's
clock may be off that shared time by its `skews` entry, as Lambda instances' clocks are off each other;
its grants are reported at the shared time, as MiM would count them.
"""

from __future__ import annotations

import multiprocessing
import random
from dataclasses import dataclass
from typing import Any

import boto3

from smsgw.config import parse_rate_limits
from smsgw.limiter import Lane, RateLimiter


@dataclass(frozen=True)
class LoadPlan:
    endpoint: str
    table: str
    limits: str
    rounds: int
    step: float  # seconds of limiter time between rounds
    start: float
    most_per_ask: int = 10
    skews: tuple[float, ...] = ()  # seconds each worker's clock is off the shared time (0 for the rest)


def _worker(plan: LoadPlan, worker: int, clock: Any, barrier: Any, results: Any) -> None:
    client = boto3.client(
        "dynamodb",
        endpoint_url=plan.endpoint,
        region_name="ap-southeast-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106  # nosec B106  # moto accepts any key
    )
    skew = plan.skews[worker] if worker < len(plan.skews) else 0.0
    limiter = RateLimiter(client, plan.table, parse_rate_limits(plan.limits), clock=lambda: clock.value + skew)
    rng = random.Random(worker)  # nosec B311  # the load's shape, not a secret
    grants = []
    for _ in range(plan.rounds):
        barrier.wait()  # the round's time is set
        grant = limiter.acquire(Lane.BULK, rng.randint(1, plan.most_per_ask))
        grants.append((clock.value, grant.granted))
        barrier.wait()  # everyone has asked
    results.put((worker, grants, limiter.writes, limiter.reads))


def run_load(plan: LoadPlan, workers: int) -> tuple[list[tuple[float, int]], int, int]:
    """Run `workers` processes for `plan.rounds` rounds. Returns (every grant as (time, calls), writes, reads)."""
    context = multiprocessing.get_context("spawn")
    clock = context.Value("d", plan.start)
    barrier = context.Barrier(workers + 1)
    results = context.Queue()
    processes = [context.Process(target=_worker, args=(plan, n, clock, barrier, results)) for n in range(workers)]
    for process in processes:
        process.start()
    try:
        for round_ in range(plan.rounds):
            clock.value = plan.start + round_ * plan.step
            barrier.wait(timeout=120)
            barrier.wait(timeout=120)
        grants: list[tuple[float, int]] = []
        writes = reads = 0
        for _ in processes:
            _, worker_grants, worker_writes, worker_reads = results.get(timeout=120)
            grants.extend(worker_grants)
            writes += worker_writes
            reads += worker_reads
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    return grants, writes, reads
