"""The daily ECB rates copy: fx_rates_fetch, its business-day schedule and who may read the copy."""
# ruff: noqa: F811 (the tests take the imported `synth` fixture as their argument)

from __future__ import annotations

import json

import pytest

from stacks.constructs.reference import RATES_KEY, SCHEDULE_EXPRESSION, SCHEDULE_TIMEZONE
from tests.infrastructure.test_billing_stack import (  # noqa: F401 (synth is the module's fixture)
    Synthesized,
    actions_on,
    function_ids,
    role_statements,
    synth,
)

pytestmark = pytest.mark.infra


def test_the_schedule_invokes_the_fetch_on_business_days_after_publication(synth: Synthesized) -> None:
    schedule = synth.resources[synth.id_of("Reference/DailyExchangeRates")]["Properties"]
    assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == (
        SCHEDULE_EXPRESSION, SCHEDULE_TIMEZONE)
    fetch = function_ids(synth)["fx_rates_fetch"]
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": [fetch, "Arn"]}
    assert json.loads(schedule["Target"]["Input"]) == {"source": "schedule"}
    role = schedule["Target"]["RoleArn"]["Fn::GetAtt"][0]
    assert actions_on(role_statements(synth, role), fetch) == {"lambda:InvokeFunction"}


def test_only_the_fetch_writes_the_rates_and_invoicing_functions_read_them(synth: Synthesized) -> None:
    exports = synth.id_of("Documents/ExportsBucket")
    ids = function_ids(synth)
    for name, expected in (("fx_rates_fetch", {"s3:PutObject"}), ("api", {"s3:GetObject"}),
                           ("billrun_invoice_account", {"s3:GetObject"})):
        role = synth.resources[ids[name]]["Properties"]["Role"]["Fn::GetAtt"][0]
        statements = [s for s in role_statements(synth, role) if RATES_KEY in json.dumps(s["Resource"])]
        assert {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])} \
            >= expected, name
        assert exports in json.dumps(statements)
