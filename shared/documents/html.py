"""Invoice HTML from versioned jinja2 templates, with amounts and dates formatted per language.

`render_invoice_html` loads `templates/<invoice.template_version>.html.j2`, so an invoice
re-renders with the template it was issued with. Cheap to import (jinja2 and babel only):
the API may import it; the PDF step lives in `shared.documents.pdf`.
"""

from __future__ import annotations

import base64
import re
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    pass_context,
    select_autoescape,
)
from markupsafe import Markup

from shared.billing.errors import NonRetryableError
from shared.billing.models import Invoice
from shared.documents.labels import babel_locale, catalog_language, labels_for
from shared.documents.wording import localized, localized_tax_name

TEMPLATES = Path(__file__).parent / "templates"
HASH_CHARS = 16  # how much of the content hash the document prints
_TEMPLATE_VERSION = re.compile(r"^[a-z][a-z0-9_]*$")
_CSS_PLAIN = re.compile(r"[\w .,:;·/()#+\-]", re.UNICODE)
ACCENT = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_ACCENT = "#1f4e79"
MODES = ("document", "preview", "proforma")  # the document of record; a draft's preview; a pro-forma


# --- formatting (plain functions, also used by the email module) ---------------------------

def money(amount: Decimal, currency: str, locale: str) -> str:
    """`$1,250.00`, `US$ 1.250,00`; extra precision is shown, never rounded away ($0.0025)."""
    return format_currency(amount, currency, locale=locale, decimal_quantization=False)


def quantity(value: Decimal, locale: str) -> str:
    """`1`, `1.5`, `1,234.125`: every significant digit, no trailing zeros."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return format_decimal(Decimal(text), locale=locale, decimal_quantization=False)


def medium_date(value: date, locale: str) -> str:
    """`Mar 31, 2025`, `31 de mar. de 2025`, `2025/03/31`."""
    return format_date(value, format="medium", locale=locale)


def inclusive_end(exclusive_end: date) -> date:
    """The model's `*_end` dates are exclusive; documents print the last day of service."""
    return exclusive_end - timedelta(days=1)


def service_period(start: date | None, end: date | None, locale: str) -> str:
    """`Mar 1, 2025 – Mar 31, 2025` for [2025-03-01, 2025-04-01); one date for one day."""
    if start is None and end is None:
        return ""
    if end is None:
        return medium_date(start, locale)
    last = inclusive_end(end)
    if start is None or last <= start:
        return medium_date(start or last, locale)
    return f"{medium_date(start, locale)} – {medium_date(last, locale)}"


def percent(rate: Decimal, locale: str) -> str:
    """A tax rate stored as a fraction (`0.2` -> `20%`, `0.0825` -> `8.25%`)."""
    return format_percent(rate, locale=locale, decimal_quantization=False)


def country_name(code: str, locale: str) -> str:
    """`BR` -> `Brazil` / `Brasil` / `ブラジル`; an unknown code prints as given."""
    return Locale.parse(locale).territories.get(code.upper(), code)


def region_and_country(region: str | None, country: str, locale: str) -> str:
    """`CA, United States` (a region written `US-CA` loses its country prefix)."""
    name = country_name(country, locale)
    if not region:
        return name
    prefix = f"{country.upper()}-"
    short = region[len(prefix):] if region.upper().startswith(prefix) else region
    return f"{short}, {name}"


def short_hash(content_hash: str | None) -> str:
    return (content_hash or "")[:HASH_CHARS]


def css_string(text: str) -> Markup:
    """A quoted CSS string that is also inert inside an HTML <style> element.

    Anything outside a small safe set is written as a CSS hex escape, so no `<`, `&`, quote
    or backslash from the data can end the string or the element.
    """
    body = "".join(ch if _CSS_PLAIN.fullmatch(ch) else f"\\{ord(ch):06x}" for ch in text)
    return Markup(f'"{body}"')


def css_page_counter(label: str) -> Markup:
    """`Page {page} of {pages}` -> `"Page " counter(page) " of " counter(pages)`."""
    parts: list[str] = []
    for piece in re.split(r"(\{page\}|\{pages\})", label):
        if piece == "{page}":
            parts.append("counter(page)")
        elif piece == "{pages}":
            parts.append("counter(pages)")
        elif piece:
            parts.append(str(css_string(piece)))
    return Markup(" ".join(parts))


# --- jinja2 ---------------------------------------------------------------------------------

@pass_context
def _money(ctx: Any, amount: Decimal, currency: str) -> str:
    return money(amount, currency, ctx["locale"])


@pass_context
def _quantity(ctx: Any, value: Decimal) -> str:
    return quantity(value, ctx["locale"])


@pass_context
def _date(ctx: Any, value: date) -> str:
    return medium_date(value, ctx["locale"])


@pass_context
def _period(ctx: Any, line: Any) -> str:
    return service_period(line.period_start, line.period_end, ctx["locale"])


@pass_context
def _percent(ctx: Any, rate: Decimal) -> str:
    return percent(rate, ctx["locale"])


@pass_context
def _place(ctx: Any, party: Any) -> str:
    return region_and_country(party.region, party.country, ctx["locale"])


@pass_context
def _field_label(ctx: Any, name: str) -> str:
    """A custom field's caption: the catalog's (`po_number` -> `PO number`), else the name spelled out."""
    return ctx["t"].get(name) or name.replace("_", " ").capitalize()


@pass_context
def _wording(ctx: Any, text: str) -> str:
    """The platform's own wording in the document's language (`wording.py`); other text as stored."""
    return localized(text, ctx["lang"], lambda value: medium_date(value, ctx["locale"]))


@pass_context
def _tax_name(ctx: Any, name: str) -> str:
    return localized_tax_name(name, ctx["lang"])


@pass_context
def _link_texts(ctx: Any, links: list) -> list[str]:
    """One sentence per merge/split/re-bill link, in the document's language."""
    t, texts = ctx["t"], []
    merged = [link.id for link in links if link.relation == "merged_from"]
    if merged:
        texts.append(t["merged_from"].format(ids=", ".join(merged)))
    for link in links:
        ref = link.number or link.id
        if link.relation == "split_from":
            texts.append(t["split_from"].format(
                ref=t["split_share"].format(share=link.share, ref=ref) if link.share else ref))
        elif link.relation == "rebill_of":
            texts.append(t["rebill_of"].format(number=ref, date=medium_date(link.issue_date, ctx["locale"])))
    return texts


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        money=_money,
        quantity=_quantity,
        date=_date,
        period=_period,
        percent=_percent,
        place=_place,
        inclusive_end=inclusive_end,
        short_hash=short_hash,
        css_string=css_string,
        css_page_counter=css_page_counter,
        field_label=_field_label,
        link_texts=_link_texts,
        wording=_wording,
        tax_name=_tax_name,
    )
    return env


def context(invoice: Invoice, mode: str = "document", logo: tuple[str, bytes] | None = None) -> dict[str, Any]:
    """What every invoice template (document or email) receives.

    `mode`: "document" (the document of record), "preview" (a draft, watermarked) or "proforma".
    `logo`: (media type, bytes) of the logo the invoice's branding names, read by the caller.
    """
    if mode not in MODES:
        raise NonRetryableError(f"'{mode}' is not a document mode {MODES}", param="mode")
    branding = invoice.branding
    accent = branding.accent_color if branding and ACCENT.fullmatch(branding.accent_color) else DEFAULT_ACCENT
    return {
        "invoice": invoice,
        "t": labels_for(invoice.language),
        "locale": babel_locale(invoice.language),
        "lang": catalog_language(invoice.language),
        "mode": mode,
        "accent": accent,
        "logo": f"data:{logo[0]};base64,{base64.b64encode(logo[1]).decode()}" if logo else None,
    }


def template_name(template_version: str, suffix: str = "html.j2") -> str:
    if not _TEMPLATE_VERSION.fullmatch(template_version or ""):
        raise NonRetryableError(
            f"'{template_version}' is not a template version", code="template_missing"
        )
    return f"{template_version}.{suffix}"


def render_invoice_html(invoice: Invoice, mode: str = "document", logo: tuple[str, bytes] | None = None) -> str:
    """The invoice as a self-contained HTML document (styles and logo inlined), ready for weasyprint."""
    name = template_name(invoice.template_version)
    try:
        template = environment().get_template(name)
    except TemplateNotFound:
        raise NonRetryableError(
            f"no invoice template '{name}' for invoice {invoice.id}", code="template_missing"
        ) from None
    return template.render(context(invoice, mode, logo))
