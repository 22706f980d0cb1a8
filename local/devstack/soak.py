"""`make soak`: a campaign with OTPs mixed in, at MiM's limits, with faults, as AWS runs it.

moto's server and the MiM simulator (enforcing the account's limits in the same compressed time as the
AWS side), several send-function consumers of the send queue, one of the priority queue, and the
poller, each in its own process as Lambda runs them, all sharing the one account-wide limiter.
Publishes a mixed campaign (OTPs on the priority queue, the rest on the send queue), waits until every
message is settled, prints a table, and exits non-zero on any duplicate SMS, lost message, dead
letter, or request MiM refused for its rate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devstack import stack as local
from devstack.lambdas import EventSourceMapping, Schedule, load_handler
from devstack.stack import EventSource
from mimsms_simulator import FAULTS, ProviderState

FINAL = ("delivered", "failed", "unknown")
DEFAULT_FAULTS = {"http_503": 0.03, "timeout": 0.01, "drop_after": 0.01}
OTP_GAP = 6.0  # seconds between OTPs published during a bulk campaign (`--bulk`)


@dataclass(frozen=True)
class ProcessSpec:
    """What a consumer or poller process needs to reach the local stack."""

    endpoint: str
    region: str
    environment: dict[str, str]
    sources: list[dict[str, Any]]
    poll_interval: float
    log_path: str


class _Endpoint:
    """The part of LocalStack an EventSourceMapping uses, rebuilt in a child process."""

    def __init__(self, spec: ProcessSpec) -> None:
        self.region = spec.region
        self._endpoint = spec.endpoint
        self.event_source = EventSource(**spec.sources[0])

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self._endpoint, region_name=self.region)


def _prepare(spec: ProcessSpec) -> None:
    os.environ.update(spec.environment)
    os.environ.update({"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"})  # nosec B105  # moto accepts any key
    from smsgw.observability import logger

    log = open(spec.log_path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    logger.registered_handler.setStream(log)  # type: ignore[attr-defined]
    sys.stdout = log


def consumer(spec: ProcessSpec, stop: Any, ready: Any) -> None:
    """One send-function instance: polls its queue like Lambda's event-source mapping."""
    _prepare(spec)
    endpoint = _Endpoint(spec)
    handler = load_handler("send_sms")
    mappings = [EventSourceMapping(endpoint, handler, source=EventSource(**s)) for s in spec.sources]  # type: ignore[arg-type]
    ready.release()
    while not stop.is_set():
        if not sum(mapping.poll_once() for mapping in mappings):
            time.sleep(0.05)


def poller(spec: ProcessSpec, stop: Any, ready: Any) -> None:
    """poll_status on its (compressed) schedule, in a process of its own."""
    _prepare(spec)
    schedule = Schedule(load_handler("poll_status"), spec.poll_interval)
    ready.release()
    while not stop.is_set():
        if not schedule.tick():
            time.sleep(0.05)


def campaign(count: int, otp_every: int) -> list[dict[str, Any]]:
    """`count` messages, one number each; every `otp_every`-th an OTP (priority high)."""
    messages = []
    for n in range(count):
        otp = n % otp_every == 0
        text = f"Your OTP is {100000 + n}" if otp else f"Winter sale: 20% off until Friday. Code WS{n:05d}"
        messages.append(
            {
                "phone": f"017{n:08d}",
                "message": text,
                "request_id": f"soak-{n}",
                "priority": "high" if otp else "normal",
            }
        )
    return messages


def publications(messages: list[dict[str, Any]], bulk: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """What is published: each body with the messages it carries. With `bulk`, the campaign's messages go
    as bulk requests (`messages`, a text per number) of up to `bulk` numbers, and every message then names
    its number's record (`<request_id>:<8801...>`); OTPs always go one by one."""
    if bulk <= 0:
        return [(json.dumps(m), [m]) for m in messages]
    out: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    current: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
    for message in messages:
        if message["priority"] == "high":
            out.append((message, [message]))
            continue
        if current is None or len(current[1]) == bulk:
            rid = f"soak-bulk-{len(out)}"
            current = ({"request_id": rid, "messages": [], "priority": "normal"}, [])
            out.append(current)
        request, carried = current
        request["messages"].append({"phone": message["phone"], "message": message["message"]})
        message["request_id"] = f"{request['request_id']}:88{message['phone']}"
        carried.append(message)
    return [(json.dumps(body), carried) for body, carried in out]


def busiest_window(times: list[float], seconds: float) -> int:
    """Most requests in any interval of `seconds` (sliding), as MiM may count them."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


@dataclass
class ClassResult:
    label: str
    messages: int
    statuses: dict[str, int]
    unsettled: int
    sent_twice: int
    latency_windows: list[float]  # from publishing to MiM accepting it, in shortest windows


DEFAULT_COUNT = 1200
OUT = Path(__file__).resolve().parents[2] / "bench-out"


@dataclass
class SoakResult:
    speed: float
    rate_limits: tuple[tuple[int, int], ...]  # as the simulator enforced them (compressed seconds)
    classes: list[ClassResult]
    final_codes: dict[str, int]
    request_times: list[float]  # when MiM received each request
    send_times: list[float]  # when MiM accepted each SMS
    rate_rejections: int
    dead_letters: int
    started: float

    @property
    def ok(self) -> bool:
        clean = all(c.unsettled == 0 and c.sent_twice == 0 for c in self.classes)
        return clean and self.rate_rejections == 0 and self.dead_letters == 0


def _measure(
    stack: local.LocalStack,
    messages: list[dict[str, Any]],
    published: dict[str, float],
    speed: float,
    started: float,
    settled: tuple[str, ...] = FINAL,
) -> SoakResult:
    state = stack.simulator.state
    records = stack.records()
    per_phone: dict[str, int] = {}
    accepted_at: dict[str, float] = {}
    for sms in state.sent.values():
        per_phone[sms.phone] = per_phone.get(sms.phone, 0) + 1
        accepted_at.setdefault(sms.phone, sms.received_at)
    window = min(seconds for _, seconds in state.rate_limits)
    classes = []
    for label, priority in (("OTP", "high"), ("campaign", "normal")):
        group = [m for m in messages if m["priority"] == priority]
        statuses = [records.get(m["request_id"], {}).get("status", "missing") for m in group]
        latency = sorted(
            (accepted_at["88" + m["phone"]] - published[m["request_id"]]) / window
            for m in group
            if "88" + m["phone"] in accepted_at
        )
        classes.append(
            ClassResult(
                label,
                len(group),
                {s: statuses.count(s) for s in set(statuses)},
                sum(1 for s in statuses if s not in settled),
                sum(1 for m in group if per_phone.get("88" + m["phone"], 0) > 1),
                latency,
            )
        )
    codes: dict[str, int] = {}
    for record in records.values():
        if record.get("status") in ("failed", "unknown"):
            codes[record.get("error_code", "?")] = codes.get(record.get("error_code", "?"), 0) + 1
    return SoakResult(
        speed,
        tuple(state.rate_limits),
        classes,
        codes,
        [r.at for r in state.received],
        [sms.received_at for sms in state.sent.values()],
        state.rate_rejections,
        stack.queue_depth(stack.event_source.dead_letter_url),
        started,
    )


def print_report(result: SoakResult) -> None:
    print(
        f"\n{'class':10} {'messages':>8} {'delivered':>9} {'failed':>7} {'unknown':>7} {'unsettled':>9} "
        f"{'sent twice':>10} {'accepted after, in windows: median':>35} {'p95':>6}"
    )
    for c in result.classes:
        median = statistics.median(c.latency_windows) if c.latency_windows else float("nan")
        p95 = c.latency_windows[int(0.95 * (len(c.latency_windows) - 1))] if c.latency_windows else float("nan")
        delivered, failed, unknown = (c.statuses.get(s, 0) for s in ("delivered", "failed", "unknown"))
        print(
            f"{c.label:10} {c.messages:8d} {delivered:9d} {failed:7d} {unknown:7d} {c.unsettled:9d} "
            f"{c.sent_twice:10d} {median:35.2f} {p95:6.2f}"
        )
    codes = ", ".join(f"{code} {n}" for code, n in sorted(result.final_codes.items()))
    print(f"final codes: {codes or 'none'}")
    busiest = ", ".join(
        f"{busiest_window(result.request_times, seconds)}/{count} in {seconds * result.speed:g} s"
        for count, seconds in result.rate_limits
    )
    print(
        f"provider requests {len(result.request_times)}, refused for the rate limit {result.rate_rejections}; "
        f"busiest windows (calls/limit): {busiest}"
    )
    print(f"dead-letter queue {result.dead_letters}")
    print("RESULT: no duplicate, no loss, no dead letter, no rate refusal" if result.ok else "RESULT: FAILED")


def figures(result: SoakResult, dialect: str) -> dict[str, Any]:
    """What docs/benchmarks.md shows of a soak (`make docs`)."""
    otp = next(c for c in result.classes if c.label == "OTP")
    latency = sorted(otp.latency_windows)
    return {
        "dialect": dialect,
        "ok": result.ok,
        "messages": sum(c.messages for c in result.classes),
        "otp_latency_windows_median": statistics.median(latency) if latency else None,
        "otp_latency_windows_p95": latency[int(0.95 * (len(latency) - 1))] if latency else None,
        "busiest_per_limit": max(
            busiest_window(result.request_times, seconds) / count for count, seconds in result.rate_limits
        ),
        "rate_refusals": result.rate_rejections,
        "dead_letters": result.dead_letters,
        "sent_twice": sum(c.sent_twice for c in result.classes),
        "unsettled": sum(c.unsettled for c in result.classes),
    }


@contextlib.contextmanager
def running(
    consumers: int,
    *,
    dialect: str = "official",
    faults: dict[str, float] | None = None,
    speed: float = 60.0,
    parameters: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
    before_start: Callable[[local.LocalStack], None] | None = None,
) -> Iterator[tuple[local.LocalStack, Path]]:
    """The local stack with `consumers` send-function processes and the poller, all warm; stopped at exit.
    `before_start` runs first (e.g. to queue a backlog that is there when the consumers begin)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[name] = "local"
    os.environ.pop("AWS_PROFILE", None)
    state = ProviderState(delivery_delay=2.0, seed=11)
    state.faults.rates = dict(faults or {})
    state.faults.timeout_seconds = 3.0
    stack = local.start(dialect, speed=speed, provider=state, parameters=parameters)
    try:
        stack.simulator.state.accounts[local.LOCAL_USERNAME].balance = 1e6
        stack.environment["HTTP_READ_TIMEOUT_SECONDS"] = "2"
        stack.environment.update(environment or {})
        if before_start is not None:
            before_start(stack)
        log_path = Path(tempfile.gettempdir()) / "sms-gateway-soak.log"
        log_path.write_text("")
        context = multiprocessing.get_context("spawn")
        stop, ready = context.Event(), context.Semaphore(0)
        processes = []
        # Each event source has pollers of its own, as Lambda gives every event-source mapping its own
        # concurrency: the send queue `consumers` instances, the priority queue one, so an OTP never
        # waits for a campaign batch to finish in the same loop.
        for n, source in enumerate(stack.event_sources):
            spec = ProcessSpec(
                stack.endpoint, stack.region, stack.environment, [asdict(source)], stack.poll_interval, str(log_path)
            )
            processes += [
                context.Process(target=consumer, args=(spec, stop, ready), name=f"send-{n}-{k}")
                for k in range(consumers if n == 0 else 1)
            ]
        spec = ProcessSpec(stack.endpoint, stack.region, stack.environment, [], stack.poll_interval, str(log_path))
        processes.append(context.Process(target=poller, args=(spec, stop, ready), name="poll"))
        started: list[Any] = []
        try:
            for process in processes:
                process.start()
                started.append(process)
            for _ in processes:  # every "instance" warm before the campaign lands
                if not ready.acquire(timeout=120):
                    raise SystemExit("a consumer process did not start")
            yield stack, log_path
        finally:
            stop.set()
            for process in started:
                process.join(timeout=30)
                if process.is_alive():
                    process.terminate()
    finally:
        stack.stop()


def soak(
    count: int = 1200,
    consumers: int = 4,
    *,
    otp_every: int = 10,
    dialect: str = "official",
    faults: dict[str, float] | None = None,
    speed: float = 60.0,
    timeout: float | None = None,
    parameters: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
    progress: bool = True,
    settled: tuple[str, ...] = FINAL,
    bulk: int = 0,
) -> SoakResult:
    """Run the whole campaign and measure it (see the module's docstring). A message is done when its
    status is one of `settled` (with TrackingPolicy none, `sent` is as far as it goes). With `bulk`, the
    campaign goes as bulk requests of that many numbers (the OTPs one by one)."""
    messages = campaign(count, otp_every)
    bodies = publications(messages, bulk)
    # At the account's limits each message costs a send and a report look-up: about 0.15 s apiece at 60x.
    timeout = timeout or max(120.0, 0.3 * count * 60 / speed)
    with running(
        consumers, dialect=dialect, faults=faults, speed=speed, parameters=parameters, environment=environment
    ) as (stack, log_path):
        state = stack.simulator.state
        sqs = stack.client("sqs")
        published: dict[str, float] = {}
        started = state.clock()
        # A bulk campaign lands at once; its OTPs then come one every OTP_GAP (compressed) seconds, as
        # people log in during a campaign, not all in its first second. One by one, OTPs stay mixed in.
        if bulk:
            bodies.sort(key=lambda publication: publication[1][0]["priority"] == "high")
        for body, carried in bodies:
            if bulk and carried[0]["priority"] == "high":
                time.sleep(OTP_GAP / speed)
            sqs.send_message(QueueUrl=stack.queue_for(body), MessageBody=body)
            published.update((message["request_id"], state.clock()) for message in carried)
        if progress:
            print(
                f"Published {len(messages)} messages in {len(bodies)} requests; {consumers} consumers and the "
                f"poller are working (logs: {log_path}) ...",
                flush=True,
            )
        began = time.monotonic()
        queues = [source.queue_url for source in stack.event_sources]
        while time.monotonic() - began < timeout:
            time.sleep(2)
            records = stack.records()
            statuses = [records.get(m["request_id"], {}).get("status", "queued") for m in messages]
            queued = sum(stack.queue_depth(url) for url in queues)
            if progress:
                counts = {s: statuses.count(s) for s in ("queued", "sending", "sent", *FINAL) if statuses.count(s)}
                line = "  ".join(f"{k} {v}" for k, v in counts.items())
                print(
                    f"  {time.monotonic() - began:5.0f}s  queued {queued:5d}  | {line}  | "
                    f"provider SMS {len(state.sent)}, refused {state.rate_rejections}",
                    flush=True,
                )
            if queued == 0 and all(s in settled for s in statuses):
                break
        return _measure(stack, messages, published, speed, started, settled)


def otp_behind_backlog(
    backlog: int = 10_000, otps: int = 5, consumers: int = 4, *, speed: float = 4.0, **setup: Any
) -> tuple[list[float], int]:
    """Publish `backlog` campaign messages at once, then an OTP every half window: how many windows each
    OTP waits until MiM accepts it (the campaign is not drained). Returns (latencies, rate refusals)."""

    def queue_backlog(stack: local.LocalStack) -> None:
        sqs = stack.client("sqs")
        bulk = [json.dumps({**m, "priority": "normal"}) for m in campaign(backlog, otp_every=backlog)]  # no OTP
        queue = stack.queue_for(bulk[0])
        if queue != stack.event_source.queue_url:
            raise RuntimeError("the backlog belongs on the normal send queue")
        for start in range(0, len(bulk), 10):
            entries = [{"Id": str(n), "MessageBody": b} for n, b in enumerate(bulk[start : start + 10])]
            sqs.send_message_batch(QueueUrl=queue, Entries=entries)

    with running(consumers, speed=speed, before_start=queue_backlog, **setup) as (stack, _):
        state = stack.simulator.state
        window = min(seconds for _, seconds in state.rate_limits)
        sqs = stack.client("sqs")
        published: dict[str, float] = {}
        for n in range(otps):
            phone = f"018{n:08d}"
            body = json.dumps(
                {"phone": phone, "message": f"Your OTP is {200000 + n}", "priority": "high", "request_id": f"otp-{n}"}
            )
            sqs.send_message(QueueUrl=stack.queue_for(body), MessageBody=body)
            published["88" + phone] = state.clock()
            time.sleep(window / 2)
        deadline = time.monotonic() + 4 * window
        while time.monotonic() < deadline:
            accepted = {sms.phone: sms.received_at for sms in state.sent.values() if sms.phone in published}
            if len(accepted) == len(published):
                break
            time.sleep(0.2)
        latencies = sorted((accepted.get(p, math.inf) - at) / window for p, at in published.items())
        return latencies, state.rate_rejections


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make soak", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"messages (default {DEFAULT_COUNT})")
    parser.add_argument("--consumers", type=int, default=4, help="send-function processes (default 4)")
    parser.add_argument("--otp-every", type=int, default=10, help="every Nth message is an OTP (default 10)")
    local.simulator_options(parser, default_faults=f" (default {DEFAULT_FAULTS})")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--timeout", type=float, help="give up after this many seconds (default: from the count)")
    parser.add_argument(
        "--bulk",
        type=int,
        default=0,
        metavar="N",
        help="the campaign as bulk requests of N numbers, a text each (default: none)",
    )
    args = parser.parse_args(argv)
    faults = {} if args.no_faults else dict(DEFAULT_FAULTS)
    for spec in args.fault:
        kind, _, rate = spec.partition("=")
        if kind not in FAULTS or not rate:
            raise SystemExit(f"--fault wants KIND=RATE with KIND one of {', '.join(FAULTS)}")
        faults[kind] = float(rate)
    print(f"Starting moto's server and the MiM simulator ({args.dialect}), faults {faults or 'none'} ...", flush=True)
    result = soak(
        args.count,
        args.consumers,
        otp_every=args.otp_every,
        dialect=args.dialect,
        faults=faults,
        speed=args.speed,
        timeout=args.timeout,
        bulk=args.bulk,
    )
    print_report(result)
    if args.count >= DEFAULT_COUNT and not args.no_faults and not args.bulk:  # the documented soak only
        OUT.mkdir(exist_ok=True)
        written = OUT / ("soak.json" if args.dialect == "official" else f"soak-{args.dialect}.json")
        written.write_text(json.dumps(figures(result, args.dialect), indent=2))
        print(f"figures in {written.relative_to(OUT.parent)} (`make docs` puts them in docs/benchmarks.md)")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
