"""EventBridge rule RevenueEvents (source `billing`): `invoice.finalized` stores the invoice's revenue
schedules (or applies a credit note: a credit note is finalized as a document of kind `credit_note` and
published as `invoice.finalized` with `credit_note_of`); `invoice.voided` reverses the invoice's schedules;
`subscription.terminated` and `subscription.termination_scheduled` make the subscription's schedules
recognize what is left by the month service ends (or leave a refunded rest to its credit lines).
Deliveries are at least once and in any order: each effect happens once per document (services/revenue.py)."""

from datetime import date

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict

from shared.services import revenue
from shared.services.context import Actor
from shared.services.wiring import default_ports

logger, tracer, metrics = Logger(), Tracer(), Metrics()
ACTOR_NAME = "system:revenue"
TERMINATIONS = ("subscription.terminated", "subscription.termination_scheduled")


class InvoiceFinalized(BaseModel):
    model_config = ConfigDict(extra="ignore")

    invoice_id: str


class VoidedInvoice(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str


class Termination(BaseModel):
    model_config = ConfigDict(extra="ignore")

    service_end: date
    refund: str = "none"


class TerminatedSubscription(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    termination: Termination | None = None  # None: it ended on its end date, where its schedules end


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context, ports=None, finance=None) -> dict:
    envelope = revenue.BillingEvent.model_validate(event).detail
    ports = ports or default_ports()
    finance = finance or revenue.finance_of(ports)
    actor = Actor(ACTOR_NAME, "admin", correlation_id=envelope.correlation_id or envelope.id)
    logger.append_keys(event_id=envelope.id, event_type=envelope.type)
    if envelope.type == "invoice.finalized":
        invoice_id = InvoiceFinalized.model_validate(envelope.data).invoice_id
        logger.append_keys(invoice_id=invoice_id)
        stored = revenue.record_invoice(ports, finance, actor, invoice_id)
        metrics.add_metric(name="RevenueSchedulesStored", unit=MetricUnit.Count, value=len(stored))
        return {"invoice_id": invoice_id, "schedules": [s.id for s in stored]}
    if envelope.type == "invoice.voided":
        invoice_id = VoidedInvoice.model_validate(envelope.data["invoice"]).id
        logger.append_keys(invoice_id=invoice_id)
        voided = revenue.void_invoice(ports, finance, actor, invoice_id)
        return {"invoice_id": invoice_id, "voided": [s.id for s in voided]}
    if envelope.type in TERMINATIONS:
        sub = TerminatedSubscription.model_validate(envelope.data["subscription"])
        logger.append_keys(subscription_id=sub.id)
        if sub.termination is None:
            return {"subscription_id": sub.id, "schedules": []}
        changed = revenue.terminate(ports, finance, actor, sub.id, sub.termination.service_end,
                                    envelope.occurred_at.date(), refunded=sub.termination.refund != "none")
        return {"subscription_id": sub.id, "schedules": [s.id for s in changed]}
    logger.info("not an event this function handles")
    return {"ignored": envelope.type}
