"""Bill run, first state: which billing accounts have something due."""

from aws_lambda_powertools import Logger, Metrics, Tracer

from shared.services import bill_runs
from shared.services.context import Actor
from shared.services.wiring import default_ports
from shared.services.workflow_io import ListDueInput

logger, tracer, metrics = Logger(), Tracer(), Metrics()
ACTOR = Actor("system:bill-run", "admin")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context, ports=None) -> dict:
    task = ListDueInput.model_validate(event)
    result = bill_runs.list_due(ports or default_ports(), ACTOR, task.model_dump())
    logger.info("accounts due", extra={"bill_run_id": result["bill_run_id"],
                                        "accounts": len(result["accounts"])})
    return result
