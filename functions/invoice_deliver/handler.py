"""Bill run, per invoice: email the PDF to the customer (To, CC, BCC) and log it."""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from shared.services import delivery
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
    logger.append_keys(invoice_id=task.invoice_id)
    compose = delivery.email_composer(os.environ.get("PAY_URL_TEMPLATE"))
    invoice = delivery.deliver(ports or default_ports(), ACTOR, task.invoice_id, compose)
    metrics.add_metric(name="InvoicesDelivered", unit=MetricUnit.Count, value=1)
    return task.model_copy(update={"delivery_status": invoice.delivery_status}).model_dump()
