"""SQS consumer: deliver each platform event to the webhook endpoints (partial batch failures)."""

import json

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from shared.services import webhooks
from shared.services.wiring import default_ports

logger, tracer, metrics = Logger(), Tracer(), Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def deliver(record: SQSRecord) -> int:
    event = json.loads(record.body)  # the EventBridge event; its detail is our envelope
    return webhooks.dispatch(default_ports(), event["detail"])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context) -> dict:
    return process_partial_response(event=event, record_handler=deliver, processor=processor, context=context)
