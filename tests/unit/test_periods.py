"""Periods: month-end clamping, no gaps or overlaps, containment."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.billing.periods import Period, add_months, billing_periods, period_containing


@pytest.mark.parametrize(
    ("anchor", "months", "expected"),
    [
        (date(2025, 1, 31), 1, date(2025, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # leap year
        (date(2025, 1, 31), 2, date(2025, 3, 31)),  # comes back to the 31st
        (date(2025, 1, 30), 1, date(2025, 2, 28)),
        (date(2025, 3, 31), 1, date(2025, 4, 30)),
        (date(2025, 12, 15), 1, date(2026, 1, 15)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2025, 5, 31), -3, date(2025, 2, 28)),
    ],
)
def test_add_months_clamps_to_month_end(anchor, months, expected):
    assert add_months(anchor, months) == expected


def test_anchor_on_31st_clamps_and_comes_back():
    periods = list(billing_periods(date(2025, 1, 31), "month", 31, until=date(2025, 6, 1)))
    assert [(p.start, p.end) for p in periods[:4]] == [
        (date(2025, 1, 31), date(2025, 2, 28)),
        (date(2025, 2, 28), date(2025, 3, 31)),
        (date(2025, 3, 31), date(2025, 4, 30)),
        (date(2025, 4, 30), date(2025, 5, 31)),
    ]


def test_a_start_off_the_billing_day_sits_in_the_full_period_before_it():
    periods = list(billing_periods(date(2025, 3, 15), "month", 1, until=date(2025, 5, 1)))
    assert periods == [Period(date(2025, 3, 1), date(2025, 4, 1)), Period(date(2025, 4, 1), date(2025, 5, 1))]


def test_annual_and_quarterly_lengths():
    annual = next(billing_periods(date(2024, 2, 29), "annual", 29, until=date(2030, 1, 1)))
    assert annual == Period(date(2024, 2, 29), date(2025, 2, 28))
    quarter = next(billing_periods(date(2025, 11, 30), "quarter", 30, until=date(2030, 1, 1)))
    assert quarter == Period(date(2025, 11, 30), date(2026, 2, 28))


def test_empty_period_is_refused():
    with pytest.raises(ValueError):
        Period(date(2025, 1, 1), date(2025, 1, 1))


days = st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31))


@given(start=days, day=st.integers(1, 31), kind=st.sampled_from(["month", "quarter", "semi_annual", "annual"]),
       length=st.integers(1, 2000))
def test_periods_tile_the_range_without_gaps_or_overlaps(start, day, kind, length):
    until = start + timedelta(days=length)
    periods = list(billing_periods(start, kind, day, until))
    assert periods[0].contains(start)
    assert periods[-1].end >= until
    for before, after in zip(periods, periods[1:], strict=False):
        assert before.end == after.start
    assert all(p.days <= 366 for p in periods)


@given(start=days, day=st.integers(1, 31), offset=st.integers(0, 1500))
def test_period_containing_contains_the_day(start, day, offset):
    target = start + timedelta(days=offset)
    period = period_containing(start, "month", day, target)
    assert period.contains(target)
    assert 28 <= period.days <= 31
