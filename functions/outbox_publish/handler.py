"""DynamoDB Streams consumer of BillingTable (new outbox items only, by the event source's filter):
put each committed event on the billing bus, reporting the first failed record so the stream is
retried from there (ReportBatchItemFailures)."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from shared.services import outbox
from shared.services.wiring import default_ports

logger, tracer, metrics = Logger(), Tracer(), Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context, ports=None) -> dict:
    records = event.get("Records") or []
    failed = outbox.publish_records((ports or default_ports()).publisher, records)
    metrics.add_metric(name="OutboxBatchesRetried", unit=MetricUnit.Count, value=1 if failed else 0)
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}
