"""Issue 6's document functions in the synthesized BillingStack: `document_issue` on the
DocumentIssue rule (API-finalized documents only, with a DLQ) and `document_preview`, which only
the API may invoke. Both are renderer images (weasyprint)."""
# ruff: noqa: F811 (the tests take the imported `synth` fixture as their argument)

from __future__ import annotations

import pytest

from tests.infrastructure.test_billing_stack import (  # noqa: F401 (synth is the module's fixture)
    Synthesized,
    actions_on,
    function_ids,
    role_statements,
    synth,
)

pytestmark = pytest.mark.infra


def test_only_documents_finalized_through_the_api_reach_document_issue(synth: Synthesized) -> None:
    rule = synth.props("Issuing/DocumentIssue")
    assert rule["EventPattern"] == {"source": ["billing"], "detail-type": ["invoice.finalized"],
                                    "detail": {"data": {"origin": ["api"]}}}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_ids(synth)["document_issue"], "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [synth.id_of("Issuing/DocumentIssueDlq"), "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8


def test_document_issue_is_a_renderer_image_that_writes_pdfs_and_sends_mail(synth: Synthesized) -> None:
    fn = synth.resources[function_ids(synth)["document_issue"]]["Properties"]
    assert fn["PackageType"] == "Image" and fn["ImageConfig"]["Command"] == ["functions.document_issue.handler.handler"]
    statements = role_statements(synth, fn["Role"]["Fn::GetAtt"][0])
    assert "s3:PutObject" in actions_on(statements, synth.id_of("Documents/DocumentsBucket"))
    assert "ses:SendRawEmail" in actions_on(statements, synth.id_of("Documents/MailFrom"))
    assert actions_on(statements, synth.id_of("Data/CountersTable")) == set()


def test_document_preview_reads_only_and_only_the_api_invokes_it(synth: Synthesized) -> None:
    ids = function_ids(synth)
    fn = synth.resources[ids["document_preview"]]["Properties"]
    assert fn["ImageConfig"]["Command"] == ["functions.document_preview.handler.handler"]
    assert fn["Timeout"] < 29  # the API waits for it within API Gateway's limit
    statements = role_statements(synth, fn["Role"]["Fn::GetAtt"][0])
    bucket = actions_on(statements, synth.id_of("Documents/DocumentsBucket"))
    assert "s3:GetObject*" in bucket and not any(a.startswith(("s3:Put", "s3:Delete")) for a in bucket)
    table = actions_on(statements, synth.id_of("Data/BillingTable"))
    assert "dynamodb:GetItem" in table and "dynamodb:PutItem" not in table
    api = synth.resources[ids["api"]]["Properties"]
    assert api["Environment"]["Variables"]["PREVIEW_FUNCTION_NAME"] == {"Ref": ids["document_preview"]}
    api_statements = role_statements(synth, api["Role"]["Fn::GetAtt"][0])
    assert actions_on(api_statements, ids["document_preview"]) == {"lambda:InvokeFunction"}
    invokers = [name for name, logical_id in ids.items() if name != "document_preview" and "lambda:InvokeFunction" in
                actions_on(role_statements(synth, synth.resources[logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]),
                           ids["document_preview"])]
    assert invokers == ["api"]
