"""Tax: the provider port, the built-in rules provider, tax ID checks and the tax report.

Pure: no I/O, no clock. Engines (Avalara AvaTax, Stripe Tax) live in `shared/adapters/tax_providers.py`
and return the same `TaxResult`.

Conventions
- Rates are fractions (`Decimal("0.2")` is 20 %). Each rate table row says from which day it applies.
- Rate changes: each jurisdiction's time-of-supply rule (`TimeOfSupply`, `DEFAULT_TIME_OF_SUPPLY`) picks
  the day whose rate applies to the whole line: Canada and the UK the earlier of the invoice date and a
  payment made before it; the EU and Japan the day the supply is completed (the line's last day of
  service). `"days"` (the UK's election to apportion) splits the line by days of its service period
  instead. Sources: shared/billing/README.md, "Tax time of supply".
- Rounding is explicit and chosen per jurisdiction (`Rounding`): per invoice and tax rate (default
  everywhere: EN 16931 BR-CO-17, Revenu Québec, Japan's qualified-invoice rule) or per line, half up at
  the currency's minor unit. Every `TaxResult` states the rule it applied in `rounding`.
- Tax categories are UNCL5305 codes: S standard, Z zero rated, E exempt, AE reverse charge, O outside
  the scope of tax. A 0 % category carries its legal mention in `exemption_reason`.
- Jurisdiction of a tax line: where the tax is due (`"DE"`, `"CA"`, `"CA-QC"`, `"CA-NS"`); for reverse
  charge (AE) and outside-scope (O) lines, the seller's country, whose return declares the supply.
- Bad data raises `ValidationError` naming the field; a combination with no rule raises
  `NonRetryableError`. Nothing is ever left untaxed silently.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Literal, Protocol

import pycountry
from stdnum import get_cc_module
from stdnum.br import cnpj, cpf
from stdnum.ca import bn
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.gb import vat as gb_vat
from stdnum.jp import cn as jp_cn
from stdnum.mx import rfc as mx_rfc
from stdnum.us import ein as us_ein

from shared.billing.errors import NonRetryableError, ValidationError
from shared.billing.models import Invoice, TaxLine
from shared.billing.money import ZERO, check_currency, minor_unit, quantum, round_money
from shared.billing.periods import Period

# ---------------------------------------------------------------------------------------------
# The port
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaxParty:
    """Seller or buyer as tax rules see it.

    `registrations` (seller): tax registration numbers by jurisdiction: `"DE"`, `"GB"`, `"EU"` (OSS),
    `"CA"` (GST/HST), `"CA-QC"` (QST), `"CA-BC"` / `"CA-SK"` / `"CA-MB"` (PST/RST), `"JP"` (T number).
    `postal_address`: street lines, then city, then postal code (the last two entries), for engines.
    `reference`: the customer or entity id, for engines that key exemptions by customer.
    """

    country: str
    region: str | None
    tax_id: str | None
    customer_type: str = "business"  # "business" | "individual"
    tax_exempt: bool = False
    registrations: Mapping[str, str] = field(default_factory=dict)
    postal_address: tuple[str, ...] = ()
    reference: str | None = None


@dataclass(frozen=True)
class TaxableLine:
    index: int
    amount: Decimal  # the rounded net line amount (negative for discounts)
    tax_code: str | None
    period_start: date
    period_end: date  # exclusive; one day for one-time charges
    description: str = ""


@dataclass(frozen=True)
class TaxRequest:
    seller: TaxParty
    buyer: TaxParty
    currency: str
    invoice_date: date
    lines: tuple[TaxableLine, ...]
    document_id: str | None = None
    # the day the consideration was paid when that was before the invoice date (a prepayment); a
    # payment on or after the invoice date changes nothing (see `tax_date`)
    payment_date: date | None = None


@dataclass
class TaxResult:
    tax_lines: list[TaxLine]  # per jurisdiction, tax, rate and category: the invoice's tax breakdown
    line_taxes: dict[int, list[TaxLine]]  # per TaxableLine.index; they add up to `tax_lines`
    notes: list[str]  # wording the invoice must carry
    rounding: str  # the rounding rule applied, stated
    provider: str

    @property
    def tax_total(self) -> Decimal:
        return sum((line.amount for line in self.tax_lines), ZERO)


class TaxProvider(Protocol):
    name: str

    def calculate(self, request: TaxRequest) -> TaxResult: ...


# ---------------------------------------------------------------------------------------------
# Rate tables with effective dates
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateChange:
    effective: date  # first day the rate applies
    rate: Decimal


RateSchedule = tuple[RateChange, ...]


def _schedule(*rows: tuple[str, str]) -> RateSchedule:
    return tuple(RateChange(date.fromisoformat(day), Decimal(rate)) for day, rate in rows)


# EU standard rates, from the row in force on 2016-01-01 on. Source: European Commission, "VAT rates
# applied in the Member States of the European Union" (2021) and TEDB for later changes (as compiled in
# vatnode/eu-vat-rates-data, data/eu-vat-rates-history.json); DE 2020 cut: Zweites Corona-Steuerhilfegesetz.
EU_STANDARD_RATES: dict[str, RateSchedule] = {
    "AT": _schedule(("1984-01-01", "0.20")),
    "BE": _schedule(("1996-01-01", "0.21")),
    "BG": _schedule(("1999-01-01", "0.20")),
    "CY": _schedule(("2014-01-13", "0.19")),
    "CZ": _schedule(("2013-01-01", "0.21")),
    "DE": _schedule(("2007-01-01", "0.19"), ("2020-07-01", "0.16"), ("2021-01-01", "0.19")),
    "DK": _schedule(("1992-01-01", "0.25")),
    "EE": _schedule(("2009-07-01", "0.20"), ("2024-01-01", "0.22"), ("2025-07-01", "0.24")),
    "ES": _schedule(("2012-09-01", "0.21")),
    "FI": _schedule(("2013-01-01", "0.24"), ("2024-09-01", "0.255")),
    "FR": _schedule(("2014-01-01", "0.20")),
    "GR": _schedule(("2010-07-01", "0.23"), ("2016-06-01", "0.24")),
    "HR": _schedule(("2012-03-01", "0.25")),
    "HU": _schedule(("2012-01-01", "0.27")),
    "IE": _schedule(("2012-01-01", "0.23"), ("2020-09-01", "0.21"), ("2021-03-01", "0.23")),
    "IT": _schedule(("2013-10-01", "0.22")),
    "LT": _schedule(("2009-09-01", "0.21")),
    "LU": _schedule(("2015-01-01", "0.17"), ("2023-01-01", "0.16"), ("2024-01-01", "0.17")),
    "LV": _schedule(("2012-07-01", "0.21")),
    "MT": _schedule(("2004-01-01", "0.18")),
    "NL": _schedule(("2012-10-01", "0.21")),
    "PL": _schedule(("2011-01-01", "0.23")),
    "PT": _schedule(("2011-01-01", "0.23")),
    "RO": _schedule(("2010-07-01", "0.24"), ("2016-01-01", "0.20"), ("2017-01-01", "0.19"), ("2025-08-01", "0.21")),
    "SE": _schedule(("1990-07-01", "0.25")),
    "SI": _schedule(("2013-07-01", "0.22")),
    "SK": _schedule(("2011-01-01", "0.20"), ("2025-01-01", "0.23")),
}
EU_MEMBER_STATES = frozenset(EU_STANDARD_RATES)
VAT_NUMBER_PREFIX = {"GR": "EL"}  # Greece's VAT numbers start with EL
EU_VAT_PREFIXES = EU_MEMBER_STATES | set(VAT_NUMBER_PREFIX.values())

# UK: 17.5 % from 2010-01-01, 20 % from 2011-01-04 (HMRC, VAT rates); reduced 5 % (VAT Notice 700).
GB_STANDARD = _schedule(("2010-01-01", "0.175"), ("2011-01-04", "0.20"))

# Japan: consumption tax 8 % from 2014-04-01, 10 % (reduced 8 %) from 2019-10-01 (National Tax Agency).
JP_STANDARD = _schedule(("2014-04-01", "0.08"), ("2019-10-01", "0.10"))

# The reduced rates the rules provider knows; another country's "reduced" code is an error, not a guess.
REDUCED_RATES: dict[str, RateSchedule] = {
    "DE": _schedule(("1983-07-01", "0.07"), ("2020-07-01", "0.05"), ("2021-01-01", "0.07")),
    "GB": _schedule(("1997-09-01", "0.05")),
    "JP": _schedule(("2019-10-01", "0.08")),
}

# Canada (CRA, "GST/HST rates"; provincial finance ministries): GST 5 % since 2008-01-01.
CA_GST = _schedule(("2008-01-01", "0.05"))
CA_HST: dict[str, RateSchedule] = {
    "ON": _schedule(("2010-07-01", "0.13")),
    "NB": _schedule(("2010-07-01", "0.13"), ("2016-07-01", "0.15")),
    "NL": _schedule(("2008-01-01", "0.13"), ("2016-07-01", "0.15")),
    "NS": _schedule(("2010-07-01", "0.15"), ("2025-04-01", "0.14")),
    "PE": _schedule(("2013-04-01", "0.14"), ("2016-10-01", "0.15")),
}
# Provincial taxes charged as separate lines beside GST: BC PST, SK PST, MB RST (Manitoba's name for
# its PST), QC QST (9.975 % on the price without GST: Revenu Québec, "Calculating the taxes").
CA_PROVINCIAL: dict[str, tuple[str, RateSchedule]] = {
    "BC": ("PST", _schedule(("2013-04-01", "0.07"))),
    "SK": ("PST", _schedule(("2017-03-23", "0.06"))),
    "MB": ("RST", _schedule(("2013-07-01", "0.08"), ("2019-07-01", "0.07"))),
    "QC": ("QST", _schedule(("2013-01-01", "0.09975"))),
}
# AB, NT, NU, YT: GST only.

ENGINE_COUNTRIES = frozenset({"US"})  # sales tax there is delegated to a tax engine
REGION_REQUIRED = frozenset({"CA", "US"})


def rate_on(schedule: RateSchedule, day: date) -> Decimal | None:
    """The rate in force on `day`; None before the table's first row."""
    current = None
    for change in schedule:
        if change.effective <= day:
            current = change.rate
    return current


def rate_segments(schedule: RateSchedule, period: Period) -> list[tuple[Period, Decimal | None]]:
    """`period` cut at every rate change inside it, with each part's rate (None: unknown)."""
    cuts = [change.effective for change in schedule if period.start < change.effective < period.end]
    bounds = [period.start, *cuts, period.end]
    return [(Period(a, b), rate_on(schedule, a)) for a, b in zip(bounds, bounds[1:], strict=False)]


# ---------------------------------------------------------------------------------------------
# Time of supply: which day's rate applies to a line when the rate changes
# ---------------------------------------------------------------------------------------------

TimeOfSupply = Literal["invoice_or_payment", "supply_completed", "invoice_date", "days"]
TIME_OF_SUPPLY_RULES: tuple[str, ...] = ("invoice_or_payment", "supply_completed", "invoice_date", "days")

# Per jurisdiction ("EU" for every member state unless one is named); sources in shared/billing/README.md.
DEFAULT_TIME_OF_SUPPLY: dict[str, TimeOfSupply] = {
    # Excise Tax Act s.168(1) and s.152(1); CRA GST/HST Notice 342 (Nova Scotia, 2025-04-01)
    "CA": "invoice_or_payment",
    # VAT Act 1994 s.6(4); VAT Regulations 1995 reg. 90 (continuous supplies of services)
    "GB": "invoice_or_payment",
    # Directive 2006/112/EC art. 63, 64(1), 93; art. 95 adjustment of payments on account (DE: s.27(1) UStG)
    "EU": "supply_completed",
    # Consumption Tax Act: the rate in force when the supply is made (completed); NTA Q&A for 2019-10-01
    "JP": "supply_completed",
    # sales tax: the invoice date (engines are sent the invoice date)
    "US": "invoice_date",
}


def tax_date(rule: TimeOfSupply, line: TaxableLine, invoice_date: date,
             payment_date: date | None = None) -> tuple[date, str] | None:
    """The day whose rate applies to the whole of `line` under `rule`, with the request field that gave
    it (for errors); None for `"days"` (the line is split by days of its service period).

    - `invoice_or_payment`: the earlier of the invoice date and the payment date (CA: tax is payable when
      the consideration is paid or becomes due, whichever is earlier; UK: the actual tax point);
    - `supply_completed`: the line's last day of service, `period_end - 1` (EU: the chargeable event at
      the end of the period a statement of account covers; Japan: the completion of the service);
    - `invoice_date`: the invoice date.
    """
    if rule == "days":
        return None
    if rule == "invoice_or_payment":
        if payment_date is not None and payment_date < invoice_date:
            return payment_date, "payment_date"
        return invoice_date, "invoice_date"
    if rule == "supply_completed":
        return line.period_end - timedelta(days=1), f"lines[{line.index}].period_end"
    if rule == "invoice_date":
        return invoice_date, "invoice_date"
    raise ValueError(f"time of supply is one of {TIME_OF_SUPPLY_RULES}, not {rule!r}")


# ---------------------------------------------------------------------------------------------
# Product tax codes and rounding
# ---------------------------------------------------------------------------------------------

RateCategory = Literal["standard", "reduced", "zero", "exempt", "pst_exempt"]
RATE_CATEGORIES: tuple[str, ...] = ("standard", "reduced", "zero", "exempt", "pst_exempt")
# Seed 003: each product code maps to a tax code that gives the rate. These are the built-in codes; a
# provider's `tax_codes` maps catalog codes onto them. None is "standard". "pst_exempt": GST/HST/QST
# apply but not BC/SK/MB PST (a service outside those provinces' PST base).


@dataclass(frozen=True)
class Rounding:
    level: Literal["line", "invoice"] = "invoice"
    mode: str = ROUND_HALF_UP
    source: str = ""

    def describe(self, currency: str) -> str:
        where = "per line and tax rate" if self.level == "line" else "per invoice and tax rate"
        mode = self.mode.removeprefix("ROUND_").replace("_", " ").lower()
        text = f"{where}, {mode} to {format(quantum(currency), 'f')} {currency}"
        return f"{text} ({self.source})" if self.source else text


DEFAULT_ROUNDING: dict[str, Rounding] = {
    "EU": Rounding("invoice", ROUND_HALF_UP, "EN 16931 BR-CO-17: VAT amount per rate = taxable amount x rate"),
    "GB": Rounding("invoice", ROUND_HALF_UP, "HMRC VAT Notice 700 section 17.5, invoice-level calculation"),
    "CA": Rounding("invoice", ROUND_HALF_UP, "Revenu Québec: a fraction of one-half cent or more counts as a cent; "
                   "taxes may be calculated on the total price"),
    "JP": Rounding("invoice", ROUND_HALF_UP, "NTA qualified invoice Q&A 46: round once per invoice and tax rate"),
}
FALLBACK_ROUNDING = Rounding("invoice", ROUND_HALF_UP)

# ---------------------------------------------------------------------------------------------
# Required wording
# ---------------------------------------------------------------------------------------------

REVERSE_CHARGE = "Reverse charge"  # the mention of Article 226(11a) of Council Directive 2006/112/EC
EU_REVERSE_CHARGE_NOTE = ("Reverse charge: the customer is liable for the VAT under Article 196 of "
                          "Council Directive 2006/112/EC.")
GB_REVERSE_CHARGE_NOTE = ("Reverse charge: the customer accounts for the VAT (VAT Act 1994, section 8; "
                          "HMRC VAT Notice 741A).")
OUTSIDE_SCOPE_NOTE = "Outside the scope of {tax}: the place of supply is the customer's country ({country})."
EXEMPT_CUSTOMER_NOTE = "Tax exempt customer: no tax charged."
EXEMPT_CUSTOMER_REASON = "Tax exempt customer"
OSS_NOTE = "VAT of {country} charged at the customer's rate (place of supply: the customer's country)."
JAPAN_OFF_NOTE = "Japanese consumption tax not charged on this invoice."
SUPPLIER_VAT_NOTE = "Supplier VAT number: {number}"
CUSTOMER_VAT_NOTE = "Customer VAT number: {number}"
SUPPLIER_TAX_NUMBER_NOTE = "Supplier tax number: {number}"
REGISTRATION_NUMBER_NOTE = "{label} registration number: {number}"  # Canada: GST/HST, QST, PST, RST
JP_REGISTRATION_NOTE = "Registration number: {number}"  # Japan's qualified invoice issuer number
NO_SALES_TAX_NOTE = "No sales tax charged: the seller is not registered to collect tax in {where}."
# tax names on tax lines (a provider's own names, e.g. "CA STATE TAX", print as the provider gives them)
VAT_NAME, CONSUMPTION_TAX_NAME, SALES_TAX_NAME, TAX_NAME = "VAT", "Consumption tax", "Sales tax", "Tax"
JAPAN_OFF_REASON = "Japanese consumption tax not charged"
ZERO_RATED_REASON = "Zero rated"
EXEMPT_PRODUCT_REASON = "Exempt supply"


# ---------------------------------------------------------------------------------------------
# Field checks (contract time and bill run)
# ---------------------------------------------------------------------------------------------


def check_country(country: str | None, param: str = "country") -> str:
    if not isinstance(country, str) or pycountry.countries.get(alpha_2=country) is None or country != country.upper():
        raise ValidationError(f"'{country}' is not an ISO 3166-1 alpha-2 country code", param=param)
    return country


def region_code(country: str, region: str | None, param: str = "region") -> str | None:
    """The subdivision code without country prefix ("QC" for "QC" or "CA-QC"); None when absent.

    Canada and the US need one (tax depends on it); elsewhere a region is passed through unchecked.
    """
    if region is None or not str(region).strip():
        if country in REGION_REQUIRED:
            raise ValidationError(f"a {country} address needs a region (province or state)", param=param)
        return None
    code = str(region).strip().upper().removeprefix(f"{country}-")
    if country in REGION_REQUIRED and pycountry.subdivisions.get(code=f"{country}-{code}") is None:
        raise ValidationError(f"'{region}' is not a region of {country}", param=param)
    return code


def check_tax_id(country: str, tax_id: str, param: str = "tax_id") -> str:
    """The normalized tax ID, or ValidationError naming `param` when it is malformed (format and check
    digits by python-stdnum). EU VAT numbers carry their prefix (EL for Greece) and must match
    `country`; GB ones are returned as "GB" + 9 or 12 digits; Japan's T numbers keep their T.
    Countries without a checker in stdnum are accepted as written, trimmed."""
    country = check_country(country, param=_sibling(param, "country"))
    if not isinstance(tax_id, str) or not tax_id.strip():
        raise ValidationError("a tax ID cannot be empty", param=param)
    raw = tax_id.strip()
    try:
        if country in EU_MEMBER_STATES:
            prefix = VAT_NUMBER_PREFIX.get(country, country)
            number = "".join(ch for ch in raw if ch.isalnum()).upper()
            if number[:2] in EU_VAT_PREFIXES:  # FR check keys may be letters: only a known prefix is one
                if number[:2] not in {prefix, country}:
                    raise ValidationError(
                        f"VAT number '{tax_id}' is not a {country} VAT number (prefix {number[:2]})", param=param)
                number = number[2:]
            return eu_vat.validate(prefix + number)
        if country == "GB":
            return "GB" + gb_vat.validate(raw)
        if country == "CA":
            return bn.validate(raw)
        if country == "MX":
            return mx_rfc.validate(raw)
        if country == "BR":
            digits = "".join(ch for ch in raw if ch.isdigit())
            return (cpf if len(digits) == 11 else cnpj).validate(raw)
        if country == "JP":
            registered = raw.upper().startswith("T")
            number = jp_cn.validate(raw[1:] if registered else raw)
            return f"T{number}" if registered else number
        if country == "US":
            return us_ein.validate(raw)
        module = get_cc_module(country.lower(), "vat")
        return module.validate(raw) if module is not None else raw
    except StdnumError as error:
        raise ValidationError(f"'{tax_id}' is not a valid {country} tax ID: {error.message}", param=param) from None


def _sibling(param: str, name: str) -> str:
    """"buyer.tax_id" -> "buyer.country"."""
    head, _, _ = param.rpartition(".")
    return f"{head}.{name}" if head else name


def check_taxable(country: str, region: str | None, customer_type: str, tax_id: str | None,
                  param_prefix: str = "") -> None:
    """What contract time needs to tax this customer later: a known country, a known province or state
    where tax depends on it (Canada, US), a known customer type, a well-formed tax ID."""
    check_country(country, param=f"{param_prefix}country")
    region_code(country, region, param=f"{param_prefix}region")
    if customer_type not in ("business", "individual"):
        raise ValidationError(f"customer_type is 'business' or 'individual', not '{customer_type}'",
                              param=f"{param_prefix}customer_type")
    if tax_id is not None:
        check_tax_id(country, tax_id, param=f"{param_prefix}tax_id")


# ---------------------------------------------------------------------------------------------
# Choosing a provider
# ---------------------------------------------------------------------------------------------


def provider_for(request_or_buyer: TaxRequest | TaxParty, providers: Mapping[str, TaxProvider],
                 default: TaxProvider) -> TaxProvider:
    """The provider for the buyer's jurisdiction: `providers["US-CA"]` (country-region), then
    `providers["US"]`, then `default`. The caller builds `providers` per billing entity.
    A US buyer with no engine configured is refused: sales tax there needs a tax engine."""
    buyer = request_or_buyer.buyer if isinstance(request_or_buyer, TaxRequest) else request_or_buyer
    country = check_country(buyer.country, param="buyer.country")
    region = region_code(country, buyer.region, param="buyer.region")
    chosen = (providers.get(f"{country}-{region}") if region else None) or providers.get(country) or default
    if country in ENGINE_COUNTRIES and isinstance(chosen, RulesTaxProvider):
        raise NonRetryableError(
            f"{country} sales tax needs a tax engine (Avalara or Stripe Tax): configure a provider for {country}",
            code="tax_engine_required")
    return chosen


# ---------------------------------------------------------------------------------------------
# The rules provider
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Component:
    """One tax on a line: its name, where it is due, its rate table (None: 0 %) and category."""

    name: str
    jurisdiction: str
    schedule: RateSchedule | None
    category: str = "S"
    exemption_reason: str | None = None


@dataclass(frozen=True)
class _Scenario:
    rules: str  # whose rate tables apply: an EU member state, "GB", "CA", "JP", or "" (no tax)
    rounding_key: str
    notes: tuple[str, ...] = ()
    zero: _Component | None = None  # every line gets this 0 % component (AE, O, E)


class RulesTaxProvider:
    """Built-in rules, no network: EU VAT (27 standard rates, domestic, OSS, reverse charge), UK VAT,
    Canada GST/HST/PST/RST/QST, Japan consumption tax (switchable: seed 000 leaves its rule open).

    Scenarios (the buyer's country decides, the seller's decides who declares):
    - tax-exempt buyer: 0 % E lines and a note;
    - EU buyer: same country as the seller -> that state's VAT; a business with a valid VAT number in
      another country -> reverse charge (AE, Article 196 of Directive 2006/112/EC); a consumer or an
      unregistered business elsewhere -> the buyer's state VAT (telecom/e-services, Article 58, OSS);
    - UK buyer: UK seller -> 20 %; a VAT-registered business from abroad -> reverse charge; a consumer -> 20 %;
    - EU or UK seller, buyer outside the EU/UK (and not CA/JP/US) -> outside the scope (O, Articles 44/59);
    - Canada: GST, or HST by province, plus PST/RST/QST as separate lines;
    - Japan: consumption tax 10 % when `japan_consumption_tax`, else a 0 % O line and a note;
    - US: refused (a tax engine is required); other combinations: refused unless the buyer's country is in
      `outside_scope_countries` (the seller declares its supplies there outside the scope of its tax).

    `time_of_supply` overrides `DEFAULT_TIME_OF_SUPPLY` per jurisdiction ("GB", "CA", "JP", "EU" or one member
    state), e.g. `{"GB": "days"}` for a UK supplier that elects to apportion across a rate change.
    """

    name = "rules"

    def __init__(self, japan_consumption_tax: bool = True, *, tax_codes: Mapping[str, RateCategory] | None = None,
                 rounding: Mapping[str, Rounding] | None = None, outside_scope_countries: Iterable[str] = (),
                 time_of_supply: Mapping[str, TimeOfSupply] | None = None):
        self.japan_consumption_tax = japan_consumption_tax
        self.tax_codes = {code: code for code in RATE_CATEGORIES} | dict(tax_codes or {})
        unknown = {code: cat for code, cat in self.tax_codes.items() if cat not in RATE_CATEGORIES}
        if unknown:
            raise ValueError(f"tax codes map onto {RATE_CATEGORIES}, not {unknown}")
        self.rounding = DEFAULT_ROUNDING | dict(rounding or {})
        self.outside_scope_countries = frozenset(outside_scope_countries)
        self.time_of_supply = DEFAULT_TIME_OF_SUPPLY | dict(time_of_supply or {})
        unknown_rules = {key: rule for key, rule in self.time_of_supply.items() if rule not in TIME_OF_SUPPLY_RULES}
        if unknown_rules:
            raise ValueError(f"time of supply rules are {TIME_OF_SUPPLY_RULES}, not {unknown_rules}")

    # -- entry point ----------------------------------------------------------------------------

    def calculate(self, request: TaxRequest) -> TaxResult:
        currency = check_currency(request.currency, "currency")
        seller, buyer = request.seller, request.buyer
        check_country(seller.country, param="seller.country")
        check_taxable(buyer.country, buyer.region, buyer.customer_type, buyer.tax_id, param_prefix="buyer.")
        lines = _checked_lines(request.lines, currency)
        scenario = self._scenario(request)
        rounding = self._rounding_for(scenario.rounding_key)
        components = [(line, self._components(scenario, request, line)) for line in lines]
        if request.payment_date is not None and not isinstance(request.payment_date, date):
            raise ValidationError("payment_date is a date", param="payment_date")
        when = self._time_of_supply_for(scenario.rules)
        tax_lines, line_taxes = self._compute(components, currency, rounding,
                                              lambda line: tax_date(when, line, request.invoice_date,
                                                                    request.payment_date))
        return TaxResult(tax_lines=tax_lines, line_taxes=line_taxes, notes=list(scenario.notes),
                         rounding=rounding.describe(currency), provider=self.name)

    # -- which rules apply -----------------------------------------------------------------------

    def _scenario(self, request: TaxRequest) -> _Scenario:
        seller, buyer = request.seller, request.buyer
        country = buyer.country
        if country in ENGINE_COUNTRIES:
            raise NonRetryableError(f"{country} sales tax needs a tax engine: the rules provider does not "
                                    f"calculate it", code="tax_engine_required")
        if buyer.tax_exempt:
            zero = _Component(_tax_name(country), _domestic_jurisdiction(buyer), None, "E", EXEMPT_CUSTOMER_REASON)
            return _Scenario("", country, (EXEMPT_CUSTOMER_NOTE,), zero)
        registered_business = buyer.customer_type == "business" and bool(buyer.tax_id)
        if country in EU_MEMBER_STATES or country == "GB":
            if seller.country == country or not registered_business:
                notes = [SUPPLIER_VAT_NOTE.format(number=_seller_vat_number(seller, country))]
                if buyer.tax_id:
                    notes.append(CUSTOMER_VAT_NOTE.format(number=check_tax_id(country, buyer.tax_id, "buyer.tax_id")))
                if seller.country != country:
                    notes.append(OSS_NOTE.format(country=country))
                return _Scenario(country, country, tuple(notes))
            buyer_vat = check_tax_id(country, buyer.tax_id or "", "buyer.tax_id")
            notes = [GB_REVERSE_CHARGE_NOTE if country == "GB" else EU_REVERSE_CHARGE_NOTE]
            if seller.country in EU_MEMBER_STATES or seller.country == "GB":
                notes.append(SUPPLIER_VAT_NOTE.format(number=_seller_vat_number(seller, seller.country)))
            elif seller.tax_id:
                notes.append(SUPPLIER_TAX_NUMBER_NOTE.format(number=seller.tax_id))
            notes.append(CUSTOMER_VAT_NOTE.format(number=buyer_vat))
            zero = _Component(_tax_name(seller.country), seller.country, None, "AE", REVERSE_CHARGE)
            return _Scenario("", seller.country, tuple(notes), zero)
        if country == "CA":
            notes = [REGISTRATION_NUMBER_NOTE.format(label=label, number=seller.registrations[key])
                     for key, label in (("CA", "GST/HST"), ("CA-QC", "QST"), ("CA-BC", "PST"), ("CA-SK", "PST"),
                                        ("CA-MB", "RST")) if key in seller.registrations]
            return _Scenario("CA", "CA", tuple(notes))
        if country == "JP":
            if not self.japan_consumption_tax:
                zero = _Component(CONSUMPTION_TAX_NAME, "JP", None, "O", JAPAN_OFF_REASON)
                return _Scenario("", "JP", (JAPAN_OFF_NOTE,), zero)
            notes = (JP_REGISTRATION_NOTE.format(number=seller.registrations["JP"]),) \
                if "JP" in seller.registrations else ()
            return _Scenario("JP", "JP", notes)
        if seller.country in EU_MEMBER_STATES or seller.country == "GB" or country in self.outside_scope_countries:
            scope = _scope_name(seller.country)
            zero = _Component(_tax_name(seller.country), seller.country, None, "O", f"Outside the scope of {scope}")
            return _Scenario("", seller.country, (OUTSIDE_SCOPE_NOTE.format(tax=scope, country=country),), zero)
        raise NonRetryableError(
            f"no tax rule for a {seller.country} seller and a {country} buyer: configure a tax provider for "
            f"{country} or declare it outside the scope (outside_scope_countries)", code="no_tax_rule")

    def _components(self, scenario: _Scenario, request: TaxRequest, line: TaxableLine) -> list[_Component]:
        param = f"lines[{line.index}].tax_code"
        category = self._category(line.tax_code, param)
        if scenario.zero is not None:
            if category == "exempt" and scenario.zero.category != "E":
                return [_Component(scenario.zero.name, scenario.zero.jurisdiction, None, "E", EXEMPT_PRODUCT_REASON)]
            return [scenario.zero]
        rules = scenario.rules
        if rules == "CA":
            province = region_code("CA", request.buyer.region, param="buyer.region")
            return _canada_components(province, category, param)
        name = _tax_name(rules)
        if category in ("standard", "pst_exempt"):
            return [_Component(name, rules, _standard_schedule(rules))]
        if category == "reduced":
            if rules not in REDUCED_RATES:
                raise ValidationError(f"no reduced rate is configured for {rules}", param=param)
            return [_Component(name, rules, REDUCED_RATES[rules])]
        if category == "zero":
            return [_Component(name, rules, None, "Z", ZERO_RATED_REASON)]
        return [_Component(name, rules, None, "E", EXEMPT_PRODUCT_REASON)]

    def _category(self, tax_code: str | None, param: str) -> str:
        if tax_code is None:
            return "standard"
        if tax_code not in self.tax_codes:
            raise ValidationError(f"unknown tax code '{tax_code}' (known: {sorted(self.tax_codes)})", param=param)
        return self.tax_codes[tax_code]

    def _time_of_supply_for(self, key: str) -> TimeOfSupply:
        if key in self.time_of_supply:
            return self.time_of_supply[key]
        if key in EU_MEMBER_STATES:
            return self.time_of_supply["EU"]
        return "invoice_date"  # no rate table for other keys: the rule is never used

    def _rounding_for(self, key: str) -> Rounding:
        if key in self.rounding:
            return self.rounding[key]
        if key in EU_MEMBER_STATES and "EU" in self.rounding:
            return self.rounding["EU"]
        return FALLBACK_ROUNDING

    # -- amounts ------------------------------------------------------------------------------

    def _pieces(self, line: TaxableLine, component: _Component, currency: str,
                when: tuple[date, str] | None) -> list[tuple[Decimal, Decimal]]:
        """(taxable amount, rate) parts of a line for one tax: the whole line at the rate in force on the
        time-of-supply day `when` (day, field it comes from), or, when None, split by days at rate changes."""
        if component.schedule is None:
            return [(line.amount, ZERO)]
        where = f"{component.name} of {component.jurisdiction}"
        if when is not None:
            day, param = when
            rate = rate_on(component.schedule, day)
            if rate is None:
                raise ValidationError(f"no {where} rate known on {day}", param=param)
            return [(line.amount, rate)]
        period = Period(line.period_start, line.period_end)
        segments = rate_segments(component.schedule, period)
        for part, rate in segments:
            if rate is None:
                raise ValidationError(f"no {where} rate known on {part.start}",
                                      param=f"lines[{line.index}].period_start")
        if len(segments) == 1:
            return [(line.amount, segments[0][1])]
        amounts = split_by_days(line.amount, [part for part, _ in segments], currency)
        return [(amount, rate) for amount, (_, rate) in zip(amounts, segments, strict=True)]

    def _compute(self, components: list[tuple[TaxableLine, list[_Component]]], currency: str, rounding: Rounding,
                 when: Callable[[TaxableLine], tuple[date, str] | None],
                 ) -> tuple[list[TaxLine], dict[int, list[TaxLine]]]:
        # taxable amount per (line, tax key); a key is (name, jurisdiction, rate, category, reason)
        taxable: dict[tuple[int, tuple], Decimal] = {}
        for line, comps in components:
            for component in comps:
                for amount, rate in self._pieces(line, component, currency, when(line)):
                    key = (component.name, component.jurisdiction, rate, component.category,
                           component.exemption_reason)
                    taxable[(line.index, key)] = taxable.get((line.index, key), ZERO) + amount
        groups: dict[tuple, list[tuple[int, Decimal]]] = {}
        for (index, key), amount in taxable.items():
            groups.setdefault(key, []).append((index, amount))
        line_taxes: dict[int, list[TaxLine]] = {line.index: [] for line, _ in components}
        tax_lines: list[TaxLine] = []
        for key, members in groups.items():
            name, jurisdiction, rate, category, reason = key
            exact = [amount * rate for _, amount in members]
            if rounding.level == "line":
                taxes = [round_money(value, currency, rounding.mode) for value in exact]
            else:
                total = round_money(sum(exact, ZERO), currency, rounding.mode)
                taxes = allocate(total, exact, currency)
            for (index, amount), tax in zip(members, taxes, strict=True):
                line_taxes[index].append(TaxLine(name=name, jurisdiction=jurisdiction, rate=rate,
                                                 taxable_amount=amount, amount=tax, category=category,
                                                 exemption_reason=reason))
            tax_lines.append(TaxLine(name=name, jurisdiction=jurisdiction, rate=rate,
                                     taxable_amount=sum((amount for _, amount in members), ZERO),
                                     amount=sum(taxes, ZERO), category=category, exemption_reason=reason))
        return tax_lines, line_taxes


def _checked_lines(lines: Sequence[TaxableLine], currency: str) -> list[TaxableLine]:
    if not lines:
        raise ValidationError("a tax request needs at least one line", param="lines")
    seen: set[int] = set()
    for line in lines:
        param = f"lines[{line.index}]"
        if line.index in seen:
            raise ValidationError(f"line index {line.index} appears twice", param="lines")
        seen.add(line.index)
        if not isinstance(line.amount, Decimal) or not line.amount.is_finite():
            raise ValidationError("a line amount is a finite Decimal", param=f"{param}.amount")
        if line.amount != round_money(line.amount, currency):
            raise ValidationError(f"line amounts are rounded to {minor_unit(currency)} decimals in {currency}",
                                  param=f"{param}.amount")
        if line.period_end <= line.period_start:
            raise ValidationError("the service period ends after it starts (end is exclusive)",
                                  param=f"{param}.period_end")
    return list(lines)


def _canada_components(province: str | None, category: str, param: str) -> list[_Component]:
    if province is None:  # region_code already refused this
        raise ValidationError("a Canadian address needs a province", param="buyer.region")
    if category == "reduced":
        raise ValidationError("Canada has no reduced GST/HST rate", param=param)
    federal = (_Component("HST", f"CA-{province}", CA_HST[province]) if province in CA_HST
               else _Component("GST", "CA", CA_GST))
    components = [federal]
    if province in CA_PROVINCIAL and not (category == "pst_exempt" and province != "QC"):
        name, schedule = CA_PROVINCIAL[province]
        components.append(_Component(name, f"CA-{province}", schedule))
    if category == "zero":
        return [_Component(c.name, c.jurisdiction, None, "Z", ZERO_RATED_REASON) for c in components]
    if category == "exempt":
        return [_Component(c.name, c.jurisdiction, None, "E", EXEMPT_PRODUCT_REASON) for c in components]
    return components


def _standard_schedule(country: str) -> RateSchedule:
    if country in EU_STANDARD_RATES:
        return EU_STANDARD_RATES[country]
    if country == "GB":
        return GB_STANDARD
    if country == "JP":
        return JP_STANDARD
    raise AssertionError(f"no standard rate table for {country}")  # pragma: no cover


def _tax_name(country: str) -> str:
    if country in EU_MEMBER_STATES or country == "GB":
        return VAT_NAME
    if country == "CA":
        return "GST"
    if country == "JP":
        return CONSUMPTION_TAX_NAME
    return SALES_TAX_NAME if country == "US" else TAX_NAME


def _domestic_jurisdiction(buyer: TaxParty) -> str:
    if buyer.country == "CA":
        province = region_code("CA", buyer.region, param="buyer.region")
        return f"CA-{province}" if province in CA_HST else "CA"
    return buyer.country


def _scope_name(country: str) -> str:
    """The tax a supply is outside of, as printed: "EU VAT", "UK VAT", "US sales tax"."""
    if country in EU_MEMBER_STATES:
        return "EU VAT"
    if country == "GB":
        return "UK VAT"
    return f"{country} {_tax_name(country).lower()}"


def _seller_vat_number(seller: TaxParty, jurisdiction: str) -> str:
    """The seller's VAT number for an EU/UK scenario (Article 226(3)): its registration there, its OSS
    number for EU states, else, when its home is in the same VAT area (same country, or both in the EU),
    its home registration or tax ID. A non-EU seller's tax ID is never printed as a VAT number."""
    same_area = seller.country == jurisdiction or (seller.country in EU_MEMBER_STATES and
                                                   jurisdiction in EU_MEMBER_STATES)
    keys = [jurisdiction, *(["EU"] if jurisdiction in EU_MEMBER_STATES else []),
            *([seller.country] if same_area else [])]
    for key in keys:
        if seller.registrations.get(key):
            return seller.registrations[key]
    if same_area and seller.tax_id:
        return seller.tax_id
    raise ValidationError(f"the seller needs a VAT number to invoice {jurisdiction} VAT or a reverse charge",
                          param="seller.registrations")


# ---------------------------------------------------------------------------------------------
# Exact splits
# ---------------------------------------------------------------------------------------------


def allocate(total: Decimal, exact: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Parts of `total` (a rounded amount) proportional to `exact`, in whole minor units, that add up to
    `total` exactly. Each part starts from its exact value rounded down; the minor units left go to the
    largest remainders (ties: first). `total` must be `exact`'s sum rounded (each part then stays within
    one minor unit of its exact value)."""
    if not exact:
        if total != ZERO:
            raise ValueError("cannot allocate a non-zero total over nothing")
        return []
    unit = quantum(currency)
    floors = [value.quantize(unit, rounding=ROUND_FLOOR) for value in exact]
    left = int((total - sum(floors, ZERO)) / unit)
    if not 0 <= left <= len(exact):
        raise ValueError(f"{total} is not the rounded sum of {list(exact)}")
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    parts = list(floors)
    for i in order[:left]:
        parts[i] += unit
    return parts


def split_by_days(amount: Decimal, parts: Sequence[Period], currency: str) -> list[Decimal]:
    """`amount` split over consecutive periods in proportion to their days, adding up exactly."""
    days = sum(part.days for part in parts)
    return allocate(amount, [amount * part.days / days for part in parts], currency)


# ---------------------------------------------------------------------------------------------
# The tax report
# ---------------------------------------------------------------------------------------------

REPORT_COLUMNS = ("jurisdiction", "tax_name", "category", "rate_percent", "currency", "buyer_tax_id",
                  "taxable_amount", "tax_amount", "invoice_count", "credit_note_count", "period_start",
                  "period_end")
REPORTED_STATUSES = frozenset({"finalized", "paid", "uncollectible"})


def tax_report(invoices: Iterable[Invoice], start: date, end: date) -> str:
    """CSV of what a VAT/GST return needs, for invoices issued in [start, end) (end exclusive).

    One row per jurisdiction, tax, category, rate and currency (amounts in different currencies are never
    added), and for reverse-charge (AE) rows per buyer VAT number, which the EC Sales List needs.
    Columns: `REPORT_COLUMNS`. `taxable_amount` and `tax_amount` add the tax lines of finalized, paid and
    uncollectible invoices (drafts and voided ones are left out); a credit note (a negative tax line)
    reduces them and is counted in `credit_note_count`, other documents in `invoice_count`. Rows are
    sorted by jurisdiction, tax, category, rate, currency and buyer VAT number."""
    if end <= start:
        raise ValidationError("the report period ends after it starts (end is exclusive)", param="end")
    rows: dict[tuple, dict] = {}
    for invoice in invoices:
        if invoice.status not in REPORTED_STATUSES or not start <= invoice.issue_date < end:
            continue
        for line in invoice.tax_lines:
            buyer_tax_id = (invoice.buyer.tax_id or "") if line.category == "AE" else ""
            key = (line.jurisdiction, line.name, line.category, line.rate, invoice.currency, buyer_tax_id)
            row = rows.setdefault(key, {"taxable": ZERO, "tax": ZERO, "invoices": set(), "credit_notes": set()})
            row["taxable"] += line.taxable_amount
            row["tax"] += line.amount
            credit = line.taxable_amount < 0 or (line.taxable_amount == 0 and line.amount < 0)
            row["credit_notes" if credit else "invoices"].add(invoice.id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for key in sorted(rows, key=lambda k: (k[0], k[1], k[2], k[3], k[4], k[5])):
        jurisdiction, name, category, rate, currency, buyer_tax_id = key
        row = rows[key]
        writer.writerow([jurisdiction, name, category, _percent(rate), currency, buyer_tax_id,
                         format(round_money(row["taxable"], currency), "f"),
                         format(round_money(row["tax"], currency), "f"),
                         len(row["invoices"]), len(row["credit_notes"]), start.isoformat(), end.isoformat()])
    return out.getvalue()


def _percent(rate: Decimal) -> str:
    return format((rate * 100).normalize(), "f")
