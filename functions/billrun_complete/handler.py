"""Bill run, last state: record the outcome of every account."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from shared.services import bill_runs
from shared.services.context import Actor
from shared.services.wiring import default_ports
from shared.services.workflow_io import CompleteInput

logger, tracer, metrics = Logger(), Tracer(), Metrics()
ACTOR = Actor("system:bill-run", "admin")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context, ports=None) -> dict:
    task = CompleteInput.model_validate(event)
    summary = bill_runs.complete(ports or default_ports(), ACTOR, task.model_dump())
    metrics.add_metric(name="BillRunAccountsFailed", unit=MetricUnit.Count, value=summary["failed"])
    logger.info("bill run completed", extra=summary)
    return summary
