"""Revenue recognition and Finance's exports (issue 7).

- `revenue_schedules`, target of the rule `RevenueEvents` (source `billing`, detail-types
  `invoice.finalized` (invoices and credit notes), `invoice.voided`, `subscription.terminated`,
  `subscription.termination_scheduled`): stores the revenue schedules of each finalized invoice,
  adjusts them for credit notes and voids, and when service ends.
- `finance_exports`, target of the schedule `DailyFinanceExports` (06:00 UTC every day: the function
  exports the previous month for each billing entity whose first business day it is) and of the rule
  `BillRunCompleted` (`bill_run.completed`: the reconciliation check after each bill run). It writes
  `exports/<entity code>/<YYYY-MM>/*.csv` to ExportsBucket and emails CRE and Finance (`CRE_EMAIL`,
  `FINANCE_EMAIL`) through the MailFrom identity when a live contract is missing.
- Both rules' deliveries that fail after EventBridge's retries land in `FinanceEventsDlq`.
- The `api` function (`POST /v1/exports`) reads and writes the same export objects.
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
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from stacks import nag
from stacks.constructs.events import EVENT_SOURCE
from stacks.constructs.queues import dead_letter_queue
from stacks.constructs.schedules import lambda_schedule
from stacks.function_factory import FunctionFactory

REVENUE_EVENTS = ("invoice.finalized", "invoice.voided", "subscription.terminated",
                  "subscription.termination_scheduled")
EXPORTS_SCHEDULE_EXPRESSION = "cron(0 6 * * ? *)"
EXPORTS_SCHEDULE_INPUT = {"as_of": "<aws.scheduler.scheduled-time>", "trigger": "schedule"}
EXPORTS_PREFIX = "exports/"
DEFAULT_EMAILS = {"CRE_EMAIL": "cre@example.com", "FINANCE_EMAIL": "finance@example.com"}


def finance_emails(scope: Construct) -> dict[str, str]:
    """`CRE_EMAIL` and `FINANCE_EMAIL` from the context (`-c cre_email=... -c finance_email=...`)."""
    return {key: str(scope.node.try_get_context(key.lower()) or default) for key, default in DEFAULT_EMAILS.items()}


class Finance(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        factory: FunctionFactory,
        bus: events.IEventBus,
        billing_table: dynamodb.ITable,
        exports_bucket: s3.IBucket,
        grant_send: Callable[[iam.IGrantable], None],
        api: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)

        self.revenue_schedules = factory.function(self, "revenue_schedules")
        billing_table.grant_read_write_data(self.revenue_schedules)
        nag.acknowledge_table_access(self.revenue_schedules.role, billing_table)

        self.finance_exports = factory.function(self, "finance_exports")
        billing_table.grant_read_write_data(self.finance_exports)
        nag.acknowledge_table_access(self.finance_exports.role, billing_table)
        grant_send(self.finance_exports)
        for fn in (self.finance_exports, api):
            self._grant_exports(fn, exports_bucket)

        self.dlq = dead_letter_queue(self, "FinanceEventsDlq", of_what="the RevenueEvents and BillRunCompleted targets")
        self.revenue_rule = events.Rule(
            self,
            "RevenueEvents",
            event_bus=bus,
            description="Finalized invoices and credit notes, voids and terminations: revenue schedules",
            event_pattern=events.EventPattern(source=[EVENT_SOURCE], detail_type=list(REVENUE_EVENTS)),
            targets=[self._target(self.revenue_schedules)],
        )
        self.bill_run_rule = events.Rule(
            self,
            "BillRunCompleted",
            event_bus=bus,
            description="After each bill run: every live contract is on its invoice",
            event_pattern=events.EventPattern(source=[EVENT_SOURCE], detail_type=["bill_run.completed"]),
            targets=[self._target(self.finance_exports)],
        )
        self.schedule = self._daily_schedule()

    def _target(self, fn: lambda_.IFunction) -> targets.LambdaFunction:
        return targets.LambdaFunction(
            fn, dead_letter_queue=self.dlq, retry_attempts=8, max_event_age=Duration.hours(24)
        )

    def _grant_exports(self, fn: lambda_.Function, bucket: s3.IBucket) -> None:
        """Read and write export objects only (no delete: the bucket is versioned; files are compared)."""
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{EXPORTS_PREFIX}*")],
            )
        )
        nag.acknowledge_wildcards(
            fn.role,
            [f"Resource::{nag.arn_of(bucket)}/{EXPORTS_PREFIX}*"],
            "Finance exports are written and compared under exports/<entity>/<month>/ of ExportsBucket only; "
            "the keys depend on the entity and month.",
        )

    def _daily_schedule(self) -> scheduler.CfnSchedule:
        return lambda_schedule(
            self, "DailyFinanceExports", function=self.finance_exports, expression=EXPORTS_SCHEDULE_EXPRESSION,
            timezone="UTC", payload=EXPORTS_SCHEDULE_INPUT, max_retries=5, max_event_age_seconds=6 * 3600,
            description="06:00 UTC daily: exports each billing entity's previous month on its first business day")
