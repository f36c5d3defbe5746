"""An invoice's totals and its content hash."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from shared.billing.models import Invoice, InvoiceLine
from shared.billing.money import ZERO, round_money

# What may change after finalization: status and its history, payments and credits, delivery, storage.
HASHED_FIELDS_EXCLUDED = {"content_hash", "pdf_key", "delivery_status", "status", "version", "status_history",
                          "amount_paid", "amount_credited", "amount_remaining", "credits"}


def document_number(number_format: str, prefix: str, number: int) -> str:
    """The document number of sequence `number` (1-based) in a series: e.g. INV-000042."""
    return number_format.format(prefix=prefix, number=number)


def totals(lines: list[InvoiceLine], tax_total: Decimal, currency: str) -> dict[str, Decimal]:
    """Totals from already rounded lines: nothing is rounded again here."""
    subtotal = sum((line.amount for line in lines), ZERO)
    total = subtotal + tax_total
    return {
        "subtotal": round_money(subtotal, currency),
        "tax_total": round_money(tax_total, currency),
        "total": round_money(total, currency),
        "amount_due": round_money(total, currency),
    }


def content_hash(invoice: Invoice) -> str:
    """SHA-256 of the invoice's canonical content, chained through `previous_hash`."""
    content = invoice.model_dump(mode="json", exclude=HASHED_FIELDS_EXCLUDED)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
