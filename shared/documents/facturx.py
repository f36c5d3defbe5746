"""Factur-X (ZUGFeRD 2) invoices: the CII XML of `cii.py` embedded in the invoice's PDF/A-3.

The factur-x library (github.com/akretion/factur-x) checks the XML against the Factur-X
EN 16931 XSD, attaches it as `factur-x.xml` (AFRelationship `Data`) and writes the XMP
metadata that declares the profile ("EN 16931"). It does not make a PDF into a PDF/A: the PDF
given must already be PDF/A-3 (weasyprint writes one with `pdf_variant="pdf/a-3b"`), and one
that does not declare it is refused.

The library stamps the current time into the PDF's dates, so two runs give different bytes.
"""

from __future__ import annotations

from io import BytesIO

from facturx import generate_from_binary
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from shared.billing.errors import ValidationError
from shared.billing.models import Invoice
from shared.documents.cii import invoice_to_cii

PROFILE = "en16931"
PDFA_PART = "3"


def facturx_pdf(
    pdf_bytes: bytes,
    invoice: Invoice,
    credit_note_of: Invoice | None = None,
    *,
    seller_endpoint: str | None = None,
    buyer_endpoint: str | None = None,
) -> bytes:
    """The invoice's PDF/A-3 with its EN 16931 CII XML embedded: a Factur-X EN 16931 document."""
    _require_pdfa3(pdf_bytes)
    xml = invoice_to_cii(invoice, credit_note_of, seller_endpoint=seller_endpoint, buyer_endpoint=buyer_endpoint)
    kind = "Credit note" if credit_note_of is not None else "Invoice"
    metadata = {
        "author": invoice.seller.name,
        "keywords": "Factur-X, Invoice",
        "title": f"{invoice.seller.name}: {kind} {invoice.number}",
        "subject": f"Factur-X {kind.lower()} {invoice.number} dated {invoice.issue_date} "
                   f"issued by {invoice.seller.name}",
    }
    return generate_from_binary(
        pdf_bytes, xml, flavor="factur-x", level=PROFILE, check_xsd=True, pdf_metadata=metadata,
        lang=invoice.language,
    )


def _require_pdfa3(pdf_bytes: bytes) -> None:
    try:
        metadata = PdfReader(BytesIO(pdf_bytes)).xmp_metadata
    except (PyPdfError, ValueError) as error:
        raise ValidationError(f"not a readable PDF: {error}", param="pdf_bytes") from None
    part = metadata.pdfaid_part if metadata is not None else None
    if str(part) != PDFA_PART:
        raise ValidationError(
            f"Factur-X needs a PDF/A-3 (render with pdf_variant='pdf/a-3b'); this PDF declares PDF/A part {part}",
            param="pdf_bytes",
        )
