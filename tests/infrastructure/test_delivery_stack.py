"""Retention and delivery in the synthesized BillingStack: Object Lock on DocumentsBucket, the
invoice mail configuration set and its events -> delivery_events, the webhook retry rights.
(The full stack is synthesized once for this module; the throw-away variant of the documents
construct is synthesized alone.)"""
# ruff: noqa: F811 (the tests take the imported `synth` fixture as their argument)

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from shared.services import webhooks
from stacks.app import default_context
from stacks.config import BillingConfig
from stacks.constructs.documents import RETENTION_YEARS, Documents, retention_days
from stacks.constructs.events import SES_DETAIL_TYPES, WEBHOOKS_MAX_RECEIVE_COUNT
from tests.infrastructure.test_billing_stack import (  # noqa: F401 (synth is the module's fixture)
    Synthesized,
    actions_on,
    function_ids,
    referenced_ids,
    role_statements,
    synth,
)

pytestmark = pytest.mark.infra
DEFAULT_BUS = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":events:", {"Ref": "AWS::Region"}, ":",
                                 {"Ref": "AWS::AccountId"}, ":event-bus/default"]]}


def test_documents_are_locked_in_compliance_mode_for_ten_calendar_years(synth: Synthesized) -> None:
    bucket_id = synth.id_of("Documents/DocumentsBucket")
    props = synth.resources[bucket_id]["Properties"]
    assert props["ObjectLockEnabled"] is True
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}  # Object Lock requires it
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 3653}}}
    assert RETENTION_YEARS == 10
    (policy,) = [p["Properties"]["PolicyDocument"] for p in synth.of_type("AWS::S3::BucketPolicy").values()
                 if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
    (deny,) = [s for s in policy["Statement"] if s.get("Sid") == "DocumentsAreNeverDeleted"]
    assert (deny["Effect"], deny["Principal"]) == ("Deny", {"AWS": "*"})
    assert set(deny["Action"]) == {"s3:DeleteObject", "s3:DeleteObjectVersion"}
    assert "ObjectLockEnabled" not in synth.props("Documents/ExportsBucket")


@pytest.mark.parametrize(("years", "days"), [(1, 366), (4, 1461), (7, 2557), (10, 3653)])
def test_retention_days_cover_the_years_from_any_start(years: int, days: int) -> None:
    # From 2024-02-29 (a leap day) 10 years cross 2028-02-29 and 2032-02-29: 3,652 days, +1 to be safe;
    # the most leap days any window of n years holds is ceil(n / 4).
    assert retention_days(years) == days


def test_a_throw_away_stack_locks_in_governance_mode_without_the_deny() -> None:
    app = cdk.App(context=default_context())  # cdk.json's feature flags, as the real app
    stack = cdk.Stack(app, "Ephemeral")
    Documents(stack, "Documents", config=BillingConfig(ephemeral=True))
    template = Template.from_stack(stack).to_json()
    (bucket,) = [r for k, r in template["Resources"].items()
                 if r["Type"] == "AWS::S3::Bucket" and "ObjectLockConfiguration" in r["Properties"]]
    assert bucket["Properties"]["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Mode"] == "GOVERNANCE"
    assert not [s for r in template["Resources"].values() if r["Type"] == "AWS::S3::BucketPolicy"
                for s in r["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "DocumentsAreNeverDeleted"]


def test_the_mail_identity_publishes_its_events_to_the_default_bus(synth: Synthesized) -> None:
    config_set = synth.id_of("Documents/InvoiceMail")
    assert synth.props("Documents/InvoiceMail")["Name"] == "BillingStack-invoice-mail"
    assert synth.props("Documents/MailFrom")["ConfigurationSetAttributes"] == {
        "ConfigurationSetName": {"Ref": config_set}}
    (destination,) = synth.of_type("AWS::SES::ConfigurationSetEventDestination").values()
    props = destination["Properties"]
    assert props["ConfigurationSetName"] == {"Ref": config_set}
    assert props["EventDestination"]["EventBridgeDestination"] == {"EventBusArn": DEFAULT_BUS}
    assert set(props["EventDestination"]["MatchingEventTypes"]) == {"delivery", "bounce", "complaint", "reject"}


def test_ses_events_on_the_default_bus_reach_delivery_events(synth: Synthesized) -> None:
    rule = synth.props("MailEvents/InvoiceMailEvents")
    assert rule["EventBusName"] == "default"
    assert rule["EventPattern"] == {"source": ["aws.ses"], "detail-type": SES_DETAIL_TYPES}
    (target,) = rule["Targets"]
    function = function_ids(synth)["delivery_events"]
    assert target["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
    (permission,) = [p["Properties"] for p in synth.of_type("AWS::Lambda::Permission").values()
                     if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function, "Arn"]}]
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": [synth.id_of("MailEvents/InvoiceMailEvents"), "Arn"]}
    role = synth.resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    assert "dynamodb:PutItem" in actions_on(role_statements(synth, role), synth.id_of("Data/BillingTable"))


@pytest.mark.parametrize("name", ["invoice_deliver", "api"])
def test_invoice_senders_may_send_from_the_identity_through_its_configuration_set(
        synth: Synthesized, name: str) -> None:
    role = synth.resources[function_ids(synth)[name]]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = role_statements(synth, role)
    assert "ses:SendRawEmail" in actions_on(statements, synth.id_of("Documents/MailFrom"))
    assert {"ses:SendRawEmail", "ses:SendEmail"} <= actions_on(statements, synth.id_of("Documents/InvoiceMail"))


def test_webhooks_dispatch_records_attempts_and_delays_retries(synth: Synthesized) -> None:
    assert WEBHOOKS_MAX_RECEIVE_COUNT == webhooks.MAX_ATTEMPTS
    role = synth.resources[function_ids(synth)["webhooks_dispatch"]]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = role_statements(synth, role)
    assert "dynamodb:PutItem" in actions_on(statements, synth.id_of("Data/BillingTable"))
    assert "sqs:ChangeMessageVisibility" in actions_on(statements, synth.id_of("Webhooks/WebhooksQueue"))
    queue = synth.props("Webhooks/WebhooksQueue")
    # the longest backoff fits in SQS's 12 h visibility ceiling and in the queue's retention
    longest = max(d for n in range(1, webhooks.MAX_ATTEMPTS) if (d := webhooks.retry_delay(n)))
    assert longest <= 12 * 3600 and sum(webhooks.retry_delay(n) for n in range(1, webhooks.MAX_ATTEMPTS)) < \
        queue["MessageRetentionPeriod"]
