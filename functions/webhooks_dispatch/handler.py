"""SQS consumer: deliver each platform event to the webhook endpoints (partial batch failures).

A failed record is retried with exponential backoff: before it is reported as failed, its
message is kept invisible for `webhooks.retry_delay(receive count)` seconds (AWS's pattern for
backoff with an SQS event source); after `webhooks.MAX_ATTEMPTS` receives the queue's redrive
policy moves it to WebhooksDlq.
"""

import json

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

from shared.services import webhooks
from shared.services.wiring import default_ports, sqs_retries

logger, tracer, metrics = Logger(), Tracer(), Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def retries():
    return sqs_retries()


def deliver(record: SQSRecord) -> int:
    event = json.loads(record.body)  # the EventBridge event; its detail is our envelope
    attempt = int(record.attributes.approximate_receive_count or 1)
    try:
        return webhooks.dispatch(default_ports(), event["detail"], attempt=attempt)
    except webhooks.DeliveryFailed as failure:
        metrics.add_metric(name="WebhookDeliveriesFailed", unit=MetricUnit.Count, value=1)
        if failure.retry_in is not None:
            try:
                retries().delay(record.event_source_arn, record.receipt_handle, failure.retry_in)
            except (ClientError, BotoCoreError):  # the queue's own visibility timeout applies instead
                logger.warning("could not delay the retry of %s", record.message_id, exc_info=True)
        raise


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context) -> dict:
    return process_partial_response(event=event, record_handler=deliver, processor=processor, context=context)
