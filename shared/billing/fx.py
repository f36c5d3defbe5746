"""Exchange rates: ECB reference rates as values, conversion with explicit rounding, memo lines.

Pure: the rates come in from `shared/adapters/fx_rates.py` (ECB files); nothing here reads a clock.

Conventions
- ECB publishes one reference rate per currency and TARGET business day: 1 EUR = `rate` units of it.
- "The rate for a day" is the rate of the latest ECB day on or before it, at most `MAX_RATE_AGE_DAYS`
  old (the longest gap between two ECB days is 5 days, e.g. Maundy Thursday to the Tuesday after
  Easter). A currency the ECB does not publish that day is a `ValidationError` naming the field; no
  rates recent enough is a `NonRetryableError` (the daily fetch did not run).
- A rate between two non-EUR currencies is the ECB cross rate quote/base, rounded half up to
  `CROSS_RATE_DECIMALS` decimals; the rounded figure is the one stated and used, so anyone can redo
  the conversion from the invoice.
- A converted amount is `amount x rate` rounded half up (unless stated otherwise) at the target
  currency's minor unit. Memo lines convert each amount on its own and are never added up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from shared.billing.errors import NonRetryableError, ValidationError
from shared.billing.money import check_currency, format_amount, quantum, round_money

ECB_SOURCE = "ECB euro foreign exchange reference rates"
CROSS_RATE_DECIMALS = 6
MAX_RATE_AGE_DAYS = 5
EXCHANGE_RATE_NOTE = "Exchange rate: {rate}."  # the invoice's rate to the entity's currency, described
MEMO_CURRENCIES = {"MX": "MXN"}  # seed 000 §4: USD invoices for Mexico carry MXN memo lines


@dataclass(frozen=True)
class ExchangeRate:
    """1 `base` = `rate` `quote`, as published for `rate_date` (the value an invoice stores)."""

    base: str
    quote: str
    rate: Decimal
    rate_date: date
    source: str = ECB_SOURCE
    derivation: str = ""  # how the figure was obtained when it is not a published one ("cross rate via EUR ...")

    def __post_init__(self) -> None:
        check_currency(self.base, "base")
        check_currency(self.quote, "quote")
        if not isinstance(self.rate, Decimal) or not self.rate.is_finite() or self.rate <= 0:
            raise ValidationError(f"an exchange rate is a positive Decimal, not {self.rate!r}", param="rate")

    def convert(self, amount: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
        """`amount` in `base` -> `quote`, rounded with `rounding` at the quote currency's minor unit."""
        if not isinstance(amount, Decimal):
            raise ValidationError("amounts are Decimal, never float", param="amount")
        return round_money(amount * self.rate, self.quote, rounding)

    def inverse(self) -> ExchangeRate:
        """1 `quote` = 1/rate `base`, rounded half up to `CROSS_RATE_DECIMALS` decimals (stated)."""
        value = (Decimal(1) / self.rate).quantize(Decimal(1).scaleb(-CROSS_RATE_DECIMALS), ROUND_HALF_UP)
        how = f"inverse of 1 {self.base} = {self.rate} {self.quote}, half up to {CROSS_RATE_DECIMALS} decimals"
        return ExchangeRate(self.quote, self.base, value, self.rate_date, self.source, how)

    def describe(self) -> str:
        """The statement printed beside converted amounts."""
        text = f"1 {self.base} = {self.rate} {self.quote} ({self.source} of {self.rate_date.isoformat()}"
        return f"{text}; {self.derivation})" if self.derivation else f"{text})"

    def to_dict(self) -> dict[str, str]:
        """Strings only: what an invoice stores (JSON, DynamoDB)."""
        return {"base": self.base, "quote": self.quote, "rate": format(self.rate, "f"),
                "rate_date": self.rate_date.isoformat(), "source": self.source, "derivation": self.derivation}

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> ExchangeRate:
        return cls(data["base"], data["quote"], Decimal(data["rate"]), date.fromisoformat(data["rate_date"]),
                   data.get("source", ECB_SOURCE), data.get("derivation", ""))


@dataclass(frozen=True)
class ReferenceRates:
    """One ECB day: 1 EUR = `rates[currency]` currency."""

    rate_date: date
    rates: Mapping[str, Decimal]

    def rate(self, base: str, quote: str, param: str = "currency") -> ExchangeRate:
        """1 `base` in `quote`: the published rate, its inverse, or the cross rate via EUR."""
        check_currency(base, param)
        check_currency(quote, param)
        if base == quote:
            return ExchangeRate(base, quote, Decimal(1), self.rate_date, ECB_SOURCE, "same currency")
        if base == "EUR":
            return ExchangeRate("EUR", quote, self._published(quote, param), self.rate_date)
        if quote == "EUR":
            return ExchangeRate("EUR", base, self._published(base, param), self.rate_date).inverse()
        cross = (self._published(quote, param) / self._published(base, param)).quantize(
            Decimal(1).scaleb(-CROSS_RATE_DECIMALS), ROUND_HALF_UP)
        how = (f"cross rate via EUR: {self._published(quote, param)} {quote} / {self._published(base, param)} "
               f"{base}, half up to {CROSS_RATE_DECIMALS} decimals")
        return ExchangeRate(base, quote, cross, self.rate_date, ECB_SOURCE, how)

    def _published(self, currency: str, param: str) -> Decimal:
        if currency not in self.rates:
            raise ValidationError(f"the ECB published no reference rate for {currency} on "
                                  f"{self.rate_date.isoformat()}", param=param)
        return self.rates[currency]


class RateHistory:
    """ECB days in date order, and the rule picking the one that applies to a date."""

    def __init__(self, days: Iterable[ReferenceRates], max_age_days: int = MAX_RATE_AGE_DAYS):
        self.days = sorted(days, key=lambda day: day.rate_date)
        self._by_date = {day.rate_date: day for day in self.days}
        if len(self._by_date) != len(self.days):
            raise ValueError("two sets of ECB rates for the same day")
        self.max_age_days = max_age_days

    def __len__(self) -> int:
        return len(self.days)

    @property
    def latest(self) -> date | None:
        return self.days[-1].rate_date if self.days else None

    def on(self, day: date) -> ReferenceRates:
        """The ECB rates that apply on `day`: the latest published on or before it, if recent enough."""
        for age in range(self.max_age_days + 1):
            found = self._by_date.get(day - timedelta(days=age))
            if found is not None:
                return found
        newest = max((d.rate_date for d in self.days if d.rate_date <= day), default=None)
        raise NonRetryableError(
            f"no ECB reference rates between {(day - timedelta(days=self.max_age_days)).isoformat()} and "
            f"{day.isoformat()} (newest before: {newest.isoformat() if newest else 'none'}); is the daily fetch "
            f"running?", code="exchange_rate_missing")

    def rate(self, base: str, quote: str, day: date, param: str = "currency") -> ExchangeRate:
        return self.on(day).rate(base, quote, param)


@dataclass(frozen=True)
class MemoLine:
    """An amount restated in another currency for information; not part of the invoice's totals."""

    label: str
    amount: Decimal
    currency: str
    converted: Decimal
    converted_currency: str

    @property
    def text(self) -> str:
        return (f"{self.label}: {self.converted_currency} {format_amount(self.converted, self.converted_currency)} "
                f"({self.currency} {format_amount(self.amount, self.currency)})")


def memo_currency(invoice_currency: str, buyer_country: str) -> str | None:
    """The memo currency an invoice carries (seed 000: USD invoices for Mexico show MXN), or None."""
    memo = MEMO_CURRENCIES.get(buyer_country)
    return memo if memo is not None and memo != invoice_currency else None


def memo_lines(items: Iterable[tuple[str, Decimal]], rate: ExchangeRate,
               rounding: str = ROUND_HALF_UP) -> tuple[list[MemoLine], str]:
    """Each (label, amount in `rate.base`) restated in `rate.quote`, and the sentence stating the rate and
    rounding, to print under them. Each amount is converted on its own (they may not add up)."""
    lines = [MemoLine(label, amount, rate.base, rate.convert(amount, rounding), rate.quote) for label, amount in items]
    mode = rounding.removeprefix("ROUND_").replace("_", " ").lower()
    statement = (f"For information only: amounts in {rate.quote} at {rate.describe()}, each rounded {mode} to "
                 f"{format(quantum(rate.quote), 'f')} {rate.quote}.")
    return lines, statement
