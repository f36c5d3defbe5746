"""SES email events (EventBridge, source `aws.ses`) -> the invoice's delivery log.

The configuration set of the MailFrom identity publishes Delivery, Bounce, Complaint and
Reject events to the default event bus; a rule sends them here (stacks/constructs/events.py).
An event for a message that is not an invoice's is ignored; a repeated event is stored once.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from shared.services import delivery
from shared.services.wiring import default_ports

logger, tracer, metrics = Logger(), Tracer(), Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context, ports=None) -> dict:
    message_id = ((event.get("detail") or {}).get("mail") or {}).get("messageId")
    logger.append_keys(ses_message_id=message_id, detail_type=event.get("detail-type"))
    entry = delivery.record_ses_event(ports or default_ports(), event)
    if entry is None:
        logger.info("nothing to record")
        return {"recorded": False}
    metrics.add_metric(name=f"InvoiceEmails{entry.status.capitalize()}", unit=MetricUnit.Count, value=1)
    return {"recorded": True, "invoice_id": entry.invoice_id, "status": entry.status, "entry_id": entry.id}
