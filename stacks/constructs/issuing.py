"""Documents issued outside a bill run, and draft previews (both need weasyprint: renderer image).

- `document_issue`, on the `DocumentIssue` rule: every `invoice.finalized` whose `origin` is "api"
  (credit notes, manually finalized invoices, re-bills, bills ahead) gets its PDF of record
  stored and is e-mailed to the customer. Bill-run invoices are rendered and sent by the bill run.
- `document_preview`, invoked by the API (`GET /v1/invoices/{id}/preview`): a draft rendered
  watermarked or as a pro-forma, returned, never stored.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks import nag
from stacks.constructs.events import EVENT_SOURCE
from stacks.constructs.queues import dead_letter_queue
from stacks.function_factory import FunctionFactory

ISSUE_PATTERN = {"data": {"origin": ["api"]}}  # finalized outside a bill run


class DocumentIssuing(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, factory: FunctionFactory,
                 billing_table: dynamodb.ITable, documents_bucket: s3.IBucket, bus: events.IEventBus,
                 grant_send: Callable[[iam.IGrantable], None], api: lambda_.Function) -> None:
        super().__init__(scope, construct_id)

        self.issue = factory.image_function(self, "document_issue")
        billing_table.grant_read_write_data(self.issue)
        documents_bucket.grant_read_write(self.issue)
        grant_send(self.issue)
        nag.acknowledge_table_access(self.issue.role, billing_table)
        nag.acknowledge_bucket_access(self.issue.role, documents_bucket, write=True)

        self.dlq = dead_letter_queue(self, "DocumentIssueDlq", of_what="the DocumentIssue rule's target")
        self.rule = events.Rule(
            self,
            "DocumentIssue",
            event_bus=bus,
            description="Credit notes and invoices finalized outside a bill run: PDF of record and e-mail",
            event_pattern=events.EventPattern(source=[EVENT_SOURCE], detail_type=["invoice.finalized"],
                                              detail=ISSUE_PATTERN),
            targets=[targets.LambdaFunction(self.issue, dead_letter_queue=self.dlq, retry_attempts=8,
                                            max_event_age=Duration.hours(24))],
        )

        self.preview = factory.image_function(self, "document_preview")
        billing_table.grant_read_data(self.preview)
        documents_bucket.grant_read(self.preview)  # the entity's logo
        nag.acknowledge_table_access(self.preview.role, billing_table)
        nag.acknowledge_bucket_access(self.preview.role, documents_bucket, write=False)
        self.preview.grant_invoke(api)
        api.add_environment("PREVIEW_FUNCTION_NAME", self.preview.function_name)
        nag.acknowledge_wildcards(
            api.role, [f"Resource::{nag.arn_of(self.preview)}:*"],
            "lambda:InvokeFunction on document_preview's versions/aliases (grant_invoke adds <function arn>:*); "
            "only this function.")
