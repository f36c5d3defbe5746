"""Alarms (WebhooksDlq depth, BillRun failures, every function's errors) -> encrypted SNS topic."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config import BillingConfig

PERIOD = Duration.minutes(5)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BillingConfig,
        functions: Mapping[str, lambda_.IFunction],
        webhooks_dlq: sqs.IQueue,
        outbox_dlq: sqs.IQueue,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)

        # A customer-managed key: CloudWatch cannot publish to a topic encrypted with the
        # AWS-managed aws/sns key (its key policy cannot grant cloudwatch.amazonaws.com).
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the billing alarm topic",
            enable_key_rotation=True,
            removal_policy=config.removal_policy,
        )
        key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name="Billing alarms", master_key=key, enforce_ssl=True
        )
        for email in config.ops_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        action = cw_actions.SnsAction(self.topic)

        self.alarms: dict[str, cw.Alarm] = {}
        self._alarm(
            "WebhooksDlqNotEmpty",
            webhooks_dlq.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum"
            ),
            "Webhook events reached WebhooksDlq after 5 receives: inspect and redrive.",
            action,
        )
        self._alarm(
            "OutboxDlqNotEmpty",
            outbox_dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            "Committed events could not be put on the bus after retries: the message names the stream "
            "records; their outbox entries (OUTBOX#<event id>) stay in BillingTable 14 days to publish again.",
            action,
        )
        self._alarm(
            "BillRunFailed",
            state_machine.metric_failed(period=PERIOD, statistic="Sum"),
            "A BillRun execution failed (ListDue or Complete failed after retries).",
            action,
        )
        self._alarm(
            "MissingContracts",
            cw.Metric(namespace="Billing", metric_name="MissingContracts", dimensions_map={"service": "billing"},
                      period=PERIOD, statistic="Maximum"),
            "A live contract is missing from its invoice or from a Finance export (seed 000 §7); CRE and "
            "Finance were emailed the list (finance_exports logs).",
            action,
        )
        for name, fn in functions.items():
            self._alarm(
                f"{name}Errors",
                fn.metric_errors(period=PERIOD, statistic="Sum"),
                f"The {name} function raised errors.",
                action,
            )

    def _alarm(
        self, construct_id: str, metric: cw.IMetric, description: str, action: cw.IAlarmAction
    ) -> None:
        alarm = cw.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=0,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(action)
        self.alarms[construct_id] = alarm
