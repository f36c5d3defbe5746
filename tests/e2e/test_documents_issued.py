"""Documents outside the bill run, over HTTP on the local platform: a branded entity (colour and
logo), a draft previewed and as a pro-forma, split by project and merged back, finalized and then
rendered and e-mailed by `document_issue`; a credit note with its own PDF and e-mail; a re-bill;
Factur-X for a customer who asked for it."""

from __future__ import annotations

import base64
import email
import io
import shutil
import struct
import subprocess
import zlib
from email import policy

import pytest
from lxml import etree
from pypdf import PdfReader

from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


def png(width: int = 40, height: int = 20, rgb=(13, 110, 87)) -> bytes:
    """A plain PNG, written by hand (no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def text_of(pdf: bytes, tmp_path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def emails(platform) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(raw, policy=policy.default) for raw in platform.sent_emails()]


def mail_about(platform, matches, what: str) -> email.message.EmailMessage:
    """The one e-mail that `matches`, once sent (the PDF is stored before its e-mail leaves)."""
    def sent():
        found = [m for m in emails(platform) if matches(m)]
        assert len(found) <= 1, f"{len(found)} e-mails about {what}"
        return found[0] if found else None

    return wait_for(sent, interval=0.2, what=f"the e-mail about {what}")


def issued_pdf(api, path: str) -> bytes:
    """The PDF of record, once `document_issue` (on the invoice.finalized event) has stored it."""
    def stored():
        response = api.get(path)
        if response.status == 200:
            return response.body
        assert response.status == 404 and response.json()["error"]["code"] == "document_not_ready", response.body
        return None

    return wait_for(stored, interval=0.2, what=f"the PDF of {path}")


@pytest.fixture(scope="module")
def book(api):
    api.ok(api.post("/billing-entities", {
        "code": "fr-sas", "name": "Connectivité France SAS", "country": "FR", "currency": "EUR",
        "invoice_prefix": "FR", "tax_registrations": {"FR": "FR40303265045"},
        "address_lines": ["10 rue de la Paix", "75002 Paris"], "branding": {"accent_color": "#0d6e57"}}))
    api.ok(api.post("/customers", {"name": "Dupont SARL", "email": "compta@dupont.example", "external_id": "DUPONT",
                                   "country": "FR", "currency": "EUR", "tax_id": "FR61954506077", "language": "fr",
                                   "billing_entity": "fr-sas", "address_lines": ["2 place Bellecour", "69002 Lyon"]}))
    return api


def draft(api, lines: list[tuple[str, str, str]], **extra) -> dict:
    return api.ok(api.post("/invoices", {"customer_id": "DUPONT", **extra, "lines": [
        {"description": d, "unit_price": a, "attributes": {"project": p}} for d, a, p in lines]}))


def test_branding_is_checked_and_printed_on_documents_issued_after_it(book, tmp_path):
    bad_colour = book.request("PATCH", "/billing-entities/fr-sas", {"accent_color": "green"})
    assert bad_colour.status == 422 and "accent_color" in bad_colour.json()["error"]["param"]
    script = base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>').decode()
    refused = book.request("PUT", "/billing-entities/fr-sas/logo",
                           {"content_type": "image/svg+xml", "content_base64": script})
    assert refused.status == 422 and refused.json()["error"]["param"] == "content_base64"
    not_png = book.request("PUT", "/billing-entities/fr-sas/logo", {
        "content_type": "image/png", "content_base64": base64.b64encode(b"GIF89a...").decode()})
    assert not_png.status == 422
    entity = book.ok(book.request("PUT", "/billing-entities/fr-sas/logo", {
        "content_type": "image/png", "content_base64": base64.b64encode(png()).decode()}))
    assert entity["branding"]["accent_color"] == "#0d6e57"
    assert entity["branding"]["logo"]["key"].startswith(f"branding/{entity['id']}/")
    created = draft(book, [("Audit réseau", "800.00", "alpha")])
    assert created["branding"] == entity["branding"]  # the snapshot the document keeps


def test_a_draft_is_previewed_and_sent_as_a_pro_forma_without_being_stored(book, tmp_path):
    created = draft(book, [("Audit réseau", "800.00", "alpha"), ("Formation", "400.00", "beta")],
                    custom_fields={"po_number": "BC-2025-17"})
    preview = book.get(f"/invoices/{created['id']}/preview")
    assert preview.status == 200 and preview.body.startswith(b"%PDF")
    text = text_of(preview.body, tmp_path)
    assert "Aperçu d’un brouillon" in text and "BC-2025-17" in text and "Brouillon" in text
    assert len(PdfReader(io.BytesIO(preview.body)).pages[0].images) == 1  # the logo
    proforma = text_of(book.get(f"/invoices/{created['id']}/preview", document="proforma").body, tmp_path)
    assert "Facture pro forma" in proforma and "ni une facture ni une demande de paiement" in proforma
    assert "1 440,00" in proforma  # 1,200.00 + 20 % VAT, in French
    still = book.ok(book.get(f"/invoices/{created['id']}"))
    assert (still["status"], still["number"], still["pdf_key"]) == ("draft", None, None)
    unknown = book.get(f"/invoices/{created['id']}/preview", document="quote")
    assert unknown.status == 422


def test_split_by_project_then_merge_back_keeps_every_cent_and_the_links(book):
    parent = draft(book, [("Audit réseau", "800.00", "alpha"), ("Formation", "400.00", "beta"),
                          ("Support", "99.99", "alpha")], custom_fields={"po_number": "BC-2025-18"})
    children = book.ok(book.post(f"/invoices/{parent['id']}/split", {"by": "project"}))["data"]
    assert [(c["custom_fields"]["project"], c["subtotal"]) for c in children] == [("alpha", "899.99"),
                                                                                ("beta", "400.00")]
    assert all(c["related"] == [{"relation": "split_from", "id": parent["id"], "number": None,
                                 "issue_date": parent["issue_date"], "share": None}] for c in children)
    assert book.get(f"/invoices/{parent['id']}").status == 404  # a draft has no number: the children replace it
    halves = book.ok(book.post(f"/invoices/{children[0]['id']}/split", {"percentages": ["33.33", "66.67"]}))["data"]
    # 800.00 × 33.33 % = 266.64, 99.99 × 33.33 % = 33.327 -> 33.33; the last share takes what is left
    assert [h["subtotal"] for h in halves] == ["299.97", "600.02"]
    merged = book.ok(book.post("/invoices/merge", {"invoice_ids": [h["id"] for h in halves] + [children[1]["id"]]}))
    assert merged["subtotal"] == "1299.99" and len(merged["lines"]) == 5
    assert merged["custom_fields"] == {"po_number": "BC-2025-18"}  # shared; the project moved onto the lines
    assert [ln["attributes"]["project"] for ln in merged["lines"]] == ["alpha", "alpha", "alpha", "alpha", "beta"]
    assert [r["id"] for r in merged["related"]] == [h["id"] for h in halves] + [children[1]["id"]]
    other = book.ok(book.post("/customers", {"name": "Autre", "email": "a@autre.example", "country": "FR",
                                             "currency": "EUR", "billing_entity": "fr-sas"}))
    foreign = book.ok(book.post("/invoices", {"customer_id": other["id"],
                                              "lines": [{"description": "x", "unit_price": "1.00"}]}))
    refused = book.post("/invoices/merge", {"invoice_ids": [merged["id"], foreign["id"]]})
    assert refused.status == 422 and refused.json()["error"]["param"] == "invoice_ids[1]"
    assert book.ok(book.get(f"/invoices/{merged['id']}"))["status"] == "draft"  # nothing written


def test_a_finalized_invoice_and_its_credit_note_are_rendered_and_emailed(platform, book, tmp_path):
    created = draft(book, [("Audit réseau", "800.00", "alpha")], custom_fields={"po_number": "BC-2025-19"})
    final = book.ok(book.post(f"/invoices/{created['id']}/finalize"))
    pdf = issued_pdf(book, f"/invoices/{final['id']}/pdf")
    text = text_of(pdf, tmp_path)
    assert final["number"] in text and "BC-2025-19" in text and "960,00" in text and "Aperçu" not in text
    assert book.get(f"/invoices/{final['id']}/preview").status == 409
    mail = mail_about(platform, lambda m: final["number"] in m["Subject"], final["number"])
    assert mail["To"] == "compta@dupont.example"
    assert [p.get_filename() for p in mail.iter_attachments()] == [f"{final['number']}.pdf"]

    note = book.ok(book.post("/credit-notes", {"invoice_id": final["id"], "reason": "Remise commerciale",
                                               "lines": [{"line": 0, "amount": "100.00"}]}))
    assert note["related"][0] == {"relation": "corrects", "id": final["id"], "number": final["number"],
                                  "issue_date": final["issue_date"], "share": None}
    note_text = text_of(issued_pdf(book, f"/credit-notes/{note['id']}/pdf"), tmp_path)
    assert "Avoir" in note_text and f"Rectifie la facture {final['number']}" in note_text
    assert "120,00" in note_text  # 100.00 + 20 % VAT credited
    note_mail = mail_about(platform, lambda m: m["Subject"].startswith(f"Avoir {note['number']}"), note["number"])
    assert final["number"] in note_mail["Subject"]
    assert book.ok(book.get(f"/invoices/{note['id']}/deliveries"))["data"][0]["status"] == "sent"


def test_a_rebill_credits_the_invoice_in_full_and_opens_a_draft_in_its_place(book):
    final = book.ok(book.post(f"/invoices/{draft(book, [('Support', '50.00', 'beta')])['id']}/finalize"))
    rebilled = book.ok(book.post(f"/invoices/{final['id']}/rebill", {"reason": "wrong purchase order"}))
    note, replacement = rebilled["credit_note"], rebilled["draft"]
    assert (note["total"], note["credit_note_of"]) == ("-60.00", final["id"])
    assert (replacement["status"], replacement["subtotal"]) == ("draft", "50.00")
    link = replacement["related"][0]
    assert (link["relation"], link["number"]) == ("rebill_of", final["number"])
    original = book.ok(book.get(f"/invoices/{final['id']}"))
    assert (original["replaced_by"], original["amount_remaining"]) == ([replacement["id"]], "0.00")
    again = book.post(f"/invoices/{final['id']}/rebill", {"reason": "twice"})
    assert again.status == 409


def test_a_customer_who_asks_for_factur_x_gets_the_cii_xml_inside_the_pdf(book):
    book.ok(book.request("PATCH", "/customers/DUPONT", {"document_format": "facturx"}))
    bad = book.request("PATCH", "/customers/DUPONT", {"language": "xx-nope"})
    assert bad.status == 422 and bad.json()["error"]["param"] == "language"
    final = book.ok(book.post(f"/invoices/{draft(book, [('Audit réseau', '800.00', 'alpha')])['id']}/finalize"))
    reader = PdfReader(io.BytesIO(issued_pdf(book, f"/invoices/{final['id']}/pdf")))
    xml = reader.attachments["factur-x.xml"][0]
    assert final["number"].encode() in xml and b"urn:cen.eu:en16931:2017" in xml
    assert str(reader.xmp_metadata.pdfaid_part) == "3"
    book.ok(book.request("PATCH", "/customers/DUPONT", {"document_format": "pdf"}))


def test_a_credit_on_a_paid_invoice_is_kept_on_the_customers_balance_and_used_next(book, tmp_path):
    book.ok(book.post("/customers", {"name": "Owed GmbH", "email": "ap@owed.example", "external_id": "OWED",
                                     "country": "DE", "currency": "EUR", "tax_id": "DE811569869", "language": "de",
                                     "billing_entity": "fr-sas", "address_lines": ["Ring 2", "50667 Köln"]}))

    def finalized(price: str) -> dict:
        made = book.ok(book.post("/invoices", {"customer_id": "OWED", "lines": [
            {"description": "Beratung", "unit_price": price}]}))
        return book.ok(book.post(f"/invoices/{made['id']}/finalize"))

    paid = finalized("100.00")
    book.ok(book.post("/payments", {"invoice_id": paid["id"], "amount": "100.00"}))
    note = book.ok(book.post("/credit-notes", {"invoice_id": paid["id"], "reason": "storniert"}))
    assert note["balance_credited"] == "100.00"
    assert book.ok(book.get("/customers/OWED"))["credit_balance"] == {"EUR": "100.00"}
    note_text = " ".join(text_of(issued_pdf(book, f"/credit-notes/{note['id']}/pdf"), tmp_path).split())
    assert "Ihrem Kundenkonto gutgeschrieben 100,00 €" in note_text

    covered = finalized("60.00")
    assert (covered["balance_applied"], covered["amount_due"], covered["status"]) == ("60.00", "0.00", "paid")
    assert book.ok(book.get("/customers/OWED"))["credit_balance"] == {"EUR": "40.00"}
    ubl = etree.fromstring(book.get(f"/invoices/{covered['id']}/ubl").body)
    assert (ubl.findtext(".//{*}LegalMonetaryTotal/{*}PrepaidAmount"),
            ubl.findtext(".//{*}LegalMonetaryTotal/{*}PayableAmount")) == ("60.00", "0.00")
    text = text_of(issued_pdf(book, f"/invoices/{covered['id']}/pdf"), tmp_path)
    assert "Verrechnetes Guthaben -60,00 €" in " ".join(text.split())
