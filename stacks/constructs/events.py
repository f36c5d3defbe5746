"""The billing event bus and its fan-out:
rule AllBillingEvents -> WebhooksQueue (DLQ WebhooksDlq) -> webhooks_dispatch."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks import nag
from stacks.function_factory import FUNCTIONS, FunctionFactory

EVENT_SOURCE = "billing"
WEBHOOKS_BATCH_SIZE = 10
WEBHOOKS_MAX_RECEIVE_COUNT = 5


class Bus(Construct):
    """The custom EventBridge bus every billing event (`source = "billing"`) goes to."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.event_bus = events.EventBus(self, "EventBus")


class Webhooks(Construct):
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

        self.dlq = sqs.Queue(
            self,
            "WebhooksDlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        nag.acknowledge(
            self.dlq,
            "AwsSolutions-SQS3",
            "WebhooksDlq is itself the dead-letter queue of WebhooksQueue (alarmed on depth > 0).",
        )
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
        billing_table.grant_read_data(self.dispatch)
        nag.acknowledge_table_access(self.dispatch.role, billing_table)
