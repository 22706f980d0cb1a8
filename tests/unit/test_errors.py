"""The error vocabulary carries its own policy, and the docs list exactly its codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smsgw.errors import ErrorCode, Outcome, Policy, outage_sign
from smsgw.provider import generic, official

ROOT = Path(__file__).resolve().parents[2]


def documented_codes() -> set[str]:
    """The codes in the first column of the error-code table (docs/contract.md, "Error codes")."""
    text = (ROOT / "docs" / "contract.md").read_text().split("## 3. Error codes\n", 1)[1]
    rows = [line for line in text.split("\n## ", 1)[0].splitlines() if line.startswith("| `")]
    return {code for row in rows for code in re.findall(r"`([a-z_]+)`", row.split("|")[1])}


def test_the_contract_lists_every_code_and_only_those() -> None:
    assert documented_codes() == {code.value for code in ErrorCode}


@pytest.mark.parametrize("code", list(ErrorCode))
def test_a_codes_policy_agrees_with_its_outcome_class(code: ErrorCode) -> None:
    allowed = {
        Outcome.PERMANENT: {Policy.FAIL},
        Outcome.THROTTLED: {Policy.WAIT},
        Outcome.NOT_SENT: {Policy.BACKOFF, Policy.HOLD, Policy.REDELIVER, Policy.FAIL, Policy.FINAL},
        Outcome.MAYBE_SENT: {Policy.NO_RESEND, Policy.FINAL},
    }
    assert code.policy in allowed[code.outcome]
    if code.outage:  # a provider that cannot serve now: try again later
        assert (code.outcome, code.policy) == (Outcome.NOT_SENT, Policy.BACKOFF)


def test_the_dialects_answer_only_in_the_vocabulary() -> None:
    answers = [*generic.ERROR_CODES.values(), *generic.ERROR_WORDS.values(), *official.STATUS_CODES.values()]
    assert all(isinstance(answer, ErrorCode) for answer in answers)


def test_an_unknown_code_is_no_outage_sign_and_has_no_policy() -> None:
    assert ErrorCode.of("something_new") is None
    assert outage_sign(Outcome.NOT_SENT, "something_new") is False
