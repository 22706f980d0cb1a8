"""The provider interface in both dialects against the simulator: balance and delivery reports."""

from __future__ import annotations

import pytest
from conftest import API_KEY, PASSWORD, SENDER_ID, USERNAME

from mimsms_simulator import MimSmsSimulator
from smsgw.config import load_settings
from smsgw.credentials import Credentials
from smsgw.provider import DeliveryState, OutboundSms, Outcome, Provider, make_provider

CREDENTIALS = Credentials(USERNAME, API_KEY, PASSWORD, SENDER_ID)


@pytest.fixture
def provider(simulator: MimSmsSimulator, dialect: str) -> Provider:
    settings = load_settings(
        {
            "MESSAGES_TABLE": "t",
            "MIMSMS_SECRET_ID": "s",
            "SEND_QUEUE_URL": "http://127.0.0.1:1/q",
            "CONTROL_TABLE": "c",
            "MIMSMS_API": dialect,
            "MIMSMS_BASE_URL": simulator.base_url,
            "HTTP_READ_TIMEOUT_SECONDS": "1",
        }
    )
    return make_provider(settings)


def test_balance_is_read_as_a_number(provider: Provider, simulator: MimSmsSimulator) -> None:
    simulator.state.accounts[USERNAME].balance = 12812.5
    result = provider.balance(CREDENTIALS)
    assert (result.outcome, result.balance) == (Outcome.ACCEPTED, 12812.5)


def test_balance_with_a_wrong_key_is_an_auth_failure(provider: Provider) -> None:
    result = provider.balance(Credentials(USERNAME, "wrong", PASSWORD, SENDER_ID))
    assert result.balance is None
    assert result.auth_failed


def test_a_report_progresses_from_pending_to_delivered(provider: Provider, simulator: MimSmsSimulator) -> None:
    clock = [1_000.0]
    simulator.state.clock = lambda: clock[0]
    simulator.state.script_delivery("8801712345678", [(60, "Absent subscriber"), (300, "Delivered")])
    sent = provider.send(OutboundSms("8801712345678", "hello", SENDER_ID), CREDENTIALS)
    assert sent.outcome is Outcome.ACCEPTED
    assert sent.message_id

    states = []
    for now in (1_010.0, 1_100.0, 1_400.0):
        clock[0] = now
        report = provider.delivery_report(sent.message_id, "8801712345678", CREDENTIALS)
        assert report.outcome is Outcome.ACCEPTED
        states.append(report.state)
    assert states == [DeliveryState.PENDING, DeliveryState.PENDING, DeliveryState.DELIVERED]


def test_a_final_operator_failure_is_failed(provider: Provider, simulator: MimSmsSimulator) -> None:
    simulator.state.script_delivery("8801812345678", [(0, "Barred subscriber")])
    sent = provider.send(OutboundSms("8801812345678", "hello", SENDER_ID), CREDENTIALS)
    assert sent.message_id
    report = provider.delivery_report(sent.message_id, "8801812345678", CREDENTIALS)
    assert report.state is DeliveryState.FAILED
    assert report.error_code


def test_cost_is_the_providers_figure_when_given(provider: Provider, dialect: str) -> None:
    sent = provider.send(OutboundSms("8801712345678", "আ" * 80, SENDER_ID), CREDENTIALS)
    assert sent.outcome is Outcome.ACCEPTED
    # generic reports the cost; official does not, and the send path then prices the parts itself.
    assert sent.cost == (1.0 if dialect == "generic" else None)


def test_a_text_that_cannot_be_encoded_never_leaves_and_is_permanent(
    provider: Provider, simulator: MimSmsSimulator
) -> None:
    # The parser refuses lone surrogates; were one to reach an adapter, it must not crash after the claim.
    sms = OutboundSms(phone="8801712345678", text="code \ud800", sender_id=SENDER_ID)
    result = provider.send(sms, CREDENTIALS)
    assert (result.outcome, result.error_code) == (Outcome.PERMANENT, "invalid_content")
    assert simulator.state.received == []
