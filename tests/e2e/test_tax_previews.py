"""Seed 000's tax scenarios priced through the local platform's invoice preview (the same
assembly a bill run finalizes): tax lines, the required wording, the ECB rate and MXN memo lines."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def quote(api, customer: dict, currency: str, entity: dict | None = None):
    body = {
        "customer": customer | {"currency": currency},
        "plan": {"code": "svc", "name": "Managed Service", "currency": currency, "charges": [
            {"code": "fee", "name": "Managed Service", "price": "100.00" if currency != "JPY" else "10000"}]},
        "subscription": {"start_date": "2025-06-01"}, "period_start": "2025-06-01"}
    if entity is not None:
        body["billing_entity"] = entity
    return api.post("/invoices/preview", body)


def taxes(invoice: dict) -> list[tuple[str, str, str, str]]:
    return [(t["name"], t["jurisdiction"], t["category"], t["amount"]) for t in invoice["tax_lines"]]


def test_quebec_business_pays_gst_and_qst_as_separate_lines(api):
    entity = {"country": "CA", "region": "CA-ON",
              "tax_registrations": {"CA": "123456789RT0001", "CA-QC": "1234567890TQ0001"}}
    invoice = api.ok(quote(api, {"country": "CA", "region": "CA-QC"}, "CAD", entity))
    assert [(t[2], t[3]) for t in taxes(invoice)] == [("S", "5.00"), ("S", "9.98")]  # 5% and 9.975%
    assert invoice["total"] == "114.98"


def test_uk_to_uk_is_20_percent_and_uk_to_eu_business_is_reverse_charged(api):
    entity = {"country": "GB", "tax_registrations": {"GB": "GB980780684"}}
    domestic = api.ok(quote(api, {"country": "GB"}, "GBP", entity))
    assert [t[3] for t in taxes(domestic)] == ["20.00"] and domestic["total"] == "120.00"
    reverse = api.ok(quote(api, {"country": "DE", "tax_id": "DE136695976"}, "EUR", entity))
    assert [(t[2], t[3]) for t in taxes(reverse)] == [("AE", "0.00")] and reverse["total"] == "100.00"
    assert any("Reverse charge" in note for note in reverse["notes"])


def test_a_mexican_customer_gets_a_usd_invoice_with_mxn_memo_lines(api):
    invoice = api.ok(quote(api, {"country": "MX"}, "USD"))  # the default (US) entity
    assert invoice["tax_total"] == "0.00" and [t[2] for t in taxes(invoice)] == ["O"]
    assert invoice["memo_lines"] and all("MXN" in line for line in invoice["memo_lines"])


def test_an_eur_invoice_stores_the_ecb_reference_rate(api):
    entity = {"country": "GB", "currency": "GBP", "tax_registrations": {"GB": "GB980780684"}}
    invoice = api.ok(quote(api, {"country": "DE", "tax_id": "DE136695976"}, "EUR", entity))
    rate = invoice["exchange_rate"]
    assert (rate["base"], rate["quote"]) == ("EUR", "GBP") and "2025-05-28" <= rate["rate_date"] <= "2025-06-01"
    assert "ecb" in rate["source"].lower()


def test_us_sales_tax_is_stated_not_silent_and_refused_without_an_engine(api):
    invoice = api.ok(quote(api, {"country": "US", "region": "US-CA"}, "USD"))
    assert any("not registered to collect" in note for note in invoice["notes"])
    refused = quote(api, {"country": "US", "region": "US-CA"}, "USD", {"country": "US"})
    assert refused.status == 409 and refused.json()["error"]["code"] == "tax_engine_required"


def test_bad_tax_data_is_refused_at_contract_time_naming_the_field(api):
    missing = api.post("/customers", {"name": "X", "email": "x@x.example", "country": "CA", "currency": "CAD"})
    assert missing.status == 422 and missing.json()["error"]["param"] == "region"
    bad_vat = api.post("/customers", {"name": "X", "email": "x@x.example", "country": "DE", "currency": "EUR",
                                      "tax_id": "DE123456789"})
    assert bad_vat.status == 422 and bad_vat.json()["error"]["param"] == "tax_id"


def test_japan_in_yen_with_consumption_tax_switchable(api):
    entity = {"country": "JP", "currency": "JPY", "tax_registrations": {"JP": "T1234567890123"}}
    taxed = api.ok(quote(api, {"country": "JP"}, "JPY", entity))
    assert (taxed["subtotal"], taxed["tax_total"], taxed["total"]) == ("10000", "1000", "11000")  # no decimals
    untaxed = api.ok(quote(api, {"country": "JP"}, "JPY", entity | {"japan_consumption_tax": False}))
    assert untaxed["tax_total"] == "0" and untaxed["notes"]
