"""EventBridge rule DocumentIssue (`invoice.finalized` outside a bill run): the PDF of record of a
credit note or a manually finalized invoice, stored and e-mailed to the customer (To, CC, BCC).
Bill-run invoices are rendered and sent by the bill run's own steps, so their events are skipped."""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict

from shared.documents.pdf import render_invoice_pdf
from shared.services import delivery, invoices
from shared.services.context import Actor
from shared.services.revenue import BillingEvent
from shared.services.wiring import default_ports

logger, tracer, metrics = Logger(), Tracer(), Metrics()
ACTOR_NAME = "system:documents"


class InvoiceFinalized(BaseModel):
    model_config = ConfigDict(extra="ignore")

    invoice_id: str
    origin: str = "bill_run"  # "api": finalized outside a bill run


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context, ports=None) -> dict:
    envelope = BillingEvent.model_validate(event).detail
    finalized = InvoiceFinalized.model_validate(envelope.data)
    logger.append_keys(invoice_id=finalized.invoice_id, event_id=envelope.id)
    if finalized.origin != "api":
        return {"invoice_id": finalized.invoice_id, "skipped": "the bill run issues its own documents"}
    ports = ports or default_ports()
    actor = Actor(ACTOR_NAME, "admin", correlation_id=envelope.correlation_id or envelope.id)
    invoices.render_pdf(ports, actor, finalized.invoice_id, render_invoice_pdf)
    document = delivery.deliver(ports, actor, finalized.invoice_id,
                                delivery.email_composer(os.environ.get("PAY_URL_TEMPLATE")))
    metrics.add_metric(name="DocumentsIssued", unit=MetricUnit.Count, value=1)
    return {"invoice_id": document.id, "pdf_key": document.pdf_key, "delivery_status": document.delivery_status}
