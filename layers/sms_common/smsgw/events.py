"""Status events: every move to a final state goes to EventBridge so other systems need not poll."""

from __future__ import annotations

import json
from typing import Any

from smsgw.observability import logger, mask_phone
from smsgw.records import StatusRecord

DETAIL_TYPE = "SMS Final Status"


def final_event(record: StatusRecord) -> dict[str, Any]:
    """The event detail for a status record in a final state. Phones are masked; text never travels."""
    return {
        "request_id": record.request_id,
        "status": str(record.status),
        "error_code": record.error_code,
        "error_message": record.error_message,
        "phone": mask_phone(record.phone) if record.phone else None,
        "message_id": record.message_id,
        "provider_status": record.provider_status,
        "parts": record.parts,
        "final_at": record.final_at,
        "metadata": dict(record.metadata or {}),
    }


class StatusEvents:
    def __init__(self, client: Any, bus: str, source: str) -> None:
        self._client = client
        self._bus = bus
        self._source = source

    def publish(self, details: list[dict[str, Any]]) -> int:
        """Put the events, ten per call, retrying failed entries once. Returns how many could not be put."""
        lost = 0
        for start in range(0, len(details), 10):
            entries = [
                {"Source": self._source, "DetailType": DETAIL_TYPE, "Detail": json.dumps(d), "EventBusName": self._bus}
                for d in details[start : start + 10]
            ]
            for _ in range(2):
                response = self._client.put_events(Entries=entries)
                if not response.get("FailedEntryCount"):
                    entries = []
                    break
                entries = [e for e, r in zip(entries, response["Entries"], strict=True) if r.get("ErrorCode")]
            if entries:
                lost += len(entries)
                # The status table stays the source of truth; the event is what is lost, and we say so.
                logger.error("status events not delivered", extra={"count": len(entries)})
        return lost
