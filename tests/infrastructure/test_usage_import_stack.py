"""UsageImportBucket, its S3 -> usage_import notification (L1, no custom resource) and the
Lambda permission, in the synthesized BillingStack (synthesized once for this module)."""
# ruff: noqa: F811 (the tests take the imported `synth` fixture as their argument)

from __future__ import annotations

import pytest

from stacks.constructs.usage import INCOMING_PREFIX, RESULTS_PREFIX, SUFFIXES
from tests.infrastructure.test_billing_stack import (  # noqa: F401 (synth is the module's fixture)
    Synthesized,
    actions_on,
    function_ids,
    referenced_ids,
    role_statements,
    synth,
)

pytestmark = pytest.mark.infra

BUCKET = "Usage/UsageImportBucket"
NAME = {"Fn::Join": ["-", ["billingstack-usage-import", {"Ref": "AWS::AccountId"}, {"Ref": "AWS::Region"}]]}
ARN = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::", NAME]]}


def objects(prefix: str) -> dict:
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::", NAME, f"/{prefix}*"]]}


def test_the_bucket_is_private_versioned_encrypted_logged_retained_and_tls_only(synth: Synthesized) -> None:
    bucket_id = synth.id_of(BUCKET)
    resource = synth.resources[bucket_id]
    props = resource["Properties"]
    assert props["BucketName"] == NAME
    assert resource["DeletionPolicy"] == "Retain"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    logs = synth.id_of("Documents/AccessLogsBucket")
    assert props["LoggingConfiguration"] == {"DestinationBucketName": {"Ref": logs}, "LogFilePrefix": "usage-import/"}
    (policy,) = [p["Properties"]["PolicyDocument"] for p in synth.of_type("AWS::S3::BucketPolicy").values()
                 if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in policy["Statement"])


def test_objects_created_under_incoming_as_csv_or_jsonl_invoke_usage_import(synth: Synthesized) -> None:
    function = {"Fn::GetAtt": [function_ids(synth)["usage_import"], "Arn"]}
    configurations = synth.props(BUCKET)["NotificationConfiguration"]
    assert set(configurations) == {"LambdaConfigurations"}
    assert configurations["LambdaConfigurations"] == [
        {"Event": "s3:ObjectCreated:*", "Function": function,
         "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": INCOMING_PREFIX},
                                        {"Name": "suffix", "Value": suffix}]}}}
        for suffix in SUFFIXES]
    assert INCOMING_PREFIX == "incoming/" and SUFFIXES == (".csv", ".jsonl")
    # CDK's add_event_notification would add a custom resource and its handler function instead
    assert not [r for r in synth.resources.values() if r["Type"] == "Custom::S3BucketNotifications"]


def test_s3_may_invoke_the_function_for_this_bucket_only_and_before_the_bucket_exists(synth: Synthesized) -> None:
    ((permission_id, permission),) = [(k, v) for k, v in synth.of_type("AWS::Lambda::Permission").items()
                                      if v["Properties"]["Principal"] == "s3.amazonaws.com"]
    assert permission["Properties"] == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Fn::GetAtt": [function_ids(synth)["usage_import"], "Arn"]},
        "Principal": "s3.amazonaws.com",
        "SourceAccount": {"Ref": "AWS::AccountId"},
        "SourceArn": ARN,
    }
    # CloudFormation checks the permission when it creates the bucket's notification
    assert synth.resources[synth.id_of(BUCKET)]["DependsOn"] == [permission_id]


def test_nothing_the_function_depends_on_refers_to_the_bucket(synth: Synthesized) -> None:
    """The bucket depends on the function (through its notification and the permission): a Ref or
    GetAtt of the bucket in the function, its role or its policy would be a circular dependency."""
    function_id = function_ids(synth)["usage_import"]
    function = synth.resources[function_id]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = [p for p in synth.of_type("AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]]
    bucket_id = synth.id_of(BUCKET)
    for resource in [function, synth.resources[role_id], *policies]:
        assert bucket_id not in referenced_ids(resource)
    assert function["Properties"]["Environment"]["Variables"]["USAGE_BUCKET"] == NAME


def test_the_function_reads_incoming_writes_results_and_reaches_nothing_else(synth: Synthesized) -> None:
    props = synth.resources[function_ids(synth)["usage_import"]]["Properties"]
    assert (props["Handler"], props["Timeout"]) == ("functions.usage_import.handler.handler", 900)
    statements = role_statements(synth, props["Role"]["Fn::GetAtt"][0])
    s3_statements = [s for s in statements if any(str(a).startswith("s3:") for a in _actions(s))]
    assert sorted((_actions(s), s["Resource"]) for s in s3_statements) == sorted([
        (["s3:GetObject"], objects(INCOMING_PREFIX)), (["s3:PutObject"], objects(RESULTS_PREFIX))])
    assert RESULTS_PREFIX == "results/"
    assert "dynamodb:BatchWriteItem" in actions_on(statements, synth.id_of("Data/BillingTable"))
    for path in ("Data/CountersTable", "Data/IdempotencyTable", "Documents/DocumentsBucket",
                 "Documents/ExportsBucket", "Events/EventBus", "Workflows/BillRun", "Documents/MailFrom"):
        assert actions_on(statements, synth.id_of(path)) == set(), path


def test_other_functions_cannot_touch_the_usage_files(synth: Synthesized) -> None:
    for name, logical_id in function_ids(synth).items():
        if name == "usage_import":
            continue
        role_id = synth.resources[logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]
        for statement in role_statements(synth, role_id):
            assert "usage-import" not in str(statement["Resource"]), name


def _actions(statement: dict) -> list[str]:
    listed = statement["Action"]
    return [listed] if isinstance(listed, str) else list(listed)
