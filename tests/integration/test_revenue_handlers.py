"""`revenue_schedules` and `finance_exports` invoked through the local runtime's Lambda dispatch on their
`events/` samples (DynamoDB, S3 and SES in moto), and the api samples of issue 7.

Given the local platform on 2025-09-02 06:30 UTC (the first business day after Labor Day) and an annual
Enterprise Support contract from 2025-07-15 billed 12,000.00 (an invoice dated 2025-07-15)."""

from __future__ import annotations

import csv
import email
import io
import json
from datetime import date, datetime, time
from decimal import Decimal
from email import policy
from pathlib import Path

import pytest

from shared.local.runtime import LocalRuntime
from tests.integration.samples import load_sample
from tests.waiting import wait_for

KEY = "sk_local_revenue_integration"


def sample(name: str, **replace: str) -> dict:
    return load_sample(name, KEY, **replace)


@pytest.fixture(scope="module")
def runtime():
    rt = LocalRuntime(clock="2025-09-02T06:30:00Z", api_key=KEY, port=None, time_scale=0.01).start()
    try:
        yield rt
    finally:
        rt.stop()


@pytest.fixture(scope="module")
def book(runtime):
    from shared.services import billing
    from shared.services.catalog import create_customer, create_plan
    from shared.services.context import Actor
    from shared.services.requests.catalog import CustomerCreate, PlanCreate
    from shared.services.requests.contracts import SubscriptionCreate
    from shared.services.subscriptions import create_subscription
    from shared.services.wiring import build_ports

    ports, actor = build_ports(), Actor("test", "admin")
    create_plan(ports, actor, PlanCreate(code="esp-annual", name="Enterprise Support Plan", currency="USD", charges=[
        {"code": "esp-fee", "name": "Enterprise Support", "price": "12000.00", "billing_period": "annual",
         "gl_code": "7010"}]))
    create_plan(ports, actor, PlanCreate(code="ms", name="Managed Service", currency="USD", charges=[
        {"code": "ms-fee", "name": "Managed Service", "price": "1250.00", "gl_code": "7005"}]))
    acme = create_customer(ports, actor, CustomerCreate(name="Acme", email="ap@acme.example", country="US",
                                                        region="US-CA", currency="USD"))
    globex = create_customer(ports, actor, CustomerCreate(name="Globex", email="ap@globex.example", country="US",
                                                          region="US-NY", currency="USD"))
    esp = create_subscription(ports, actor, SubscriptionCreate(customer_id=acme.id, plan_code="esp-annual",
                                                               external_id="ESP-2025-0715",
                                                               start_date=date(2025, 7, 15)))
    invoice = billing.invoice_account(issued_on(ports, date(2025, 7, 15)), actor, acme.id, date(2025, 7, 15))
    ms = create_subscription(ports, actor, SubscriptionCreate(customer_id=globex.id, plan_code="ms",
                                                              external_id="MS-2025-0801", start_date=date(2025, 8, 1)))
    return {"ports": ports, "actor": actor, "esp": esp, "ms": ms, "invoice": invoice, "globex": globex}


def test_invoice_finalized_stores_the_schedule_once(runtime, book):
    event = sample("eventbridge/invoice_finalized.json", inv_sample=book["invoice"].id)
    first = runtime.invoke("revenue_schedules", event)
    assert first["invoice_id"] == book["invoice"].id and len(first["schedules"]) == 1
    assert runtime.invoke("revenue_schedules", event) == first  # redelivered: nothing changes
    status, page = api(runtime, "api/list_revenue_schedules.json")
    (schedule,) = page["data"]
    assert status == 200 and schedule["id"] == first["schedules"][0]
    entries = {e["period"]: e["amount"] for e in schedule["entries"]}
    assert (entries["2025-07"], entries["2025-08"], entries["2026-07"]) == ("558.90", "1019.18", "460.27")
    audit = book["ports"].repo.list_audit(10, None, object_id=book["invoice"].id)[0]
    assert [e.action for e in audit].count("revenue_schedules.created") == 1


def test_a_scheduled_termination_at_the_renewal_changes_nothing_an_earlier_one_catches_up(runtime, book):
    at_renewal = sample("eventbridge/subscription_termination_scheduled.json", sub_sample=book["esp"].id)
    assert runtime.invoke("revenue_schedules", at_renewal) == {"subscription_id": book["esp"].id, "schedules": []}
    # Service ending 2025-09-10, decided 2026-03-10 (the sample's time): months before March 2026 stay,
    # March takes the rest (revrec.terminate_schedule).
    earlier = sample("eventbridge/subscription_termination_scheduled.json", sub_sample=book["esp"].id,
                     **{'"service_end": "2026-07-15"': '"service_end": "2025-09-10"'})
    copy = json.loads(json.dumps(earlier))
    result = runtime.invoke("revenue_schedules", copy)
    assert len(result["schedules"]) == 1
    _, page = api(runtime, "api/list_revenue_schedules.json")
    entries = {e["period"]: e["amount"] for e in page["data"][0]["entries"]}
    assert entries["2026-02"] == "920.55" and "2026-04" not in entries
    assert entries["2026-03"] == "4471.23"  # March to July 2026: 1,019.18 + 986.30 + 1,019.18 + 986.30 + 460.27
    assert sum(Decimal(a) for a in entries.values()) == Decimal("12000.00")
    assert runtime.invoke("revenue_schedules", copy) == {"subscription_id": book["esp"].id, "schedules": []}
    ended = json.loads(json.dumps(at_renewal))  # the calendar's deactivation of a contract at its end date
    ended["detail"]["type"] = "subscription.terminated"
    ended["detail"]["data"]["subscription"]["termination"] = None
    assert runtime.invoke("revenue_schedules", ended) == {"subscription_id": book["esp"].id, "schedules": []}


def test_the_daily_schedule_exports_august_once_on_the_first_business_day(runtime, book):
    result = runtime.invoke("finance_exports", sample("scheduler/finance_exports.json"))
    (written,) = result["exports"]
    assert (written["month"], written["status"], len(written["written"])) == ("2025-08", "created", 5)
    assert runtime.invoke("finance_exports", sample("scheduler/finance_exports.json"))["exports"] == []
    body = runtime.clients("s3").get_object(Bucket=runtime.env["EXPORTS_BUCKET"],
                                            Key="exports/default/2025-08/recognized_revenue_annual_prepay.csv")
    (row,) = csv.DictReader(io.StringIO(body["Body"].read().decode()))
    assert (row["external_id"], row["gl_code"], row["recognized"]) == ("ESP-2025-0715", "7010", "1019.18")
    before_labor_day = runtime.invoke("finance_exports", {"as_of": "2025-09-01T06:00:00Z", "trigger": "schedule"})
    assert before_labor_day["exports"] == []  # August was due on Tuesday 2 September (Labor Day on the 1st)


def test_a_contract_left_off_the_bill_run_is_reported_to_cre_and_finance(runtime, book):
    result = runtime.invoke("finance_exports", sample("eventbridge/bill_run_completed.json",
                                                      **{"2025-07-15": "2025-08-01"}))
    (missing,) = result["missing_contracts"]
    assert (missing["external_id"], missing["reason"]) == ("MS-2025-0801", "not_invoiced")
    sent = [email.message_from_bytes(raw, policy=policy.default) for raw in runtime.sent_emails()]
    (alert,) = [m for m in sent if "missing from the bill run" in m["Subject"]]
    assert alert["To"] == "cre@example.com, finance@example.com"
    assert "MS-2025-0801" in alert.get_body(("plain",)).get_content()
    clean = runtime.invoke("finance_exports", sample("eventbridge/bill_run_completed.json"))
    assert clean["missing_contracts"] == []  # on 2025-07-15 the annual contract was billed


def test_a_billed_contract_without_schedules_is_missing_from_the_export(runtime, book, monkeypatch):
    from shared.local.events import ASYNC_RETRY_DELAYS
    from shared.services import billing, revenue

    # The invoice's `invoice.finalized` flows through the outbox and EventBridge, but the revenue service
    # fails on it every time: after its retries the event is given up and the contract has no schedules.
    failed, record_invoice = [], revenue.record_invoice

    def failing_for_globex(ports, finance, actor, invoice_id, *args, **kwargs):
        if ports.repo.get_invoice(invoice_id).customer_id == book["globex"].id:
            failed.append(invoice_id)
            raise RuntimeError("revenue service unavailable")
        return record_invoice(ports, finance, actor, invoice_id, *args, **kwargs)

    monkeypatch.setattr(revenue, "record_invoice", failing_for_globex)
    invoice = billing.invoice_account(issued_on(book["ports"], date(2025, 8, 1)), book["actor"],
                                      book["globex"].id, date(2025, 8, 1))
    attempts = len(ASYNC_RETRY_DELAYS) + 1  # Lambda's asynchronous invocation: the first try and its retries
    wait_for(lambda: len(failed) >= attempts, what="every delivery of invoice.finalized to fail")
    monkeypatch.undo()
    assert failed == [invoice.id] * attempts
    status, body = api(runtime, "api/run_export.json")
    (record,) = body["data"]
    assert (status, record["status"], record["runs"], record["written"]) == (201, "rerun", 2, [])
    (missing,) = record["missing_contracts"]
    assert (missing["external_id"], missing["reason"]) == ("MS-2025-0801", "not_in_export")
    # The event arrives late: August is closed (exported), so its revenue lands in September, the first open
    # month; August's files change (a 0.00 row, the register, the journal) and the re-run says so.
    assert [i.id for i in book["ports"].repo.list_invoices(10, None, book["globex"].id)[0]] == [invoice.id]
    runtime.invoke("revenue_schedules", sample("eventbridge/invoice_finalized.json", inv_sample=invoice.id))
    _, page = api(runtime, "api/list_revenue_schedules.json", **{"ESP-2025-0715": "MS-2025-0801"})
    assert [(e["period"], e["amount"]) for e in page["data"][0]["entries"]] == [("2025-09", "1250.00")]
    status, body = api(runtime, "api/run_export.json")
    (record,) = body["data"]
    assert (record["status"], record["runs"], record["missing_contracts"]) == ("replaced", 3, [])
    assert set(record["written"]) == {"recognized_revenue.csv", "deferred_revenue_rollforward.csv", "gl_journal.csv",
                                      "invoice_register.csv"}
    actions = [e.action for e in book["ports"].repo.list_audit(10, None, object_id=record["id"])[0]]
    assert actions == ["export.replaced", "export.rerun", "export.created"]


def test_mrr_as_csv_through_the_api_sample(runtime, book):
    response = runtime.invoke("api", sample("api/mrr_csv.json"))
    assert response["statusCode"] == 200 and response["multiValueHeaders"]["Content-Type"] == ["text/csv"]
    rows = list(csv.DictReader(io.StringIO(response["body"])))
    assert {(r["mrr"], r["movement"]) for r in rows} == {("1000.00", "unchanged"), ("1250.00", "new")}


def issued_on(ports, day: date):
    """The ports as they were on `day`: the book's history is written as it happened (invoices are
    numbered and dated on the day they are issued, never back-dated)."""
    from dataclasses import replace

    from shared.adapters.clock import FixedClock

    return replace(ports, clock=FixedClock(datetime.combine(day, time(6, 0))))


def api(runtime, name: str, **replace) -> tuple[int, dict]:
    response = runtime.invoke("api", sample(name, **replace))
    return response["statusCode"], json.loads(response["body"])


def post(runtime, path: str, body: dict) -> tuple[int, dict]:
    """The run_export.json sample sent to another route with another body."""
    event = sample("api/run_export.json", **{"/v1/exports": path, "v1/exports": path.lstrip("/")})
    event["body"] = json.dumps(body)
    response = runtime.invoke("api", event)
    return response["statusCode"], json.loads(response["body"])


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_a_design_is_checked_like_the_cli_and_a_clean_one_imported(runtime, book):
    from shared.billing.design import parse_design
    from shared.services.revenue import design_violations

    broken = json.loads((FIXTURES / "design_broken.json").read_text())
    status, result = post(runtime, "/v1/designs/check", {"design": broken})
    assert status == 200 and result["valid"] is False
    assert result["violations"] == design_violations(parse_design((FIXTURES / "design_broken.json").read_text()))
    assert {v["rule"] for v in result["violations"]} == {"POB", "DS-006", "DS-009"}
    status, refused = post(runtime, "/v1/designs/import", {"design": broken, "customer_id": book["globex"].id})
    assert (status, refused["error"]["code"]) == (422, "design_violations")
    assert refused["error"]["param"].startswith("design.")

    clean = json.loads((FIXTURES / "design_prepay_drawdown.json").read_text())
    status, created = post(runtime, "/v1/designs/import", {"design": clean, "customer_id": book["globex"].id,
                                                          "plan_code": "ppdd", "external_id": "PPDD-1"})
    assert status == 201, created
    assert created["subscription"]["external_id"] == "PPDD-1" and created["plan"]["code"] == "ppdd"
    assert {c["pob_identifier"] for c in created["plan"]["charges"]} >= {"EVT-PIT-CONSUMP-USAGE"}
    # its usage records (January to March 2026) go through ingestion, which refuses the future: each named
    assert [r["param"] for r in created["usage"]["rejected"]] == [
        f"design.usage[{i}].timestamp" for i in range(len(clean["usage"]))]
    status, again = post(runtime, "/v1/designs/import", {"design": clean, "customer_id": book["globex"].id,
                                                        "plan_code": "ppdd"})
    assert (status, again["error"]["param"]) == (409, "plan_code")


# --- voids and credit notes, delivered at least once and in any order -------------------------------------------


def _monthly_invoice(book, name: str):
    """A Managed Service customer billed 1,250.00 for September 2025 (no event sent: the test sends them)."""
    from shared.services import billing
    from shared.services.catalog import create_customer
    from shared.services.requests.catalog import CustomerCreate
    from shared.services.requests.contracts import SubscriptionCreate
    from shared.services.subscriptions import create_subscription

    ports, actor = book["ports"], book["actor"]
    customer = create_customer(ports, actor, CustomerCreate(name=name, email=f"ap@{name.lower()}.example",
                                                            country="US", region="US-NY", currency="USD"))
    create_subscription(ports, actor, SubscriptionCreate(customer_id=customer.id, plan_code="ms",
                                                         start_date=date(2025, 9, 1)))
    return billing.invoice_account(ports, actor, customer.id, date(2025, 9, 1))


def _schedules(runtime, invoice_id: str) -> list[dict]:
    event = sample("api/list_revenue_schedules.json")
    event["queryStringParameters"] = {"invoice_id": invoice_id}
    event["multiValueQueryStringParameters"] = {"invoice_id": [invoice_id]}
    response = runtime.invoke("api", event)
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])["data"]


def _actions(book, object_id: str) -> list[str]:
    return [e.action for e in book["ports"].repo.list_audit(50, None, object_id=object_id)[0]]


def test_a_void_before_its_invoices_finalized_event_and_every_redelivery_change_things_once(runtime, book):
    from shared.services import invoice_lifecycle
    from shared.services.requests.invoices import StatusChange

    invoice = _monthly_invoice(book, "Initech")
    invoice_lifecycle.void_invoice(book["ports"], book["actor"], invoice.id, StatusChange(reason="wrong account"))
    voided = sample("eventbridge/invoice_voided.json", inv_sample=invoice.id)
    first = runtime.invoke("revenue_schedules", voided)  # the void overtook invoice.finalized
    assert first["invoice_id"] == invoice.id and len(first["voided"]) == 1
    again = json.loads(json.dumps(voided))
    again["detail"]["id"] = "evt_void_redelivered"  # the outbox may publish it again under another id
    assert runtime.invoke("revenue_schedules", voided) == runtime.invoke("revenue_schedules", again) == first
    late = runtime.invoke("revenue_schedules", sample("eventbridge/invoice_finalized.json", inv_sample=invoice.id))
    assert late["schedules"] == first["voided"]
    (schedule,) = _schedules(runtime, invoice.id)
    # issued on September 1 and voided on the 2nd: nothing recognized, nothing deferred, the billing reversed
    assert (schedule["entries"], schedule["voided"]) == ([], "2025-09")
    assert schedule["credits"] == [{"period": "2025-09", "amount": "1250.00"}]
    actions = _actions(book, invoice.id)
    assert (actions.count("revenue_schedules.created"), actions.count("revenue_schedules.voided")) == (1, 1)


def test_a_void_reverses_in_its_month_what_closed_months_recognized_and_they_stay_as_written(runtime, book):
    from shared.services import invoice_lifecycle
    from shared.services.requests.invoices import StatusChange

    invoice_id = book["invoice"].id  # 12,000.00 from 2025-07-15; July and August recognized, August exported
    before = {e["period"]: e["amount"] for e in _schedules(runtime, invoice_id)[0]["entries"]}
    invoice_lifecycle.void_invoice(book["ports"], book["actor"], invoice_id, StatusChange(reason="duplicate"))
    # its `invoice.voided` flows through the outbox to revenue_schedules; a redelivery changes nothing
    wait_for(lambda: "revenue_schedules.voided" in _actions(book, invoice_id), what="invoice.voided processed")
    result = runtime.invoke("revenue_schedules", sample("eventbridge/invoice_voided.json", inv_sample=invoice_id))
    assert len(result["voided"]) == 1 and _actions(book, invoice_id).count("revenue_schedules.voided") == 1
    (schedule,) = _schedules(runtime, invoice_id)
    assert {e["period"]: e["amount"] for e in schedule["entries"]} == {
        "2025-07": before["2025-07"], "2025-08": before["2025-08"], "2025-09": "-1578.08"}  # 558.90 + 1,019.18
    status, body = api(runtime, "api/run_export.json")  # August re-run: its files stay as written
    (record,) = body["data"]
    assert (status, record["month"], record["status"], record["written"]) == (201, "2025-08", "rerun", [])


def test_a_credit_note_before_its_invoices_finalized_event_processes_the_invoice_first(runtime, book):
    from shared.services import invoice_lifecycle
    from shared.services.requests.invoices import CreditNoteCreate

    invoice = _monthly_invoice(book, "Hooli")
    note = invoice_lifecycle.create_credit_note(book["ports"], book["actor"], CreditNoteCreate(
        invoice_id=invoice.id, reason="service credit", lines=[{"line": 0, "amount": "250.00"}]))
    event = sample("eventbridge/invoice_finalized.json", inv_sample=note.id)
    runtime.invoke("revenue_schedules", event)
    runtime.invoke("revenue_schedules", event)  # redelivered
    runtime.invoke("revenue_schedules", sample("eventbridge/invoice_finalized.json", inv_sample=invoice.id))
    (schedule,) = _schedules(runtime, invoice.id)
    assert schedule["credits"] == [{"period": "2025-09", "amount": "250.00"}]
    assert [(e["period"], e["amount"]) for e in schedule["entries"]] == [("2025-09", "1000.00")]
    assert _actions(book, note.id).count("revenue_schedules.credited") == 1
    assert _actions(book, invoice.id).count("revenue_schedules.created") == 1


def test_a_termination_processed_before_its_invoices_event_still_ends_the_schedule(runtime, book):
    from shared.services import billing
    from shared.services.catalog import create_customer
    from shared.services.requests.catalog import CustomerCreate
    from shared.services.requests.contracts import SubscriptionCreate, TerminateRequest
    from shared.services.subscriptions import create_subscription, terminate_subscription

    ports, actor = book["ports"], book["actor"]
    customer = create_customer(ports, actor, CustomerCreate(name="Umbrella", email="ap@umbrella.example",
                                                            country="US", region="US-CA", currency="USD"))
    sub = create_subscription(ports, actor, SubscriptionCreate(customer_id=customer.id, plan_code="esp-annual",
                                                               start_date=date(2025, 9, 1)))
    invoice = billing.invoice_account(ports, actor, customer.id, date(2025, 9, 1))
    terminate_subscription(ports, actor, sub.id, TerminateRequest(effective="immediately"))  # no refund (plan)
    runtime.invoke("revenue_schedules", sample("eventbridge/invoice_finalized.json", inv_sample=invoice.id))
    (schedule,) = _schedules(runtime, invoice.id)
    # service ended on 2025-09-02 with nothing refundable: the year is recognized in September
    assert [(e["period"], e["amount"]) for e in schedule["entries"]] == [("2025-09", "12000.00")]
    assert schedule["service_end"] == "2025-09-02"
