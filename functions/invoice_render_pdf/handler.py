"""Bill run, per invoice: render the PDF and store it in the documents bucket."""

from aws_lambda_powertools import Logger, Metrics, Tracer

from shared.documents.pdf import render_invoice_pdf
from shared.services import invoices
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
    invoice = invoices.render_pdf(ports or default_ports(), ACTOR, task.invoice_id, render_invoice_pdf)
    return task.model_copy(update={"pdf_key": invoice.pdf_key}).model_dump()
