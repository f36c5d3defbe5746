"""CSV as Finance receives it: RFC 4180, CRLF, a header row, every text cell made formula-safe.

A cell's type decides how it is written: a number (Decimal, int) is written as the number it is, so
"-12.50" stays machine-readable (a number is never a formula); a date as ISO 8601; anything else is
text, and text a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage
return) gets a leading apostrophe (OWASP, CSV injection). Callers pass amounts as Decimal, never as
preformatted strings, or they are treated as text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str | None) -> str:
    """Free text a spreadsheet would run as a formula gets a leading apostrophe."""
    value = value or ""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def cell(value: object) -> str:
    """One cell by its type: numbers as numbers, dates as ISO 8601, everything else as safe text."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return text_cell(str(value))


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([cell(name) for name in columns])
    writer.writerows([cell(value) for value in row] for row in rows)
    return buffer.getvalue()
