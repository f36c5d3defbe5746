"""Exchange rates: ECB reference rates as values, the rate for a day, conversion and memo lines.

Figures: ECB euro foreign exchange reference rates of 28 February, 3 and 4 March 2025 (3 March:
1 EUR = 1.0465 USD = 21.4253 MXN = 158.33 JPY = 0.8253 GBP),
https://www.ecb.europa.eu/stats/policy_and_exchange_rates/euro_reference_exchange_rates/
(the same figures are read back from ECB's own file in tests/integration/test_fx_rates.py).
ECB: "the reference rates are published ... on each TARGET business day"; cross rates between two non-euro
currencies are derived from them.
"""

from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.billing.errors import NonRetryableError, ValidationError
from shared.billing.fx import (
    ExchangeRate,
    RateHistory,
    ReferenceRates,
    memo_currency,
    memo_lines,
)

D = Decimal
MARCH_3 = ReferenceRates(date(2025, 3, 3), {"USD": D("1.0465"), "MXN": D("21.4253"), "JPY": D("158.33"),
                                            "GBP": D("0.8253")})
MARCH_4 = ReferenceRates(date(2025, 3, 4), {"USD": D("1.0557"), "MXN": D("21.9418")})
FEB_28 = ReferenceRates(date(2025, 2, 28), {"USD": D("1.0411"), "MXN": D("21.2191")})


def test_euro_rates_are_published_ones_and_convert_half_up_at_the_quote_minor_unit():
    rate = MARCH_3.rate("EUR", "USD")
    assert (rate.base, rate.quote, rate.rate, rate.rate_date, rate.derivation) == (
        "EUR", "USD", D("1.0465"), date(2025, 3, 3), "")
    assert rate.convert(D("1000.00")) == D("1046.50")
    assert rate.convert(D("0.01")) == D("0.01")  # 0.010465
    assert MARCH_3.rate("EUR", "JPY").convert(D("10.00")) == D("1583")  # JPY has no decimals
    assert rate.describe() == "1 EUR = 1.0465 USD (ECB euro foreign exchange reference rates of 2025-03-03)"


def test_cross_rate_via_euro_is_stated_with_its_rounding():
    rate = MARCH_3.rate("USD", "MXN")
    assert rate.rate == D("20.473292")  # 21.4253 / 1.0465 = 20.47329192...
    assert "cross rate via EUR: 21.4253 MXN / 1.0465 USD, half up to 6 decimals" in rate.describe()
    assert rate.convert(D("1250.00")) == D("25591.62")  # 25591.615 half up


def test_inverse_rate_to_euro():
    rate = MARCH_3.rate("USD", "EUR")
    assert rate.rate == D("0.955566")  # 1 / 1.0465
    assert rate.convert(D("1046.50")) == D("1000.00")
    assert MARCH_3.rate("USD", "USD").rate == 1


def test_explicit_rounding_mode():
    assert MARCH_3.rate("EUR", "USD").convert(D("0.99"), ROUND_DOWN) == D("1.03")  # 1.036035 down
    assert MARCH_3.rate("EUR", "USD").convert(D("0.99")) == D("1.04")


def test_a_currency_without_a_rate_that_day_is_an_error_naming_the_field():
    with pytest.raises(ValidationError) as missing:
        MARCH_4.rate("EUR", "JPY", param="invoice.currency")
    assert missing.value.param == "invoice.currency"
    assert "no reference rate for JPY on 2025-03-04" in missing.value.message
    with pytest.raises(ValidationError) as unknown:
        MARCH_3.rate("EUR", "XXY")
    assert unknown.value.param == "currency"


def test_the_rate_for_a_day_is_the_latest_ecb_day_on_or_before_it():
    history = RateHistory([MARCH_4, FEB_28, MARCH_3])
    assert history.on(date(2025, 3, 3)) is MARCH_3
    assert history.on(date(2025, 3, 2)) is FEB_28  # Sunday: Friday's rates
    assert history.on(date(2025, 3, 9)) is MARCH_4  # 5 days old: still accepted (Easter-length gap)
    with pytest.raises(NonRetryableError) as stale:
        history.on(date(2025, 3, 10))
    assert stale.value.code == "exchange_rate_missing"
    with pytest.raises(NonRetryableError):
        history.on(date(2025, 2, 1))
    assert history.rate("EUR", "USD", date(2025, 3, 1)).rate == D("1.0411")
    assert history.latest == date(2025, 3, 4)


def test_a_rate_is_a_positive_decimal():
    for bad in (D("0"), D("-1"), D("NaN"), 1.1):
        with pytest.raises(ValidationError):
            ExchangeRate("EUR", "USD", bad, date(2025, 3, 3))
    with pytest.raises(ValidationError):
        MARCH_3.rate("EUR", "USD").convert(1.5)


def test_stored_rate_round_trips_as_strings():
    rate = MARCH_3.rate("USD", "MXN")
    stored = rate.to_dict()
    assert all(isinstance(value, str) for value in stored.values())
    assert ExchangeRate.from_dict(stored) == rate


def test_mexico_usd_invoices_carry_mxn_memo_lines():
    assert memo_currency("USD", "MX") == "MXN"
    assert memo_currency("MXN", "MX") is None
    assert memo_currency("USD", "US") is None
    lines, statement = memo_lines([("Subtotal", D("1250.00")), ("Tax", D("0.00")), ("Total", D("1250.00"))],
                                  MARCH_3.rate("USD", "MXN"))
    assert [(m.label, m.converted, m.converted_currency) for m in lines] == [
        ("Subtotal", D("25591.62"), "MXN"), ("Tax", D("0.00"), "MXN"), ("Total", D("25591.62"), "MXN")]
    assert lines[0].text == "Subtotal: MXN 25591.62 (USD 1250.00)"
    assert "1 USD = 20.473292 MXN" in statement and "each rounded half up to 0.01 MXN" in statement


@given(amount=st.decimals(min_value=D("-1000000"), max_value=D("1000000"), places=2),
       rate=st.decimals(min_value=D("0.0001"), max_value=D("30000"), places=6))
def test_conversion_is_within_half_a_minor_unit_of_the_exact_product(amount, rate):
    converted = ExchangeRate("USD", "MXN", rate, date(2025, 3, 3)).convert(amount)
    assert converted == converted.quantize(D("0.01"))
    assert abs(converted - amount * rate) <= D("0.005")


@given(days=st.lists(st.integers(0, 60), min_size=1, max_size=20, unique=True), probe=st.integers(0, 70))
def test_the_chosen_day_is_never_after_the_date_nor_older_than_the_limit(days, probe):
    start = date(2025, 1, 1)
    history = RateHistory([ReferenceRates(start + timedelta(d), {"USD": D("1.1")}) for d in days])
    day = start + timedelta(probe)
    eligible = [start + timedelta(d) for d in days if 0 <= probe - d <= history.max_age_days]
    if eligible:
        assert history.on(day).rate_date == max(eligible)
    else:
        with pytest.raises(NonRetryableError):
            history.on(day)
