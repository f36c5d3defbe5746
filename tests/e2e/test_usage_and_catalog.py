"""Issue 3 over HTTP: metrics, usage ingestion, a bundle with included usage, ramps, a coupon,
a commitment, late usage, plan versions and previews, with the local clock moving month by month.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.conftest import key_for

pytestmark = pytest.mark.e2e

PLAN = {
    "code": "api-pro", "name": "API Pro", "currency": "USD",
    "commitment": {"amount": "25.00"},
    "charges": [
        {"code": "platform", "name": "Platform", "price": "100.00", "gl_code": "7005",
         "segments": [{"months": 1, "price": "50.00"}, {"price": "100.00"}],
         "includes": {"api_calls": "1000"}},
        {"code": "calls", "name": "API calls", "type": "usage", "model": "tiered", "metric_code": "api_calls",
         "timing": "in_arrears",
         "tiers": [{"up_to": "10000", "unit_price": "0.01"}, {"up_to": None, "unit_price": "0.005"}]},
        {"code": "voice", "name": "Voice minutes", "type": "usage", "model": "per_unit",
         "metric_code": "voice_minutes", "timing": "in_arrears",
         "price_table": {"domestic": "0.02", "intl": "0.10"}},
    ],
}


def calls(tx: str, when: str, quantity: str, sub: str = "API-2025-001") -> dict:
    return {"transaction_id": tx, "external_subscription_id": sub, "metric_code": "api_calls",
            "timestamp": when, "properties": {"quantity": quantity}}


def voice(tx: str, when: str, minutes: str, zone: str) -> dict:
    return {"transaction_id": tx, "external_subscription_id": "API-2025-001", "metric_code": "voice_minutes",
            "timestamp": when, "properties": {"minutes": minutes, "zone": zone}}


def lines_by(invoice: dict) -> dict:
    return {(ln["charge_code"], ln.get("group"), ln["kind"], ln["quantity"]): ln["amount"] for ln in invoice["lines"]}


def invoices_of(api, sub_ref: str) -> list[dict]:
    sub = api.ok(api.get(f"/subscriptions/{sub_ref}"))
    return api.ok(api.get("/invoices", subscription_id=sub["id"], limit=100))["data"]


@pytest.fixture(scope="module")
def book(api):
    api.ok(api.post("/metrics", {"code": "api_calls", "name": "API calls", "aggregation": "sum",
                                 "field": "quantity"}))
    api.ok(api.post("/metrics", {"code": "voice_minutes", "name": "Voice minutes", "aggregation": "sum",
                                 "field": "minutes", "group_by": "zone"}))
    api.ok(api.post("/plans", PLAN))
    api.ok(api.post("/coupons", {"code": "WELCOME10", "name": "Welcome", "percent_off": "10",
                                 "duration": "repeating", "duration_in_cycles": 2, "max_redemptions": 1}))
    api.ok(api.post("/customers", {"name": "Initech", "email": "ap@initech.example", "external_id": "INITECH",
                                   "country": "US", "region": "US-TX", "currency": "USD"}))
    api.ok(api.post("/subscriptions", {"customer_id": "INITECH", "plan_code": "api-pro",
                                       "external_id": "API-2025-001", "start_date": "2025-03-01",
                                       "coupons": ["WELCOME10"]}))
    return api


def test_a_plan_with_a_misconfigured_charge_names_the_field(book):
    bad = {**PLAN, "code": "bad", "charges": [{**PLAN["charges"][1], "tiers": [
        {"up_to": "100", "unit_price": "1"}, {"up_to": "50", "unit_price": "1"}]}]}
    response = book.post("/plans", bad)
    assert response.status == 422 and "charges[0].tiers" in response.json()["error"]["param"] + \
        response.json()["error"]["message"]
    missing = {**PLAN, "code": "bad2", "charges": [{**PLAN["charges"][1], "metric_code": "nope"}]}
    response = book.post("/plans", missing)
    assert response.status == 422 and response.json()["error"]["param"] == "charges[0].metric_code"


def test_a_coupon_with_one_redemption_cannot_be_redeemed_twice(book):
    book.ok(book.post("/customers", {"name": "Hooli", "email": "ap@hooli.example", "external_id": "HOOLI",
                                     "country": "US", "region": "US-CA", "currency": "USD"}))
    response = book.post("/subscriptions", {"customer_id": "HOOLI", "plan_code": "api-pro",
                                            "start_date": "2025-03-01", "coupons": ["WELCOME10"]})
    assert response.status == 409 and response.json()["error"]["code"] == "coupon_exhausted"
    assert response.json()["error"]["param"] == "coupons[0]"


def test_march_invoice_bills_the_first_price_segment_with_the_coupon(platform, book):
    platform.advance_clock("2025-03-01T03:00:00Z")
    (march,) = invoices_of(book, "API-2025-001")
    assert lines_by(march) == {("platform", None, "recurring", "1"): "50.00",
                               ("coupon:WELCOME10", None, "discount", "1"): "-5.00"}
    assert march["total"] == "45.00"


def test_usage_is_stored_once_and_bad_events_name_their_field(platform, book):
    platform.advance_clock("2025-03-20T00:00:00Z")
    first = book.ok(book.post("/usage-events", {"events": [
        calls("c-1", "2025-03-02T10:00:00Z", "500"),
        calls("c-2", "2025-03-10T10:00:00Z", "700"),
        calls("c-1", "2025-03-02T10:00:00Z", "500"),  # repeated in the batch
        {**calls("c-bad", "2025-03-11T10:00:00Z", "1"), "properties": {}},
        calls("c-old", "2025-02-11T10:00:00Z", "1"),
        voice("v-1", "2025-03-05T09:00:00Z", "100", "domestic"),
        voice("v-2", "2025-03-06T09:00:00Z", "30", "intl"),
    ]}))
    assert (first["accepted"], first["duplicates"], first["late"]) == (4, 1, 0)
    assert [(r["index"], r["param"]) for r in first["rejected"]] == [
        (3, "events[3].properties.quantity"), (4, "events[4].timestamp")]
    again = book.ok(book.post("/usage-events", {"events": [calls("c-1", "2025-03-02T10:00:00Z", "500"),
                                                           calls("c-3", "2025-03-15T10:00:00Z", "1300")]}))
    assert (again["accepted"], again["duplicates"]) == (1, 1)
    allowance = book.ok(book.get("/subscriptions/API-2025-001/allowances"))["data"]
    calls_row = next(r for r in allowance if r["charge_code"] == "calls")
    assert (calls_row["included"], calls_row["used"], calls_row["remaining"]) == ("1000", "2500", "0")


def test_preview_of_a_stored_subscription_is_the_invoice_the_bill_run_issues(platform, book):
    preview = book.ok(book.post("/invoices/preview", {"subscription_id": "API-2025-001", "as_of": "2025-04-01"}))
    platform.advance_clock("2025-04-01T03:00:00Z")
    april = invoices_of(book, "API-2025-001")[-1]
    assert lines_by(april) == lines_by(preview)
    assert (april["total"], preview["total"]) == ("115.00", "115.00")
    assert lines_by(april) == {
        ("platform", None, "recurring", "1"): "100.00",  # second segment
        ("calls", None, "usage", "1000"): "0.00",  # included in the platform bundle
        ("calls", None, "usage", "1500"): "15.00",
        ("voice", "domestic", "usage", "100"): "2.00",
        ("voice", "intl", "usage", "30"): "3.00",
        ("commitment", None, "commitment", "1"): "5.00",  # 25.00 minimum, 20.00 used
        ("coupon:WELCOME10", None, "discount", "1"): "-10.00",  # cycle 2 of 2
    }
    check = book.ok(book.get(f"/invoices/{april['id']}/usage-check"))
    assert check["ok"] and check["usage_lines_checked"] == 3  # calls (included + billed), two voice zones


def test_late_usage_goes_to_the_next_invoice_as_a_dated_line(platform, book):
    platform.advance_clock("2025-04-02T00:00:00Z")
    late = book.ok(book.post("/usage-events", {"events": [calls("c-late", "2025-03-20T10:00:00Z", "100")]}))
    assert (late["accepted"], late["late"]) == (1, 1)
    platform.advance_clock("2025-05-01T03:00:00Z")
    may = invoices_of(book, "API-2025-001")[-1]
    (late_line,) = [ln for ln in may["lines"] if ln["kind"] == "late_usage"]
    assert (late_line["quantity"], late_line["amount"]) == ("100", "1.00")
    assert (late_line["period_start"], late_line["period_end"]) == ("2025-03-01", "2025-04-01")
    assert ("coupon:WELCOME10", None, "discount", "1") not in lines_by(may)  # two cycles only
    assert lines_by(may)[("commitment", None, "commitment", "1")] == "25.00"  # no April usage


def test_a_price_change_is_a_new_version_and_old_subscriptions_keep_theirs(platform, book):
    v2 = {k: v for k, v in PLAN.items() if k != "code"}
    v2["charges"] = [{**PLAN["charges"][0], "segments": [], "price": "120.00"}, *PLAN["charges"][1:]]
    created = book.ok(book.post("/plans/api-pro/versions", v2))
    assert created["plan_version"] == 2
    versions = book.ok(book.get("/plans/api-pro/versions"))["data"]
    assert [(v["plan_version"], v["status"]) for v in versions] == [(1, "legacy"), (2, "current")]
    new = book.ok(book.post("/subscriptions", {"customer_id": "INITECH", "plan_code": "api-pro",
                                               "external_id": "API-2025-002", "start_date": "2025-05-01"}))
    assert new["plan_version"] == 2
    cre = key_for(book, "cre")
    moved = cre.ok(cre.post("/subscriptions/API-2025-001/migrate", {"plan_version": 2}))
    assert moved["plan_changes"][0]["effective"] == "2025-06-01"
    bad = cre.post("/subscriptions/API-2025-001/migrate", {"plan_version": 2, "effective": "2025-06-15"})
    assert bad.status == 422 and bad.json()["error"]["param"] == "effective"
    platform.advance_clock("2025-06-01T03:00:00Z")
    june = invoices_of(book, "API-2025-001")[-1]
    assert lines_by(june)[("platform", None, "recurring", "1")] == "120.00"


def test_inline_preview_prices_a_quote_and_stores_nothing(book):
    before = book.ok(book.get("/invoices", limit=100))["data"]
    quote = book.ok(book.post("/invoices/preview", {
        "customer": {"country": "CA", "region": "CA-QC", "customer_type": "business", "currency": "CAD"},
        "billing_entity": {"country": "CA", "tax_registrations": {"CA": "123456789RT0001"}},
        "metrics": [{"code": "units", "name": "Units", "aggregation": "sum", "field": "quantity"}],
        "plan": {"code": "api", "name": "API", "currency": "CAD", "charges": [
            {"code": "calls", "name": "Calls", "type": "usage", "model": "tiered", "metric_code": "units",
             "billing_period": "month", "timing": "in_arrears",
             "tiers": [{"up_to": "100", "unit_price": "0"}, {"up_to": None, "unit_price": "2.00"}]}]},
        "subscription": {"start_date": "2025-01-01"},
        "usage": [{"transaction_id": "t-1", "metric_code": "units", "timestamp": "2025-01-10T12:00:00Z",
                   "properties": {"quantity": "130"}}],
        "period_start": "2025-01-01"}))
    (line,) = quote["lines"]
    assert (line["charge_code"], line["quantity"], line["amount"]) == ("calls", "130", "60.00")
    assert Decimal(quote["subtotal"]) == Decimal("60.00") and quote["number"] is None
    assert book.ok(book.get("/invoices", limit=100))["data"] == before


def test_customer_usage_is_consumed_from_one_time_services_first_and_limits_apply(platform, book):
    """Seed 004 V5-2834 (oldest and shortest one-time service first, termed last) and V5-4180 (limits)."""
    book.ok(book.post("/plans", {"code": "calls-pack", "name": "Calls pack", "currency": "USD", "charges": [
        {"code": "pack", "name": "500 calls pack", "type": "one_time", "price": "20.00",
         "includes": {"api_calls": "500"}},
        {"code": "calls", "name": "API calls", "type": "usage", "model": "per_unit", "price": "0.01",
         "metric_code": "api_calls", "timing": "in_arrears"}]}))
    book.ok(book.post("/customers", {"name": "Wayne", "email": "ap@wayne.example", "external_id": "WAYNE",
                                     "country": "US", "region": "US-NJ", "currency": "USD",
                                     "usage_charge_limit": "5.00", "usage_limits": {"api_calls": "3000"}}))
    for plan, ref in (("calls-pack", "PACK-1"), ("api-pro", "PRO-1")):
        book.ok(book.post("/subscriptions", {"customer_id": "WAYNE", "plan_code": plan, "external_id": ref,
                                             "start_date": "2025-06-01"}))
    platform.advance_clock("2025-06-10T00:00:00Z")
    sent = book.ok(book.post("/usage-events", {"events": [
        {"transaction_id": "w-1", "customer_id": "WAYNE", "metric_code": "api_calls",
         "timestamp": "2025-06-05T00:00:00Z", "properties": {"quantity": "1200"}},
        {"transaction_id": "w-2", "customer_id": "WAYNE", "metric_code": "api_calls",
         "timestamp": "2025-06-06T00:00:00Z", "properties": {"quantity": "1600"}}]}))
    assert (sent["accepted"], sent["rejected"]) == (2, [])

    def quantities(ref):
        sub = book.ok(book.get(f"/subscriptions/{ref}"))
        events = book.ok(book.get("/usage-events", subscription_id=sub["id"], metric_code="api_calls"))["data"]
        return sorted(e["properties"]["quantity"] for e in events)

    assert quantities("PACK-1") == ["500"]  # the one-time pack's 500 first
    assert quantities("PRO-1") == ["1300", "300", "700"]  # then the termed plan's 1,000, then the rest
    over = book.ok(book.post("/usage-events", {"events": [calls("w-3", "2025-06-07T00:00:00Z", "800", "PRO-1")]}))
    assert over["accepted"] == 0 and over["rejected"][0]["param"] == "events[0].properties.quantity"
    assert "usage limit of 3000" in over["rejected"][0]["message"]

    platform.advance_clock("2025-07-01T03:00:00Z")
    wayne = book.ok(book.get("/invoices", customer_id="WAYNE", limit=10))["data"][-1]
    usage = [ln for ln in wayne["lines"] if ln["kind"] == "usage" and ln["amount"] != "0.00"]
    assert [(ln["quantity"], ln["amount"]) for ln in usage] == [("1300", "13.00")]  # 2,300 - 1,000 included
    (cap,) = [ln for ln in wayne["lines"] if ln["charge_code"] == "usage_charge_limit"]
    assert cap["amount"] == "-8.00"  # usage charges 13.00, limit 5.00


def test_an_add_on_follows_its_base_subscription_and_ends_with_it(platform, book):
    book.ok(book.post("/plans", {"code": "extra-support", "name": "Extra support", "currency": "USD",
                                 "kind": "add_on", "charges": [
                                     {"code": "support", "name": "Extra support", "price": "31.00"}]}))
    alone = book.post("/subscriptions", {"customer_id": "INITECH", "plan_code": "extra-support"})
    assert alone.status == 422 and alone.json()["error"]["param"] == "parent_subscription_id"
    add_on = book.ok(book.post("/subscriptions", {"customer_id": "INITECH", "plan_code": "extra-support",
                                                  "external_id": "ADD-1", "start_date": "2025-07-10",
                                                  "parent_subscription_id": "API-2025-002"}))
    assert add_on["billing_day"] == 1 and add_on["parent_id"].startswith("sub_")
    platform.advance_clock("2025-07-11T03:00:00Z")
    (line,) = [ln for inv in invoices_of(book, "ADD-1") for ln in inv["lines"]]
    assert (line["amount"], line["period_start"]) == ("22.00", "2025-07-10")  # 22/31 days of July
    book.ok(book.post("/subscriptions/API-2025-002/terminate", {"effective": "end_of_period"}))
    ended = book.ok(book.get("/subscriptions/ADD-1"))
    assert ended["termination"]["service_end"] == "2025-08-01" and ended["status"] == "pending_termination"


def test_a_subscription_exports_as_a_seed_002_design_that_the_check_reads(book):
    design = book.ok(book.get("/subscriptions/API-2025-002/design"))
    charges = [c["name"] for plan in design["rate_plans"] for c in plan["charges"]]
    assert "Platform" in charges and {m["pob_identifier"] for m in design["charge_pob_map"]} <= {
        "BK-OT-RATABLE", "BL-PIT-CONSUMP-PAYGO", "BL-OT-INVRATABLE", "EVT-PIT-CONSUMP-USAGE"}
    checked = book.ok(book.post("/designs/check", {"design": design}))
    assert checked["violations"] == [] and checked["valid"] is True
