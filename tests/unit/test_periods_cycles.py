"""Cycles beyond the month: weekly, over a year, on a month and day (V5-4469); the cycle validator."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.billing.errors import ValidationError
from shared.billing.periods import (
    DAYS_IN,
    MONTHS_IN,
    Period,
    billing_periods,
    cycle_defaults,
    monthly_equivalent,
    period_containing,
    validate_cycle,
)

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31))
cycles = st.sampled_from(sorted(MONTHS_IN) + sorted(DAYS_IN))
months = st.none() | st.integers(1, 12)
weekdays = st.none() | st.integers(1, 7)


@given(start=days, kind=cycles, day=st.integers(1, 31), month=months, weekday=weekdays, length=st.integers(1, 1500))
def test_every_day_lies_in_exactly_one_period(start, kind, day, month, weekday, length):
    until = start + timedelta(days=length)
    periods = list(billing_periods(start, kind, day, until, month=month, weekday=weekday))
    assert periods[0].contains(start) and periods[-1].end >= until > periods[-1].start
    for before, after in zip(periods, periods[1:], strict=False):
        assert before.end == after.start  # no gap, no overlap
    probe = start + timedelta(days=length // 2)
    assert sum(p.contains(probe) for p in periods) == 1
    assert period_containing(start, kind, day, probe, month=month, weekday=weekday) in periods


@given(start=days, weekday=weekdays, kind=st.sampled_from(sorted(DAYS_IN)), length=st.integers(1, 400))
def test_weekly_periods_are_whole_weeks_starting_on_the_weekday(start, weekday, kind, length):
    periods = list(billing_periods(start, kind, 1, start + timedelta(days=length), weekday=weekday))
    wanted = weekday or start.isoweekday()  # anniversary: the start's weekday
    assert all(p.days == DAYS_IN[kind] and p.start.isoweekday() == wanted for p in periods)


@given(start=days, day=st.integers(29, 31), month=st.integers(1, 12), kind=st.sampled_from(
    ["annual", "two_years", "three_years"]))
def test_a_clamped_yearly_anchor_comes_back_to_its_day(start, day, month, kind):
    periods = list(billing_periods(start, kind, day, start + timedelta(days=366 * 13), month=month))
    for period in periods:
        assert period.start.month == month
        last = (date(period.start.year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
        assert period.start.day == min(day, last)  # the day itself whenever the month has it


@given(start=days, day=st.integers(1, 31), kind=st.sampled_from(["month", "quarter", "semi_annual"]),
       month=st.integers(1, 12))
def test_billing_month_leaves_cycles_under_a_year_alone(start, day, kind, month):
    until = start + timedelta(days=800)
    assert list(billing_periods(start, kind, day, until, month=month)) == list(billing_periods(start, kind, day, until))


@given(start=days, day=st.integers(1, 31), kind=st.sampled_from(sorted(MONTHS_IN)), weekday=st.integers(1, 7))
def test_weekday_leaves_month_based_cycles_alone(start, day, kind, weekday):
    until = start + timedelta(days=800)
    assert list(billing_periods(start, kind, day, until, weekday=weekday)) == list(
        billing_periods(start, kind, day, until))


def test_annual_on_a_month_starts_at_the_next_occurrence_of_the_month_and_day():
    # fiscal year from April 1: a January start sits in the year that began the previous April
    periods = list(billing_periods(date(2025, 1, 15), "annual", 1, date(2026, 6, 1), month=4))
    assert periods == [Period(date(2024, 4, 1), date(2025, 4, 1)), Period(date(2025, 4, 1), date(2026, 4, 1)),
                       Period(date(2026, 4, 1), date(2027, 4, 1))]


def test_three_year_cycle_on_february_29():
    starts = [p.start for p in billing_periods(date(2024, 2, 29), "three_years", 29, date(2037, 1, 1), month=2)]
    assert starts == [date(2024, 2, 29), date(2027, 2, 28), date(2030, 2, 28), date(2033, 2, 28), date(2036, 2, 29)]


def test_cycle_defaults_follow_the_alignment():
    thursday = date(2025, 3, 13)
    assert cycle_defaults("anniversary", thursday) == (13, 3, 4)
    assert cycle_defaults("calendar", thursday) == (1, 1, 1)
    assert cycle_defaults("calendar", thursday, billing_month=4) == (1, 4, 1)


def test_monthly_equivalent():
    assert monthly_equivalent(Decimal("1200"), "annual") == Decimal("100")
    assert monthly_equivalent(Decimal("2400"), "two_years") == Decimal("100")
    assert monthly_equivalent(Decimal("12"), "week") == Decimal("52")
    assert monthly_equivalent(Decimal("12"), "two_weeks") == Decimal("26")


@pytest.mark.parametrize(("cycles", "day", "month", "weekday", "param"), [
    ({"month"}, 32, None, None, "billing_day"),
    ({"month"}, 0, None, None, "billing_day"),
    ({"month"}, 15, 4, None, "billing_month"),  # a month of the year for a monthly plan
    ({"quarter", "semi_annual"}, 1, 1, None, "billing_month"),
    ({"annual"}, 1, 13, None, "billing_month"),
    ({"two_years"}, 30, 2, None, "billing_day"),  # February has no 30th
    ({"annual"}, 31, 4, None, "billing_day"),
    ({"month"}, None, None, 1, "billing_weekday"),  # a weekday for a monthly plan
    ({"week"}, None, None, 8, "billing_weekday"),
    ({"week"}, 5, None, None, "billing_day"),  # weekly cycles have no day of the month
    ({"fortnight"}, None, None, None, "billing_period"),
])
def test_validate_cycle_refuses_options_the_cycles_cannot_use(cycles, day, month, weekday, param):
    with pytest.raises(ValidationError) as refused:
        validate_cycle(cycles, "anniversary", day, month, weekday)
    assert refused.value.param == param


@pytest.mark.parametrize(("cycles", "day", "month", "weekday"), [
    ({"month"}, 31, None, None),
    ({"annual"}, 29, 2, None),  # Feb 29: clamps to Feb 28 in common years
    ({"month", "annual"}, 1, 4, None),
    ({"week", "month"}, 1, None, 5),
    ({"two_weeks"}, None, None, 7),
    ({"three_years"}, None, 12, None),
])
def test_validate_cycle_accepts_options_that_apply(cycles, day, month, weekday):
    validate_cycle(cycles, "calendar", day, month, weekday)


def test_validate_cycle_refuses_an_unknown_alignment():
    with pytest.raises(ValidationError) as refused:
        validate_cycle({"month"}, "fiscal", 1, None, None)
    assert refused.value.param == "billing_alignment"
