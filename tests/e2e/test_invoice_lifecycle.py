"""Invoices as legal documents over HTTP: a one-off draft, finalization with the entity's own
number format, credit notes in their own series, payments, void, UBL, and the hash chain naming
the first document changed behind the platform's back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from tests.e2e.conftest import key_for
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def book(api):
    api.ok(api.post("/billing-entities", {
        "code": "uk-ltd", "name": "Connectivity UK Ltd", "country": "GB", "currency": "GBP",
        "invoice_prefix": "UK", "credit_note_prefix": "UKCN", "number_format": "{prefix}{number:05d}",
        "tax_registrations": {"GB": "GB980780684"}, "address_lines": ["1 King Street", "London", "EC2V 8AU"]}))
    api.ok(api.post("/customers", {"name": "Muster GmbH", "email": "ap@muster.example", "external_id": "MUSTER",
                                   "country": "DE", "currency": "EUR", "tax_id": "DE136695976",
                                   "billing_entity": "uk-ltd", "address_lines": ["Hauptstr. 1", "Berlin", "10115"]}))
    return api


def draft(api, *amounts: str) -> dict:
    return api.ok(api.post("/invoices", {
        "customer_id": "MUSTER", "custom_fields": {"po_number": "PO-4711"},
        "lines": [{"description": f"Consulting {i}", "unit_price": a} for i, a in enumerate(amounts)]}))


def test_a_one_off_draft_is_finalized_with_the_entitys_number_format(book):
    created = draft(book, "1000.00", "200.00")
    assert (created["status"], created["number"], created["total"]) == ("draft", None, "1200.00")
    finance = key_for(book, "finance")
    final = finance.ok(finance.post(f"/invoices/{created['id']}/finalize"))
    assert (final["status"], final["number"], final["custom_fields"]) == ("finalized", "UK00001",
                                                                          {"po_number": "PO-4711"})
    assert [t["category"] for t in final["tax_lines"]] == ["AE"]  # reverse charge to a German business
    again = finance.post(f"/invoices/{created['id']}/finalize")
    assert again.status == 409 and again.json()["error"]["code"] == "not_a_draft"
    kept = finance.request("DELETE", f"/invoices/{created['id']}")
    assert kept.status == 409 and kept.json()["error"]["code"] == "finalized_documents_are_kept"
    scrap = draft(book, "5.00")
    assert finance.ok(finance.request("DELETE", f"/invoices/{scrap['id']}"))["deleted"] is True
    assert finance.get(f"/invoices/{scrap['id']}").status == 404  # a draft has no number: it may go


def test_credit_notes_have_their_own_series_and_never_exceed_the_invoice(book):
    invoice = next(i for i in book.ok(book.get("/invoices", customer_id="MUSTER"))["data"] if i["number"] == "UK00001")
    note = book.ok(book.post("/credit-notes", {"invoice_id": invoice["id"], "reason": "SLA breach in March",
                                               "lines": [{"line": 0, "amount": "300.00"}]}))
    assert (note["kind"], note["number"], note["total"], note["credit_note_of"]) == (
        "credit_note", "UKCN00001", "-300.00", invoice["id"])
    too_much = book.post("/credit-notes", {"invoice_id": invoice["id"], "reason": "again",
                                           "lines": [{"line": 0, "amount": "800.00"}]})
    assert too_much.status == 422 and too_much.json()["error"]["param"] == "lines[0].amount"
    after = book.ok(book.get(f"/invoices/{invoice['id']}"))
    assert (after["amount_credited"], after["amount_remaining"], after["total"]) == ("300.00", "900.00", "1200.00")
    assert book.ok(book.get(f"/credit-notes/{note['id']}"))["number"] == "UKCN00001"


def test_payments_settle_the_remainder_and_a_paid_invoice_cannot_be_voided(book):
    invoice = next(i for i in book.ok(book.get("/invoices", customer_id="MUSTER"))["data"] if i["number"] == "UK00001")
    over = book.post("/payments", {"invoice_id": invoice["id"], "amount": "950.00"})
    assert over.status == 422 and over.json()["error"]["param"] == "amount"
    payment = book.ok(book.post("/payments", {"invoice_id": invoice["id"], "amount": "900.00",
                                              "reference": "SEPA 123"}))
    assert payment["id"].startswith("pay_")
    paid = book.ok(book.get(f"/invoices/{invoice['id']}"))
    assert (paid["status"], paid["amount_remaining"]) == ("paid", "0.00")
    refused = book.post(f"/invoices/{invoice['id']}/void", {"reason": "mistake"})
    assert refused.status == 409


def test_a_voided_invoice_keeps_its_number_and_the_chain_verifies(book):
    second = book.ok(book.post(f"/invoices/{draft(book, '50.00')['id']}/finalize"))
    voided = book.ok(book.post(f"/invoices/{second['id']}/void", {"reason": "issued to the wrong customer"}))
    assert (voided["status"], voided["number"]) == ("void", "UK00002")
    assert [h["status"] for h in voided["status_history"]] == ["finalized", "void"]
    for series, count in (("invoice", 2), ("credit_note", 1)):
        chain = book.ok(book.get("/billing-entities/uk-ltd/chain-verification", series=series))
        assert (chain["ok"], chain["checked"]) == (True, count)


def test_ubl_for_the_invoice_and_its_credit_note(book):
    invoice = next(i for i in book.ok(book.get("/invoices", customer_id="MUSTER"))["data"] if i["number"] == "UK00001")
    ubl = book.get(f"/invoices/{invoice['id']}/ubl")
    assert ubl.status == 200 and ubl.headers["Content-Type"].startswith("application/xml")
    root = etree.fromstring(ubl.body)
    ns = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
    assert root.tag.endswith("}Invoice") and root.findtext("cbc:ID", namespaces=ns) == "UK00001"
    note_id = book.ok(book.get(f"/invoices/{invoice['id']}"))["credits"][0]["credit_note_id"]
    credit = etree.fromstring(book.get(f"/credit-notes/{note_id}/ubl").body)
    assert credit.tag.endswith("}CreditNote") and credit.findtext("cbc:ID", namespaces=ns) == "UKCN00001"


def test_the_chain_names_the_first_document_changed_behind_the_platforms_back(platform, book):
    dynamodb = platform.clients("dynamodb")
    table = next(t for t in dynamodb.list_tables()["TableNames"] if "BillingTable" in t)
    invoice = next(i for i in book.ok(book.get("/invoices", customer_id="MUSTER"))["data"] if i["number"] == "UK00001")
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": f"INV#{invoice['id']}"}, "sk": {"S": "A"}})["Item"]
    data = json.loads(item["data"]["S"])
    data["lines"][0]["amount"] = "10.00"  # someone edits the stored invoice
    item["data"] = {"S": json.dumps(data)}
    dynamodb.put_item(TableName=table, Item=item)
    chain = book.ok(book.get("/billing-entities/uk-ltd/chain-verification"))
    assert chain["ok"] is False and chain["first_broken"]["number"] == "UK00001"
    assert "changed after finalization" in chain["first_broken"]["problem"]
    # the staff command says the same, and fails
    shell = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
             "BILLING_HOME": os.environ["BILLING_HOME"]}
    checked = subprocess.run([sys.executable, "-m", "shared.cli.main", "entities", "verify-chain", "uk-ltd"],
                             env=shell, cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
                             timeout=120)
    assert checked.returncode == 1, checked.stderr
    invoices, notes = json.loads(checked.stdout)
    assert (invoices["ok"], invoices["first_broken"]["number"], notes["ok"]) == (False, "UK00001", True)


def test_the_lines_as_csv(book):
    invoice = next(i for i in book.ok(book.get("/invoices", customer_id="MUSTER"))["data"] if i["number"] == "UK00001")
    response = book.get(f"/invoices/{invoice['id']}/lines.csv")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
    header, first, second, _ = response.body.decode().split("\r\n")
    assert header.startswith("document_number,line,kind,description")
    assert first.startswith("UK00001,0,manual,Consulting 0,,,,2025-03-01,2025-03-01,1,1000.00,")


def test_revenue_schedules_follow_the_invoice_and_its_credit_note(book):
    invoice = next(i for i in book.ok(book.get("/invoices", customer_id="MUSTER"))["data"] if i["number"] == "UK00001")

    def credited_schedules():  # made by the revenue_schedules function, from the events
        schedules = book.ok(book.get("/revenue-schedules", invoice_id=invoice["id"]))["data"]
        credited = schedules and any(s.get("credits") or s.get("net") != s.get("amount") for s in schedules)
        return schedules if credited else None

    schedules = wait_for(credited_schedules, what="revenue schedules with the credit note")
    by_line = {s["line"]: s for s in schedules}
    assert set(by_line) == {0, 1}
    net = sum(float(e["amount"]) for e in by_line[0]["entries"])
    assert round(net, 2) == 1000.00 - 300.00  # the credit note took 300.00 off line 0


def test_an_invoice_with_a_discount_line_is_credited_in_full_and_credit_notes_are_listed(book):
    invoice = book.ok(book.post(f"/invoices/{draft(book, '100.00', '-10.00')['id']}/finalize"))
    note = book.ok(book.post("/credit-notes", {"invoice_id": invoice["id"], "reason": "cancelled order"}))
    assert (note["number"], note["subtotal"], note["total"]) == ("UKCN00002", "-90.00", "-90.00")
    assert Decimal(note["tax_total"]) == -Decimal(invoice["tax_total"])
    assert [(line["credited_line"], line["amount"]) for line in note["lines"]] == [(0, "-100.00"), (1, "10.00")]
    credited = book.ok(book.get(f"/invoices/{invoice['id']}"))
    assert (credited["amount_credited"], credited["amount_remaining"]) == ("90.00", "0.00")

    listed = book.ok(book.get("/credit-notes", customer_id="MUSTER"))
    assert [n["number"] for n in listed["data"]] == ["UKCN00001", "UKCN00002"] and not listed["has_more"]
    assert {n["kind"] for n in listed["data"]} == {"credit_note"}
    first = book.ok(book.get("/credit-notes", customer_id="MUSTER", limit=1))
    after = book.ok(book.get("/credit-notes", customer_id="MUSTER", limit=1, starting_after=first["data"][0]["id"]))
    assert first["has_more"] and [n["number"] for n in first["data"] + after["data"]] == ["UKCN00001", "UKCN00002"]
    of_invoice = book.ok(book.get("/credit-notes", invoice_id=invoice["id"]))
    assert [n["id"] for n in of_invoice["data"]] == [note["id"]]
    unknown = book.get("/credit-notes", invoice_id="inv_nope")
    assert unknown.status == 404 and unknown.json()["error"]["param"] == "invoice_id"
