"""MiM SMS behind one interface; `make_provider` picks the dialect from the settings."""

from __future__ import annotations

from smsgw.config import Settings
from smsgw.errors import Outcome, outage_sign
from smsgw.provider.base import (
    BalanceResult,
    DeliveryReport,
    DeliveryState,
    OutboundBulk,
    OutboundSms,
    Provider,
    SendResult,
)
from smsgw.provider.generic import GenericProvider
from smsgw.provider.http import HttpClient
from smsgw.provider.official import OfficialProvider

__all__ = [
    "BalanceResult",
    "DeliveryReport",
    "DeliveryState",
    "HttpClient",
    "OutboundBulk",
    "OutboundSms",
    "Outcome",
    "Provider",
    "SendResult",
    "make_provider",
    "outage_sign",
]


def make_provider(settings: Settings, http: HttpClient | None = None) -> Provider:
    http = http or HttpClient(settings.connect_timeout, settings.read_timeout, maxsize=settings.send_concurrency)
    adapters: dict[str, type[GenericProvider] | type[OfficialProvider]] = {
        "generic": GenericProvider,
        "official": OfficialProvider,
    }
    return adapters[settings.dialect](settings.base_url, http)
