"""Seed 000's tax and currency scenarios, one invoice each, issued by the bill run of the local
platform: US through a tax engine (AvaTax, answered here by a local server replaying its recorded
response), Canada by province (with Nova Scotia's HST change on 2025-04-01, and a period across it taxed
whole at the invoice date's rate), Mexico with MXN memo
lines, Brazil in Portuguese, UK -> UK, UK -> EU business in EUR with the ECB snapshot rate.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
RECORDING = Path(__file__).parents[1] / "integration" / "recordings" / "avalara_create_transaction.json"


class RecordedAvaTax(BaseHTTPRequestHandler):
    """CreateTransaction answered with AvaTax's recorded response, renumbered to the lines sent."""

    requests: list[dict] = []

    def do_POST(self):  # noqa: N802
        sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        RecordedAvaTax.requests.append(sent)
        answer = json.loads(RECORDING.read_text())
        answer["lines"] = [answer["lines"][0] | {"lineNumber": line["number"]} for line in sent["lines"][:1]]
        body = json.dumps(answer).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def avatax():
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordedAvaTax)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"AVALARA_ACCOUNT_ID": "1100000000", "AVALARA_LICENSE_KEY": "recorded",
           "AVALARA_BASE_URL": f"http://127.0.0.1:{server.server_port}"}
    os.environ.update(env)
    yield RecordedAvaTax
    for key in env:
        os.environ.pop(key, None)
    server.shutdown()


def entity(api, code, country, currency, prefix, **extra):
    return api.ok(api.post("/billing-entities", {"code": code, "name": f"{code.upper()} Ltd", "country": country,
                                                 "currency": currency, "invoice_prefix": prefix} | extra))


def plan(api, code, currency, price):
    api.ok(api.post("/plans", {"code": code, "name": "Managed Service", "currency": currency, "charges": [
        {"code": "fee", "name": "Managed Service", "price": price, "gl_code": "7005",
         "translations": {"pt-BR": "Serviço Gerenciado"}}]}))


def contract(api, ref, plan_code, billing_entity, currency, start="2025-03-01", **customer):
    api.ok(api.post("/customers", {"name": f"{ref} Corp", "email": f"ap@{ref.lower()}.example", "external_id": ref,
                                   "currency": currency, "billing_entity": billing_entity} | customer))
    api.ok(api.post("/subscriptions", {"customer_id": ref, "plan_code": plan_code, "external_id": f"MS-{ref}",
                                       "start_date": start}))


@pytest.fixture(scope="module")
def invoices(platform, api, avatax):
    entity(api, "uk", "GB", "GBP", "UK", tax_registrations={"GB": "GB980780684"})
    entity(api, "ca", "CA", "CAD", "CA", region="CA-ON",
           tax_registrations={"CA": "123456789RT0001", "CA-QC": "1234567890TQ0001", "CA-BC": "PST-1234-5678"})
    entity(api, "ca-ns", "CA", "CAD", "NS", region="CA-NS", tax_registrations={"CA": "123456789RT0001"})
    entity(api, "us-tax", "US", "USD", "US", region="US-CA", tax_providers={"US": "avalara"},
           address_lines=["255 S King St", "Seattle", "98104"])
    for code, currency, price in (("ms-usd", "USD", "100.00"), ("ms-cad", "CAD", "1000.00"),
                                  ("ms-gbp", "GBP", "1000.00"), ("ms-eur", "EUR", "1000.00")):
        plan(api, code, currency, price)
    contract(api, "US1", "ms-usd", "us-tax", "USD", country="US", region="US-CA",
             address_lines=["100 Ravine Lane NE", "Irvine", "92615"])
    contract(api, "QC1", "ms-cad", "ca", "CAD", country="CA", region="CA-QC")
    contract(api, "BC1", "ms-cad", "ca", "CAD", country="CA", region="CA-BC")
    contract(api, "NS1", "ms-cad", "ca", "CAD", country="CA", region="CA-NS")
    contract(api, "NS2", "ms-cad", "ca-ns", "CAD", start="2025-03-15", country="CA", region="CA-NS")
    contract(api, "MX1", "ms-usd", None, "USD", country="MX")
    contract(api, "BR1", "ms-usd", None, "USD", country="BR", language="pt-BR")
    contract(api, "GB1", "ms-gbp", "uk", "GBP", country="GB")
    contract(api, "DE1", "ms-eur", "uk", "EUR", country="DE", tax_id="DE136695976")
    platform.advance_clock("2025-04-01T03:00:00Z")
    found = {}
    for ref in ("US1", "QC1", "BC1", "NS1", "NS2", "MX1", "BR1", "GB1", "DE1"):
        cus = api.ok(api.get(f"/customers/{ref}"))
        found[ref] = api.ok(api.get("/invoices", customer_id=cus["id"], limit=10))["data"]
    return found


def taxes(invoice):
    return [(t["name"], t["category"], t["rate"], t["amount"]) for t in invoice["tax_lines"]]


def test_us_sales_tax_comes_from_the_tax_engine(invoices, avatax):
    march = invoices["US1"][0]
    assert march["tax_total"] == "7.75" and march["total"] == "107.75"  # AvaTax's four jurisdictions
    assert len(march["tax_lines"]) == 4 and march["tax_provider"] == "avalara"
    sent = avatax.requests[0]
    assert sent["addresses"]["shipTo"]["postalCode"] == "92615" and sent["lines"][0]["amount"] == 100.0


def test_canada_taxes_each_province_with_separate_lines(invoices):
    qc = invoices["QC1"][0]
    assert [(c, r, a) for _, c, r, a in taxes(qc)] == [("S", "0.05", "50.00"), ("S", "0.09975", "99.75")]
    bc = invoices["BC1"][0]
    assert sorted(a for *_, a in taxes(bc)) == ["50.00", "70.00"]  # GST 5% + PST 7%


def test_nova_scotia_hst_drops_to_14_percent_on_2025_04_01(invoices):
    march, april = invoices["NS1"]
    assert [a for *_, a in taxes(march)] == ["150.00"] and [a for *_, a in taxes(april)] == ["140.00"]


def test_a_nova_scotia_period_across_april_1_billed_in_march_is_taxed_whole_at_15_percent(invoices):
    # March 15 to April 14 billed in advance on March 15: the HST became payable before April 1, so 15 % applies
    # to the whole amount (Excise Tax Act s.168(1), CRA GST/HST Notice 342), not 17 days at 15 % and 14 at 14 %
    (invoice,) = invoices["NS2"]
    assert invoice["issue_date"] == "2025-03-15"
    assert taxes(invoice) == [("HST", "S", "0.15", "150.00")] and invoice["total"] == "1150.00"


def test_mexico_gets_usd_with_mxn_memo_lines_and_brazil_portuguese(invoices, api):
    mx = invoices["MX1"][0]
    assert mx["tax_total"] == "0.00" and mx["memo_lines"] and "MXN" in mx["memo_lines"][-1]
    br = invoices["BR1"][0]
    assert br["lines"][0]["description"] == "Serviço Gerenciado" and br["language"] == "pt-BR"
    api.ok(api.post("/plans", {"code": "no-pt", "name": "X", "currency": "USD", "charges": [
        {"code": "fee", "name": "Fee", "price": "1.00"}]}))
    refused = api.post("/subscriptions", {"customer_id": "BR1", "plan_code": "no-pt"})
    assert refused.status == 422 and "translations.pt-BR" in refused.json()["error"]["message"]


def test_uk_domestic_vat_and_reverse_charge_to_an_eu_business_with_the_ecb_rate(invoices):
    gb = invoices["GB1"][0]
    assert [(c, a) for _, c, _, a in taxes(gb)] == [("S", "200.00")] and gb["total"] == "1200.00"
    de = invoices["DE1"][0]
    assert [(c, a) for _, c, _, a in taxes(de)] == [("AE", "0.00")] and de["total"] == "1000.00"
    assert any("Article 196" in note for note in de["notes"])
    assert (de["exchange_rate"]["base"], de["exchange_rate"]["quote"]) == ("EUR", "GBP")
    assert de["exchange_rate"]["rate_date"] == "2025-02-28"  # the last ECB day on or before 2025-03-01


def test_the_tax_report_sums_what_a_return_needs(invoices, api):
    response = api.get("/tax-report", start="2025-03-01", end="2025-05-01", billing_entity="ca")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.body.decode())))
    hst = [r for r in rows if r["rate_percent"] in ("15", "14")]
    assert sorted((r["rate_percent"], r["tax_amount"]) for r in hst) == [("14", "140.00"), ("15", "150.00")]
    qst = [r for r in rows if r["rate_percent"] == "9.975"]
    assert [(r["taxable_amount"], r["tax_amount"], r["invoice_count"]) for r in qst] == [("2000.00", "199.50", "2")]
