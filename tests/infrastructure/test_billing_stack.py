"""The synthesized BillingStack: names and wiring from shared/ARCHITECTURE.md, least privilege,
cdk-nag and cfn-lint. The app is synthesized once for the module, without bundling (no Docker,
no pip download)."""

from __future__ import annotations

import ast
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stacks.app import build_app
from stacks.billing_stack import STACK_NAME
from stacks.constructs.workflows import (
    ASL_PATH,
    FUNCTION_PLACEHOLDERS,
    SCHEDULE_EXPRESSION,
)
from stacks.function_factory import FUNCTIONS, handler_string

pytestmark = pytest.mark.infra

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMON_ENV = {
    "BILLING_TABLE",
    "COUNTERS_TABLE",
    "IDEMPOTENCY_TABLE",
    "DOCUMENTS_BUCKET",
    "EXPORTS_BUCKET",
    "EVENT_BUS_NAME",
    "MAIL_FROM",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
    "CRE_EMAIL",  # issue 7: who the reconciliation emails
    "FINANCE_EMAIL",
    "OPS_EMAIL",  # issue 4 UC04: who confirms annual terminations
}
OUTPUTS = {
    "ApiUrl",
    "BillingTableName",
    "CountersTableName",
    "IdempotencyTableName",
    "DocumentsBucketName",
    "ExportsBucketName",
    "EventBusName",
    "BillRunStateMachineArn",
}


@dataclass
class Synthesized:
    outdir: Path
    seconds: float
    error: str | None
    template: dict
    logical_ids: dict[str, str]  # construct path -> logical id
    acknowledgments: dict[str, dict[str, str]]  # construct path -> {rule: reason}
    errors: list[str] = field(default_factory=list)  # aws:cdk:error metadata
    violations: list[str] = field(default_factory=list)  # validation report

    @property
    def resources(self) -> dict[str, dict]:
        return self.template["Resources"]

    def id_of(self, path: str) -> str:
        """Logical id of the construct at `path` (relative to the stack)."""
        for full in (f"/{STACK_NAME}/{path}/Resource", f"/{STACK_NAME}/{path}"):
            if full in self.logical_ids:
                return self.logical_ids[full]
        raise KeyError(path)

    def props(self, path: str) -> dict:
        return self.resources[self.id_of(path)]["Properties"]

    def of_type(self, kind: str) -> dict[str, dict]:
        return {k: v for k, v in self.resources.items() if v["Type"] == kind}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("cdk.out")
    started = time.perf_counter()
    app = build_app({"aws:cdk:bundling-stacks": []}, outdir=str(outdir))
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag violations surface as ValidationFailed
        error = str(exc)
    seconds = time.perf_counter() - started

    metadata = json.loads((outdir / f"{STACK_NAME}.metadata.json").read_text())
    logical_ids, acknowledgments, errors = {}, {}, []
    for path, entries in metadata.items():
        for entry in entries:
            if entry["type"] == "aws:cdk:logicalId":
                logical_ids[path] = entry["data"]
            elif entry["type"] == "aws:cdk:acknowledged-rules":
                acknowledgments.setdefault(path, {}).update(entry["data"])
            elif entry["type"] == "aws:cdk:error":
                errors.append(f"{path}: {entry['data']}")
    violations = []
    report = outdir / "validation-report.json"
    if report.exists():
        for plugin in json.loads(report.read_text()).get("pluginReports", []):
            for violation in plugin.get("violations", []):
                for construct in violation["violatingConstructs"]:
                    violations.append(
                        f"{violation['severity']} {violation['ruleName']} "
                        f"{construct['constructPath']}"
                    )
    return Synthesized(
        outdir=outdir,
        seconds=seconds,
        error=error,
        template=json.loads((outdir / f"{STACK_NAME}.template.json").read_text()),
        logical_ids=logical_ids,
        acknowledgments=acknowledgments,
        errors=errors,
        violations=violations,
    )


def function_ids(synth: Synthesized) -> dict[str, str]:
    """Function folder name -> logical id of its AWS::Lambda::Function."""
    found = {}
    for path, logical_id in synth.logical_ids.items():
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[2] in FUNCTIONS and parts[3] == "Resource":
            found[parts[2]] = logical_id
    return found


def referenced_ids(value: object) -> set[str]:
    """Logical ids referenced (Ref / Fn::GetAtt) anywhere inside `value`."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value:
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        for item in value.values():
            found |= referenced_ids(item)
    elif isinstance(value, list):
        for item in value:
            found |= referenced_ids(item)
    return found


def role_statements(synth: Synthesized, role_id: str) -> list[dict]:
    statements = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def actions_on(statements: list[dict], logical_id: str) -> set[str]:
    actions: set[str] = set()
    for statement in statements:
        if logical_id in referenced_ids(statement.get("Resource")):
            listed = statement["Action"]
            actions |= {listed} if isinstance(listed, str) else set(listed)
    return actions


# -- synthesis, cdk-nag, cfn-lint ---------------------------------------------------------------


def test_synthesizes_without_docker_with_no_unacknowledged_cdk_nag_finding(
    synth: Synthesized,
) -> None:
    assert synth.error is None, "\n".join([synth.error or "", *synth.violations])
    assert synth.violations == []
    assert synth.errors == []


def test_every_acknowledgment_carries_a_written_reason(synth: Synthesized) -> None:
    assert synth.acknowledgments, "expected cdk-nag acknowledgments"
    for path, rules in synth.acknowledgments.items():
        for rule, reason in rules.items():
            assert rule.startswith("AwsSolutions::AwsSolutions-"), (path, rule)
            assert len(reason.split()) >= 6, f"{path} {rule}: reason too thin: {reason!r}"


def test_cfn_lint_reports_no_errors(synth: Synthesized) -> None:
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(synth.template), config=ManualArgs(regions=["us-east-1"]))
    errors = [str(m) for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def test_outputs_for_the_staff_cli(synth: Synthesized) -> None:
    assert set(synth.template["Outputs"]) == OUTPUTS


# -- data ---------------------------------------------------------------------------------------


def key_schema(props: dict) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]]


def test_tables_keys_and_indexes(synth: Synthesized) -> None:
    billing = synth.props("Data/BillingTable")
    assert key_schema(billing) == [("pk", "HASH"), ("sk", "RANGE")]
    indexes = {
        gsi["IndexName"]: (key_schema(gsi), gsi["Projection"]["ProjectionType"])
        for gsi in billing["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        "gsi1": ([("gsi1pk", "HASH"), ("gsi1sk", "RANGE")], "ALL"),
        "gsi2": ([("gsi2pk", "HASH"), ("gsi2sk", "RANGE")], "ALL"),
        "gsi3": ([("gsi3pk", "HASH"), ("gsi3sk", "RANGE")], "ALL"),
    }
    assert all(a["AttributeType"] == "S" for a in billing["AttributeDefinitions"])
    assert key_schema(synth.props("Data/CountersTable")) == [("pk", "HASH")]
    idempotency = synth.props("Data/IdempotencyTable")
    assert key_schema(idempotency) == [("id", "HASH")]
    assert idempotency["TimeToLiveSpecification"] == {
        "AttributeName": "expiration",
        "Enabled": True,
    }


@pytest.mark.parametrize("table", ["BillingTable", "CountersTable", "IdempotencyTable"])
def test_tables_are_on_demand_recoverable_encrypted_and_retained(
    synth: Synthesized, table: str
) -> None:
    resource = synth.resources[synth.id_of(f"Data/{table}")]
    props = resource["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["DeletionProtectionEnabled"] is True
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize("bucket", ["DocumentsBucket", "ExportsBucket"])
def test_buckets_private_versioned_encrypted_logged_tls_only(
    synth: Synthesized, bucket: str
) -> None:
    bucket_id = synth.id_of(f"Documents/{bucket}")
    resource = synth.resources[bucket_id]
    props = resource["Properties"]
    assert resource["DeletionPolicy"] == "Retain"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": synth.id_of("Documents/AccessLogsBucket")
    }
    policy = next(
        p["Properties"]["PolicyDocument"]
        for p in synth.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    )
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Statement"]
    )


def test_mail_from_identity(synth: Synthesized) -> None:
    assert synth.props("Documents/MailFrom")["EmailIdentity"] == "billing@example.com"


# -- events ---------------------------------------------------------------------------------------


def test_all_billing_events_rule_feeds_the_webhooks_queue(synth: Synthesized) -> None:
    rule = synth.props("Webhooks/AllBillingEvents")
    assert rule["EventPattern"] == {"source": ["billing"]}
    assert rule["EventBusName"] == {"Ref": synth.id_of("Events/EventBus")}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [synth.id_of("Webhooks/WebhooksQueue"), "Arn"]}


def test_webhooks_queue_dlq_and_event_source(synth: Synthesized) -> None:
    queue_id = synth.id_of("Webhooks/WebhooksQueue")
    queue = synth.resources[queue_id]["Properties"]
    dlq = synth.props("Webhooks/WebhooksDlq")
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [synth.id_of("Webhooks/WebhooksDlq"), "Arn"]},
        "maxReceiveCount": 5,
    }
    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    dispatch = synth.resources[function_ids(synth)["webhooks_dispatch"]]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * dispatch["Timeout"]

    (mapping,) = [m for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}]
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": function_ids(synth)["webhooks_dispatch"]}
    assert props["BatchSize"] == 10
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


# -- functions ------------------------------------------------------------------------------------


def test_seven_functions_with_the_contract_handlers(synth: Synthesized) -> None:
    ids = function_ids(synth)
    assert set(ids) == set(FUNCTIONS)
    assert len(synth.of_type("AWS::Lambda::Function")) == len(FUNCTIONS)
    for name, logical_id in ids.items():
        props = synth.resources[logical_id]["Properties"]
        if props.get("PackageType") == "Image":
            assert props["ImageConfig"]["Command"] == [handler_string(name)]
        else:
            assert props["Handler"] == handler_string(name)
            assert props["Runtime"] == "python3.12"
            assert props["Layers"] == [{"Ref": synth.id_of("DependenciesLayer")}]


def test_renderer_is_a_container_image_built_at_deploy(synth: Synthesized) -> None:
    props = synth.resources[function_ids(synth)["invoice_render_pdf"]]["Properties"]
    assert props["PackageType"] == "Image"
    assets = json.loads((synth.outdir / f"{STACK_NAME}.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    assert image["source"]["dockerFile"] == "layers/renderer/Dockerfile"
    assert image["source"]["platform"] == f"linux/{props['Architectures'][0]}"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_handler_names_a_module_of_the_repo(synth: Synthesized, name: str) -> None:
    # Given the handler string the template gives the function (zip Handler or image CMD)
    props = synth.resources[function_ids(synth)[name]]["Properties"]
    handler = props.get("Handler") or props["ImageConfig"]["Command"][0]
    assert handler == handler_string(name)
    # Then it names functions/<name>/handler.py, defining `handler`
    module_path, _, attribute = handler.rpartition(".")
    module = REPO_ROOT / (module_path.replace(".", "/") + ".py")
    if not module.exists():
        pytest.skip(f"{module.relative_to(REPO_ROOT)} is not written yet")
    tree = ast.parse(module.read_text(encoding="utf-8"))
    defined = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    } | {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert attribute in defined, f"{module.relative_to(REPO_ROOT)} defines no {attribute!r}"


def test_function_settings(synth: Synthesized) -> None:
    ids = function_ids(synth)
    architectures = set()
    log_groups = set()
    for name, logical_id in ids.items():
        props = synth.resources[logical_id]["Properties"]
        architectures.add(tuple(props["Architectures"]))
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert props["Timeout"] == FUNCTIONS[name].timeout_seconds, name
        assert props["MemorySize"] == FUNCTIONS[name].memory_mb, name
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert synth.resources[log_group]["Properties"]["RetentionInDays"] > 0
        log_groups.add(log_group)
    assert len(architectures) == 1
    assert len(log_groups) == len(ids)


def test_environment_same_key_same_value_and_state_machine_arn_only_on_api(
    synth: Synthesized,
) -> None:
    values: dict[str, str] = {}
    for name, logical_id in function_ids(synth).items():
        env = synth.resources[logical_id]["Properties"]["Environment"]["Variables"]
        expected = (COMMON_ENV | ({"BILL_RUN_STATE_MACHINE_ARN", "PREVIEW_FUNCTION_NAME"} if name == "api" else set())
                    | ({"USAGE_BUCKET"} if name == "usage_import" else set()))
        assert set(env) == expected, name
        for key, value in env.items():
            encoded = json.dumps(value, sort_keys=True)
            assert values.setdefault(key, encoded) == encoded, key
    assert json.loads(values["POWERTOOLS_SERVICE_NAME"]) == "billing"
    assert json.loads(values["POWERTOOLS_METRICS_NAMESPACE"]) == "Billing"
    assert json.loads(values["LOG_LEVEL"]) == "INFO"
    assert json.loads(values["BILL_RUN_STATE_MACHINE_ARN"]) == {
        "Ref": synth.id_of("Workflows/BillRun")
    }


def test_each_function_has_its_own_role_without_managed_policies(synth: Synthesized) -> None:
    roles = [
        synth.resources[logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]
        for logical_id in function_ids(synth).values()
    ]
    assert len(set(roles)) == len(roles)
    for role in roles:
        props = synth.resources[role]["Properties"]
        assert "ManagedPolicyArns" not in props, role
        (statement,) = props["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}


RW = "dynamodb:PutItem"
READ = "dynamodb:GetItem"
# shared/ARCHITECTURE.md, "Functions": what each function may touch.
GRANTS: dict[str, dict[str, set[str]]] = {
    "api": {
        "Data/BillingTable": {READ, RW},
        "Data/CountersTable": {READ, RW},
        "Data/IdempotencyTable": {READ, RW},
        "Documents/DocumentsBucket": {"s3:GetObject*"},
        "Documents/ExportsBucket": {"s3:GetObject"},  # ECB rates for previews
        "Documents/MailFrom": {"ses:SendRawEmail"},  # resend
        "Workflows/BillRun": {"states:StartExecution", "states:DescribeExecution"},
    },
    "billrun_list_due": {"Data/BillingTable": {READ, RW}},
    "billrun_invoice_account": {
        "Data/BillingTable": {READ, RW},
        "Data/CountersTable": {READ, RW},
        "Documents/ExportsBucket": {"s3:GetObject"},  # the ECB rates copied there daily
    },
    "invoice_render_pdf": {
        "Data/BillingTable": {READ, RW},
        "Documents/DocumentsBucket": {"s3:GetObject*", "s3:PutObject"},
    },
    "invoice_deliver": {
        "Data/BillingTable": {READ, RW},
        "Documents/DocumentsBucket": {"s3:GetObject*"},
        "Documents/MailFrom": {"ses:SendRawEmail"},
    },
    "billrun_complete": {"Data/BillingTable": {READ, RW}},
    "webhooks_dispatch": {
        "Data/BillingTable": {READ, RW},  # stored events and delivery attempts, for replay
        "Webhooks/WebhooksQueue": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"},
    },
}
GUARDED = [
    "Data/BillingTable",
    "Data/CountersTable",
    "Data/IdempotencyTable",
    "Documents/DocumentsBucket",
    "Documents/ExportsBucket",
    "Documents/MailFrom",
    "Events/EventBus",
    "Workflows/BillRun",
    "Webhooks/WebhooksQueue",
    "Webhooks/WebhooksDlq",
]


@pytest.mark.parametrize("name", sorted(GRANTS))
def test_least_privilege_grants(synth: Synthesized, name: str) -> None:
    function = synth.resources[function_ids(synth)[name]]["Properties"]
    statements = role_statements(synth, function["Role"]["Fn::GetAtt"][0])
    for path in GUARDED:
        granted = actions_on(statements, synth.id_of(path))
        expected = GRANTS[name].get(path)
        if expected is None:
            assert granted == set(), f"{name} must not reach {path}: {sorted(granted)}"
        else:
            assert expected <= granted, f"{name} on {path}: missing {expected - granted}"
    table_writes = actions_on(statements, synth.id_of("Data/BillingTable"))
    if GRANTS[name]["Data/BillingTable"] == {READ}:
        assert RW not in table_writes
    bucket = actions_on(statements, synth.id_of("Documents/DocumentsBucket"))
    if "s3:PutObject" not in GRANTS[name].get("Documents/DocumentsBucket", set()):
        assert not {a for a in bucket if a.startswith(("s3:Put", "s3:Delete"))}, name


def test_only_the_outbox_publisher_puts_events_on_the_bus(synth: Synthesized) -> None:
    """A use case commits its events (the outbox); no function publishes after its commit."""
    bus = synth.id_of("Events/EventBus")
    putting = {name for name, logical_id in function_ids(synth).items()
               if "events:PutEvents" in actions_on(role_statements(
                   synth, synth.resources[logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]), bus)}
    assert putting == {"outbox_publish"}


def test_outbox_publisher_reads_the_billing_table_stream_of_new_outbox_items(synth: Synthesized) -> None:
    table = synth.props("Data/BillingTable")
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    function_id = function_ids(synth)["outbox_publish"]
    (mapping,) = [r["Properties"] for r in synth.resources.values()
                  if r["Type"] == "AWS::Lambda::EventSourceMapping"
                  and r["Properties"]["FunctionName"] == {"Ref": function_id}]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [synth.id_of("Data/BillingTable"), "StreamArn"]}
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True and mapping["MaximumRetryAttempts"] > 0
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": [synth.id_of("Outbox/OutboxDlq"), "Arn"]}
    (pattern,) = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]
    assert pattern == {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["outbox"]}}}}
    statements = role_statements(synth, synth.resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0])
    on_table = actions_on(statements, synth.id_of("Data/BillingTable"))
    assert on_table and all(a in ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                                  "dynamodb:ListStreams") for a in on_table), on_table  # the stream, no item
    alarm = synth.props("Monitoring/OutboxDlqNotEmpty")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {
        "Fn::GetAtt": [synth.id_of("Outbox/OutboxDlq"), "QueueName"]}}]


# -- workflows ------------------------------------------------------------------------------------


def test_state_machine_definition_is_the_asl_file_with_its_substitutions(
    synth: Synthesized,
) -> None:
    props = synth.props("Workflows/BillRun")
    assert props["StateMachineType"] == "STANDARD"
    assert props["DefinitionString"] == ASL_PATH.read_text(encoding="utf-8")
    substitutions = props["DefinitionSubstitutions"]
    assert set(substitutions) == set(FUNCTION_PLACEHOLDERS)
    ids = function_ids(synth)
    for key, name in FUNCTION_PLACEHOLDERS.items():
        assert substitutions[key] == {"Fn::GetAtt": [ids[name], "Arn"]}, key
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"


def test_state_machine_role_invokes_exactly_the_task_functions(synth: Synthesized) -> None:
    role_id = synth.props("Workflows/BillRun")["RoleArn"]["Fn::GetAtt"][0]
    statements = role_statements(synth, role_id)
    invoked = {
        logical_id
        for s in statements
        if "lambda:InvokeFunction" in s["Action"]
        for logical_id in referenced_ids(s["Resource"])
    }
    ids = function_ids(synth)
    assert invoked == {ids[name] for name in FUNCTION_PLACEHOLDERS.values()}
    # invoice.finalized leaves through the outbox with the invoice, not from a state after Deliver
    assert actions_on(statements, synth.id_of("Events/EventBus")) == set()


def test_daily_schedule_starts_the_bill_run(synth: Synthesized) -> None:
    props = synth.props("Workflows/DailyBillRun")
    assert props["ScheduleExpression"] == SCHEDULE_EXPRESSION == "cron(0 2 * * ? *)"
    assert props["ScheduleExpressionTimezone"] == "UTC"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = props["Target"]
    state_machine = synth.id_of("Workflows/BillRun")
    assert target["Arn"] == {"Ref": state_machine}
    assert json.loads(target["Input"]) == {
        "as_of": "<aws.scheduler.scheduled-time>",
        "trigger": "schedule",
    }
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    trust = synth.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust[0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert actions_on(role_statements(synth, role_id), state_machine) == {"states:StartExecution"}


# -- api and monitoring ---------------------------------------------------------------------------


def test_rest_api_proxies_everything_to_the_api_function(synth: Synthesized) -> None:
    api_function = function_ids(synth)["api"]
    methods = synth.of_type("AWS::ApiGateway::Method").values()
    assert len(methods) == 2  # ANY on / and ANY on /{proxy+}
    for method in methods:
        props = method["Properties"]
        assert props["HttpMethod"] == "ANY"
        assert props["AuthorizationType"] == "NONE"  # the function authenticates
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert api_function in referenced_ids(props["Integration"]["Uri"])
    (resource,) = synth.of_type("AWS::ApiGateway::Resource").values()
    assert resource["Properties"]["PathPart"] == "{proxy+}"
    rest_api = synth.props("Api/RestApi")
    assert rest_api["BinaryMediaTypes"] == [  # GET /v1/invoices/{id}/pdf and attachments
        "application/pdf", "image/png", "image/jpeg",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"]
    (stage,) = synth.of_type("AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["StageName"] == "live"
    assert "AccessLogSetting" in stage["Properties"]
    (settings,) = stage["Properties"]["MethodSettings"]
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0


def test_alarms_notify_the_encrypted_topic(synth: Synthesized) -> None:
    topic_id = synth.id_of("Monitoring/AlarmTopic")
    assert "KmsMasterKeyId" in synth.resources[topic_id]["Properties"]
    alarms = synth.of_type("AWS::CloudWatch::Alarm")
    assert len(alarms) == 4 + len(FUNCTIONS)
    watched = {}
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": topic_id}]
        assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0)
        watched[props["MetricName"]] = watched.get(props["MetricName"], 0) + 1
    assert watched == {
        "ApproximateNumberOfMessagesVisible": 2,  # WebhooksDlq, OutboxDlq
        "ExecutionsFailed": 1,
        "MissingContracts": 1,
        "Errors": len(FUNCTIONS),
    }


# -- packaging ------------------------------------------------------------------------------------


def test_code_asset_holds_only_shared_and_functions(synth: Synthesized) -> None:
    assets = json.loads((synth.outdir / f"{STACK_NAME}.assets.json").read_text())
    code_key = synth.resources[function_ids(synth)["api"]]["Properties"]["Code"]["S3Key"]
    staged = synth.outdir / assets["files"][code_key.removesuffix(".zip")]["source"]["path"]
    assert sorted(p.name for p in staged.iterdir()) == ["functions", "shared"]
    shipped = [p.relative_to(staged).as_posix() for p in staged.rglob("*")]
    assert "shared/billing/errors.py" in shipped
    forbidden = ("shared/local", "shared/cli", "__pycache__", ".pyc", "tests")
    assert not [p for p in shipped if any(part in p for part in forbidden)]
