"""Seed 000 UC01 (start a monthly Managed Service plan) and UC02 (terminate it), over HTTP.

Given the local platform at 2025-03-01 00:00 UTC, when contracts are configured through the
REST API and the local clock moves past the daily 02:00 bill run, then the invoices, PDFs,
emails, audit log and events are what a Managed Service customer and Finance expect.
"""

from __future__ import annotations

import email
import functools
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.conftest import key_for
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


def customer(api, ref: str, **extra) -> dict:
    body = {"name": f"{ref} Corp", "email": f"ap@{ref.lower()}.example", "external_id": ref,
            "country": "US", "region": "US-CA", "currency": "USD",
            "address_lines": ["1 Market Street", "San Francisco, CA 94105"]} | extra
    return api.ok(api.post("/customers", body))


def contract(api, customer_ref: str, contract_id: str, price: str, plan="managed-service", **extra) -> dict:
    charge = "ms-fee" if plan == "managed-service" else "esp-fee"
    return api.ok(api.post("/subscriptions", {"customer_id": customer_ref, "plan_code": plan,
                                              "external_id": contract_id, "start_date": "2025-03-01",
                                              "price_overrides": {charge: price}} | extra))


def invoices_of(api, customer_ref: str) -> list[dict]:
    cus = api.ok(api.get(f"/customers/{customer_ref}"))
    return api.ok(api.get("/invoices", customer_id=cus["id"], limit=100))["data"]


@pytest.fixture(scope="module")
def book(api):
    for code, name, charge, gl in [("managed-service", "Managed Service", "ms-fee", "7005"),
                                   ("enterprise-support", "Enterprise Support Plan", "esp-fee", "7010")]:
        api.ok(api.post("/plans", {"code": code, "name": name, "currency": "USD", "charges": [
            {"code": charge, "name": name.removesuffix(" Plan"), "price": "0.00", "gl_code": gl}]}))
    customer(api, "ACME")
    customer(api, "GLOBEX", cc_emails=["finance@globex.example"])
    contract(api, "ACME", "MS-2025-001", "1250.00")
    contract(api, "GLOBEX", "ESP-2025-007", "3400.00", plan="enterprise-support")
    contract(api, "GLOBEX", "MS-2025-014", "780.00")
    return api


def test_uc01_first_invoice_lists_the_managed_service_with_its_contract(platform, book):
    api = book
    fired = platform.advance_clock("2025-03-01T03:00:00Z")
    assert [f["status"] for f in fired if "DailyBillRun" in f["schedule"]] == ["SUCCEEDED"]  # 02:00 UTC
    assert {f["status"] for f in fired} == {"SUCCEEDED"}  # and the 01:00 contract calendar
    (invoice,) = invoices_of(api, "ACME")
    assert api.ok(api.get("/invoices", customer_id="ACME"))["data"] == [invoice]  # by contract-side id too
    assert invoice["status"] == "finalized" and invoice["number"].startswith("INV-")
    assert (invoice["issue_date"], invoice["due_date"], invoice["currency"]) == ("2025-03-01", "2025-03-31", "USD")
    (line,) = invoice["lines"]
    assert line | {"subscription_id": None} == line | {
        "description": "Managed Service", "external_id": "MS-2025-001", "gl_code": "7005",
        "period_start": "2025-03-01", "period_end": "2025-04-01", "unit_price": "1250.00",
        "quantity": "1", "amount": "1250.00", "subscription_id": None}
    assert (invoice["subtotal"], invoice["total"], invoice["amount_due"]) == ("1250.00",) * 3

    pdf = api.get(f"/invoices/{invoice['id']}/pdf")
    assert pdf.status == 200 and pdf.body.startswith(b"%PDF")
    assert pdf.headers["Content-Type"] == "application/pdf"


def test_uc01_consolidates_a_customers_contracts_and_emails_the_pdf(platform, book):
    (invoice,) = invoices_of(book, "GLOBEX")
    assert {(line["external_id"], line["gl_code"], line["amount"]) for line in invoice["lines"]} == {
        ("ESP-2025-007", "7010", "3400.00"), ("MS-2025-014", "7005", "780.00")}
    assert invoice["total"] == "4180.00"
    sent = [email.message_from_bytes(raw, policy=policy.default) for raw in platform.sent_emails()]
    to_globex = [m for m in sent if m["To"] == "ap@globex.example"]
    assert len(to_globex) == 1 and to_globex[0]["Cc"] == "finance@globex.example"
    (attachment,) = list(to_globex[0].iter_attachments())
    assert attachment.get_filename() == f"{invoice['number']}.pdf"
    assert attachment.get_content().startswith(b"%PDF")


def test_the_same_bill_run_started_again_issues_nothing_twice(platform, book):
    before = book.ok(book.get("/invoices", limit=100))["data"]
    with ThreadPoolExecutor(2) as pool:  # and concurrently
        runs = list(pool.map(lambda _: book.ok(book.post("/bill-runs", {"as_of": "2025-03-01"})), range(2)))
    for run in runs:
        final = wait_status(platform, book, run["id"])
        assert (final["status"], final["invoices"]) == ("succeeded", 0)
    assert book.ok(book.get("/invoices", limit=100))["data"] == before
    numbers = sorted(int(i["number"].split("-")[-1]) for i in before)
    assert numbers == list(range(1, len(before) + 1))  # gapless


def wait_status(platform, api, run_id: str) -> dict:
    def finished():
        run = api.ok(api.get(f"/bill-runs/{run_id}"))
        return run if run["status"] not in ("pending", "running") else None

    return wait_for(finished, what=f"bill run {run_id} finished")


def test_uc02_termination_makes_the_current_month_the_last_billed(platform, book):
    api = book
    platform.advance_clock("2025-03-15T10:00:00Z")
    sub = api.ok(api.post("/subscriptions/MS-2025-014/terminate",
                          {"effective": "end_of_period", "reason": "moved to partner billing"}))
    assert sub["status"] == "pending_termination"
    assert sub["termination"]["service_end"] == "2025-04-01"
    again = api.post("/subscriptions/MS-2025-014/terminate", {"effective": "end_of_period"})
    assert again.status == 409 and again.json()["error"]["code"] == "already_ending"

    platform.advance_clock("2025-04-01T03:00:00Z")
    april = [i for i in invoices_of(api, "GLOBEX") if i["issue_date"] == "2025-04-01"]
    assert [line["external_id"] for i in april for line in i["lines"]] == ["ESP-2025-007"]
    assert api.ok(api.get("/subscriptions/MS-2025-014"))["status"] == "terminated"

    audit = api.ok(api.get("/audit-events", object_id=sub["id"]))["data"]
    assert [e["action"] for e in audit] == ["subscription.terminated", "subscription.termination_scheduled",
                                           "subscription.created"]
    assert (audit[0]["actor"], audit[0]["occurred_at"][:10]) == ("system:contract-calendar", "2025-04-01")
    assert audit[1]["actor"] == "key:local" and audit[1]["before"]["termination"] is None
    assert audit[1]["after"]["termination"]["reason"] == "moved to partner billing"


def test_uc02_immediate_termination_bills_nothing_more(platform, book):
    api = book
    platform.advance_clock("2025-04-10T00:00:00Z")
    sub = api.ok(api.post("/subscriptions/MS-2025-001/terminate", {"effective": "immediately"}))
    assert sub["status"] == "terminated" and sub["next_bill_date"] is None
    platform.advance_clock("2025-05-01T03:00:00Z")
    assert [i["issue_date"] for i in invoices_of(api, "ACME")] == ["2025-03-01", "2025-04-01"]


def test_a_body_that_is_not_json_is_refused_by_name(api):
    response = api.request("POST", "/customers", headers={"Content-Type": "application/x-www-form-urlencoded"},
                           body={"name": "Form Corp"})
    assert response.status == 415 and response.json()["error"]["param"] == "Content-Type"


def test_roles_limit_what_a_key_may_do(platform, api):
    finance, cre = key_for(api, "finance"), key_for(api, "cre")
    denied = finance.post("/customers", {"name": "X", "email": "x@x.example", "country": "US", "currency": "USD"})
    assert denied.status == 403 and denied.json()["error"]["param"] is None
    assert cre.post("/bill-runs", {}).status == 403
    assert finance.get("/invoices").status == 200
    assert api.request("GET", "/invoices", headers={"Authorization": "Bearer nope"}).status == 401


def test_bad_input_names_the_field_and_writes_nothing(api):
    before = api.ok(api.get("/customers", limit=100))["data"]
    cases = [({"name": "X", "email": "x@x.example", "country": "CA", "region": "US-CA", "currency": "CAD"}, "region"),
             ({"name": "X", "email": "x@x.example", "country": "US", "currency": "usd"}, "currency"),
             ({"name": "X", "email": "not-an-email", "country": "US", "currency": "USD"}, "email")]
    for body, field in cases:
        response = api.post("/customers", body)
        assert response.status == 422 and response.json()["error"]["param"] == field, response.body
    bad_price = api.post("/subscriptions", {"customer_id": "ACME", "plan_code": "managed-service",
                                            "price_overrides": {"ms-fee": 12.5}})
    assert bad_price.json()["error"]["param"] == "price_overrides.ms-fee"
    unknown_plan = api.post("/subscriptions", {"customer_id": "ACME", "plan_code": "nope"})
    assert (unknown_plan.status, unknown_plan.json()["error"]["param"]) == (404, "plan_code")
    assert api.request("POST", "/customers", headers={}).status in (400, 422)
    assert api.ok(api.get("/customers", limit=100))["data"] == before


def test_idempotency_key_replays_and_refuses_another_body(api):
    body = {"name": "Idem Corp", "email": "ap@idem.example", "country": "US", "region": "US-NY",
            "currency": "USD"}
    first = api.post("/customers", body, **{"Idempotency-Key": "idem-1"})
    replay = api.post("/customers", body, **{"Idempotency-Key": "idem-1"})
    assert first.status == replay.status == 201 and first.json()["id"] == replay.json()["id"]
    other = api.post("/customers", body | {"name": "Other"}, **{"Idempotency-Key": "idem-1"})
    assert other.status == 409 and other.json()["error"]["param"] == "Idempotency-Key"


def test_pagination_walks_every_customer_once(api):
    seen, cursor = [], None
    while True:
        page = api.ok(api.get("/customers", limit=2, starting_after=cursor))
        seen += [c["id"] for c in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    assert seen == sorted(set(seen)) and len(seen) == len(api.ok(api.get("/customers", limit=100))["data"])


def test_webhooks_receive_signed_events(platform, api):
    received, lock = [], threading.Lock()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            with lock:
                received.append((self.headers["Billing-Signature"],
                                 self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = api.ok(api.post("/webhook-endpoints", {"url": f"http://127.0.0.1:{server.server_port}/hook",
                                                         "events": ["customer.created"]}))
        customer(api, "HOOKED")
        wait_for(lambda: received, what="the webhook delivery")
        from shared.services.webhooks import sign

        signature, body = received[0]
        timestamp = int(signature.split(",")[0].removeprefix("t="))
        assert signature == sign(endpoint["secret"], timestamp, body)
        assert b'"type":"customer.created"' in body and b"HOOKED" in body
    finally:
        server.shutdown()


def test_the_staff_cli_uses_the_same_service_and_validation(platform, api):
    import os

    cli = [sys.executable, "-m", "shared.cli.main"]
    # a staff member's shell: no AWS settings, only where the running platform is
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
             "BILLING_HOME": os.environ["BILLING_HOME"]}
    run = functools.partial(subprocess.run, env=clean, cwd=Path(__file__).resolve().parents[2])
    created = run(cli + ["customers", "create", "--name", "Cli Corp", "--email", "ap@cli.example",
                                    "--country", "US", "--region", "US-OR", "--currency", "USD",
                                    "--external-id", "CLI"],
                             capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    assert api.ok(api.get("/customers/CLI"))["name"] == "Cli Corp"
    refused = run(cli + ["customers", "create", "--name", "Bad", "--email", "ap@bad.example",
                                    "--country", "CA", "--region", "US-CA", "--currency", "CAD"],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and '"param": "region"' in refused.stderr
    audit = api.ok(api.get("/audit-events", action="customer.created", limit=100))["data"]
    assert any(e["actor"].startswith("cli:") for e in audit)
