"""The real CDK app (stacks.app) on the local runtime: everything it declares is wired."""

from __future__ import annotations

import importlib

import pytest
import requests

from shared.local.runtime import LocalRuntime

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def platform():
    runtime = LocalRuntime(clock="2025-04-01T00:00:00Z", api_key="sk_local_stack",
                           time_scale=0.01).start()
    try:
        yield runtime
    finally:
        runtime.stop()


def test_every_function_of_the_stack_dispatches_to_an_importable_handler(platform):
    functions = platform.deployment.of_type("AWS::Lambda::Function")
    assert len(functions) >= 7
    for fn in functions:
        handler = fn.properties.get("Handler") or fn.properties["ImageConfig"]["Command"][0]
        module, _, name = handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), handler


def test_the_contract_environment_and_the_schedule(platform):
    env = platform.env
    for key in ("BILLING_TABLE", "COUNTERS_TABLE", "IDEMPOTENCY_TABLE", "DOCUMENTS_BUCKET",
                "EXPORTS_BUCKET", "EVENT_BUS_NAME", "BILL_RUN_STATE_MACHINE_ARN"):
        assert env.get(key), key
    platform.clients("stepfunctions").describe_state_machine(
        stateMachineArn=env["BILL_RUN_STATE_MACHINE_ARN"])
    schedules = platform.clients("scheduler").list_schedules()["Schedules"]
    assert any("DailyBillRun" in s["Name"] for s in schedules)
    assert platform.clients("ses").list_identities()["Identities"]  # MAIL_FROM is verified


def test_the_api_answers_with_the_registered_local_key(platform):
    headers = {"Authorization": f"Bearer {platform.api_key}"}
    assert requests.get(f"{platform.api_url}/customers", headers=headers).status_code == 200
    assert requests.get(f"{platform.api_url}/customers").status_code == 401
