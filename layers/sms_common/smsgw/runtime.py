"""The composition root: settings, AWS clients and every collaborator, built once per container on first use.

The only module that wires parts together, and the only one the handlers import: the parts receive what
they need, one clock included. `configure()` is the one way to set it up again: after a change of the
environment, or with a test's clock, every collaborator is built afresh on it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from smsgw.balance import BalanceGate
from smsgw.config import Settings, get_settings
from smsgw.credentials import CredentialSource
from smsgw.deferral import Deferrer
from smsgw.events import StatusEvents
from smsgw.limiter import SLICES, RateLimiter
from smsgw.provider import Provider, make_provider
from smsgw.store import MessageStore

if TYPE_CHECKING:
    from smsgw.polling import Poller
    from smsgw.sending import BatchRunner, Sender

# A chunk's records written side by side: 16 at a time make a 1,000-number chunk's claims and outcomes
# about 2 x 63 DynamoDB round trips instead of 2 x 1,000, well inside the send function's 30 s.
CHUNK_WRITERS = 16

# Short AWS timeouts, so three tries of a stuck call still end well inside the send function's 30 s.
_AWS_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=32
)


_clock: Callable[[], float] = time.time


def clock() -> Callable[[], float]:
    """The clock every collaborator reads (the system's, unless `configure` was given another)."""
    return _clock


@functools.cache
def client(service: str) -> Any:
    return boto3.client(service, config=_AWS_CONFIG)


@functools.cache
def store() -> MessageStore:
    settings = get_settings()
    return MessageStore(client("dynamodb"), settings.messages_table, settings.record_retention_days)


@functools.cache
def provider() -> Provider:
    return make_provider(get_settings())


@functools.cache
def credentials() -> CredentialSource:
    settings = get_settings()
    return CredentialSource(settings.secret_id, settings.secret_max_age)


@functools.cache
def gate() -> BalanceGate:
    return BalanceGate(client("ssm"), get_settings().balance_gate_parameter)


@functools.cache
def status_events() -> StatusEvents:
    settings = get_settings()
    return StatusEvents(client("events"), settings.event_bus, settings.event_source)


def make_limiter(on: Callable[[], float] | None = None) -> RateLimiter:
    """A limiter over the control table: this process's (`limiter()`), or another instance's on its own clock."""
    settings = get_settings()
    return RateLimiter(
        client("dynamodb"),
        settings.control_table,
        settings.rate_limits,
        otp_share=settings.otp_share,
        bulk_burst=settings.bulk_burst,
        outage_failures=settings.outage_failures,
        outage_cooldown=settings.outage_cooldown_seconds,
        slack=settings.rate_slack_seconds,
        max_skew=settings.max_clock_skew_seconds,
        balance_every=settings.balance_check_seconds,
        clock=on or _clock,
    )


@functools.cache
def limiter() -> RateLimiter:
    """The limiter every provider call of this process goes through."""
    return make_limiter()


@functools.cache
def deferrer() -> Deferrer:
    settings = get_settings()
    queues = (settings.send_queue_url, settings.priority_queue_url)
    spread = settings.rate_limits[0].seconds / SLICES  # a slice of the shortest window
    return Deferrer(client("sqs"), *queues, max_delay=settings.max_defer_seconds, base_spread=spread, clock=_clock)


@functools.cache
def sender() -> Sender:
    from smsgw.sending import Sender  # here, not at the top: the parts import this module

    return Sender(
        settings(),
        store(),
        provider(),
        credentials(),
        gate(),
        clock=_clock,
        deferrer=deferrer(),
        writes=write_pool(),
        limiter=limiter(),
    )


@functools.cache
def batch_runner() -> BatchRunner:
    """What the send function runs each SQS batch through, on this process's collaborators."""
    from smsgw.sending import BatchRunner  # here, not at the top: the parts import this module

    parts = (store(), gate(), limiter(), deferrer(), send_pool())
    return BatchRunner(settings(), sender(), *parts, max_numbers=provider().max_numbers, clock=_clock)


@functools.cache
def send_pool() -> ThreadPoolExecutor:
    """The bounded pool a batch's blocking provider calls run on."""
    return ThreadPoolExecutor(max_workers=settings().send_concurrency, thread_name_prefix="send")


@functools.cache
def write_pool() -> ThreadPoolExecutor:
    """The bounded pool a chunk's per-number record writes run on (the send pool's threads wait on it)."""
    return ThreadPoolExecutor(max_workers=CHUNK_WRITERS, thread_name_prefix="write")


def make_poller(on: Callable[[], float] | None = None) -> Poller:
    """A poller over the process-wide clients: a fresh one each scheduled run would get (another clock: another
    instance, with a limiter on that clock)."""
    from smsgw.polling import Poller

    limiter_ = limiter() if on is None or on is _clock else make_limiter(on)
    parts = (store(), provider(), credentials(), gate(), client("sqs"), limiter_)
    return Poller(settings(), *parts, clock=on or _clock)


@functools.cache
def poller() -> Poller:
    return make_poller()


def settings() -> Settings:
    return get_settings()


_CACHED = (
    client,
    store,
    provider,
    credentials,
    gate,
    status_events,
    limiter,
    deferrer,
    sender,
    batch_runner,
    send_pool,
    write_pool,
    poller,
)


def configure(*, clock: Callable[[], float] | None = None) -> None:
    """Forget settings, clients and collaborators: the next use builds them from the environment as it is now.
    With `clock`, every collaborator reads that clock from then on (the system's until a caller gives another)."""
    global _clock
    if clock is not None:
        _clock = clock
    get_settings.cache_clear()
    for cached in _CACHED:
        cached.cache_clear()
