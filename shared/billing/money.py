"""Money: Decimal amounts in an ISO 4217 currency, rounded explicitly at its minor unit."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache

from iso4217 import Currency

from shared.billing.errors import ValidationError

ZERO = Decimal("0")


@cache
def _minor_units() -> dict[str, int]:
    """ISO 4217 list one as published (the `iso4217` package, SIX's table): current codes only, and only
    those with a minor unit (gold, SDR, the test code XTS... have none: nothing is billed in them)."""
    return {currency.code: currency.exponent for currency in Currency if currency.exponent is not None}


def known_currencies() -> frozenset[str]:
    return frozenset(_minor_units())


def check_currency(code: str, field: str = "currency") -> str:
    if not isinstance(code, str) or code not in _minor_units():
        raise ValidationError(f"'{code}' is not a current ISO 4217 currency code", param=field)
    return code


def minor_unit(currency: str) -> int:
    """Number of decimals of the currency's ISO 4217 minor unit (USD 2, JPY 0, BHD 3, IQD 3, HUF 2)."""
    return _minor_units()[check_currency(currency)]


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit(currency))


def round_money(amount: Decimal, currency: str, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round to the currency's minor unit. Half-up unless a jurisdiction says otherwise."""
    return amount.quantize(quantum(currency), rounding=rounding)


def parse_amount(value: object, currency: str, field: str) -> Decimal:
    """A money amount from an API string: no floats, no more decimals than the currency has."""
    if isinstance(value, float) or isinstance(value, bool):
        raise ValidationError("money must be a decimal string, not a number", param=field)
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError(f"'{value}' is not a decimal amount", param=field) from None
    if not amount.is_finite():
        raise ValidationError(f"'{value}' is not a finite amount", param=field)
    if amount != round_money(amount, currency):
        raise ValidationError(
            f"{currency} amounts have {minor_unit(currency)} decimals at most; got '{value}'",
            param=field,
        )
    return amount


def to_minor(amount: Decimal, currency: str) -> int:
    """Integer minor units for storage; refuses to round silently."""
    scaled = amount.scaleb(minor_unit(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} is not a whole number of minor units")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    return (Decimal(int(minor)).scaleb(-minor_unit(currency))).quantize(quantum(currency))


def format_amount(amount: Decimal, currency: str) -> str:
    """The API's string form: at least the currency's decimals ("1250.00", "500", "0.0015")."""
    rounded = round_money(amount, currency)
    return format(rounded if rounded == amount else amount.normalize(), "f")
