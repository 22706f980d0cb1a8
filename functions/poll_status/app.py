"""Scheduled: delivery reports into the status table, the balance gate, held and unresolved messages."""

from smsgw.coldstart import collector_paused

with collector_paused():  # first: the pause must cover every import below
    from typing import Any

    from aws_lambda_powertools.utilities.typing import LambdaContext

    import smsgw.polling  # noqa: F401 - the poller imported during init, not by the first run
    from smsgw import runtime
    from smsgw.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return runtime.poller().run_within(context).as_dict()
