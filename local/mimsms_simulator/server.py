"""A MiM SMS provider simulator: a real HTTP server on loopback that speaks both dialects.

It checks credentials, phone number, sender ID and message length; charges the balance per part;
enforces per-account request limits (with X-RateLimit headers in the generic dialect); serves delivery
reports that progress over time; injects faults on demand or at random; and records what it received.
Its checks are written independently of the `smsgw` package so that a bug there is not mirrored here.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_DOUBLE = set("^{}\\[~]|€\f")
MOBILE = re.compile(r"^8801[3-9]\d{8}$")
LOCAL_MOBILE = re.compile(r"^01[3-9]\d{8}$")
FAULTS = ("http_500", "http_503", "timeout", "non_json", "drop_before", "drop_after")
# Operator words the simulator may report, final or not (MiM's delivery-report statuses).
FINAL_STATUSES = {
    "Delivered",
    "Undelivered",
    "Unidentified subscriber",
    "Barred subscriber",
    "Illegal subscriber",
    "SMS Failed - sender ID blocked",
}


def count_parts(text: str) -> int:
    if all(ch in GSM7 or ch in GSM7_DOUBLE for ch in text):
        units = sum(2 if ch in GSM7_DOUBLE else 1 for ch in text)
        single, multi = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else -(-units // multi)


@dataclass
class Account:
    username: str
    api_key: str
    password: str = ""
    balance: float = 1000.0
    sender_ids: set[str] = field(default_factory=lambda: {"MIMSMS"})
    campaigns: set[str] = field(default_factory=set)


@dataclass
class SentSms:
    message_id: str
    dialect: str
    username: str
    phone: str
    text: str
    sender_id: str
    parts: int
    cost: float
    received_at: float
    priority: str | None = None
    schedule_time: str | None = None
    transaction_type: str | None = None
    campaign_id: str | None = None
    # (seconds after sending, operator status); before the first entry the report is pending.
    timeline: list[tuple[float, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Received:
    path: str
    body: Any
    content_type: str
    at: float


@dataclass
class Faults:
    """Fault knobs. `queue` forces faults on the next requests in order; rates apply to the others."""

    latency: float = 0.0
    timeout_seconds: float = 15.0
    rates: dict[str, float] = field(default_factory=dict)
    queue: deque[str] = field(default_factory=deque)

    def push(self, *kinds: str) -> None:
        for kind in kinds:
            if kind not in FAULTS:
                raise ValueError(f"unknown fault {kind!r}; choose from {', '.join(FAULTS)}")
            self.queue.append(kind)

    def pick(self, rng: random.Random) -> str | None:
        if self.queue:
            return self.queue.popleft()
        for kind in FAULTS:
            if rng.random() < self.rates.get(kind, 0.0):
                return kind
        return None


class ProviderState:
    def __init__(
        self,
        rate_limits: tuple[tuple[int, int], ...] = ((100, 60), (1000, 3600), (10000, 86400)),
        price_per_part: float = 0.50,
        delivery_delay: float = 0.0,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.sent: dict[str, SentSms] = {}
        self.received: list[Received] = []
        self.rate_limits = rate_limits
        self.price_per_part = price_per_part
        self.delivery_delay = delivery_delay
        self.clock = clock
        self.faults = Faults()
        self.rng = random.Random(seed)  # nosec B311  # a reproducible fault pattern, not a secret
        self.scripts: dict[str, list[tuple[float, str]]] = {}
        self.replies: deque[tuple[int, Any]] = deque()
        self.in_flight = 0
        self.max_in_flight = 0  # most requests handled at once: shows whether a client sends concurrently
        self.rate_rejections = 0  # requests refused for the account's rate limits
        # MiM's IP allow-list: None lets every caller in; a set refuses other addresses ("IP Black List").
        self.allowed_ips: set[str] | None = None
        # Tests of concurrency: hold each request until this many are in flight at once (or 10 s pass),
        # so "the batch overlaps" is shown without depending on how fast threads happen to start.
        self.gather = 0
        self.gathered = threading.Condition()
        self.arrivals = 0
        self._windows: dict[str, deque[float]] = {}
        self._ids = itertools.count(1)

    # --- set-up -----------------------------------------------------------------------------
    def add_account(self, account: Account) -> Account:
        with self.lock:
            self.accounts[account.username] = account
        return account

    def script_delivery(self, phone: str, timeline: list[tuple[float, str]]) -> None:
        """Reports for messages to `phone` sent from now on: [(seconds after sending, operator status)]."""
        with self.lock:
            self.scripts[phone] = list(timeline)

    def push_reply(self, status: int, body: Any) -> None:
        """Answer the next request with exactly this (HTTP status, JSON body or raw bytes), unprocessed."""
        with self.lock:
            self.replies.append((status, body))

    # --- the provider's behaviour -----------------------------------------------------------
    def rate_check(self, username: str) -> tuple[bool, dict[str, str]]:
        """Count one request against every window; (allowed, X-RateLimit headers)."""
        now = self.clock()
        with self.lock:
            stamps = self._windows.setdefault(username, deque())
            longest = max(seconds for _, seconds in self.rate_limits)
            while stamps and stamps[0] <= now - longest:
                stamps.popleft()
            allowed = True
            for count, seconds in self.rate_limits:
                if sum(1 for t in stamps if t > now - seconds) >= count:
                    allowed = False
            if allowed:
                stamps.append(now)
            else:
                self.rate_rejections += 1
            count, seconds = self.rate_limits[0]
            in_window = [t for t in stamps if t > now - seconds]
            reset = (in_window[0] + seconds) if in_window else now + seconds
            headers = {
                "X-RateLimit-Limit": str(count),
                "X-RateLimit-Remaining": str(max(count - len(in_window), 0)),
                "X-RateLimit-Reset": str(int(reset) + 1),
            }
            return allowed, headers

    def accept(self, sms: SentSms, key: str | None = None) -> SentSms:
        """Charge and record one SMS, under its message id (or `key`: one number of a bulk request,
        whose numbers share the request's id)."""
        with self.lock:
            account = self.accounts[sms.username]
            account.balance = round(account.balance - sms.cost, 4)
            sms.message_id = sms.message_id or f"sim{next(self._ids):012d}"
            sms.timeline = list(self.scripts.get(sms.phone) or [(self.delivery_delay, "Delivered")])
            self.sent[key or sms.message_id] = sms
        return sms

    def report(self, message_id: str, phone: str | None = None) -> tuple[SentSms | None, str | None]:
        """The message and its operator status now (None while no report exists yet). A bulk request's
        numbers share its id: `phone` tells them apart."""
        with self.lock:
            sms = self.sent.get(message_id)
            if (sms is None or sms.phone != phone) and phone is not None:
                sms = self.sent.get(f"{message_id}/{phone}", sms)
            if sms is None:
                return None, None
            elapsed = self.clock() - sms.received_at
            status = None
            for after, word in sms.timeline:
                if elapsed >= after:
                    status = word
            return sms, status


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API behind a pooled client
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm meets the client's
    # delayed ACK and every answer stalls about 40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the simulator's record is `state.received`, not stderr."""

    # --- plumbing ---------------------------------------------------------------------------
    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        content_type = "application/json" if not isinstance(body, bytes) else "text/html"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_POST(self) -> None:
        state = self.server.state
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        if state.gather:
            with state.gathered:  # arrivals only grow, so every request of the group is let go together
                state.arrivals += 1
                state.gathered.notify_all()
                state.gathered.wait_for(lambda: state.arrivals >= state.gather, timeout=10)
        try:
            self._serve(state)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _serve(self, state: ProviderState) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = self.headers.get("Content-Type", "")
        with state.lock:
            state.received.append(Received(self.path, _json_body(raw), content_type, state.clock()))
            fault = state.faults.pick(state.rng)
            latency = state.faults.latency
            scripted = state.replies.popleft() if state.replies else None
        if latency:
            self.server.stopping.wait(latency)
        if fault == "drop_before":
            return self._drop()
        if fault == "http_500":
            return self._reply(500, b"<html><body>500 Internal Server Error</body></html>")
        if fault == "http_503":
            return self._reply(503, b"<html><body>503 Service Unavailable</body></html>")

        if scripted is not None:
            return self._reply(*scripted)
        path = self.path.split("?")[0]
        route = ROUTES.get(path)
        if route is None:
            return self._reply(404, b"<html><body>404 Not Found</body></html>")
        if state.allowed_ips is not None and self.client_address[0] not in state.allowed_ips:
            official = path.startswith("/api/SmsSending/")
            status, body, headers = _official("401", "IP Black List") if official else _ip_refused()
        else:
            status, body, headers = route(state, _json_body(raw), content_type)

        if fault == "timeout":
            self.server.stopping.wait(state.faults.timeout_seconds)
            return self._drop()
        if fault == "drop_after":
            return self._drop()
        if fault == "non_json":
            return self._reply(200, b"<html><body>Request processed</body></html>")
        self._reply(status, body, headers)


Reply = tuple[int, Any, dict[str, str]]


# --- dialect `generic` ------------------------------------------------------------------------
def _generic_error(code: str, message: str, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    body = {"status": "error", "error_code": code, "error_message": message, "message_id": None, "cost": 0}
    return status, body, headers or {}


def _ip_refused() -> Reply:
    """The generic dialect's answer to an address not on the account's allow-list (as MiM words it)."""
    return _generic_error("1001", "IP Black List", 401)


def _generic_auth(state: ProviderState, body: Any) -> Account | Reply:
    if not isinstance(body, dict):
        return _generic_error("1002", "Invalid request body", 400)
    account = state.accounts.get(str(body.get("username", "")))
    if account is None or body.get("password") != account.password:
        return _generic_error("1002", "Invalid username/password", 401)
    if body.get("api_key") != account.api_key:
        return _generic_error("1001", "Invalid API key", 401)
    return account


def generic_send(state: ProviderState, body: Any, content_type: str) -> Reply:
    account = _generic_auth(state, body)
    if not isinstance(account, Account):
        return account
    allowed, limits = state.rate_check(account.username)
    if not allowed:
        return _generic_error("1007", "Rate limit exceeded", 429, limits)
    phone = re.sub(r"[\s+-]", "", str(body.get("phone", "")))
    if LOCAL_MOBILE.match(phone):
        phone = "88" + phone
    if not MOBILE.match(phone):
        return _generic_error("1004", "Invalid phone number", headers=limits)
    if body.get("sender_id") not in account.sender_ids:
        return _generic_error("1005", "Invalid sender ID", headers=limits)
    text = body.get("message")
    if not isinstance(text, str) or not text or count_parts(text) > 10:
        return _generic_error("1006", "Message too long", headers=limits)
    parts = count_parts(text)
    cost = parts * state.price_per_part
    if account.balance < cost:
        return _generic_error("1003", "Insufficient balance", headers=limits)
    sms = state.accept(
        SentSms(
            "",
            "generic",
            account.username,
            phone,
            text,
            str(body["sender_id"]),
            parts,
            cost,
            state.clock(),
            priority=body.get("priority"),
            schedule_time=body.get("schedule_time"),
        )
    )
    reply = {"status": "success", "message_id": sms.message_id, "cost": cost, "balance": account.balance, "error": None}
    return 200, reply, limits


def generic_balance(state: ProviderState, body: Any, content_type: str) -> Reply:
    account = _generic_auth(state, body)
    if not isinstance(account, Account):
        return account
    allowed, limits = state.rate_check(account.username)
    if not allowed:
        return _generic_error("1007", "Rate limit exceeded", 429, limits)
    return 200, {"status": "success", "balance": account.balance, "currency": "BDT", "error": None}, limits


GENERIC_WORDS = {"Delivered": "delivered", "Undelivered": "failed"}


def generic_status(state: ProviderState, body: Any, content_type: str) -> Reply:
    account = _generic_auth(state, body)
    if not isinstance(account, Account):
        return account
    allowed, limits = state.rate_check(account.username)
    if not allowed:
        return _generic_error("1007", "Rate limit exceeded", 429, limits)
    sms, word = state.report(str(body.get("message_id", "")))
    if sms is None or sms.username != account.username:
        return _generic_error("1009", "Unknown message_id", headers=limits)
    status = "sent" if word is None or word not in FINAL_STATUSES else "delivered" if word == "Delivered" else "failed"
    reply = {
        "status": status,
        "message_id": sms.message_id,
        "delivery_time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(state.clock()))
        if status == "delivered"
        else None,
        "error": word if status == "failed" else None,
    }
    return 200, reply, limits


# --- dialect `official` -----------------------------------------------------------------------
def _official(code: str, result: str, status_word: str = "Failed", http: int = 200, **extra: str) -> Reply:
    return (
        http,
        {
            "statusCode": code,
            "status": status_word,
            "trxnId": extra.pop("trxnId", ""),
            "responseResult": result,
            **extra,
        },
        {},
    )


def _official_auth(state: ProviderState, body: Any, content_type: str, key_field: str) -> Account | Reply:
    if "application/json" not in content_type or not isinstance(body, dict):
        return _official("500", "An error has occurred.")
    account = state.accounts.get(str(body.get("UserName", "")))
    key = body.get(key_field, body.get("Apikey", body.get("ApiKey")))
    if account is None or key != account.api_key:
        return _official("401", "Invalid User or API Key")
    allowed, _ = state.rate_check(account.username)
    if not allowed:
        return _official("429", "Too Many Requests", http=429)
    return account


def official_send(state: ProviderState, body: Any, content_type: str) -> Reply:
    account = _official_auth(state, body, content_type, "Apikey")
    if not isinstance(account, Account):
        return account
    trxn = f"F{state.rng.randrange(10**15):015d}"
    phone = str(body.get("MobileNumber", ""))
    if not MOBILE.match(phone):
        return _official("206", "Invalid Mobile Number", trxnId=trxn)
    if body.get("SenderName") not in account.sender_ids:
        return _official("208", "Invalid Sender ID", trxnId=trxn)
    kind = body.get("TransactionType")
    if kind not in ("T", "P"):
        return _official("207", "Invalid Transaction Type", trxnId=trxn)
    campaign = body.get("CampaignId")
    if kind == "P" and campaign not in account.campaigns:
        return _official("210", "Invalid Campaign ID", trxnId=trxn)
    text = body.get("Message")
    if not isinstance(text, str) or not text.strip():
        return _official("205", "Invalid Message Content", trxnId=trxn)
    parts = count_parts(text)
    if parts > 10:
        return _official("209", "Message Length Exceeded", trxnId=trxn)
    cost = parts * state.price_per_part
    if account.balance < cost:
        return _official("216", "Insufficient Balance", trxnId=trxn)
    sms = state.accept(
        SentSms(
            f"{state.rng.randrange(10**17, 10**18)}",
            "official",
            account.username,
            phone,
            text,
            str(body["SenderName"]),
            parts,
            cost,
            state.clock(),
            transaction_type=kind,
            campaign_id=campaign if campaign != "null" else None,
        )
    )
    return _official("200", "SMS Send Successfuly", "Success", trxnId=sms.message_id)


def _official_bulk(
    state: ProviderState, account: Account, kind: str, pairs: list[tuple[str, Any]], sender: Any, campaign: Any
) -> Reply:
    """OneToMany and DSMS: every number and text checked first, then one id for the whole request and
    one charge per part of every number; each number's report is asked for with that id and the number."""
    trxn = f"F{state.rng.randrange(10**15):015d}"
    if not pairs or any(not MOBILE.match(phone) for phone, _ in pairs):
        return _official("206", "Invalid Mobile Number", trxnId=trxn)
    if sender not in account.sender_ids:
        return _official("208", "Invalid Sender ID", trxnId=trxn)
    if any(not isinstance(text, str) or not text.strip() for _, text in pairs):
        return _official("205", "Invalid Message Content", trxnId=trxn)
    parts = [count_parts(text) for _, text in pairs]
    if max(parts) > 10:
        return _official("209", "Message Length Exceeded", trxnId=trxn)
    cost = sum(parts) * state.price_per_part
    if account.balance < cost:
        return _official("216", "Insufficient Balance", trxnId=trxn)
    message_id = f"{state.rng.randrange(10**17, 10**18)}"
    for (phone, text), count in zip(pairs, parts, strict=True):
        sms = SentSms(
            message_id,
            "official",
            account.username,
            phone,
            text,
            str(sender),
            count,
            count * state.price_per_part,
            state.clock(),
            transaction_type=kind,
            campaign_id=campaign if campaign not in (None, "null") else None,
        )
        state.accept(sms, key=f"{message_id}/{phone}")
    return _official("200", "SMS Send Successfuly", "Success", trxnId=message_id)


def official_one_to_many(state: ProviderState, body: Any, content_type: str) -> Reply:
    account = _official_auth(state, body, content_type, "Apikey")
    if not isinstance(account, Account):
        return account
    kind, campaign = body.get("TransactionType"), body.get("CampaignId")
    if kind not in ("T", "P"):
        return _official("207", "Invalid Transaction Type")
    if kind == "P" and campaign not in account.campaigns:
        return _official("210", "Invalid Campaign ID")
    numbers = [number.strip() for number in str(body.get("MobileNumber", "")).split(",") if number.strip()]
    if len(set(numbers)) != len(numbers):
        return _official("213", "Parameter Mismatch")
    return _official_bulk(
        state, account, kind, [(n, body.get("Message")) for n in numbers], body.get("SenderName"), campaign
    )


def official_dsms(state: ProviderState, body: Any, content_type: str) -> Reply:
    account = _official_auth(state, body, content_type, "Apikey")
    if not isinstance(account, Account):
        return account
    if body.get("TransactionType") != "D":
        return _official("207", "Invalid Transaction Type")
    data = body.get("SmsData")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        return _official("213", "Parameter Mismatch")
    pairs = [(str(item.get("MobNumber", "")), item.get("Message")) for item in data]
    if len({phone for phone, _ in pairs}) != len(pairs):
        return _official("213", "Parameter Mismatch")
    return _official_bulk(state, account, "D", pairs, body.get("SenderName"), None)


def official_balance(state: ProviderState, body: Any, content_type: str) -> Reply:
    account = _official_auth(state, body, content_type, "Apikey")
    if not isinstance(account, Account):
        return account
    return _official("200", f"{account.balance:g}", "Ok")


def official_dlr(state: ProviderState, body: Any, content_type: str) -> Reply:
    account = _official_auth(state, body, content_type, "ApiKey")
    if not isinstance(account, Account):
        return account
    sms, word = state.report(str(body.get("trxnId", "")), str(body.get("MobileNumber", "")))
    if sms is None or sms.username != account.username or sms.phone != body.get("MobileNumber"):
        return _official("213", "Parameter Mismatch")
    return _official(
        "200",
        "",
        "Ok",
        trxnId=sms.message_id,
        dlrCode="0" if word == "Delivered" else "1",
        operatorStatus=word or "Pending",
        receiverMobile=sms.phone,
    )


ROUTES: dict[str, Callable[[ProviderState, Any, str], Reply]] = {
    "/send-sms": generic_send,
    "/balance": generic_balance,
    "/status": generic_status,
    "/api/SmsSending/SMS": official_send,
    "/api/SmsSending/OneToMany": official_one_to_many,
    "/api/SmsSending/DSMS": official_dsms,
    "/api/SmsSending/balanceCheck": official_balance,
    "/api/SmsSending/DlrApi": official_dlr,
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], state: ProviderState) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.stopping = threading.Event()


class MimSmsSimulator:
    """`with MimSmsSimulator() as sim:` serves on a free loopback port; `sim.base_url` is the address."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, state: ProviderState | None = None) -> None:
        self.state = state or ProviderState()
        self._server = _Server((host, port), self.state)
        # A short poll interval keeps stop() quick: tests start and stop a simulator each.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="mimsms-sim", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> MimSmsSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MimSmsSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
