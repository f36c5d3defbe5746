from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.billing.errors import ValidationError
from shared.billing.money import (
    check_currency,
    format_amount,
    from_minor,
    minor_unit,
    parse_amount,
    round_money,
    to_minor,
)


@pytest.mark.parametrize(("currency", "digits"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("BHD", 3), ("CAD", 2),
                                                 ("IQD", 3), ("HUF", 2), ("COP", 2), ("IDR", 2)])
def test_minor_units_come_from_iso_4217(currency, digits):
    assert minor_unit(currency) == digits


def test_rounding_is_half_up_at_the_minor_unit():
    assert round_money(Decimal("0.005"), "USD") == Decimal("0.01")
    assert round_money(Decimal("1.4999"), "USD") == Decimal("1.50")
    assert round_money(Decimal("100.5"), "JPY") == Decimal("101")


def test_parse_refuses_floats_extra_decimals_and_garbage():
    assert parse_amount("1250.00", "USD", "price") == Decimal("1250.00")
    for bad in (1.5, "1.005", "abc", "NaN"):
        with pytest.raises(ValidationError) as caught:
            parse_amount(bad, "USD", "price")
        assert caught.value.param == "price"
    with pytest.raises(ValidationError):
        parse_amount("10.5", "JPY", "price")


def test_unknown_currency_is_refused():
    with pytest.raises(ValidationError):
        minor_unit("XYZ1")


@pytest.mark.parametrize("code", ["HRK", "LTL", "VEF", "DEM", "XAU", "usd"])
def test_obsolete_codes_and_codes_without_a_minor_unit_are_refused(code):
    with pytest.raises(ValidationError) as refused:
        check_currency(code, "currency")
    assert refused.value.param == "currency"


def test_to_minor_never_rounds_silently():
    with pytest.raises(ValueError):
        to_minor(Decimal("1.005"), "USD")


@given(st.integers(-10**12, 10**12), st.sampled_from(["USD", "JPY", "BHD", "EUR"]))
def test_minor_units_round_trip(minor, currency):
    assert to_minor(from_minor(minor, currency), currency) == minor


def test_format_keeps_the_currency_decimals():
    assert format_amount(Decimal("1250"), "USD") == "1250.00"
    assert format_amount(Decimal("500"), "JPY") == "500"
    assert format_amount(Decimal("0.0015"), "USD") == "0.0015"
