"""An invoice's totals and its content hash."""

from __future__ import annotations

import hashlib
import json
import re
import string
from datetime import timedelta
from decimal import Decimal

from shared.billing.csvs import csv_text
from shared.billing.models import Invoice, InvoiceLine
from shared.billing.money import ZERO, round_money

# What may change after finalization: status and its history, payments and credits, delivery, storage.
HASHED_FIELDS_EXCLUDED = {"content_hash", "pdf_key", "delivery_status", "status", "version", "status_history",
                          "amount_paid", "amount_credited", "amount_remaining", "credits", "attachments",
                          "replaced_by"}
# Fields added after documents were first issued: left out of the canonical content while empty,
# so documents finalized before they existed still verify.
HASH_OMITTED_WHEN_EMPTY = {"branding", "related", "balance_applied", "balance_credited"}
LINE_HASH_OMITTED_WHEN_EMPTY = {"attributes"}
CREDIT_NOTE_NOTE = "Credit note for invoice {number} of {date}: {reason}"
CREDIT_LINE = "Credit: {description}"  # a credit note's line, from the invoice line it credits


def document_number(number_format: str, prefix: str, number: int) -> str:
    """The document number of sequence `number` (1-based) in a series: e.g. INV-000042."""
    return number_format.format(prefix=prefix, number=number)


# How {number} may be written: an integer presentation (decimal, hex, octal, binary) with fill, alignment,
# sign, width and grouping, which all keep distinct numbers distinct. No precision, no conversion (!s, !r
# would allow truncating it: {number!s:.3}), no float presentation (e, f, g, %: rounded for large numbers).
_NUMBER_SPEC = re.compile(r"^(?:.?[<>=^])?[+\- ]?z?#?0?\d*[,_]?[dxXob]?$")
NUMBER_FORMAT_SAMPLES = (1, 2, 9, 10, 99, 100, 999, 1000, 1001, 9999, 10_000, 99_999, 100_000, 999_999, 10**6,
                         10**6 + 1, 10**7, 10**8, 10**9 - 1, 10**9)


def number_format_problem(number_format: str) -> str | None:
    """Why `number_format` could give two documents the same number (or cannot be used), or None.

    The format is analysed field by field ({prefix} and {number} only, {number} written as an integer
    that keeps distinct numbers distinct), then rendered for sample numbers from 1 to 10^9 as a check.
    """
    numbered = False
    try:
        fields = list(string.Formatter().parse(number_format))
    except ValueError as error:
        return f"'{number_format}' is not a format string: {error}"
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in ("prefix", "number"):
            return f"'{{{name}}}' is not a field of a number format: use {{prefix}} and {{number}}"
        if "{" in (spec or ""):
            return "a number format has no nested fields"
        if name == "number":
            numbered = True
            if conversion is not None or not _NUMBER_SPEC.match(spec or ""):
                return (f"'{{number{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}' could "
                        f"write two numbers alike: write it as an integer, e.g. {{number:06d}}")
    if not numbered:
        return "the number format must contain {number} so every document gets its own number"
    try:
        rendered = {number_format.format(prefix="P", number=n) for n in NUMBER_FORMAT_SAMPLES}
    except (KeyError, IndexError, ValueError) as error:
        return f"'{number_format}' is not a number format with {{prefix}} and {{number}}: {error}"
    if len(rendered) != len(NUMBER_FORMAT_SAMPLES):
        return f"'{number_format}' writes two of the numbers 1 to 10^9 alike"
    return None


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
    for name in HASH_OMITTED_WHEN_EMPTY:
        if not content.get(name):
            content.pop(name, None)
    for line in content["lines"]:
        for name in LINE_HASH_OMITTED_WHEN_EMPTY:
            if not line.get(name):
                line.pop(name, None)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


LINE_COLUMNS = ("document_number", "line", "kind", "description", "charge_code", "subscription_id", "external_id",
                "period_start", "period_end_inclusive", "quantity", "unit_price", "amount", "currency", "gl_code",
                "tax_code", "metric_code", "group", "usage_records", "proration")


def lines_csv(document: Invoice) -> str:
    """The lines of an invoice or credit note as CSV (end dates inclusive; every text cell formula-safe)."""
    rows = []
    for index, line in enumerate(document.lines):
        last_day = line.period_end - timedelta(days=1) if line.period_end else None
        rows.append([document.number, index, line.kind, line.description, line.charge_code,
                     line.subscription_id, line.external_id, line.period_start, last_day,
                     line.quantity, line.unit_price, line.amount, line.currency, line.gl_code, line.tax_code,
                     line.metric_code, line.group, line.usage_records, line.proration])
    return csv_text(LINE_COLUMNS, rows)
