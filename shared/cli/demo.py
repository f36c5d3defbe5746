"""`billing demo`: the whole platform on this machine bills a sample book of contracts.

Starts the local platform at 2025-03-01, loads the book over the REST API, lets the local
clock run through 1 April (the daily bill-run schedule fires each day at 02:00 UTC),
terminates one contract (UC02) on the way, and leaves the PDFs, the emails and a summary
in the output folder.
"""

from __future__ import annotations

import builtins
import csv
import functools
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from shared.cli.client import ApiClient

BOOK = {
    "customers": [
        {"name": "Acme IoT Inc.", "email": "ap@acme-iot.example", "external_id": "ACME-IOT",
         "country": "US", "region": "US-CA", "currency": "USD",
         "address_lines": ["500 Market Street", "San Francisco, CA 94105"]},
        {"name": "Globex Logistics LLC", "email": "billing@globex.example", "external_id": "GLOBEX",
         "cc_emails": ["finance@globex.example"], "country": "US", "region": "US-NY", "currency": "USD",
         "address_lines": ["200 Park Avenue", "New York, NY 10166"]},
        {"name": "Initech Channel Partners", "email": "ops@initech.example", "external_id": "INITECH",
         "country": "US", "region": "US-TX", "currency": "USD",
         "address_lines": ["4120 Freidrich Lane", "Austin, TX 78744"]},
        {"name": "Umbrella Devices Corp.", "email": "payables@umbrella.example", "external_id": "UMBRELLA",
         "country": "US", "region": "US-WA", "currency": "USD",
         "address_lines": ["1 Raccoon Way", "Seattle, WA 98101"]},
    ],
    "plans": [
        {"code": "managed-service", "name": "Managed Service", "currency": "USD",
         "description": "Operation of the connectivity stack (seed 000)",
         "charges": [{"code": "ms-fee", "name": "Managed Service", "price": "0.00", "gl_code": "7005"}]},
        {"code": "enterprise-support", "name": "Enterprise Support Plan", "currency": "USD",
         "charges": [{"code": "esp-fee", "name": "Enterprise Support", "price": "0.00", "gl_code": "7010"}]},
    ],
    "subscriptions": [
        {"customer_id": "ACME-IOT", "plan_code": "managed-service", "external_id": "MS-2025-001",
         "start_date": "2025-03-01", "price_overrides": {"ms-fee": "1250.00"}},
        {"customer_id": "GLOBEX", "plan_code": "enterprise-support", "external_id": "ESP-2025-007",
         "start_date": "2025-03-01", "price_overrides": {"esp-fee": "3400.00"}},
        {"customer_id": "GLOBEX", "plan_code": "managed-service", "external_id": "MS-2025-014",
         "start_date": "2025-03-01", "price_overrides": {"ms-fee": "780.00"}},
        {"customer_id": "INITECH", "plan_code": "managed-service", "external_id": "MS-2025-020",
         "start_date": "2025-03-01"},  # UC06: a 0 USD listing line
        {"customer_id": "UMBRELLA", "plan_code": "managed-service", "external_id": "MS-2025-031",
         "start_date": "2025-03-12", "billing_alignment": "calendar", "price_overrides": {"ms-fee": "990.00"}},
    ],
}


def load_book(api: ApiClient) -> dict[str, str]:
    customers = {}
    for customer in BOOK["customers"]:
        created = api.ok(api.post("/customers", customer, **{"Idempotency-Key": f"demo-{customer['external_id']}"}))
        customers[customer["external_id"]] = created["id"]
    for plan in BOOK["plans"]:
        api.ok(api.post("/plans", plan))
    for sub in BOOK["subscriptions"]:
        api.ok(api.post("/subscriptions", {**sub, "customer_id": customers[sub["customer_id"]]}))
    return customers


def run_demo(out: Path, clock: str = "2025-03-01T00:00:00Z") -> None:
    out.mkdir(parents=True, exist_ok=True)
    console = sys.stdout
    with open(out / "functions.log", "w") as function_logs:  # what CloudWatch Logs would hold
        sys.stdout = function_logs
        try:
            _run(out, clock, console)
        finally:
            sys.stdout = console


def _run(out: Path, clock: str, console) -> None:
    from shared.local.runtime import LocalRuntime

    print = functools.partial(builtins.print, file=console, flush=True)  # noqa: A001
    started = time.perf_counter()
    with LocalRuntime(clock=clock) as runtime:
        api = ApiClient(runtime.api_url, runtime.api_key)
        print(f"local platform up in {time.perf_counter() - started:.1f}s at {runtime.api_url}")
        load_book(api)
        print(f"loaded {len(BOOK['customers'])} customers and {len(BOOK['subscriptions'])} contracts")
        fired = runtime.advance_clock("2025-03-20T00:00:00Z")
        api.ok(api.post("/subscriptions/MS-2025-014/terminate",
                        {"effective": "end_of_period", "reason": "moved to partner billing (UC02)"}))
        print("UC02: terminated MS-2025-014 at the end of March")
        fired += runtime.advance_clock("2025-04-01T03:00:00Z")
        bill_runs = [f for f in fired if "DailyBillRun" in f["schedule"]]
        print(f"clock moved to 2025-04-01T03:00Z; the schedules fired {len(bill_runs)} bill runs "
              f"({len(fired)} scheduled tasks in all)")
        invoices = collect(api, out)
        emails = runtime.sent_emails()
        for number, raw in enumerate(emails, 1):
            (out / f"email-{number:03d}.eml").write_bytes(raw)
        runs = api.ok(api.get("/bill-runs", limit=100))["data"]
    write_summary(out, invoices, runs, len(emails))
    print_table(invoices, print)
    failed = [r for r in runs if r["status"] != "succeeded"]
    if failed or not invoices:
        raise SystemExit(f"the demo did not bill as expected: {len(invoices)} invoices, failed runs: "
                         + json.dumps([{k: r[k] for k in ("id", "status", "failures")} for r in failed]))
    print(f"\n{len(invoices)} invoices, {len(emails)} emails ({time.perf_counter() - started:.1f}s)\n"
          f"PDFs, emails, summary.csv/json and functions.log are in {out.resolve()}")


def collect(api: ApiClient, out: Path) -> list[dict]:
    invoices, cursor = [], None
    while True:
        page = api.ok(api.get("/invoices", limit=100, starting_after=cursor))
        invoices += page["data"]
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    for invoice in invoices:
        pdf = api.get(f"/invoices/{invoice['id']}/pdf")
        if pdf.status == 200:
            (out / f"{invoice['number']}.pdf").write_bytes(pdf.body)
    return sorted(invoices, key=lambda i: i["number"])


def write_summary(out: Path, invoices: list[dict], runs: list[dict], emails: int) -> None:
    rows = [{"number": i["number"], "issue_date": i["issue_date"], "customer": i["buyer"]["name"],
             "contract": line["external_id"], "service": line["description"], "gl_code": line["gl_code"],
             "period_start": line["period_start"], "period_end_exclusive": line["period_end"],
             "amount": line["amount"], "currency": i["currency"], "invoice_total": i["total"]}
            for i in invoices for line in i["lines"]]
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["number"])
        writer.writeheader()
        writer.writerows(rows)
    (out / "summary.json").write_text(json.dumps({"invoices": invoices, "bill_runs": runs, "emails": emails},
                                                 indent=2))


def print_table(invoices: list[dict], print=builtins.print) -> None:  # noqa: A002
    header = f"{'invoice':<12}{'issued':<12}{'customer':<26}{'contract':<14}{'GL':<6}{'period':<25}{'amount':>12}"
    print("\n" + header + "\n" + "-" * len(header))
    for invoice in invoices:
        for line in invoice["lines"]:
            last_day = date.fromisoformat(line["period_end"]) - timedelta(days=1)  # the API's end is exclusive
            period = f"{line['period_start']} to {last_day}"
            print(f"{invoice['number']:<12}{invoice['issue_date']:<12}{invoice['buyer']['name'][:25]:<26}"
                  f"{line['external_id'] or '':<14}{line['gl_code'] or '':<6}{period:<25}"
                  f"{line['amount'] + ' ' + invoice['currency']:>12}")
        print(f"{'':<78}{'total ' + invoice['total'] + ' ' + invoice['currency']:>17}")
