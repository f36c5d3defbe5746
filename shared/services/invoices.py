"""Finalized invoices: read and render to PDF (e-mail delivery: shared/services/delivery.py)."""

from __future__ import annotations

from collections.abc import Callable

from shared.billing.errors import ConflictError, NotFoundError
from shared.billing.models import Invoice
from shared.services.catalog import get_customer
from shared.services.context import Actor, Ports

PDF = "application/pdf"
Render = Callable[..., bytes]  # shared.documents.pdf.render_invoice_pdf: (invoice, mode, logo, facturx, credit_note_of)


def get_invoice(ports: Ports, invoice_id: str) -> Invoice:
    invoice = ports.repo.get_invoice(invoice_id)
    if invoice is None:
        raise NotFoundError(f"no invoice '{invoice_id}'", param="id")
    return invoice


def list_invoices(ports: Ports, limit: int, after: str | None, customer_id: str | None = None,
                  subscription_id: str | None = None, status: str | None = None, kind: str | None = None,
                  credit_note_of: str | None = None):
    """Invoices and credit notes (`kind` narrows to one), newest id last; filters narrow a customer's
    partition. `credit_note_of`: the credit notes of that invoice."""
    if subscription_id:
        sub = ports.repo.get_subscription(subscription_id)
        if sub is None:
            raise NotFoundError(f"no subscription '{subscription_id}'", param="subscription_id")
        if customer_id and customer_id != sub.customer_id:
            return [], False
        customer_id = sub.customer_id
    if credit_note_of:
        credited = ports.repo.get_invoice(credit_note_of)
        if credited is None or credited.kind != "invoice":
            raise NotFoundError(f"no invoice '{credit_note_of}'", param="invoice_id")
        if customer_id and get_customer(ports, customer_id, param="customer_id").id != credited.customer_id:
            return [], False
        customer_id = credited.customer_id
    if customer_id:
        customer_id = get_customer(ports, customer_id, param="customer_id").id  # an external id works too
    if not (subscription_id or status or kind or credit_note_of):
        return ports.repo.list_invoices(limit, after, customer_id)
    matches: list[Invoice] = []
    cursor = after
    while True:  # filter page by page until the page is full
        page, more = ports.repo.list_invoices(limit, cursor, customer_id)
        for invoice in page:
            if subscription_id and subscription_id not in invoice.subscription_ids:
                continue
            if status and invoice.status != status:
                continue
            if kind and invoice.kind != kind:
                continue
            if credit_note_of and invoice.credit_note_of != credit_note_of:
                continue
            matches.append(invoice)
            if len(matches) > limit:
                return matches[:limit], True
        if not more or not page:
            return matches, False
        cursor = page[-1].id


def pdf_key(invoice: Invoice) -> str:
    return f"invoices/{invoice.billing_entity_id}/{invoice.issue_date:%Y/%m}/{invoice.number}.pdf"


def render_pdf(ports: Ports, actor: Actor, invoice_id: str, render: Render) -> Invoice:
    """Render the finalized invoice or credit note once and store it; a repeat returns the stored key.

    The document has the branding it was issued with (its logo read from the documents bucket);
    for a customer who asked for Factur-X it is the Factur-X PDF/A-3 with its CII XML."""
    invoice = get_invoice(ports, invoice_id)
    if invoice.status == "draft":
        raise ConflictError("a draft has no PDF of record yet", code="invoice_not_finalized")
    if invoice.pdf_key:
        return invoice
    customer = get_customer(ports, invoice.customer_id)
    original = get_invoice(ports, invoice.credit_note_of) if invoice.credit_note_of else None
    pdf = render(invoice, mode="document", logo=logo_of(ports, invoice),
                 facturx=customer.document_format == "facturx", credit_note_of=original)
    key = pdf_key(invoice)
    ports.documents.put(key, pdf, PDF)
    invoice.pdf_key = key
    ports.repo.update_invoice(invoice)
    return invoice


def preview_pdf(ports: Ports, invoice_id: str, mode: str, render: Render) -> bytes:
    """A draft as its customer would see it: a watermarked preview, or a pro-forma. Nothing is stored."""
    invoice = get_invoice(ports, invoice_id)
    if invoice.status != "draft":
        raise ConflictError(f"invoice {invoice.number} is finalized: its PDF of record is at /pdf",
                            code="invoice_finalized")
    return render(invoice, mode=mode, logo=logo_of(ports, invoice))


def request_preview(ports: Ports, actor: Actor, invoice_id: str, mode: str) -> tuple[Invoice, bytes]:
    """Ask the renderer (`document_preview`, which has weasyprint) for a draft's preview or pro-forma."""
    actor.require("read")
    draft = get_invoice(ports, invoice_id)
    if draft.status != "draft":
        raise ConflictError(f"invoice {draft.number} is finalized: its PDF of record is at /pdf",
                            code="invoice_finalized")
    return draft, ports.previews.render(invoice_id, mode)


def logo_of(ports: Ports, invoice: Invoice) -> tuple[str, bytes] | None:
    """(media type, bytes) of the logo the document was branded with, if any."""
    logo = invoice.branding.logo if invoice.branding else None
    return (logo.media_type, ports.documents.get(logo.key)) if logo else None


def read_pdf(ports: Ports, invoice_id: str, kind: str | None = None) -> tuple[Invoice, bytes]:
    invoice = get_invoice(ports, invoice_id)
    if kind and invoice.kind != kind:
        raise NotFoundError(f"no {kind.replace('_', ' ')} '{invoice_id}'", param="id")
    if not invoice.pdf_key:
        raise NotFoundError(f"{invoice_id} has no PDF yet (it is rendered just after finalization)",
                            param="id", code="document_not_ready")
    return invoice, ports.documents.get(invoice.pdf_key)

