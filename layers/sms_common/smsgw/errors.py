"""The error vocabulary: every `error_code` a record, a log line or a metric may carry, each with its
outcome class and what the service does about it (docs/contract.md, "Error codes").

The code decides the policy; nothing else keeps a list of codes. An answer's outcome class normally
follows from its code; an answer that may have been acted on (an unreadable 200, a server error after
the request went out, a read timeout) is maybe-sent whatever its code, so a provider result keeps
an `outcome` of its own.
"""

from __future__ import annotations

import enum
from enum import StrEnum


class Outcome(enum.Enum):
    """What a provider call did (docs/contract.md, "Outcome classes")."""

    ACCEPTED = "accepted"  # the provider took the message: record `sent`
    PERMANENT = "permanent"  # the message itself is wrong: record `failed`, never retry
    THROTTLED = "throttled"  # rate limited: retry later, not a failure
    NOT_SENT = "not_sent"  # the provider certainly did not send it: safe to retry
    MAYBE_SENT = "maybe_sent"  # the request went out and the answer was lost: never resend blindly


class Policy(StrEnum):
    """What the service does with a message whose attempt ended with a code."""

    FAIL = "fail"  # `failed` at once, no retry
    WAIT = "wait"  # waits in its queue for capacity: never a failure, never an SQS receive spent
    BACKOFF = "backoff"  # waits with exponential back-off; `retries_exhausted` after MAX_SEND_ATTEMPTS
    HOLD = "hold"  # held on its record until the balance is back, then sent
    REDELIVER = "redeliver"  # ours to fix (a key, the allow-list): SQS redelivery, then the dead-letter queue
    NO_RESEND = "no_resend"  # may have gone: never resent blindly; poll_status resolves it
    FINAL = "final"  # the code of a final record that is not `failed` (unknown, cancelled)


class ErrorCode(StrEnum):
    """An error code, its outcome class, its policy, and whether it is a sign of a provider outage (a
    provider that cannot serve now; with maybe-sent, what the shared outage cool-down counts)."""

    outcome: Outcome
    policy: Policy
    outage: bool

    def __new__(cls, value: str, outcome: Outcome, policy: Policy, outage: bool = False) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.outcome = outcome
        member.policy = policy
        member.outage = outage
        return member

    # The request breaks the contract, or the provider refuses the message itself.
    INVALID_REQUEST = "invalid_request", Outcome.PERMANENT, Policy.FAIL
    INVALID_PHONE = "invalid_phone", Outcome.PERMANENT, Policy.FAIL
    MESSAGE_TOO_LONG = "message_too_long", Outcome.PERMANENT, Policy.FAIL
    INVALID_SENDER_ID = "invalid_sender_id", Outcome.PERMANENT, Policy.FAIL
    INVALID_CONTENT = "invalid_content", Outcome.PERMANENT, Policy.FAIL
    INVALID_CAMPAIGN = "invalid_campaign", Outcome.PERMANENT, Policy.FAIL
    INVALID_TRANSACTION_TYPE = "invalid_transaction_type", Outcome.PERMANENT, Policy.FAIL
    PROVIDER_REJECTED = "provider_rejected", Outcome.PERMANENT, Policy.FAIL
    # Capacity: MiM's rate limit, or none left in the account-wide limiter.
    RATE_LIMITED = "rate_limited", Outcome.THROTTLED, Policy.WAIT
    # The balance: MiM's answer, or the service's own gate.
    INSUFFICIENT_BALANCE = "insufficient_balance", Outcome.NOT_SENT, Policy.HOLD
    BALANCE_LOW = "balance_low", Outcome.NOT_SENT, Policy.HOLD
    # Set-up: no further try cures them until an operator acts.
    AUTHENTICATION_FAILED = "authentication_failed", Outcome.NOT_SENT, Policy.REDELIVER
    IP_NOT_ALLOWED = "ip_not_allowed", Outcome.NOT_SENT, Policy.REDELIVER
    CREDENTIALS_UNAVAILABLE = "credentials_unavailable", Outcome.NOT_SENT, Policy.REDELIVER
    MISSING_SENDER_ID = "missing_sender_id", Outcome.NOT_SENT, Policy.REDELIVER
    # The provider did not send it, for a reason of its own or because it cannot serve now.
    PROVIDER_UNAVAILABLE = "provider_unavailable", Outcome.NOT_SENT, Policy.BACKOFF, True
    PROVIDER_SEND_FAILED = "provider_send_failed", Outcome.NOT_SENT, Policy.BACKOFF, True
    TRANSPORT_ERROR = "transport_error", Outcome.NOT_SENT, Policy.BACKOFF, True
    PROVIDER_ERROR = "provider_error", Outcome.NOT_SENT, Policy.BACKOFF
    # The service's own final words.
    RETRIES_EXHAUSTED = "retries_exhausted", Outcome.NOT_SENT, Policy.FAIL
    EXPIRED = "expired", Outcome.NOT_SENT, Policy.FAIL
    CANCELLED = "cancelled", Outcome.NOT_SENT, Policy.FINAL
    # It may have gone.
    MAYBE_SENT = "maybe_sent", Outcome.MAYBE_SENT, Policy.NO_RESEND
    INTERNAL_ERROR = "internal_error", Outcome.MAYBE_SENT, Policy.NO_RESEND  # the send raised mid-call
    OUTCOME_UNKNOWN = "outcome_unknown", Outcome.MAYBE_SENT, Policy.FINAL

    @classmethod
    def of(cls, code: str | None) -> ErrorCode | None:
        """The member for a code as stored or answered; None for no code or one the service does not know."""
        return _BY_VALUE.get(code) if code else None


_BY_VALUE: dict[str, ErrorCode] = {code.value: code for code in ErrorCode}


def outage_sign(outcome: Outcome, error_code: str | None) -> bool:
    """A call that got no answer, or one the provider says it cannot serve now. An answer refusing for a
    reason of its own (a key, the allow-list, the balance, an id it does not know) shows it is up."""
    if outcome is Outcome.MAYBE_SENT:
        return True
    code = ErrorCode.of(error_code)
    return outcome is Outcome.NOT_SENT and code is not None and code.outage


def policy_of(error_code: str | None) -> Policy | None:
    code = ErrorCode.of(error_code)
    return code.policy if code is not None else None
