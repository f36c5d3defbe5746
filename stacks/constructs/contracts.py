"""The daily contract calendar: `contract_calendar` on an EventBridge Scheduler schedule at 01:00 UTC,
before the 02:00 bill run, so a contract that starts or ends that day is settled before billing."""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks import nag
from stacks.constructs.schedules import lambda_schedule
from stacks.function_factory import FunctionFactory

CALENDAR_SCHEDULE_EXPRESSION = "cron(0 1 * * ? *)"
CALENDAR_SCHEDULE_INPUT = {"as_of": "<aws.scheduler.scheduled-time>"}


class ContractCalendar(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, factory: FunctionFactory,
                 billing_table: dynamodb.ITable,
                 grant_send: Callable[[iam.IGrantable], None]) -> None:
        super().__init__(scope, construct_id)
        self.function = factory.function(self, "contract_calendar")
        billing_table.grant_read_write_data(self.function)
        nag.acknowledge_table_access(self.function.role, billing_table)
        grant_send(self.function)
        self.schedule = lambda_schedule(
            self, "DailyContractCalendar", function=self.function, expression=CALENDAR_SCHEDULE_EXPRESSION,
            timezone="UTC", payload=CALENDAR_SCHEDULE_INPUT, max_retries=5, max_event_age_seconds=6 * 3600,
            description="01:00 UTC daily: activations, scheduled terminations, renewals and notices of the day")
