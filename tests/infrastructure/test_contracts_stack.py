"""Issue 4's resources in the synthesized BillingStack: the contract_calendar function, its daily
schedule before the bill run, and its grants (table, bus, mail)."""
# ruff: noqa: F811 (the tests take the imported `synth` fixture as their argument)

from __future__ import annotations

import json

import pytest

from stacks.constructs.contracts import CALENDAR_SCHEDULE_EXPRESSION, CALENDAR_SCHEDULE_INPUT
from tests.infrastructure.test_billing_stack import (  # noqa: F401 (synth is the module's fixture)
    Synthesized,
    actions_on,
    function_ids,
    role_statements,
    synth,
)

pytestmark = pytest.mark.infra


def test_the_calendar_runs_daily_at_one_utc_before_the_bill_run(synth: Synthesized) -> None:
    schedule = synth.props("Contracts/DailyContractCalendar")
    assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == ("cron(0 1 * * ? *)", "UTC")
    assert CALENDAR_SCHEDULE_EXPRESSION == "cron(0 1 * * ? *)"
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": [function_ids(synth)["contract_calendar"], "Arn"]}
    assert json.loads(target["Input"]) == CALENDAR_SCHEDULE_INPUT
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    assert actions_on(role_statements(synth, role_id), function_ids(synth)["contract_calendar"]) == {
        "lambda:InvokeFunction"}


def test_the_calendar_reads_and_writes_the_table_publishes_events_and_sends_mail(synth: Synthesized) -> None:
    fn = synth.resources[function_ids(synth)["contract_calendar"]]
    assert fn["Properties"]["Handler"] == "functions.contract_calendar.handler.handler"
    statements = role_statements(synth, fn["Properties"]["Role"]["Fn::GetAtt"][0])
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"} <= actions_on(
        statements, synth.id_of("Data/BillingTable"))
    assert actions_on(statements, synth.id_of("Events/EventBus")) == set()  # its events leave through the outbox
    assert "ses:SendRawEmail" in actions_on(statements, synth.id_of("Documents/MailFrom"))
    assert actions_on(statements, synth.id_of("Data/CountersTable")) == set()


def test_ops_hear_of_annual_terminations_at_the_alarm_addresses(synth: Synthesized) -> None:
    env = synth.resources[function_ids(synth)["api"]]["Properties"]["Environment"]["Variables"]
    assert env["OPS_EMAIL"] == "ops@example.com"  # cdk.json `ops_emails` is empty: the placeholder
