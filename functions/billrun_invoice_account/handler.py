"""Bill run, per account: rate, assemble and finalize the account's invoice."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from shared.services import billing
from shared.services.bill_runs import parse_as_of
from shared.services.context import Actor
from shared.services.wiring import default_ports
from shared.services.workflow_io import AccountTask

logger, tracer, metrics = Logger(), Tracer(), Metrics()
ACTOR = Actor("system:bill-run", "admin")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context, ports=None) -> dict:
    task = AccountTask.model_validate(event)
    logger.append_keys(customer_id=task.customer_id, bill_run_id=task.bill_run_id)
    invoice = billing.invoice_account(ports or default_ports(), ACTOR, task.customer_id,
                                      parse_as_of(task.as_of), task.bill_run_id, subscription_id=task.subscription_id)
    if invoice is None:
        return task.model_copy(update={"status": "nothing_due"}).model_dump()
    metrics.add_metric(name="InvoicesFinalized", unit=MetricUnit.Count, value=1)
    logger.info("invoice finalized", extra={"invoice_id": invoice.id, "number": invoice.number})
    finalized_at = invoice.finalized_at.isoformat().replace("+00:00", "Z")
    return task.model_copy(update={"invoice_id": invoice.id, "status": "invoiced",
                                   "finalized_at": finalized_at}).model_dump()
