"""The provider interface: what the rest of the service knows about MiM, whatever the dialect.

Every call ends in an outcome class (docs/contract.md, section 4), never an exception: the adapters turn transport
faults, odd bodies and error codes into one of these, and the send path acts on the class alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from smsgw.credentials import Credentials
from smsgw.errors import Outcome


@dataclass(frozen=True, eq=False)
class OutboundSms:
    """One SMS as the provider adapters send it."""

    phone: str  # 8801XXXXXXXXX
    text: str
    sender_id: str
    priority: str = "normal"
    transactional: bool = True
    campaign_id: str | None = None


@dataclass(frozen=True, eq=False)
class OutboundBulk:
    """Several numbers in one request: one text to all (`texts` None) or a text per number."""

    phones: tuple[str, ...]  # 8801XXXXXXXXX each
    text: str | None
    texts: tuple[str, ...] | None
    sender_id: str
    transactional: bool = True
    campaign_id: str | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.texts is None) or (
            self.texts is not None and len(self.texts) != len(self.phones)
        ):
            raise ValueError("one text for every number, or exactly one text per number")


@dataclass(frozen=True, eq=False)
class SendResult:
    """The provider's answer to a send, classified: accepted, or why not and whether it may have gone."""

    outcome: Outcome
    message_id: str | None = None
    provider_status: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    cost: float | None = None  # the provider's own figure, when it gives one
    auth_failed: bool = False  # worth one retry with freshly fetched credentials
    retry_after: float | None = None  # seconds, from the provider's rate-limit headers

    @property
    def retryable(self) -> bool:
        return self.outcome in (Outcome.THROTTLED, Outcome.NOT_SENT)


class DeliveryState(enum.Enum):
    PENDING = "pending"  # no final report yet, or the operator is still retrying
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, eq=False)
class DeliveryReport:
    """The provider's answer to a report look-up."""

    state: DeliveryState | None  # None: the lookup itself failed (see outcome)
    outcome: Outcome
    provider_status: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, eq=False)
class BalanceResult:
    """The provider's answer to a balance check."""

    balance: float | None
    outcome: Outcome
    error_code: str | None = None
    error_message: str | None = None
    auth_failed: bool = False


class Provider(Protocol):
    """One MiM dialect. Implementations only translate; they hold no state between calls."""

    name: str
    max_numbers: int  # numbers one request may carry (1: the dialect sends each number on its own)

    def send(self, sms: OutboundSms, credentials: Credentials) -> SendResult: ...

    def send_bulk(self, bulk: OutboundBulk, credentials: Credentials) -> SendResult:
        """Up to `max_numbers` numbers in one request (one call of the account's limit); one outcome
        for all of them, with one message id that each number's report is looked up by."""
        ...

    def balance(self, credentials: Credentials) -> BalanceResult: ...

    def delivery_report(self, message_id: str, phone: str, credentials: Credentials) -> DeliveryReport: ...
