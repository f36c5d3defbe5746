"""The invoice email (subject, text, HTML) in the invoice's language; the PDF is attached by
the caller. Cheap to import: jinja2 and babel only, no weasyprint."""

from __future__ import annotations

import re

from shared.billing.models import Invoice
from shared.documents.html import context, environment, medium_date, money, template_name

EMAIL_TEMPLATE = "email_invoice_v1"
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")


def _one_line(text: str) -> str:
    """A header value: no line breaks from the data can start a new header."""
    return _LINE_BREAKS.sub(" ", text).strip()


def invoice_email(invoice: Invoice) -> tuple[str, str, str]:
    """(subject, text body, HTML body) for sending `invoice`, in its language."""
    ctx = context(invoice)
    t, locale = ctx["t"], ctx["locale"]
    values = {
        "number": invoice.number or t["draft"],
        "seller": invoice.seller.name,
        "buyer": invoice.buyer.name,
        "amount": money(invoice.amount_due, invoice.currency, locale),
        "due_date": medium_date(invoice.due_date, locale),
        "issue_date": medium_date(invoice.issue_date, locale),
    }
    ctx.update(
        values=values,
        subject=_one_line(t["email_subject"].format(**values)),
        greeting=t["email_greeting"].format(**values),
        body=t["email_body"].format(**values),
    )
    env = environment()
    text = env.get_template(template_name(EMAIL_TEMPLATE, "txt.j2")).render(ctx)
    html = env.get_template(template_name(EMAIL_TEMPLATE, "html.j2")).render(ctx)
    return ctx["subject"], text, html
