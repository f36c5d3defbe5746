"""The invoice email (subject, text, HTML) in the invoice's language; the PDF is attached by
the caller. Cheap to import: jinja2 and babel only, no weasyprint."""

from __future__ import annotations

import re
from string import Formatter
from urllib.parse import quote

from shared.billing.errors import NonRetryableError
from shared.billing.models import Invoice
from shared.documents.html import context, environment, medium_date, money, template_name
from shared.documents.labels import catalog_language

EMAIL_TEMPLATE = "email_invoice_v1"
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")

# The pay-link caption, per catalog language of shared/documents/labels.py.
PAY_LABELS: dict[str, str] = {
    "en": "Pay this invoice online",
    "pt-BR": "Pagar esta fatura online",
    "es": "Pagar esta factura en línea",
    "fr": "Payer cette facture en ligne",
    "de": "Rechnung online bezahlen",
    "ja": "オンラインで支払う",
}
PAY_URL_FIELDS = ("invoice_id", "number", "customer_id")


def _one_line(text: str) -> str:
    """A header value: no line breaks from the data can start a new header."""
    return _LINE_BREAKS.sub(" ", text).strip()


def pay_url(template: str | None, invoice: Invoice) -> str | None:
    """`PAY_URL_TEMPLATE` filled for `invoice` (`https://pay.example/{invoice_id}`); None without one.

    Fields: `{invoice_id}`, `{number}`, `{customer_id}`, each percent-encoded as one path segment.
    """
    if not template:
        return None
    if not template.startswith(("https://", "http://")):
        raise NonRetryableError(f"PAY_URL_TEMPLATE must be an http(s) URL, got {template!r}",
                                param="PAY_URL_TEMPLATE", code="pay_url_template_invalid")
    names = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
    unknown = names - set(PAY_URL_FIELDS)
    if unknown:
        raise NonRetryableError(f"PAY_URL_TEMPLATE: unknown field(s) {sorted(unknown)}; use {list(PAY_URL_FIELDS)}",
                                param="PAY_URL_TEMPLATE", code="pay_url_template_invalid")
    values = {"invoice_id": invoice.id, "number": invoice.number or "", "customer_id": invoice.customer_id}
    return template.format(**{k: quote(v, safe="") for k, v in values.items()})


def invoice_email(invoice: Invoice, pay_url: str | None = None) -> tuple[str, str, str]:
    """(subject, text body, HTML body) for sending `invoice`, in its language, with a pay link when given."""
    ctx = context(invoice)
    t, locale = ctx["t"], ctx["locale"]
    credit_note = invoice.kind == "credit_note"
    corrected = next((link for link in invoice.related if link.relation == "corrects"), None)
    values = {
        "number": invoice.number or t["draft"],
        "seller": invoice.seller.name,
        "buyer": invoice.buyer.name,
        "amount": money(-invoice.total if credit_note else invoice.amount_due, invoice.currency, locale),
        "due_date": medium_date(invoice.due_date, locale),
        "issue_date": medium_date(invoice.issue_date, locale),
        "invoice_number": (corrected.number if corrected else None) or invoice.credit_note_of or "",
    }
    prefix = "cn_" if credit_note else ""
    ctx.update(
        values=values,
        credit_note=credit_note,
        subject=_one_line(t[f"{prefix}email_subject"].format(**values)),
        greeting=t["email_greeting"].format(**values),
        body=t[f"{prefix}email_body"].format(**values),
        pay_url=pay_url if not credit_note and invoice.amount_due > 0 else None,  # nothing to pay: no link
        pay_label=PAY_LABELS.get(catalog_language(invoice.language), PAY_LABELS["en"]),
    )
    env = environment()
    text = env.get_template(template_name(EMAIL_TEMPLATE, "txt.j2")).render(ctx)
    html = env.get_template(template_name(EMAIL_TEMPLATE, "html.j2")).render(ctx)
    return ctx["subject"], text, html
