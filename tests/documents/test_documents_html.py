"""The invoice HTML: content, formatting per language, escaping, template versions."""

from __future__ import annotations

import os
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from document_fixtures import HASH, make_invoice, make_reverse_charge_credit_note, make_taxed_invoice

from shared.billing.errors import NonRetryableError
from shared.billing.models import Branding, DocumentLink
from shared.documents.html import (
    css_page_counter,
    css_string,
    money,
    percent,
    quantity,
    region_and_country,
    render_invoice_html,
    service_period,
)

GOLDEN = Path(__file__).parent / "golden"
NBSP = "\xa0"


def rows(html: str) -> list[str]:
    """The lines table's rows, one HTML chunk each."""
    body = html.split('<table class="lines">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr class="line.*?</tr>', body, flags=re.S)


def test_english_invoice_shows_number_contracts_gl_codes_periods_and_totals(invoice):
    html = render_invoice_html(invoice)

    assert "SORUS-2025-000123" in html
    assert "CT-ESP-0042" in html and "CT-MS-0007" in html
    assert "GL 7010" in html and "GL 7005" in html
    assert "Mar 1, 2025 – Mar 31, 2025" in html  # period_end 2025-04-01 is exclusive
    assert "Mar 15, 2025 – Mar 31, 2025" in html
    assert "prorated by day: 17/31 days" in html
    assert "Apr 1, 2025" in html and "May 1, 2025" in html  # issue and due dates
    totals = html.split('<table class="totals">', 1)[1]
    assert re.search(r'class="total">.*?\$685\.48', totals, flags=re.S)
    assert re.search(r'class="amount-due">.*?\$685\.48', totals, flags=re.S)
    assert '<html lang="en">' in html


def test_a_zero_amount_listing_line_is_printed(invoice):
    listing, prorated = rows(render_invoice_html(invoice))

    assert "Enterprise Support Program" in listing
    assert "CT-ESP-0042" in listing and "7010" in listing
    assert re.search(r'class="num amount">\$0\.00<', listing)
    assert "Managed Service" in prorated and "$1,250.00" in prorated and "$685.48" in prorated


def test_without_tax_lines_there_is_no_tax_table_but_a_zero_tax_total(invoice):
    html = render_invoice_html(invoice)

    assert 'class="taxes"' not in html
    assert re.search(r'class="tax-total">.*?\$0\.00', html, flags=re.S)


def test_tax_lines_show_name_rate_taxable_amount_and_amount(taxed_invoice):
    html = render_invoice_html(taxed_invoice)
    taxes = html.split('<table class="taxes">', 1)[1].split("</table>", 1)[0]

    assert "VAT" in taxes and "GB" in taxes
    assert "20%" in taxes
    assert "£2,000.00" in taxes and "£400.00" in taxes
    assert re.search(r'class="total">.*?£2,400\.00', html, flags=re.S)


def test_parties_show_addresses_countries_and_tax_ids(invoice):
    html = render_invoice_html(invoice)

    assert "Soracom US, Inc." in html and "EIN 12-3456789" in html
    assert "CA, United States" in html  # region "US-CA" printed without its prefix
    assert "Conecta Telemetria Ltda." in html and "SP, Brazil" in html
    assert "CNPJ 12.345.678/0001-90" in html


def test_footer_carries_the_short_hash_and_page_counters(invoice):
    html = render_invoice_html(invoice)

    assert HASH[:16] in html and HASH not in html
    assert 'content: "Page " counter(page) " of " counter(pages);' in html
    assert "Document hash" in html


def test_portuguese_invoice_in_dollars_and_in_reais():
    usd = render_invoice_html(make_invoice(language="pt-BR"))

    assert f"US${NBSP}685,48" in usd
    assert f"US${NBSP}0,00" in usd
    assert "1 de mar. de 2025 – 31 de mar. de 2025" in usd
    assert "Fatura" in usd and "Vencimento" in usd and "Contrato CT-MS-0007" in usd
    assert "SP, Brasil" in usd
    assert '<html lang="pt-BR">' in usd
    assert 'content: "Página " counter(page) " de " counter(pages);' in usd

    base = make_invoice()
    lines = [line.model_copy(update={"currency": "BRL"}) for line in base.lines]
    brl = render_invoice_html(make_invoice(language="pt-BR", currency="BRL", lines=lines))
    assert f"R${NBSP}685,48" in brl and f"R${NBSP}1.250,00" in brl
    assert "US$" not in brl


@pytest.mark.parametrize(
    ("language", "word", "amount"),
    [
        ("es", "Factura", f"685,48{NBSP}US$"),
        ("fr", "Facture", f"685,48{NBSP}$US"),
        ("de", "Rechnung", f"685,48{NBSP}$"),
        ("ja", "請求書", "$685.48"),
        ("nl", "Invoice", "$685.48"),  # no Dutch catalog: English words and English numbers
    ],
)
def test_other_languages(language, word, amount):
    html = render_invoice_html(make_invoice(language=language))

    assert f"<h1>{word}" in html
    assert amount in html


def test_customer_data_is_html_escaped():
    evil = "<script>alert('x')</script> & Sons"
    buyer = make_invoice().buyer.model_copy(update={"name": evil})
    seller = make_invoice().seller.model_copy(update={"name": 'Acme "Quotes" <b>'})
    html = render_invoice_html(
        make_invoice(buyer=buyer, seller=seller, notes=["<img src=x onerror=alert(1)>"])
    )

    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Sons" in html
    assert 'content="Acme &#34;Quotes&#34; &lt;b&gt;"' in html


def test_data_in_the_stylesheet_cannot_close_the_style_element():
    html = render_invoice_html(make_invoice(number='X</style><script>alert(1)</script>"'))
    style = html.split("<style>", 1)[1].split("</style>", 1)[0]

    assert "<" not in style.replace("\\00003c", "")
    assert "<script>" not in html
    assert html.count("</style>") == 1


def test_a_draft_has_no_number_and_no_hash_yet():
    html = render_invoice_html(make_invoice(status="draft", number=None, content_hash=None))

    assert 'class="badge">Draft<' in html
    assert 'class="invoice-number">Draft<' in html
    assert "Document hash" not in html


def test_the_template_comes_from_the_invoice():
    with pytest.raises(NonRetryableError, match="no invoice template 'invoice_v0.html.j2'"):
        render_invoice_html(make_invoice(template_version="invoice_v0"))
    for bad in ("../invoice_v1", "invoice_v1.html", "", "Invoice_V1"):
        with pytest.raises(NonRetryableError):
            render_invoice_html(make_invoice(template_version=bad))


def test_rendering_is_deterministic(invoice):
    assert render_invoice_html(invoice) == render_invoice_html(invoice)


@pytest.mark.parametrize(
    ("name", "factory"),
    [
        ("invoice_v1.en", lambda: make_invoice()),
        ("invoice_v1.pt-BR", lambda: make_invoice(language="pt-BR")),
        ("invoice_v1.en.tax", lambda: make_taxed_invoice()),
        ("invoice_v2.en.branded", lambda: _branded()),
        ("invoice_v2.de.credit_note", lambda: _credit_note()),
        ("invoice_v2.fr.proforma", lambda: (_draft(language="fr"), "proforma")),
        ("invoice_v2.en.preview", lambda: (_draft(), "preview")),
        ("invoice_v3.de.reverse_charge_credit_note", lambda: make_reverse_charge_credit_note()),
    ],
)
def test_golden_html(name, factory):
    """A released template must keep rendering stored invoices the same.

    After an intended change to a template (or a babel upgrade that changes formats),
    regenerate with UPDATE_GOLDEN=1 and review the diff.
    """
    path = GOLDEN / f"{name}.html"
    made = factory()
    invoice, mode = made if isinstance(made, tuple) else (made, "document")
    html = render_invoice_html(invoice, mode)
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(html, encoding="utf-8")
    assert html == path.read_text(encoding="utf-8")


def _branded():
    invoice = make_taxed_invoice(template_version="invoice_v2", branding=Branding(accent_color="#0d6e57"),
                                 custom_fields={"po_number": "PO-4471", "project_code": "Alpha"})
    invoice.lines[0].attributes = {"project": "alpha"}
    return invoice


def _credit_note():
    base = make_invoice(template_version="invoice_v2", language="de")
    lines = [base.lines[1].model_copy(update={
        "kind": "credit", "amount": -Decimal("100.00"), "unit_price": -Decimal("100.00"), "quantity": Decimal(1),
        "credited_line": 1, "description": f"Credit: {base.lines[1].description}"})]
    return base.model_copy(update={
        "kind": "credit_note", "number": "SORUS-CN-000007", "credit_note_of": base.id, "lines": lines,
        "subtotal": -Decimal("100.00"), "tax_total": Decimal("0.00"), "total": -Decimal("100.00"),
        "amount_due": -Decimal("100.00"), "notes": ["Credit note for invoice SORUS-2025-000123: SLA"],
        "related": [DocumentLink(relation="corrects", id=base.id, number=base.number, issue_date=base.issue_date)]})


def _draft(**changes):
    return make_invoice(template_version="invoice_v2", status="draft", number=None, sequence=None,
                        content_hash=None, finalized_at=None, **changes)


def test_v2_prints_what_each_kind_of_document_must_say():
    credit = render_invoice_html(_credit_note())
    assert "Gutschrift" in credit and "Korrigiert die Rechnung SORUS-2025-000123 vom 01.04.2025" in credit
    assert "Gutgeschriebener Betrag" in credit and "Zahlbetrag" not in credit
    proforma = render_invoice_html(_draft(language="fr"), "proforma")
    assert "Facture pro forma" in proforma and "ni une facture ni une demande de paiement" in proforma
    assert "Montant dû" not in proforma  # nothing is due on a pro-forma
    branded = render_invoice_html(_branded())
    assert ":root { --accent: #0d6e57; }" in branded and "PO-4471" in branded and "Project alpha" in branded
    with pytest.raises(NonRetryableError):
        render_invoice_html(_draft(), "quote")


def test_a_bad_accent_colour_stored_somehow_falls_back_to_the_default():
    invoice = make_invoice(template_version="invoice_v2", branding=Branding(accent_color="red;}</style><script>"))
    html = render_invoice_html(invoice)
    assert ":root { --accent: #1f4e79; }" in html and "<script>" not in html


# --- formatting helpers ---------------------------------------------------------------------

def test_service_period_prints_inclusive_dates():
    assert service_period(date(2025, 3, 1), date(2025, 4, 1), "en") == "Mar 1, 2025 – Mar 31, 2025"
    assert service_period(date(2025, 3, 1), date(2025, 3, 2), "en") == "Mar 1, 2025"
    assert service_period(date(2025, 3, 1), None, "en") == "Mar 1, 2025"
    assert service_period(None, None, "en") == ""
    assert service_period(date(2024, 2, 1), date(2024, 3, 1), "de") == "01.02.2024 – 29.02.2024"


def test_numbers_keep_their_significant_digits():
    assert quantity(Decimal("1.000000"), "en") == "1"
    assert quantity(Decimal("1.500"), "en") == "1.5"
    assert quantity(Decimal("1234.125"), "pt_BR") == "1.234,125"
    assert quantity(Decimal("100"), "en") == "100"
    assert money(Decimal("0.0025"), "USD", "en") == "$0.0025"
    assert money(Decimal("10"), "USD", "en") == "$10.00"
    assert money(Decimal("1250"), "JPY", "ja") == "￥1,250"
    assert money(Decimal("-10.00"), "EUR", "fr") == f"-10,00{NBSP}€"
    assert percent(Decimal("0.20"), "en") == "20%"
    assert percent(Decimal("0.0825"), "en") == "8.25%"
    assert region_and_country(None, "JP", "ja") == "日本"
    assert region_and_country("ON", "CA", "fr") == "ON, Canada"


def test_css_strings_escape_everything_outside_a_safe_set():
    assert css_string("Page 1") == '"Page 1"'
    assert css_string('a"b\\c<d>') == '"a\\000022b\\00005cc\\00003cd\\00003e"'
    assert css_page_counter("{page} / {pages} ページ") == (
        'counter(page) " / " counter(pages) " ページ"'
    )
