"""The billing event bus, the outbox that feeds it and its fan-out:
BillingTable's stream (new outbox items) -> outbox_publish -> EventBus (failed batches: OutboxDlq);
rule AllBillingEvents -> WebhooksQueue (DLQ WebhooksDlq) -> webhooks_dispatch;
and SES's events on the default bus: rule InvoiceMailEvents -> delivery_events."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from shared.adapters.dynamodb import OUTBOX_TYPE
from stacks import nag
from stacks.constructs.queues import dead_letter_queue
from stacks.function_factory import FUNCTIONS, FunctionFactory

EVENT_SOURCE = "billing"
OUTBOX_BATCH_SIZE = 100
OUTBOX_RETRY_ATTEMPTS = 20  # then the batch's stream coordinates go to OutboxDlq (alarmed); entries stay 14 days
# DynamoDB Streams records of new outbox items only (shared/adapters/dynamodb.py: outbox_item)
OUTBOX_FILTER = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": [OUTBOX_TYPE]}}}}
WEBHOOKS_BATCH_SIZE = 10
WEBHOOKS_MAX_RECEIVE_COUNT = 5  # = shared.services.webhooks.MAX_ATTEMPTS (tests/infrastructure check it)
# SES's EventBridge detail-types for the configuration set's events
# (https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-ses.html).
SES_DETAIL_TYPES = ["Email Delivered", "Email Bounced", "Email Complaint Received", "Email Rejected"]


class Bus(Construct):
    """The custom EventBridge bus every billing event (`source = "billing"`) goes to."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.event_bus = events.EventBus(self, "EventBus")


class Outbox(Construct):
    """The publisher of the transactional outbox: the BillingTable stream's new outbox items (the events
    committed with their change) go onto the bus. Retried from the first failed record
    (ReportBatchItemFailures), halves a failing batch to isolate a bad record, then gives the batch's
    coordinates to OutboxDlq. Reads the stream only (no table data), puts events on this bus only."""

    def __init__(self, scope: Construct, construct_id: str, *, factory: FunctionFactory,
                 billing_table: dynamodb.ITable, bus: events.IEventBus) -> None:
        super().__init__(scope, construct_id)
        self.dlq = dead_letter_queue(self, "OutboxDlq", of_what="the outbox stream's failed batches (alarmed)")
        self.function = factory.function(self, "outbox_publish")
        self.function.add_event_source(
            sources.DynamoEventSource(
                billing_table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=OUTBOX_BATCH_SIZE,
                bisect_batch_on_error=True,
                retry_attempts=OUTBOX_RETRY_ATTEMPTS,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.dlq),
                filters=[lambda_.FilterCriteria.filter(OUTBOX_FILTER)],
            )
        )
        bus.grant_put_events_to(self.function)
        nag.acknowledge_wildcards(
            self.function.role, ["Resource::*"],
            "dynamodb:ListStreams takes no resource (added by the DynamoDB event source); reading records "
            "is granted on BillingTable's stream only.")


class Webhooks(Construct):
    """Webhook fan-out; webhooks_dispatch stores each event and each delivery attempt (BillingTable RW)
    and delays a failed message's retry itself (sqs:ChangeMessageVisibility, part of the event
    source's consume grant)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus,
        factory: FunctionFactory,
        billing_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        dispatch_timeout = FUNCTIONS["webhooks_dispatch"].timeout_seconds

        self.dlq = dead_letter_queue(self, "WebhooksDlq", of_what="WebhooksQueue (alarmed on depth > 0)")
        self.queue = sqs.Queue(
            self,
            "WebhooksQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # AWS guidance for Lambda event sources: at least 6x the function timeout.
            visibility_timeout=Duration.seconds(6 * dispatch_timeout),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dlq, max_receive_count=WEBHOOKS_MAX_RECEIVE_COUNT
            ),
        )

        self.rule = events.Rule(
            self,
            "AllBillingEvents",
            event_bus=bus,
            description="Every billing event goes to the webhooks queue",
            event_pattern=events.EventPattern(source=[EVENT_SOURCE]),
            targets=[targets.SqsQueue(self.queue)],
        )

        self.dispatch = factory.function(self, "webhooks_dispatch")
        self.dispatch.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=WEBHOOKS_BATCH_SIZE,
                report_batch_item_failures=True,
            )
        )
        billing_table.grant_read_write_data(self.dispatch)
        nag.acknowledge_table_access(self.dispatch.role, billing_table)


class MailEvents(Construct):
    """SES events of invoice emails (the MailFrom identity's configuration set publishes them to
    the account's default bus) -> `delivery_events`, which appends them to the invoice's log.
    Also lets `senders` (the functions that email invoices) send through that configuration set."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        factory: FunctionFactory,
        billing_table: dynamodb.ITable,
        grant_send: Callable[[iam.IGrantable], None],
        senders: Sequence[iam.IGrantable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = factory.function(self, "delivery_events")
        billing_table.grant_read_write_data(self.function)
        nag.acknowledge_table_access(self.function.role, billing_table)
        self.rule = events.Rule(
            self,
            "InvoiceMailEvents",
            description="SES delivery, bounce, complaint and reject events of invoice emails",
            event_bus=events.EventBus.from_event_bus_name(self, "DefaultBus", "default"),
            event_pattern=events.EventPattern(source=["aws.ses"], detail_type=SES_DETAIL_TYPES),
            targets=[targets.LambdaFunction(self.function, retry_attempts=185,
                                            max_event_age=Duration.hours(24))],
        )
        for sender in senders:
            grant_send(sender)
