"""The BillRun state machine (statemachines/bill_run.asl.json), its task functions and the
DailyBillRun schedule."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_ses as ses
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks import nag
from stacks.config import REPO_ROOT, BillingConfig
from stacks.function_factory import FunctionFactory

ASL_PATH: Path = REPO_ROOT / "statemachines" / "bill_run.asl.json"

# ${Placeholder} in the ASL -> function folder whose ARN fills it.
FUNCTION_PLACEHOLDERS: dict[str, str] = {
    "ListDueFunctionArn": "billrun_list_due",
    "InvoiceAccountFunctionArn": "billrun_invoice_account",
    "RenderPdfFunctionArn": "invoice_render_pdf",
    "DeliverFunctionArn": "invoice_deliver",
    "CompleteFunctionArn": "billrun_complete",
}

SCHEDULE_EXPRESSION = "cron(0 2 * * ? *)"
SCHEDULE_INPUT = {"as_of": "<aws.scheduler.scheduled-time>", "trigger": "schedule"}


def load_definition() -> str:
    """The ASL as text (validated as JSON), inlined so cfn-lint and moto both see it."""
    text = ASL_PATH.read_text(encoding="utf-8")
    json.loads(text)
    return text


class Workflows(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BillingConfig,
        factory: FunctionFactory,
        billing_table: dynamodb.ITable,
        counters_table: dynamodb.ITable,
        documents_bucket: s3.IBucket,
        email_identity: ses.EmailIdentity,
    ) -> None:
        super().__init__(scope, construct_id)

        # Grants exactly as in shared/ARCHITECTURE.md's table of functions.
        list_due = factory.function(self, "billrun_list_due")
        billing_table.grant_read_write_data(list_due)
        nag.acknowledge_table_access(list_due.role, billing_table)

        invoice_account = factory.function(self, "billrun_invoice_account")
        billing_table.grant_read_write_data(invoice_account)
        counters_table.grant_read_write_data(invoice_account)
        nag.acknowledge_table_access(invoice_account.role, billing_table)

        render_pdf = factory.image_function(self, "invoice_render_pdf")
        billing_table.grant_read_write_data(render_pdf)
        documents_bucket.grant_read_write(render_pdf)
        nag.acknowledge_table_access(render_pdf.role, billing_table)
        nag.acknowledge_bucket_access(render_pdf.role, documents_bucket, write=True)

        deliver = factory.function(self, "invoice_deliver")
        billing_table.grant_read_write_data(deliver)
        documents_bucket.grant_read(deliver)
        nag.acknowledge_table_access(deliver.role, billing_table)
        nag.acknowledge_bucket_access(deliver.role, documents_bucket, write=False)
        # ses:SendRawEmail (SES v1) and ses:SendEmail (SES v2 SendEmail, raw content included),
        # on the MailFrom identity only.
        email_identity.grant_send_email(deliver)

        complete = factory.function(self, "billrun_complete")
        billing_table.grant_read_write_data(complete)
        nag.acknowledge_table_access(complete.role, billing_table)

        self.task_functions: dict[str, lambda_.IFunction] = {
            "ListDueFunctionArn": list_due,
            "InvoiceAccountFunctionArn": invoice_account,
            "RenderPdfFunctionArn": render_pdf,
            "DeliverFunctionArn": deliver,
            "CompleteFunctionArn": complete,
        }

        log_group = logs.LogGroup(
            self,
            "BillRunLogs",
            # The /aws/vendedlogs/ prefix keeps CloudWatch's resource policy small.
            log_group_name=f"/aws/vendedlogs/states/{Stack.of(self).stack_name}-BillRun",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        substitutions = {key: fn.function_arn for key, fn in self.task_functions.items()}
        self.state_machine = sfn.StateMachine(
            self,
            "BillRun",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(load_definition()),
            definition_substitutions=substitutions,
            logs=sfn.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        for fn in self.task_functions.values():
            fn.grant_invoke(self.state_machine)
        nag.acknowledge_wildcards(
            self.state_machine.role,
            ["Resource::*"],
            "Step Functions logging (logs:CreateLogDelivery & co.) and X-Ray tracing take no "
            "resource-level permissions.",
        )
        nag.acknowledge_wildcards(
            self.state_machine.role,
            [f"Resource::{nag.arn_of(fn)}:*" for fn in self.task_functions.values()],
            "lambda:InvokeFunction on the task functions' versions/aliases (grant_invoke adds "
            "<function arn>:*); only these five functions.",
        )

        self.schedule = self._daily_schedule()

    def _daily_schedule(self) -> scheduler.CfnSchedule:
        role = iam.Role(
            self,
            "DailyBillRunRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description="Lets EventBridge Scheduler start BillRun executions",
        )
        self.state_machine.grant_start_execution(role)
        return scheduler.CfnSchedule(
            self,
            "DailyBillRun",
            description="Starts the daily bill run at 02:00 UTC",
            schedule_expression=SCHEDULE_EXPRESSION,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.state_machine.state_machine_arn,
                role_arn=role.role_arn,
                input=json.dumps(SCHEDULE_INPUT),
            ),
        )
