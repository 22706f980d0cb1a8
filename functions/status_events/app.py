"""The status table's stream in (records that reached a final state), status events on the bus out."""

from smsgw.coldstart import collector_paused

with collector_paused():  # first: the pause must cover every import below
    from typing import Any

    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from smsgw import runtime
    from smsgw.notifying import publish_batch
    from smsgw.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return publish_batch(runtime.status_events(), event, context)
