"""What the shared outage cool-down counts, for sends and report look-ups alike."""

import pytest

from smsgw.provider import Outcome, outage_sign


@pytest.mark.parametrize(
    ("outcome", "error_code", "sign"),
    [
        (Outcome.MAYBE_SENT, "provider_error", True),  # no answer after the request went out
        (Outcome.NOT_SENT, "transport_error", True),  # no connection
        (Outcome.NOT_SENT, "provider_unavailable", True),  # 503, generic 1008
        (Outcome.NOT_SENT, "provider_send_failed", True),  # official 221
        (Outcome.NOT_SENT, "provider_error", False),  # an answer with a code of its own (an unknown id)
        (Outcome.NOT_SENT, "authentication_failed", False),
        (Outcome.NOT_SENT, "ip_not_allowed", False),
        (Outcome.NOT_SENT, "insufficient_balance", False),
        (Outcome.THROTTLED, "rate_limited", False),
        (Outcome.PERMANENT, "invalid_phone", False),
        (Outcome.ACCEPTED, None, False),
    ],
)
def test_only_no_answer_or_a_provider_that_cannot_serve_is_an_outage_sign(
    outcome: Outcome, error_code: str | None, sign: bool
) -> None:
    assert outage_sign(outcome, error_code) is sign
