"""Run the simulator by itself: `python -m mimsms_simulator --port 8900`."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from mimsms_simulator.server import FAULTS, Account, MimSmsSimulator, ProviderState


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="MiM SMS simulator (both dialects) on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--username", default="demo@example.com")
    parser.add_argument("--api-key", default="sim-api-key")
    parser.add_argument("--password", default="sim-password")
    parser.add_argument("--sender-id", default="MIMSMS")
    parser.add_argument("--balance", type=float, default=1000.0)
    parser.add_argument("--delivery-delay", type=float, default=2.0, help="seconds until a report says Delivered")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds every request is held, as a network would")
    parser.add_argument(
        "--rate-limits",
        default="100/60,1000/3600,10000/86400",
        help="the account's limits, count/seconds, comma-separated",
    )
    parser.add_argument(
        "--allow-ip",
        action="append",
        metavar="ADDRESS",
        help="answer 'IP Black List' to callers from any other address, as MiM does (repeatable; default: allow all)",
    )
    for kind in FAULTS:
        parser.add_argument(f"--{kind.replace('_', '-')}-rate", type=float, default=0.0, help=f"share of {kind}")
    args = parser.parse_args(argv)

    pairs = (item.split("/") for item in args.rate_limits.split(","))
    limits = tuple((int(count), int(seconds)) for count, seconds in pairs)
    state = ProviderState(rate_limits=limits, delivery_delay=args.delivery_delay)
    state.faults.latency = args.latency
    state.allowed_ips = set(args.allow_ip) if args.allow_ip else None
    state.add_account(Account(args.username, args.api_key, args.password, args.balance, {args.sender_id}))
    state.faults.rates = {kind: getattr(args, f"{kind}_rate") for kind in FAULTS}
    sim = MimSmsSimulator(args.host, args.port, state).start()
    print(f"MiM SMS simulator on {sim.base_url} (generic: /send-sms; official: /api/SmsSending/SMS)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    sim.stop()


if __name__ == "__main__":
    main()
