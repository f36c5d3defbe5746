"""Issue 7's resources in the synthesized BillingStack (synthesized once for this module): the
revenue_schedules and finance_exports functions, the RevenueEvents and BillRunCompleted rules with their
dead-letter queue, the DailyFinanceExports schedule, least-privilege grants on ExportsBucket and the
MissingContracts alarm. cdk-nag and cfn-lint run on the same template in test_billing_stack.py."""
# ruff: noqa: F811 (the tests take the imported `synth` fixture as their argument)

from __future__ import annotations

import json

import pytest

from stacks.constructs.finance import (
    EXPORTS_SCHEDULE_EXPRESSION,
    EXPORTS_SCHEDULE_INPUT,
    REVENUE_EVENTS,
)
from tests.infrastructure.test_billing_stack import (  # noqa: F401 (synth is the module's fixture)
    Synthesized,
    actions_on,
    function_ids,
    referenced_ids,
    role_statements,
    synth,
)

pytestmark = pytest.mark.infra


def function_statements(synth: Synthesized, name: str) -> list[dict]:
    role = synth.resources[function_ids(synth)[name]]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role_statements(synth, role)


def test_both_functions_exist_with_the_contract_handlers_and_the_finance_emails(synth: Synthesized) -> None:
    for name in ("revenue_schedules", "finance_exports"):
        props = synth.resources[function_ids(synth)[name]]["Properties"]
        assert props["Handler"] == f"functions.{name}.handler.handler"
        env = props["Environment"]["Variables"]
        assert (env["CRE_EMAIL"], env["FINANCE_EMAIL"]) == ("cre@example.com", "finance@example.com")
        assert env["EXPORTS_BUCKET"] == {"Ref": synth.id_of("Documents/ExportsBucket")}


def test_finalized_invoices_credit_notes_voids_and_terminations_reach_revenue_schedules(synth: Synthesized) -> None:
    rule = synth.props("Finance/RevenueEvents")
    assert rule["EventBusName"] == {"Ref": synth.id_of("Events/EventBus")}
    assert rule["EventPattern"] == {"source": ["billing"], "detail-type": list(REVENUE_EVENTS)}
    # a credit note is published as invoice.finalized (invoice_lifecycle.publish_finalized); a void as invoice.voided
    assert set(REVENUE_EVENTS) == {"invoice.finalized", "invoice.voided", "subscription.terminated",
                                   "subscription.termination_scheduled"}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_ids(synth)["revenue_schedules"], "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [synth.id_of("Finance/FinanceEventsDlq"), "Arn"]}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8


def test_completed_bill_runs_reach_the_reconciliation(synth: Synthesized) -> None:
    rule = synth.props("Finance/BillRunCompleted")
    assert rule["EventPattern"] == {"source": ["billing"], "detail-type": ["bill_run.completed"]}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_ids(synth)["finance_exports"], "Arn"]}
    permissions = [p["Properties"] for p in synth.of_type("AWS::Lambda::Permission").values()
                   if p["Properties"]["Principal"] == "events.amazonaws.com"]
    granted = {(json.dumps(p["FunctionName"]), json.dumps(p["SourceArn"])) for p in permissions}
    for name, rule_path in (("finance_exports", "Finance/BillRunCompleted"),
                            ("revenue_schedules", "Finance/RevenueEvents")):
        function = {"Fn::GetAtt": [function_ids(synth)[name], "Arn"]}
        assert (json.dumps(function), json.dumps({"Fn::GetAtt": [synth.id_of(rule_path), "Arn"]})) in granted


def test_the_daily_schedule_invokes_finance_exports_at_six_utc(synth: Synthesized) -> None:
    schedule = synth.props("Finance/DailyFinanceExports")
    assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == (
        EXPORTS_SCHEDULE_EXPRESSION, "UTC")
    assert EXPORTS_SCHEDULE_EXPRESSION == "cron(0 6 * * ? *)"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"} and schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": [function_ids(synth)["finance_exports"], "Arn"]}
    assert json.loads(target["Input"]) == EXPORTS_SCHEDULE_INPUT
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    (statement,) = synth.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert actions_on(role_statements(synth, role_id), function_ids(synth)["finance_exports"]) == {
        "lambda:InvokeFunction"}


def test_exports_are_read_and_written_under_exports_only_and_never_deleted(synth: Synthesized) -> None:
    bucket = synth.id_of("Documents/ExportsBucket")
    for name in ("finance_exports", "api"):
        statements = [s for s in function_statements(synth, name) if bucket in referenced_ids(s.get("Resource"))]
        ours = [s for s in statements if "/exports/*" in json.dumps(s["Resource"])]
        assert [sorted(_listed(s["Action"])) for s in ours] == [["s3:GetObject", "s3:PutObject"]], name
        for statement in statements:
            actions = _listed(statement["Action"])
            assert not {a for a in actions if a.startswith("s3:Delete")}, name
            if "s3:PutObject" in actions:
                assert all("/exports/*" in json.dumps(r) for r in _listed(statement["Resource"])), name
    assert actions_on(function_statements(synth, "revenue_schedules"), bucket) == set()


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def test_the_functions_reach_the_table_and_only_finance_exports_sends_mail(synth: Synthesized) -> None:
    table = synth.id_of("Data/BillingTable")
    identity = synth.id_of("Documents/MailFrom")
    for name in ("revenue_schedules", "finance_exports"):
        statements = function_statements(synth, name)
        assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"} <= actions_on(statements, table), name
        assert actions_on(statements, synth.id_of("Data/CountersTable")) == set(), name
        assert actions_on(statements, synth.id_of("Events/EventBus")) == set(), name
    assert "ses:SendRawEmail" in actions_on(function_statements(synth, "finance_exports"), identity)
    assert actions_on(function_statements(synth, "revenue_schedules"), identity) == set()


def test_missing_contracts_raise_an_alarm_on_the_topic(synth: Synthesized) -> None:
    alarm = synth.props("Monitoring/MissingContracts")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == (
        "Billing", "MissingContracts", [{"Name": "service", "Value": "billing"}])
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["TreatMissingData"]) == (
        "GreaterThanThreshold", 0, "notBreaching")
    assert alarm["AlarmActions"] == [{"Ref": synth.id_of("Monitoring/AlarmTopic")}]
    for name in ("revenue_schedules", "finance_exports"):  # and each function's errors, like every function
        assert synth.props(f"Monitoring/{name}Errors")["MetricName"] == "Errors"


def test_the_dead_letter_queue_is_encrypted_and_tls_only(synth: Synthesized) -> None:
    dlq_id = synth.id_of("Finance/FinanceEventsDlq")
    assert synth.resources[dlq_id]["Properties"]["SqsManagedSseEnabled"] is True
    policies = [p["Properties"]["PolicyDocument"] for p in synth.of_type("AWS::SQS::QueuePolicy").values()
                if {"Ref": dlq_id} in p["Properties"]["Queues"]]
    statements = [s for policy in policies for s in policy["Statement"]]
    assert any(s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)
    assert any(s["Effect"] == "Allow" and s["Principal"] == {"Service": "events.amazonaws.com"}
               for s in statements)
