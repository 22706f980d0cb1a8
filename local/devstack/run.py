"""`make run`: the whole pipeline on this machine, with no AWS account and no container runtime.

Starts moto's server and the MiM simulator, creates the stack's resources from template.yaml, publishes
a realistic mix of messages, and drives the real handlers the way Lambda does (an SQS event-source loop
and the poll schedule, time compressed). Shows progress, ends with a summary table, and exits 0 only
when every message reached the state it should. `--keep-running` leaves the stack up for other programs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from devstack import stack as local
from devstack.lambdas import EventSourceMapping, Schedule, load_handler
from mimsms_simulator import FAULTS, ProviderState
from smsgw.message import InvalidRequest, parse_request
from smsgw.phone import mask

FINAL = ("delivered", "failed", "unknown")
LONG_PROMO = (
    "Winter sale at ShopBD: 20% off jackets, sweaters and blankets until Friday midnight. "
    "Free delivery inside Dhaka on orders above BDT 1,500, and cash on delivery everywhere in Bangladesh. "
    "Visit shopbd.example or call 16xxx. Reply STOP to opt out."
)


@dataclass
class Planned:
    """One message to publish and the state it must end in."""

    label: str
    body: str
    request_id: str | None  # None: the SQS message id, known once published
    expect: str  # "delivered", or "failed:<error_code>"
    duplicate: bool = False  # a repeat of an earlier request_id: must not create a second SMS


def default_mix(count: int) -> list[Planned]:
    def msg(**fields: Any) -> str:
        return json.dumps(fields, ensure_ascii=False)

    otp = msg(
        phone="01712345601",
        message="Your OTP is 482913. It expires in 5 minutes.",
        request_id="otp-en-1",
        priority="high",
    )
    mix = [
        Planned("OTP, English", otp, "otp-en-1", "delivered"),
        Planned(
            "OTP, Bangla",
            msg(
                phone="+880 1812-345602",
                message="আপনার ওটিপি কোড ৫৫৩১। কাউকে জানাবেন না।",
                request_id="otp-bn-1",
                priority="high",
            ),
            "otp-bn-1",
            "delivered",
        ),
        Planned(
            "long promotional",
            msg(
                phone="8801912345603",
                message=LONG_PROMO,
                request_id="promo-1",
                type="promotional",
                campaign_id=local.LOCAL_CAMPAIGN,
                metadata={"campaign": "winter"},
            ),
            "promo-1",
            "delivered",
        ),
        Planned(
            "invalid number",
            msg(phone="0171234567", message="Your OTP is 1111", request_id="bad-phone-1"),
            "bad-phone-1",
            "failed:invalid_phone",
        ),
        Planned(
            "landline number",
            msg(phone="02-9876543", message="Hello", request_id="landline-1"),
            "landline-1",
            "failed:invalid_phone",
        ),
        Planned("repeated request_id", otp, "otp-en-1", "delivered", duplicate=True),
        Planned("not JSON", "this body is not JSON {", None, "failed:invalid_request"),
        Planned(
            "barred subscriber",
            msg(phone="01312345604", message="Your parcel is on its way.", request_id="barred-1"),
            "barred-1",
            "failed:barred_subscriber",
        ),
    ]
    n = 0
    while len(mix) < count:
        n += 1
        bangla = n % 3 == 0
        text = f"আপনার ওটিপি কোড {n:04d}" if bangla else f"Your verification code is {100000 + n}"
        mix.append(
            Planned(f"OTP {n}", msg(phone=f"0175{n:07d}", message=text, request_id=f"otp-{n}"), f"otp-{n}", "delivered")
        )
    return mix[:count] if count >= 1 else mix


def mix_from_file(path: Path) -> list[Planned]:
    """Messages from a JSON array; each expected to end as the contract says (delivered or its error)."""
    items = json.loads(path.read_text())
    if not isinstance(items, list):
        raise SystemExit(f"{path}: expected a JSON array of messages")
    planned = []
    for i, item in enumerate(items):
        body = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
        try:
            request = parse_request(body, default_request_id=f"file-{i}")
            request_id = request.request_id if isinstance(item, dict) and "request_id" in item else None
            planned.append(Planned(f"message {i + 1}", body, request_id, "delivered"))
        except InvalidRequest as exc:
            planned.append(Planned(f"message {i + 1}", body, exc.request_id, f"failed:{exc.code}"))
    return planned


class Run:
    def __init__(self, stack: local.LocalStack, verbose: bool, log_path: Path) -> None:
        self.stack = stack
        self.verbose = verbose
        self.sqs = stack.client("sqs")
        os.environ.update(stack.environment)
        from smsgw import runtime  # after the environment: the logger reads its service name on import
        from smsgw.observability import logger

        # The handlers' JSON logs and metrics go to a file, so the console shows progress; --verbose shows both.
        self.log = sys.stdout if verbose else log_path.open("w", encoding="utf-8")
        if not verbose:
            logger.registered_handler.setStream(self.log)  # type: ignore[attr-defined]
        runtime.configure()
        handler = load_handler("send_sms")
        # One event-source mapping per queue, as Lambda has: OTPs never wait behind the campaign's backlog.
        self.senders = [EventSourceMapping(stack, handler, source=source) for source in stack.event_sources]
        self.poller = Schedule(load_handler("poll_status"), stack.poll_interval)
        # Final states reach the bus from the status table's stream, as in AWS.
        self.notifier = stack.stream_source(load_handler("status_events"))

    def publish(self, planned: list[Planned]) -> None:
        for item in planned:
            response = self.sqs.send_message(QueueUrl=self.stack.queue_for(item.body), MessageBody=item.body)
            if item.request_id is None:
                item.request_id = response["MessageId"]

    def step(self) -> None:
        """One turn of the Lambda service: an event-source poll and, when due, the schedule."""
        with contextlib.redirect_stdout(self.log):
            received = sum(sender.poll_once() for sender in self.senders)
            self.poller.tick()
            self.notifier.poll_once()
        if not received:
            time.sleep(0.05)

    def progress(self, started: float, planned: list[Planned]) -> tuple[bool, str]:
        records = self.stack.records()
        ids = {p.request_id for p in planned}
        statuses = [records[i]["status"] if i in records else "queued" for i in ids]
        counts = {s: statuses.count(s) for s in ("queued", "sending", "sent", *FINAL)}
        queued = sum(self.stack.queue_depth(source.queue_url) for source in self.stack.event_sources)
        dead = self.stack.queue_depth(self.stack.event_source.dead_letter_url)
        settled = all(s in FINAL for s in statuses) and queued == 0
        # A message that exhausted its tries rests in the dead-letter queue: that too is an end state.
        if not settled and queued == 0 and dead:
            settled = all(s in (*FINAL, "sending") for s in statuses)
        line = (
            f"  {time.monotonic() - started:5.1f}s  queue {queued:3d}  dlq {dead}  | "
            + "  ".join(f"{name} {n}" for name, n in counts.items() if n)
            + f"  | provider SMS {len(self.stack.simulator.state.sent)}"
        )
        return settled, line

    def status_events(self) -> list[dict[str, Any]]:
        with contextlib.redirect_stdout(self.log):
            self.notifier.drain()  # what the last steps wrote
        events: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(QueueUrl=self.stack.status_events_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in batch:
                events.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.stack.status_events_url, ReceiptHandle=message["ReceiptHandle"])
        return events


def summarise(run: Run, planned: list[Planned], faults: bool) -> bool:
    records = run.stack.records()
    sent_per_phone: dict[str, int] = {}
    for sms in run.stack.simulator.state.sent.values():
        sent_per_phone[sms.phone] = sent_per_phone.get(sms.phone, 0) + 1
    events = run.status_events()
    # At least once: a retried stream batch may put an event again, always with the same event_id.
    event_ids: dict[str, set[str]] = {}
    for event in events:
        event_ids.setdefault(event["detail"]["request_id"], set()).add(event["detail"]["event_id"])

    header = (
        f"{'message':22} {'request_id':38} {'phone':14} {'status':10} {'error_code':24} {'parts':>5} {'cost':>6}  ok"
    )
    print("\n" + header + "\n" + "-" * len(header))
    all_ok = True
    total_cost = Decimal(0)
    for item in planned:
        record = records.get(item.request_id or "", {})
        status = record.get("status", "missing")
        error = record.get("error_code") or ""
        got = status if status != "failed" else f"failed:{error}"
        if faults:  # injected faults may leave an outcome unknown, or exhaust a message's attempts
            ok = got in (item.expect, "unknown", "failed:retries_exhausted") or status == "sending"
        else:
            ok = got == item.expect
        if item.duplicate:
            ok = ok and sent_per_phone.get(record.get("phone", ""), 0) <= 1
        if status in FINAL and not item.duplicate:
            ok = ok and len(event_ids.get(item.request_id or "", set())) == 1  # one event per final state
        all_ok &= ok
        if not item.duplicate:
            total_cost += Decimal(str(record.get("cost", 0)))
        phone = mask(record["phone"]) if record.get("phone") else "-"
        verdict = "yes" if ok else f"NO (want {item.expect})"
        print(
            f"{item.label[:22]:22} {(item.request_id or '')[:38]:38} {phone:14} {status:10} {error[:24]:24} "
            f"{record.get('parts', '-')!s:>5} {record.get('cost', '-')!s:>6}  {verdict}"
        )
    duplicates_sent = sum(n - 1 for n in sent_per_phone.values() if n > 1)
    balance = run.stack.simulator.state.accounts[local.LOCAL_USERNAME].balance
    print("-" * len(header))
    print(
        f"{len(planned)} messages, {len(run.stack.simulator.state.sent)} SMS accepted by the provider, "
        f"{duplicates_sent} sent twice, {run.stack.simulator.state.rate_rejections} refused for the rate limit, "
        f"{len(events)} status events, "
        f"{run.stack.queue_depth(run.stack.event_source.dead_letter_url)} in the dead-letter queue"
    )
    sends = sum(sender.invocations for sender in run.senders)
    print(
        f"cost {total_cost} BDT, provider balance {balance:g} BDT; "
        f"{sends} send_sms and {run.poller.invocations} poll_status invocations"
    )
    all_ok &= duplicates_sent == 0
    if not faults:  # the limiter keeps to MiM's limits: a refusal means it did not
        all_ok &= run.stack.simulator.state.rate_rejections == 0
    print("RESULT: every message reached the state it should" if all_ok else "RESULT: some messages did not")
    return all_ok


def print_connection(stack: local.LocalStack) -> None:
    queue = stack.event_source.queue_url
    print(
        f"""
Local stack is up (Ctrl-C stops it):
  endpoint     {stack.endpoint}
  region       {stack.region}
  queue URL    {queue}
  table        {stack.table}
  simulator    {stack.simulator.base_url} ({stack.dialect} dialect)
  credentials  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local (any value works)

Publish from another shell:
  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws --endpoint-url {stack.endpoint} --region {stack.region} \\
    sqs send-message --queue-url {queue} --message-body '{{"phone":"01712345678","message":"Hello from the shell"}}'
  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local .venv/bin/sms-publish --endpoint-url {stack.endpoint} \\
    --region {stack.region} --queue-url {queue} --phone 01712345678 --message "Hello"
Read a record:
  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws --endpoint-url {stack.endpoint} --region {stack.region} \\
    dynamodb scan --table-name {stack.table}
""",
        flush=True,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--count", type=int, default=12, help="messages to publish (default 12; at least 8 for the full mix)"
    )
    parser.add_argument("--messages", type=Path, help="a JSON array of messages to publish instead of the mix")
    local.simulator_options(parser)
    parser.add_argument(
        "--timeout", type=float, help="give up after this many seconds (default: 90, or longer for large counts)"
    )
    parser.add_argument("--keep-running", action="store_true", help="leave the stack up and keep processing")
    parser.add_argument("--moto-port", type=int, help="fixed port for moto's server (default: a free one)")
    parser.add_argument("--verbose", action="store_true", help="show the handlers' logs and metrics")
    return parser.parse_args(argv)


def parse_faults(specs: list[str]) -> dict[str, float]:
    """`--fault KIND=RATE` options as {kind: rate}."""
    faults: dict[str, float] = {}
    for spec in specs:
        kind, _, rate = spec.partition("=")
        if kind not in FAULTS or not rate:
            raise SystemExit(f"--fault wants KIND=RATE with KIND one of {', '.join(FAULTS)}")
        faults[kind] = float(rate)
    return faults


def keep_running(run: Run, stopping: Callable[[], bool]) -> None:
    """After the summary: keep processing, and print each message that reaches a final state."""
    print_connection(run.stack)
    seen = set(run.stack.records())
    while not stopping():
        run.step()
        for request_id, record in run.stack.records().items():
            if request_id not in seen and record.get("status") in FINAL:
                seen.add(request_id)
                print(f"  {request_id}: {record['status']} {record.get('error_code') or ''}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # At MiM's limits in compressed time, a send and a report look-up take about 0.15 s a message.
    timeout = args.timeout if args.timeout is not None else max(90.0, 0.3 * args.count * 60 / args.speed)
    faults = parse_faults(args.fault)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[name] = "local"  # never a real account: everything goes to the local endpoint
    os.environ.pop("AWS_PROFILE", None)

    state = ProviderState(delivery_delay=2.0, seed=1)
    state.faults.rates = faults
    state.faults.timeout_seconds = 3.0
    planned = mix_from_file(args.messages) if args.messages else default_mix(args.count)
    state.script_delivery("8801312345604", [(1.0, "Barred subscriber")])
    print(f"Starting moto's server and the MiM simulator ({args.dialect} dialect) ...", flush=True)
    stack = local.start(args.dialect, speed=args.speed, provider=state, moto_port=args.moto_port)
    stack.environment["HTTP_READ_TIMEOUT_SECONDS"] = "2"  # a simulated timeout should not take 10 s
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log_path = Path(tempfile.gettempdir()) / "sms-gateway-local-run.log"
    try:
        run = Run(stack, args.verbose, log_path)
        if not args.verbose:
            print(f"Handler logs and metrics: {log_path}", flush=True)
        print(f"Stack created from template.yaml; publishing {len(planned)} messages ...", flush=True)
        run.publish(planned)
        started = time.monotonic()
        last_line = 0.0
        settled = False
        while not stopping and time.monotonic() - started < timeout:
            run.step()
            if time.monotonic() - last_line >= 1.0:
                settled, line = run.progress(started, planned)
                print(line, flush=True)
                last_line = time.monotonic()
                if settled:
                    break
        ok = summarise(run, planned, bool(faults))
        if args.keep_running and not stopping:
            keep_running(run, lambda: stopping)
        return 0 if ok and settled else 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
