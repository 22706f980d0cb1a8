"""What became of one SQS record in an invocation (RecordResult), the words for it, and its metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from smsgw.observability import metrics

Disposition = Literal[
    "sent",
    "failed",
    "invalid",
    "duplicate",
    "retry",
    "maybe_sent",
    "held",
    "deferred",
    "scheduled",
    "cancelled",
    "cancel_too_late",
    "handed_on",
]

METRIC_BY_DISPOSITION: dict[Disposition, str] = {
    "sent": "MessagesSent",
    "failed": "MessagesFailed",
    "invalid": "InvalidRequests",
    "duplicate": "DuplicateRequests",
    "retry": "SendRetries",
    "maybe_sent": "MaybeSent",
    "held": "MessagesHeld",
    "deferred": "MessagesDeferred",
    "scheduled": "MessagesScheduled",
    "cancelled": "MessagesCancelled",
    "cancel_too_late": "CancelsTooLate",
    "handed_on": "BulkRequests",  # a bulk request's numbers handed to their chunks
}


class RetryLater(Exception):
    """Raised for a record that must come back later; the text names only an error code."""


@dataclass(frozen=True, eq=False)
class RecordResult:
    """How one SQS record (or one number of a chunk) ended in this invocation: what the batch reports."""

    request_id: str
    disposition: Disposition
    error_code: str | None = None
    parts: int = 0
    cost: float = 0.0
    # deferred: when to come back, and whether the provider throttled it (then `retry_after` is its word)
    retry_at: float | None = None
    throttled: bool = False
    retry_after: float | None = None
    provider_reached: bool | None = None  # None: no provider call; False: not sent or no answer (an outage sign)
    cooldown_started: bool = False  # this failure started an outage cool-down for every caller
    children: tuple[RecordResult, ...] = ()  # a bulk request's or a chunk's numbers, each as a message


def emit_metrics(result: RecordResult) -> None:
    """Metrics for one record, from the event loop's thread only (Powertools' Metrics is not thread-safe).
    A chunk counts as its numbers; a bulk request handed on counts once, and its invalid numbers each."""
    if result.children:
        for child in result.children:
            emit_metrics(child)
        if result.disposition != "handed_on":
            return
    metrics.add_metric(name=METRIC_BY_DISPOSITION[result.disposition], unit=MetricUnit.Count, value=1)
    if result.cooldown_started:
        metrics.add_metric(name="ProviderCooldowns", unit=MetricUnit.Count, value=1)
    if result.disposition == "sent":
        metrics.add_metric(name="Parts", unit=MetricUnit.Count, value=result.parts)
        metrics.add_metric(name="CostBDT", unit=MetricUnit.NoUnit, value=result.cost)
    if result.disposition in ("failed", "invalid") and result.error_code:
        with single_metric(
            name="FailuresByCode", unit=MetricUnit.Count, value=1, namespace=metrics.namespace
        ) as metric:
            metric.add_dimension(name="error_code", value=result.error_code)
