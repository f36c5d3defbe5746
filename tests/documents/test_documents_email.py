"""The invoice email in the customer's language."""

from __future__ import annotations

from decimal import Decimal

import pytest
from document_fixtures import make_invoice

from shared.documents.email import invoice_email

NBSP = "\xa0"


def test_english_email(invoice):
    subject, text, html = invoice_email(invoice)

    assert subject == "Invoice SORUS-2025-000123 from Soracom US, Inc. — $685.48 due May 1, 2025"
    assert text.startswith("Hello Conecta Telemetria Ltda.,\n")
    assert "Amount due: $685.48" in text
    assert "Due date: May 1, 2025" in text
    assert text.rstrip().endswith("Soracom US, Inc.")
    assert "$685.48" in html and "SORUS-2025-000123" in html and '<html lang="en">' in html


@pytest.mark.parametrize(
    ("language", "subject"),
    [
        ("pt-BR", f"Fatura SORUS-2025-000123 de Soracom US, Inc. — US${NBSP}685,48 com "
                  "vencimento em 1 de mai. de 2025"),
        ("es", f"Factura SORUS-2025-000123 de Soracom US, Inc. — 685,48{NBSP}US$ con "
               "vencimiento el 1 may 2025"),
        ("fr", f"Facture SORUS-2025-000123 de Soracom US, Inc. — 685,48{NBSP}$US à régler "
               "avant le 1 mai 2025"),
        ("de", f"Rechnung SORUS-2025-000123 von Soracom US, Inc. — 685,48{NBSP}$ fällig am "
               "01.05.2025"),
        ("ja", "Soracom US, Inc. 請求書 SORUS-2025-000123 — $685.48（支払期日 2025/05/01）"),
        ("it", "Invoice SORUS-2025-000123 from Soracom US, Inc. — $685.48 due May 1, 2025"),
    ],
)
def test_subject_per_language(language, subject):
    assert invoice_email(make_invoice(language=language))[0] == subject


def test_names_are_escaped_in_html_but_not_in_text():
    buyer = make_invoice().buyer.model_copy(update={"name": "Smith & <Jones>"})
    _, text, html = invoice_email(make_invoice(buyer=buyer))

    assert "Hello Smith & <Jones>," in text
    assert "Smith &amp; &lt;Jones&gt;" in html and "<Jones>" not in html


def test_line_breaks_in_data_cannot_add_mail_headers():
    seller = make_invoice().seller.model_copy(update={"name": "Evil\r\nBcc: all@example.com"})
    subject, _, _ = invoice_email(make_invoice(seller=seller))

    assert "\r" not in subject and "\n" not in subject
    assert "Evil Bcc: all@example.com" in subject


def test_the_pay_link_is_left_out_when_nothing_is_left_to_pay():
    link = "https://pay.example/inv_1"
    assert link in invoice_email(make_invoice(), pay_url=link)[1]
    covered = make_invoice(amount_due=Decimal("0.00"), balance_applied=Decimal("685.48"))  # by the credit balance
    assert link not in invoice_email(covered, pay_url=link)[1]
