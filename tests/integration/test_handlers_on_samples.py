"""Each function invoked through the local runtime's Lambda dispatch on its `events/` sample."""

from __future__ import annotations

import json

import pytest

from shared.local.runtime import LambdaInvokeError, LocalRuntime
from tests.integration.samples import EVENTS, load_sample

KEY = "sk_local_integration"


def sample(name: str, **replace: str) -> dict:
    return load_sample(name, KEY, **replace)


@pytest.fixture(scope="module")
def runtime():
    rt = LocalRuntime(clock="2025-04-01T00:30:00Z", api_key=KEY, port=None, time_scale=0.01).start()
    try:
        yield rt
    finally:
        rt.stop()


def call_api(runtime, name: str, **replace) -> tuple[int, dict]:
    response = runtime.invoke("api", sample(name, **replace))
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture(scope="module")
def contract(runtime):
    """Given the samples' customer, plan and UC01 contract created through the api function."""
    statuses = [call_api(runtime, f"api/{name}.json")[0]
                for name in ("create_customer", "create_plan_managed_service", "create_subscription_uc01")]
    assert statuses == [201, 201, 201]
    status, customer = call_api(runtime, "api/create_customer.json")  # same Idempotency-Key: replayed
    assert status == 201
    return customer


def test_api_samples_answer_as_documented(runtime, contract):
    status, body = call_api(runtime, "api/bad_customer.json")
    assert (status, body["error"]["param"]) == (422, "region")
    status, page = call_api(runtime, "api/list_invoices.json", **{'"ACME-IOT"': f'"{contract["id"]}"'})
    assert (status, page) == (200, {"data": [], "has_more": False})


def test_bill_run_states_on_their_samples(runtime, contract):
    due = runtime.invoke("billrun_list_due", sample("billrun/list_due_api.json"))
    assert due["accounts"] == [{"customer_id": contract["id"], "bill_run_id": "br_sample", "as_of": "2025-04-01"}]
    task = runtime.invoke("billrun_invoice_account", sample("billrun/invoice_account.json",
                                                            cus_sample=contract["id"]))
    assert task["status"] == "invoiced" and task["finalized_at"].endswith("Z")
    again = runtime.invoke("billrun_invoice_account", sample("billrun/invoice_account.json",
                                                             cus_sample=contract["id"]))
    assert again["invoice_id"] == task["invoice_id"]  # a retried step gets its first invoice back
    rendered = runtime.invoke("invoice_render_pdf", sample("billrun/render_pdf.json",
                                                           cus_sample=contract["id"], inv_sample=task["invoice_id"]))
    assert rendered["pdf_key"].endswith(".pdf")
    delivered = runtime.invoke("invoice_deliver", rendered)
    assert delivered["delivery_status"] == "sent"
    assert runtime.invoke("billrun_invoice_account", sample("billrun/invoice_account.json",
                                                           cus_sample=contract["id"]))["status"] == "nothing_due"
    summary = runtime.invoke("billrun_complete", sample("billrun/complete.json", inv_sample=task["invoice_id"]))
    assert (summary["status"], summary["invoices"], summary["failed"]) == ("completed_with_failures", 1, 1)


def test_a_step_failure_reports_the_error_class_the_state_machine_matches(runtime):
    with pytest.raises(LambdaInvokeError) as failure:
        runtime.invoke("billrun_invoice_account", sample("billrun/invoice_account.json", cus_sample="cus_missing"))
    assert failure.value.payload["errorType"] == "NotFoundError"


def test_webhooks_batch_reports_only_the_failed_record(runtime):
    from shared.services import webhooks
    from shared.services.context import Actor
    from shared.services.wiring import build_ports

    ports = build_ports()
    webhooks.create_endpoint(ports, Actor("test", "admin"), webhooks.WebhookEndpointCreate(
        url="http://127.0.0.1:9/unreachable", events=["subscription.terminated"]))
    result = runtime.invoke("webhooks_dispatch", sample("sqs/webhooks_batch.json"))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}


@pytest.mark.parametrize("path", sorted(p.name for p in (EVENTS / "published").glob("*.json")))
def test_published_samples_share_one_envelope(path):
    event = json.loads((EVENTS / "published" / path).read_text())
    assert set(event) == {"id", "type", "version", "occurred_at", "correlation_id", "actor", "data"}
    assert event["type"] == path.removesuffix(".json")


def test_the_daily_exchange_rates_fetch_leaves_the_local_platform_on_its_snapshot(runtime):
    answer = runtime.invoke("fx_rates_fetch", sample("scheduler/fx_rates_fetch.json"))
    assert answer == {"stored": False, "reason": "local platform: invoices use the packaged ECB snapshot"}
