"""Smoke test of a deployed stack: what only a real account can show.

Runs only when BILLING_SMOKE_STACK names a deployed stack and AWS credentials are present
(never in CI). It creates a throw-away API key, customer, plan and contract, runs a bill
run for today, checks the invoice and its PDF over the real API Gateway, and terminates
the contract.
"""

import os
import time
import uuid

import pytest

STACK = os.environ.get("BILLING_SMOKE_STACK")
pytestmark = pytest.mark.skipif(not STACK, reason="set BILLING_SMOKE_STACK to a deployed stack to run")


@pytest.fixture(scope="module")
def api():
    import boto3

    from shared.cli.client import ApiClient
    from shared.cli.main import connect
    from shared.services import auth
    from shared.services.context import Actor
    from shared.services.requests.access import ApiKeyCreate
    from shared.services.wiring import build_ports

    class Args:
        stack, runtime = STACK, None

    connect(Args)
    outputs = boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
    url = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "ApiUrl").rstrip("/") + "/v1"
    _, key = auth.create_api_key(build_ports(), Actor("smoke:test", "admin"),
                                 ApiKeyCreate(name=f"smoke-{uuid.uuid4().hex[:8]}", role="admin"))
    return ApiClient(url, key)


def test_uc01_and_uc02_on_a_real_account(api):
    tag = uuid.uuid4().hex[:8]
    customer = api.ok(api.post("/customers", {"name": f"Smoke {tag}", "email": "smoke@example.com",
                                              "country": "US", "region": "US-CA", "currency": "USD"}))
    api.ok(api.post("/plans", {"code": f"smoke-{tag}", "name": "Managed Service", "currency": "USD",
                               "charges": [{"code": "ms-fee", "name": "Managed Service", "gl_code": "7005"}]}))
    sub = api.ok(api.post("/subscriptions", {"customer_id": customer["id"], "plan_code": f"smoke-{tag}",
                                             "external_id": f"SMOKE-{tag}", "price_overrides": {"ms-fee": "1.00"}}))
    run = api.ok(api.post("/bill-runs", {}))
    for _ in range(60):
        run = api.ok(api.get(f"/bill-runs/{run['id']}"))
        if run["status"] not in ("pending", "running"):
            break
        time.sleep(5)
    assert run["status"] == "succeeded", run
    invoices = api.ok(api.get("/invoices", customer_id=customer["id"]))["data"]
    assert invoices and invoices[0]["lines"][0]["external_id"] == f"SMOKE-{tag}"
    assert api.get(f"/invoices/{invoices[0]['id']}/pdf").body.startswith(b"%PDF")
    api.ok(api.post(f"/subscriptions/{sub['id']}/terminate", {"effective": "immediately"}))
