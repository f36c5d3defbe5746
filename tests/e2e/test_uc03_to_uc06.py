"""Seed 000 UC03-UC06 and the contract actions of issue 4, over HTTP against the local platform, the
clock moved across a year (the daily 02:00 UTC bill run fires on every day it passes).

UC03: an annual pre-pay contract bills its fee in the renewal month and lists the service at 0 in the
other months. UC04: terminated, its next renewal is not billed. UC05: a termination month chosen at
activation ends the contract on its own. UC06: a 0 USD contract is listed with its name.
"""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def mails_to(platform, address: str) -> list[email.message.Message]:
    found = [email.message_from_bytes(raw) for raw in platform.sent_emails()]
    return [m for m in found if address in (m["To"] or "")]


def invoices_of(api, customer_ref: str) -> list[dict]:
    return sorted(api.ok(api.get("/invoices", customer_id=customer_ref, limit=100))["data"],
                  key=lambda inv: (inv["issue_date"], inv["number"]))


def lines(invoice: dict) -> list[tuple]:
    return [(ln["kind"], ln["description"], ln["amount"], ln["period_start"], ln["period_end"])
            for ln in invoice["lines"]]


@pytest.fixture(scope="module")
def book(api):
    plans = [("esp-annual", "Enterprise Support Plan", "12000.00", "annual", {"show_monthly": True, "gl_code": "7010"}),
             ("ms-listing", "Managed Service", "0.00", "month", {"gl_code": "7005"}),
             ("ms-monthly", "Managed Service", "500.00", "month", {"gl_code": "7005"}),
             ("saas-basic", "Basic", "10.00", "month", {}),
             ("saas-pro", "Pro", "20.00", "month", {})]
    for code, name, price, period, extra in plans:
        api.ok(api.post("/plans", {"code": code, "name": name, "currency": "USD", "rules": {"pause_max_days": 60},
                                   "charges": [{"code": f"{code}-fee", "name": name, "price": price,
                                                "billing_period": period} | extra]}))
    for ref in ("ESPCO", "LISTCO", "SCHEDCO", "CHANGECO"):
        api.ok(api.post("/customers", {"name": f"{ref} Inc", "email": f"ap@{ref.lower()}.example",
                                       "external_id": ref, "country": "US", "region": "US-CA", "currency": "USD"}))
    contracts = [("ESPCO", "esp-annual", "ESP-2025-100", {}),
                 ("LISTCO", "ms-listing", "MS-2025-000", {}),
                 ("SCHEDCO", "ms-monthly", "MS-2025-200", {"termination_month": "2025-06"}),
                 ("CHANGECO", "saas-basic", "SAAS-1", {})]
    for customer, plan, contract, extra in contracts:
        api.ok(api.post("/subscriptions", {"customer_id": customer, "plan_code": plan, "external_id": contract,
                                           "start_date": "2025-03-01"} | extra))
    return api


def test_first_bill_run_annual_fee_zero_listing_and_monthly(platform, book):
    api = book
    platform.advance_clock("2025-03-01T03:00:00Z")
    (esp,) = invoices_of(api, "ESPCO")
    assert lines(esp) == [("recurring", "Enterprise Support Plan", "12000.00", "2025-03-01", "2026-03-01")]
    (listing,) = invoices_of(api, "LISTCO")  # UC06: the name with a 0 charge
    assert lines(listing) == [("recurring", "Managed Service", "0.00", "2025-03-01", "2025-04-01")]
    assert listing["total"] == "0.00" and listing["lines"][0]["external_id"] == "MS-2025-000"
    sched = api.ok(api.get("/subscriptions/MS-2025-200"))
    assert sched["termination"]["service_end"] == "2025-06-01" and sched["status"] == "pending_termination"


def test_an_upgrade_mid_month_is_prorated_on_the_next_invoice(platform, book):
    api = book
    platform.advance_clock("2025-03-16T10:00:00Z")
    successor = api.ok(api.post("/subscriptions/SAAS-1/change", {"plan_code": "saas-pro"}))
    assert successor["plan_code"] == "saas-pro" and successor["external_id"] == "SAAS-1"
    platform.advance_clock("2025-03-17T03:00:00Z")
    latest = invoices_of(api, "CHANGECO")[-1]
    # March has 31 days, 16 left from the 16th: -10.00 x 16/31 and +20.00 x 16/31
    assert sorted((ln["kind"], ln["amount"]) for ln in latest["lines"]) == [("proration", "-5.16"),
                                                                          ("recurring", "10.32")]
    history = api.ok(api.get("/subscriptions/SAAS-1/actions"))
    assert "subscription.upgraded" in [h["action"] for h in history]


def test_uc03_other_months_show_zero_and_a_pause_credits_days_billed(platform, book):
    api = book
    platform.advance_clock("2025-04-10T10:00:00Z")
    esp = invoices_of(api, "ESPCO")
    assert [lines(inv) for inv in esp[1:]] == [
        [("recurring", "Enterprise Support Plan", "0.00", "2025-04-01", "2025-05-01")]]
    paused = api.ok(api.post("/subscriptions/SAAS-1/pause", {"end": "2025-04-20"}))
    assert paused["status"] == "paused"
    refused = api.post("/subscriptions/SAAS-1/pause", {"start": "2025-04-12", "end": "2025-04-14"})
    assert refused.status == 409 and refused.json()["error"]["code"] == "already_paused"
    platform.advance_clock("2025-04-11T03:00:00Z")
    latest = invoices_of(api, "CHANGECO")[-1]
    assert [(ln["kind"], ln["amount"]) for ln in latest["lines"]] == [("proration", "-6.67")]  # 20.00 x 10/30
    history = api.ok(api.get("/subscriptions/SAAS-1/actions"))
    assert [h["rule"] for h in history if h["outcome"] == "rejected"] == ["already_paused"]


def test_uc05_the_termination_month_ends_the_contract_on_its_own(platform, book):
    api = book
    platform.advance_clock("2025-06-02T03:00:00Z")
    sched = invoices_of(api, "SCHEDCO")
    assert [inv["lines"][0]["period_start"] for inv in sched] == ["2025-03-01", "2025-04-01", "2025-05-01"]
    assert api.ok(api.get("/subscriptions/MS-2025-200"))["status"] == "terminated"
    # the daily contract calendar (01:00 UTC) executed it on the day and told CRE and Finance
    (told,) = [m for m in mails_to(platform, "cre@example.com") if "MS-2025-200" in m["Subject"]]
    assert "finance@example.com" in told["To"] and told["Subject"].endswith("terminated on 2025-06-01")
    sub_id = api.ok(api.get("/subscriptions/MS-2025-200"))["id"]
    audit = api.ok(api.get("/audit-events", object_id=sub_id, limit=50))["data"]
    executed = [a for a in audit if a["action"] == "subscription.terminated"]
    assert [(a["actor"], a["occurred_at"][:10]) for a in executed] == [("system:contract-calendar", "2025-06-01")]
    listed = api.ok(api.get("/subscriptions", customer_id="SCHEDCO"))["data"]
    assert listed == []  # churned: hidden by default (V5-3287)
    assert len(api.ok(api.get("/subscriptions", customer_id="SCHEDCO", include_churned="true"))["data"]) == 1


def test_the_staff_cli_runs_the_same_actions_with_the_same_rules(platform, book):
    api = book
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
             "BILLING_HOME": os.environ["BILLING_HOME"]}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "shared.cli.main", "subscriptions", *args], env=clean,
                              cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120)

    refused = cli("pause", "SAAS-1", "--start", "2025-06-10", "--end", "2025-06-05")
    assert refused.returncode == 2 and '"param": "end"' in refused.stderr
    done = cli("terms", "SAAS-1", "--auto-renew", "false")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["auto_renew"] is False
    history = json.loads(cli("history", "SAAS-1").stdout)
    assert history[0]["action"] == "subscription.terms_changed" and history[0]["actor"].startswith("cli:")
    assert any(h["outcome"] == "rejected" and h["actor"].startswith("cli:") for h in history)
    assert api.ok(api.get("/subscriptions/SAAS-1"))["auto_renew"] is False


def test_uc04_terminating_the_annual_plan_makes_the_renewal_non_billable(platform, book):
    api = book
    for done in ("MS-2025-000", "SAAS-1"):  # the other contracts end: the year runs for the annual one
        api.ok(api.post(f"/subscriptions/{done}/terminate", {"effective": "end_of_period"}))
    terminated = api.ok(api.post("/subscriptions/ESP-2025-100/terminate", {"effective": "end_of_period"}))
    assert terminated["termination"]["service_end"] == "2026-03-01"  # the next renewal
    (confirmed,) = [m for m in mails_to(platform, "ops@example.com") if "ESP-2025-100" in m["Subject"]]
    assert confirmed["Subject"] == "Confirmed: annual contract ESP-2025-100 ends 2026-03-01"
    platform.advance_clock("2026-03-02T03:00:00Z")
    esp = invoices_of(api, "ESPCO")
    assert [inv["total"] for inv in esp] == ["12000.00"] + ["0.00"] * 11  # Apr 2025 .. Feb 2026 at 0
    assert esp[-1]["lines"][0]["period_start"] == "2026-02-01"
    assert api.ok(api.get("/subscriptions/ESP-2025-100"))["status"] == "terminated"
