"""Issue 7 over HTTP: an annual Enterprise Support contract (seed 000 UC03/UC04, GL 7010) activated
mid-year on the local platform, its clock moved across 14 months day by day (every step fires the
daily bill run and the daily finance schedule).

Given 12,000.00 a year in advance from 2025-07-15, ratable by day over the 365 days of
[2025-07-15, 2026-07-15): each month recognizes 12,000 x its days / 365, rounded half up to the
cent, July 2026 taking the remainder (17 days: 558.90, 31 days: 1,019.18, 30 days: 986.30,
28 days: 920.55, the last 14 days: 460.27; the thirteen add up to 12,000.00).
The exports land on each month's first business day in the United States (federal holidays of
https://www.opm.gov/policy-data-oversight/pay-leave/federal-holidays/): the August file on
Tuesday 2025-09-02 (Monday is Labor Day), December's on 2026-01-02 (New Year's Day), weekends
skipped (2025-11-03, 2026-02-02, 2026-03-02, 2026-08-03).
Terminated at the end of its period (the renewal, 2026-07-15), the contract is not billed again
and after July 2026 its rows stop (UC04).
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest

from shared.cli.client import ApiClient
from shared.local.runtime import LocalRuntime
from tests.e2e.conftest import key_for
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

CONTRACT = "ESP-2025-0715"
RECOGNIZED = {  # month -> (days of service in it, recognized)
    "2025-07": (17, "558.90"), "2025-08": (31, "1019.18"), "2025-09": (30, "986.30"), "2025-10": (31, "1019.18"),
    "2025-11": (30, "986.30"), "2025-12": (31, "1019.18"), "2026-01": (31, "1019.18"), "2026-02": (28, "920.55"),
    "2026-03": (31, "1019.18"), "2026-04": (30, "986.30"), "2026-05": (31, "1019.18"), "2026-06": (30, "986.30"),
    "2026-07": (14, "460.27"),
}
EXPORT_DAYS = {  # month exported -> the first business day of the next month (US)
    "2025-07": date(2025, 8, 1), "2025-08": date(2025, 9, 2), "2025-09": date(2025, 10, 1),
    "2025-10": date(2025, 11, 3), "2025-11": date(2025, 12, 1), "2025-12": date(2026, 1, 2),
    "2026-01": date(2026, 2, 2), "2026-02": date(2026, 3, 2), "2026-03": date(2026, 4, 1),
    "2026-04": date(2026, 5, 1), "2026-05": date(2026, 6, 1), "2026-06": date(2026, 7, 1),
    "2026-07": date(2026, 8, 3), "2026-08": date(2026, 9, 1), "2026-09": date(2026, 10, 1),
}
FILES = {"recognized_revenue.csv", "recognized_revenue_annual_prepay.csv", "deferred_revenue_rollforward.csv",
         "gl_journal.csv", "invoice_register.csv"}


@pytest.fixture(scope="module")
def platform():
    runtime = LocalRuntime(clock="2025-07-15T00:00:00Z", api_key="sk_local_revenue", time_scale=0.01).start()
    try:
        yield runtime
    finally:
        runtime.stop()


@pytest.fixture(scope="module")
def api(platform) -> ApiClient:
    return ApiClient(platform.api_url, platform.api_key)


@pytest.fixture(scope="module")
def keys(api) -> dict[str, ApiClient]:
    return {role: key_for(api, role) for role in ("cre", "finance")}


@pytest.fixture(scope="module")
def contract(platform, api, keys):
    """UC03: CRE activates the annual plan on 2025-07-15; the 02:00 bill run of 2025-07-16 bills the year."""
    api.ok(api.post("/plans", {"code": "esp-annual", "name": "Enterprise Support Plan", "currency": "USD",
                               "charges": [{"code": "esp-fee", "name": "Enterprise Support", "price": "12000.00",
                                            "billing_period": "annual", "timing": "in_advance", "gl_code": "7010"}]}))
    api.ok(api.post("/plans", {"code": "ms-monthly", "name": "Managed Service", "currency": "USD",
                               "charges": [{"code": "ms-fee", "name": "Managed Service", "price": "1250.00",
                                            "gl_code": "7005"}]}))
    for ref in ("ACME", "GLOBEX"):
        api.ok(api.post("/customers", {"name": f"{ref.title()} Corp", "email": f"ap@{ref.lower()}.example",
                                       "external_id": ref, "country": "US", "region": "US-CA", "currency": "USD"}))
    cre = keys["cre"]
    sub = cre.ok(cre.post("/subscriptions", {"customer_id": "ACME", "plan_code": "esp-annual",
                                             "external_id": CONTRACT, "start_date": "2025-07-15"}))
    cre.ok(cre.post("/subscriptions", {"customer_id": "GLOBEX", "plan_code": "ms-monthly",
                                       "external_id": "MS-2025-0801", "start_date": "2025-08-01"}))
    platform.advance_clock("2025-07-15T03:00:00Z")
    return sub


def schedules_of(api: ApiClient, contract_id: str) -> list[dict]:
    # invoice.finalized reaches revenue_schedules asynchronously, as on AWS
    return wait_for(lambda: api.ok(api.get("/revenue-schedules", subscription_id=contract_id))["data"],
                    what=f"a revenue schedule for {contract_id}")


def exports_of(api: ApiClient, month: str) -> list[dict]:
    return api.ok(api.get("/exports", month=month))["data"]


def rows(api: ApiClient, month: str, name: str) -> list[dict]:
    response = api.get(f"/exports/default/{month}/{name}")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.body.decode())))


def walk_to_export(platform, api: ApiClient, month: str) -> dict:
    """Move the clock day by day to the export day of `month`: nothing is exported the evening
    before, the files are there after 06:00 UTC on the day."""
    day = EXPORT_DAYS[month]
    cursor = platform.clock_now().date()
    while cursor < day - timedelta(days=1):
        cursor += timedelta(days=1)
        platform.advance_clock(f"{cursor.isoformat()}T12:00:00Z")
    platform.advance_clock(f"{(day - timedelta(days=1)).isoformat()}T23:00:00Z")
    assert exports_of(api, month) == [], f"{month} exported before {day}"
    platform.advance_clock(f"{day.isoformat()}T07:00:00Z")
    (record,) = exports_of(api, month)
    return record


def test_the_invoice_of_the_year_has_a_schedule_that_sums_to_its_line(platform, api, contract):
    (invoice,) = api.ok(api.get("/invoices", subscription_id=contract["id"]))["data"]
    (line,) = invoice["lines"]
    assert (invoice["issue_date"], line["amount"], line["gl_code"]) == ("2025-07-15", "12000.00", "7010")
    assert (line["period_start"], line["period_end"]) == ("2025-07-15", "2026-07-15")
    (schedule,) = schedules_of(api, CONTRACT)
    assert (schedule["invoice_id"], schedule["line"], schedule["pob_identifier"], schedule["method"]) == (
        invoice["id"], 0, "BK-OT-RATABLE", "ratable")
    assert {e["period"]: e["amount"] for e in schedule["entries"]} == {m: a for m, (_, a) in RECOGNIZED.items()}
    assert sum(Decimal(e["amount"]) for e in schedule["entries"]) == Decimal(line["amount"])
    assert api.ok(api.get("/revenue-schedules", invoice_id=invoice["id"]))["data"] == [schedule]
    missing = api.get("/revenue-schedules")
    assert missing.status == 422 and missing.json()["error"]["param"] == "subscription_id"


def test_each_month_is_exported_on_its_first_business_day_with_the_days_revenue(platform, api, contract):
    for month in list(EXPORT_DAYS)[:8]:  # July 2025 .. February 2026
        record = walk_to_export(platform, api, month)
        assert (record["status"], record["trigger"], record["generated_at"][:10]) == (
            "created", "schedule", EXPORT_DAYS[month].isoformat())
        assert {f["name"] for f in record["files"]} == FILES and record["missing_contracts"] == []
        annual = rows(api, month, "recognized_revenue_annual_prepay.csv")
        assert [(r["external_id"], r["gl_code"], r["pob_identifier"], r["recognized"]) for r in annual] == [
            (CONTRACT, "7010", "BK-OT-RATABLE", RECOGNIZED[month][1])], month
        everyone = {r["external_id"]: r["recognized"] for r in rows(api, month, "recognized_revenue.csv")}
        monthly = {"MS-2025-0801": "1250.00"} if month > "2025-07" else {}  # billed from 2025-08-01
        assert everyone == {CONTRACT: RECOGNIZED[month][1], **monthly}


def test_the_first_month_rolls_the_year_into_deferred_revenue_and_posts_the_journal(api, contract):
    (rollforward,) = rows(api, "2025-07", "deferred_revenue_rollforward.csv")
    assert (rollforward["opening_deferred"], rollforward["billed"], rollforward["recognized"],
            rollforward["closing_deferred"]) == ("0.00", "12000.00", "558.90", "11441.10")
    journal = [(r["account"], r["debit"], r["credit"]) for r in rows(api, "2025-07", "gl_journal.csv")]
    assert journal == [("1200", "12000.00", "0.00"), ("2400", "0.00", "12000.00"),  # invoice to deferred 7010
                       ("2400", "558.90", "0.00"), ("7010", "0.00", "558.90")]  # July's revenue released
    (registered,) = rows(api, "2025-07", "invoice_register.csv")
    assert (registered["external_ids"], registered["total"]) == (CONTRACT, "12000.00")


def test_rerunning_a_month_writes_nothing_twice_and_is_audited(platform, api, keys, contract):
    finance = keys["finance"]
    (first,) = exports_of(api, "2025-08")
    (again,) = finance.ok(finance.post("/exports", {"month": "2025-08", "billing_entity": "default"}))["data"]
    assert (again["status"], again["runs"], again["written"]) == ("rerun", 2, [])
    assert [f["sha256"] for f in again["files"]] == [f["sha256"] for f in first["files"]]
    versions = platform.clients("s3").list_object_versions(
        Bucket=platform.env["EXPORTS_BUCKET"], Prefix="exports/default/2025-08/recognized_revenue.csv")["Versions"]
    assert len(versions) == 1  # byte-identical: not written again
    actions = [e["action"] for e in api.ok(api.get("/audit-events", object_id=again["id"]))["data"]]
    assert actions == ["export.rerun", "export.created"]
    assert keys["cre"].post("/exports", {"month": "2025-08"}).status == 403
    assert finance.post("/exports", {"month": "2099-01"}).json()["error"]["param"] == "month"


def test_analytics_report_the_contracts_mrr_and_receivables(api, contract):
    globex = api.ok(api.get("/customers/GLOBEX"))["id"]
    mrr = api.ok(api.get("/analytics/mrr", month="2025-08"))
    assert {r["customer_id"]: (r["previous_mrr"], r["mrr"], r["movement"]) for r in mrr["data"]} == {
        contract["customer_id"]: ("1000.00", "1000.00", "unchanged"),  # 12,000.00 a year / 12
        globex: ("0.00", "1250.00", "new")}
    (usd,) = mrr["totals"]
    assert (usd["mrr"], usd["arr"], usd["new_mrr"], usd["net_new_mrr"]) == ("2250.00", "27000.00", "1250.00",
                                                                            "1250.00")
    text = api.request("GET", "/analytics/mrr", params={"month": "2025-08"}, headers={"Accept": "text/csv"})
    assert text.headers["Content-Type"].startswith("text/csv")
    assert text.body.decode().splitlines()[0] == "month,customer_id,currency,previous_mrr,mrr,arr,movement,change"
    # On 2025-09-30: the year (due 2025-08-14) 47 days late, August's Managed Service (due 2025-08-31) 30 days
    # late, September's (due 2025-10-01) not due yet; nothing is paid.
    (aging,) = api.ok(api.get("/analytics/ar-aging", as_of="2025-09-30"))["data"]
    assert (aging["current"], aging["1_30"], aging["31_60"], aging["total"]) == (
        "1250.00", "1250.00", "12000.00", "14500.00")
    # DSO of September: 14,500.00 receivable / 1,250.00 invoiced in the month x 30 days
    (dso,) = api.ok(api.get("/analytics/dso", month="2025-09"))["data"]
    assert (dso["receivables"], dso["invoiced"], dso["dso"]) == ("14500.00", "1250.00", "348.00")


def test_uc04_terminated_at_the_renewal_the_rows_stop_after_the_last_paid_month(platform, api, contract):
    platform.advance_clock("2026-03-10T10:00:00Z")
    sub = api.ok(api.post(f"/subscriptions/{CONTRACT}/terminate", {"effective": "end_of_period"}))
    assert (sub["status"], sub["termination"]["service_end"]) == ("pending_termination", "2026-07-15")
    for month in list(EXPORT_DAYS)[8:13]:  # March .. July 2026
        walk_to_export(platform, api, month)
        annual = rows(api, month, "recognized_revenue_annual_prepay.csv")
        assert [(r["external_id"], r["recognized"]) for r in annual] == [(CONTRACT, RECOGNIZED[month][1])], month
    last = walk_to_export(platform, api, "2026-08")
    assert last["missing_contracts"] == []
    assert rows(api, "2026-08", "recognized_revenue_annual_prepay.csv") == []
    assert CONTRACT not in {r["external_id"] for r in rows(api, "2026-08", "recognized_revenue.csv")}
    invoices = api.ok(api.get("/invoices", subscription_id=contract["id"]))["data"]
    assert [i["issue_date"] for i in invoices] == ["2025-07-15"]  # the renewal was not billed
    (schedule,) = schedules_of(api, CONTRACT)
    assert schedule["service_end"] == "2026-07-15"
    assert sum(Decimal(e["amount"]) for e in schedule["entries"]) == Decimal("12000.00")
    assert api.ok(api.get("/subscriptions/ESP-2025-0715"))["status"] == "terminated"


def schedule_of_invoice(api: ApiClient, invoice_id: str, done) -> dict:
    """The invoice's schedule once `done(schedule)` holds (invoice.voided and the credit note's
    invoice.finalized arrive asynchronously, through the outbox)."""
    def changed():
        (schedule,) = api.ok(api.get("/revenue-schedules", invoice_id=invoice_id))["data"]
        return schedule if done(schedule) else None

    return wait_for(changed, what=f"the schedule of {invoice_id} changed")


def test_a_void_and_a_credit_note_reverse_revenue_in_their_month_and_the_files_agree(platform, api, keys, contract):
    """On 2026-09-01 Finance voids Globex's September invoice (issued that morning) and credits 250.00 of
    August's (August is exported: the credit's share of it is caught up in September)."""
    finance = keys["finance"]
    globex = api.ok(api.get("/customers/GLOBEX"))["id"]
    invoices = {i["issue_date"]: i for i in api.ok(api.get("/invoices", customer_id=globex, limit=50))["data"]}
    september, august = invoices["2026-09-01"], invoices["2026-08-01"]
    (august_export,) = exports_of(api, "2026-08")
    api.ok(api.post(f"/invoices/{september['id']}/void", {"reason": "billed twice"}))
    note = api.ok(api.post("/credit-notes", {"invoice_id": august["id"], "reason": "outage credit",
                                             "lines": [{"line": 0, "amount": "250.00"}]}))
    voided = schedule_of_invoice(api, september["id"], lambda s: s.get("voided"))
    assert (voided["voided"], voided["entries"]) == ("2026-09", [])  # issued and voided in September
    credited = schedule_of_invoice(api, august["id"], lambda s: s["credits"])
    assert credited["credits"] == [{"period": "2026-09", "amount": "250.00"}]
    assert {e["period"]: e["amount"] for e in credited["entries"]} == {"2026-08": "1250.00", "2026-09": "-250.00"}

    walk_to_export(platform, api, "2026-09")
    (again,) = finance.ok(finance.post("/exports", {"month": "2026-08", "billing_entity": "default"}))["data"]
    assert again["written"] == [] and [f["sha256"] for f in again["files"]] == [
        f["sha256"] for f in august_export["files"]]  # August stays as written
    register = rows(api, "2026-09", "invoice_register.csv")
    assert [(r["document_type"], r["number"], r["status"], r["subtotal"]) for r in register] == [
        ("invoice", september["number"], "void", "1250.00"), ("void", september["number"], "void", "-1250.00"),
        ("credit_note", note["number"], "finalized", "-250.00")]
    revenue = {r["external_id"]: Decimal(r["recognized"]) for r in rows(api, "2026-09", "recognized_revenue.csv")}
    assert revenue == {"MS-2025-0801": Decimal("-250.00")}
    journal = rows(api, "2026-09", "gl_journal.csv")
    assert sum(Decimal(r["credit"]) - Decimal(r["debit"]) for r in journal
               if r["source"] == "recognition" and r["account"] == "7005") == Decimal("-250.00")
    assert {r["source"] for r in journal} == {"invoice", "void", "credit_note", "recognition"}
    (rollforward,) = rows(api, "2026-09", "deferred_revenue_rollforward.csv")
    assert (rollforward["billed"], rollforward["reversed"], rollforward["recognized"]) == (
        "1250.00", "1500.00", "-250.00")
    assert sum(Decimal(r["subtotal"]) for r in register) == Decimal("1250.00") - Decimal("1500.00")
    assert Decimal(rollforward["opening_deferred"]) + 1250 - 1500 + 250 == Decimal(rollforward["closing_deferred"])
