"""EventBridge Scheduler schedules that invoke a Lambda function (one way to declare them)."""

from __future__ import annotations

import json

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct


def lambda_schedule(scope: Construct, construct_id: str, *, function: lambda_.IFunction, expression: str,
                    timezone: str, payload: dict, description: str, max_retries: int,
                    max_event_age_seconds: int = 86400) -> scheduler.CfnSchedule:
    """A schedule `construct_id` with its own role `<construct_id>Role`, allowed to invoke `function`
    itself only (no versions or aliases, so no wildcard)."""
    role = iam.Role(scope, f"{construct_id}Role", assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
                    description=f"Lets EventBridge Scheduler run {construct_id}")
    role.add_to_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function.function_arn]))
    return scheduler.CfnSchedule(
        scope,
        construct_id,
        description=description,
        schedule_expression=expression,
        schedule_expression_timezone=timezone,
        flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
        state="ENABLED",
        target=scheduler.CfnSchedule.TargetProperty(
            arn=function.function_arn, role_arn=role.role_arn, input=json.dumps(payload),
            retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                maximum_event_age_in_seconds=max_event_age_seconds, maximum_retry_attempts=max_retries),
        ),
    )
