"""status_events: the status table's stream in, one EventBridge event per record that reached a final state
(or that a cancel came too late for).

Lambda reads the stream in order per record and retries a batch until it succeeds (bisecting one that
keeps failing; the template sends what is left after the retries to an on-failure queue). Records
whose events could not be put are reported as batch item failures, so Lambda retries from the first
of them: an event may then be put twice, with the same `event_id`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from smsgw.events import StatusEvents, event_of
from smsgw.observability import metrics


class EventNotPut(Exception):
    """This record's status event is not on the bus yet: Lambda retries the stream from it."""


def publish_batch(events: StatusEvents, event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    records = event.get("Records", [])
    # Every event of the batch first, ten per PutEvents call; then each record succeeds or fails by its own.
    finals = {n: status_event for n, raw in enumerate(records) if (status_event := event_of(raw))}
    order = list(finals)
    failed = {order[i] for i in events.publish([finals[n] for n in order])}
    unput = {str(records[n].get("dynamodb", {}).get("SequenceNumber")) for n in failed}
    metrics.add_metric(name="StatusEventsPut", unit=MetricUnit.Count, value=len(finals) - len(failed))
    if failed:
        metrics.add_metric(name="StatusEventsNotPut", unit=MetricUnit.Count, value=len(failed))

    def handle(record: DynamoDBRecord) -> None:
        if record.dynamodb is not None and record.dynamodb.sequence_number in unput:
            raise EventNotPut(record.dynamodb.sequence_number)

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
