"""Finance's exports: CSV text built from invoices and revenue schedules, and the day they are due.

Every file is UTF-8 text in RFC 4180 CSV (comma separated, double quotes where needed, CRLF line
ends) with a header row. Rows are sorted by their leading columns, so the same inputs give
byte-identical files whatever order they come in. Amounts are plain decimals at the currency's
minor unit ("1250.00", JPY "1250"), negative with a leading "-"; months are "YYYY-MM", dates
ISO 8601. Every text cell (names, codes, ids, descriptions) that a spreadsheet would run as a
formula (starting with = + - @) gets a leading ' (OWASP, CSV injection); amounts are written as
numbers and keep their "-" (shared.billing.csvs).

1. `recognized_revenue_csv(schedules, month, subscription_ids=None)`: revenue recognized in the
   month, for all accounts or only `subscription_ids` (the annual pre-pay accounts of seed 000
   §6.6: `annual_prepay_subscription_ids`). One row per customer, subscription, charge, bundle
   component, POB and GL code with revenue in the month, or billed by the month's end for a service
   period that overlaps it (a $0 contract shows 0.00: seed 000 UC06, and reconciliation finds it);
   a contract with no service left has no row (UC04: after a terminated annual contract's last
   renewal, its rows stop).
   month, customer_id, subscription_id, external_id, charge_code, component, pob_identifier,
   gl_code, currency, recognized

2. `deferred_rollforward_csv(schedules, month, subscription_ids=None)`: per account and currency,
   opening_deferred + billed - reversed - recognized = closing_deferred. Billed: lines of invoices
   issued in the month; reversed: billing reversed in the month by credit notes and voids;
   recognized: net of the catch-up reversals of credit notes and voids; deferred: billed and not
   yet recognized (negative when revenue was recognized before it was billed). Rows where all five
   are zero are left out.
   month, customer_id, currency, opening_deferred, billed, reversed, recognized, closing_deferred

3. `gl_journal_csv(invoices, schedules, month, accounts)`: balanced entries (debits = credits in
   each entry). Billing, one entry per invoice or credit note issued in the month (drafts post
   nothing; an invoice voided later was issued all the same): receivables = total, deferred revenue
   = the lines by their GL code, tax payable = the tax lines by jurisdiction; a credit note posts
   the same with the sides swapped, and so does the void of an invoice, in the month it was voided
   (entry `VOID-<number>`). Recognition, one entry per currency dated the month's last day: deferred revenue
   to the lines' revenue GL codes (7005, 7010...; `accounts.suspense` for a line without one).
   The deferred account moves by what the roll-forward shows (billed - recognized).
   entry_id, entry_date, source, document, currency, account, description, debit, credit
   (source: invoice, credit_note, void or recognition; document: the invoice number, or the month)

4. `invoice_register_csv(invoices, month)`: every numbered document issued in the month, with its
   status at the month's end (so a month's file stays as written), void ones included (numbering
   stays gapless), drafts left out; and a `void` row for each invoice voided in the month, its
   amounts negated, so the month's rows add up to what was invoiced net of credit notes and voids.
   month, document_type, number, invoice_id, status, issue_date, due_date, customer_id,
   buyer_name, buyer_country, currency, subtotal, tax_total, total, amount_due, lines,
   subscription_ids, external_ids   (lists joined with ";")

Due dates (seed 000 §6.6): a month's files are due on the first business day of the next month in
the billing entity's country: `export_due_date(month, country)`, with `first_business_day`
skipping the country's weekend and its public and bank holidays (the `holidays` package).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import holidays

from shared.billing.csvs import csv_text
from shared.billing.errors import ValidationError
from shared.billing.models import Invoice, Plan, Subscription
from shared.billing.money import ZERO, round_money
from shared.billing.revrec import (
    RevenueSchedule,
    check_month,
    is_credit_note,
    month_bounds,
    month_of,
    status_at_end_of,
    voided_on,
)

REVENUE_COLUMNS = ("month", "customer_id", "subscription_id", "external_id", "charge_code", "component",
                   "pob_identifier", "gl_code", "currency", "recognized")
ROLLFORWARD_COLUMNS = ("month", "customer_id", "currency", "opening_deferred", "billed", "reversed", "recognized",
                       "closing_deferred")
JOURNAL_COLUMNS = ("entry_id", "entry_date", "source", "document", "currency", "account", "description", "debit",
                   "credit")
REGISTER_COLUMNS = ("month", "document_type", "number", "invoice_id", "status", "issue_date", "due_date",
                    "customer_id", "buyer_name", "buyer_country", "currency", "subtotal", "tax_total", "total",
                    "amount_due", "lines", "subscription_ids", "external_ids")


@dataclass(frozen=True)
class GlAccounts:
    """The balance-sheet accounts of the journal (revenue accounts are the lines' GL codes)."""

    receivables: str
    deferred_revenue: str
    tax_payable: str
    suspense: str  # revenue of a line without a GL code, to be reclassified


def _money(amount: Decimal, currency: str) -> Decimal:
    """An amount at the currency's minor unit, written as a number (csvs.cell)."""
    return round_money(amount, currency)


def previous_month(month: str) -> str:
    return month_of(month_bounds(month)[0] - timedelta(days=1))


def annual_prepay_subscription_ids(subscriptions: Iterable[Subscription], plans: Mapping[str, Plan]) -> set[str]:
    """Subscriptions whose plan bills a recurring charge annually in advance (seed 000: annual pre-pay)."""
    return {s.id for s in subscriptions
            if s.plan_code in plans and any(c.type == "recurring" and c.billing_period == "annual"
                                            and c.timing == "in_advance" for c in plans[s.plan_code].charges)}


def _selected(schedules: Iterable[RevenueSchedule],
              subscription_ids: Collection[str] | None) -> list[RevenueSchedule]:
    return [s for s in schedules if subscription_ids is None or s.subscription_id in subscription_ids]


def recognized_revenue_csv(schedules: Iterable[RevenueSchedule], month: str,
                           subscription_ids: Collection[str] | None = None) -> str:
    check_month(month)
    totals: dict[tuple, Decimal] = {}
    first, following = month_bounds(month)
    for s in _selected(schedules, subscription_ids):
        amount = s.recognized_in(month)
        in_service = (s.billed_period <= month and s.service_start < following and s.service_end > first
                      and (s.voided is None or month < s.voided))
        if amount != 0 or in_service:
            key = (s.customer_id, s.subscription_id or "", s.external_id or "", s.charge_code or "",
                   s.component or "", s.pob_identifier, s.gl_code or "", s.currency)
            totals[key] = totals.get(key, ZERO) + amount
    rows = [(month, customer, subscription, external, charge, component, pob, gl, currency,
             _money(amount, currency))
            for (customer, subscription, external, charge, component, pob, gl, currency), amount
            in sorted(totals.items())]
    return csv_text(REVENUE_COLUMNS, rows)


def deferred_rollforward_csv(schedules: Iterable[RevenueSchedule], month: str,
                             subscription_ids: Collection[str] | None = None) -> str:
    check_month(month)
    before = previous_month(month)
    sums: dict[tuple[str, str], list[Decimal]] = {}
    for s in _selected(schedules, subscription_ids):
        figures = sums.setdefault((s.customer_id, s.currency), [ZERO] * 5)
        for i, value in enumerate((s.deferred_at_end_of(before), s.billed_in(month), s.reversed_in(month),
                                   s.recognized_in(month), s.deferred_at_end_of(month))):
            figures[i] += value
    rows = []
    for (customer, currency), figures in sorted(sums.items()):
        opening, billed, reversed_, recognized, closing = figures
        if opening + billed - reversed_ - recognized != closing:  # pragma: no cover - an identity of the sums
            raise AssertionError(f"roll-forward of {customer} {currency} does not add up")
        if any(figures):
            rows.append((month, customer, currency, *(_money(v, currency) for v in figures)))
    return csv_text(ROLLFORWARD_COLUMNS, rows)


def _entry_rows(entry_id: str, day: date, source: str, document: str, currency: str,
                postings: Sequence[tuple[str, str, Decimal]]) -> list[tuple[str, ...]]:
    """Rows of one entry from (account, description, signed amount: + debit, - credit)."""
    rows = []
    for account, description, amount in postings:
        if amount == 0:
            continue
        debit, credit = (amount, ZERO) if amount > 0 else (ZERO, -amount)
        rows.append((entry_id, day.isoformat(), source, document, currency, account, description,
                     _money(debit, currency), _money(credit, currency)))
    return rows


def _billing_postings(invoice: Invoice, accounts: GlAccounts) -> list[tuple[str, str, Decimal]]:
    deferred: dict[str, Decimal] = {}
    for line in invoice.lines:
        deferred[line.gl_code or ""] = deferred.get(line.gl_code or "", ZERO) - line.amount
    taxes: dict[str, Decimal] = {}
    for tax in invoice.tax_lines:
        label = f"{tax.name} {tax.jurisdiction}"
        taxes[label] = taxes.get(label, ZERO) - tax.amount
    return [(accounts.receivables, "Receivable", invoice.total),
            *((accounts.deferred_revenue, f"Deferred revenue {gl or 'without GL code'}", amount)
              for gl, amount in sorted(deferred.items())),
            *((accounts.tax_payable, f"Tax {label}", amount) for label, amount in sorted(taxes.items()))]


def voided_in(invoice: Invoice, month: str) -> bool:
    day = voided_on(invoice)
    return day is not None and month_of(day) == month


def gl_journal_csv(invoices: Iterable[Invoice], schedules: Iterable[RevenueSchedule], month: str,
                   accounts: GlAccounts) -> str:
    check_month(month)
    invoices = list(invoices)
    rows: list[tuple[str, ...]] = []
    issued = [(i, "credit_note" if is_credit_note(i) else "invoice", i.issue_date, 1) for i in invoices
              if month_of(i.issue_date) == month and i.status != "draft"]
    voided = [(i, "void", voided_on(i), -1) for i in invoices if voided_in(i, month)]
    documents = sorted(issued + voided, key=lambda d: (d[2], d[0].number or "", d[0].id, d[1]))
    for index, (invoice, source, day, sign) in enumerate(documents):
        postings = _billing_postings(invoice, accounts)
        if sum((amount for _, _, amount in postings), ZERO) != 0:
            raise ValidationError(f"invoice {invoice.number or invoice.id}: lines and tax do not add up to its total",
                                  param=f"invoices[{index}].total")
        reference = invoice.number or invoice.id
        rows += _entry_rows(f"VOID-{reference}" if source == "void" else reference, day, source, reference,
                            invoice.currency, [(account, description, sign * amount)
                                               for account, description, amount in postings])
    revenue: dict[str, dict[str, Decimal]] = {}
    for s in schedules:
        amount = s.recognized_in(month)
        if amount != 0:
            by_account = revenue.setdefault(s.currency, {})
            account = s.gl_code or accounts.suspense
            by_account[account] = by_account.get(account, ZERO) + amount
    last_day = month_bounds(month)[1] - timedelta(days=1)
    for currency, by_account in sorted(revenue.items()):
        total = sum(by_account.values(), ZERO)
        postings = [(accounts.deferred_revenue, "Revenue recognized", total),
                    *((account, "Revenue" if account != accounts.suspense else "Revenue without GL code", -amount)
                      for account, amount in sorted(by_account.items()))]
        rows += _entry_rows(f"REV-{month}-{currency}", last_day, "recognition", month, currency, postings)
    return csv_text(JOURNAL_COLUMNS, rows)


def invoice_register_csv(invoices: Iterable[Invoice], month: str) -> str:
    check_month(month)
    invoices = list(invoices)
    issued = [(i, "credit_note" if is_credit_note(i) else "invoice", status_at_end_of(i, month), 1)
              for i in invoices if month_of(i.issue_date) == month and i.status != "draft"]
    voided = [(i, "void", "void", -1) for i in invoices if voided_in(i, month)]
    rows = []
    for invoice, document_type, status, sign in sorted(
            issued + voided, key=lambda d: (d[0].issue_date, d[0].number or "", d[0].id, d[1] == "void")):
        currency = invoice.currency
        rows.append((
            month, document_type, invoice.number or "", invoice.id, status, invoice.issue_date.isoformat(),
            invoice.due_date.isoformat(), invoice.customer_id, invoice.buyer.name, invoice.buyer.country,
            currency, *(_money(sign * amount, currency) for amount in (invoice.subtotal, invoice.tax_total,
                                                                       invoice.total, invoice.amount_due)),
            str(len(invoice.lines)), ";".join(invoice.subscription_ids),
            ";".join(sorted({line.external_id for line in invoice.lines if line.external_id})),
        ))
    return csv_text(REGISTER_COLUMNS, rows)


def first_business_day(year: int, month: int, country: str, subdivision: str | None = None) -> date:
    """The first day of the month that is neither a weekend day nor a public or bank holiday in
    `country` (ISO 3166-1 alpha-2; `subdivision` such as "US-NY" or "NY" for regional holidays). Bank
    holidays count where the calendar has them (Japan's 2-3 January, Australia's): banks and Finance
    teams are closed."""
    if not isinstance(month, int) or not 1 <= month <= 12:
        raise ValidationError(f"{month} is not a month number", param="month")
    if not isinstance(year, int) or not 1 <= year <= 9999:
        raise ValidationError(f"{year} is not a year", param="year")
    if subdivision and subdivision.startswith(f"{country}-"):
        subdivision = subdivision[len(country) + 1:]
    try:
        supported = holidays.country_holidays(country, subdiv=subdivision).supported_categories
        categories = tuple(c for c in (holidays.PUBLIC, holidays.BANK) if c in supported)
        calendar_ = holidays.country_holidays(country, subdiv=subdivision, years=year, categories=categories)
    except NotImplementedError:
        if subdivision:
            raise ValidationError(f"'{subdivision}' is not a subdivision of '{country}' the holiday calendars know",
                                  param="subdivision") from None
        raise ValidationError(f"no holiday calendar for country '{country}'", param="country") from None
    weekend = getattr(calendar_, "weekend", {5, 6})
    day = date(year, month, 1)
    while day.weekday() in weekend or day in calendar_:
        day += timedelta(days=1)
    return day


def export_due_date(month: str, country: str, subdivision: str | None = None) -> date:
    """The day a month's exports are due: the first business day of the next month (seed 000 §6.6)."""
    following = month_bounds(check_month(month))[1]
    return first_business_day(following.year, following.month, country, subdivision)
