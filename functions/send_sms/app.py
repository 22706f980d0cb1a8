"""SQS batch of "send this SMS" messages in, `{"batchItemFailures": [...]}` out."""

from smsgw.coldstart import collector_paused

with collector_paused():  # first: the pause must cover every import below
    from typing import Any

    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

    import smsgw.sending  # noqa: F401 - the send path imported during init, not by the first batch
    from smsgw import runtime
    from smsgw.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return runtime.batch_runner().run(event, context)
