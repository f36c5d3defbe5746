"""Cycles, billing days and stub proration against vendors' published worked examples.

Each test cites where its figures come from; amounts are recomputed in USD with our convention
(a stub is `price x days / days in its full period`, half up at the minor unit), which is Lago's,
Kill Bill's (without fixed proration) and Stripe's by-day rule. Conventions: shared/billing/README.md,
"Cycles and billing days".
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from shared.billing.models import Charge, Plan, Subscription
from shared.billing.periods import Period, billing_periods, cycle_defaults, period_containing
from shared.billing.rating import rate_subscription
from shared.billing.schedule import charge_items, due_items

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def plan(price: str, **charge) -> Plan:
    fields = {"code": "fee", "name": "Fee", "price": Decimal(price)} | charge
    return Plan(code="p", name="Plan", currency="USD", charges=[Charge(**fields)], created_at=NOW)


def contract(start: date, alignment: str = "anniversary", anchor: date | None = None, **fields) -> Subscription:
    """A subscription with the billing-day defaults of its alignment (`cycle_defaults`)."""
    day, month, weekday = cycle_defaults(alignment, anchor or start, fields.pop("billing_day", None),
                                         fields.pop("billing_month", None), fields.pop("billing_weekday", None))
    return Subscription(id="sub_1", customer_id="cus_1", plan_code="p", start_date=start, billing_alignment=alignment,
                        billing_day=day, billing_month=month, billing_weekday=weekday, created_at=NOW, **fields)


def lines(sub: Subscription, p: Plan, as_of: date):
    """(service start, service end exclusive, amount, proration rule) of everything due by `as_of`."""
    rated = rate_subscription(sub, {1: p}, {}, due_items(sub, {1: p}, as_of, ()))
    return [(ln.period_start, ln.period_end, ln.amount, ln.proration) for ln in rated.lines]


def by_day(days: int, of: int, first: str, last: str) -> str:
    """The proration rule written on a stub line (rating.py)."""
    return f"prorated by day: {days}/{of} days of {first} to {last}"


def bill_dates(sub: Subscription, p: Plan, count: int) -> list[date]:
    items = charge_items(sub, p.charges[0])
    return [next(items).bill_date for _ in range(count)]


def first_billing_cycle_date(start: date, kind: str, bcd: int, month: int | None = None) -> date:
    """Kill Bill's first billing cycle date: the first boundary on or after the start."""
    first = next(billing_periods(start, kind, bcd, date(2100, 1, 1), month=month))
    return first.start if first.start == start else first.end


# Stripe ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("year", "february_end"), [(2023, date(2023, 2, 28)), (2024, date(2024, 2, 29))])
def test_stripe_january_31_anchor_bills_the_last_day_of_short_months_and_comes_back(year, february_end):
    # docs.stripe.com/billing/subscriptions/billing-cycle: "a billing cycle anchor date of January 31
    # bills the last day of the month closest to the anchor date, so February 28 (or February 29 in a
    # leap year), then March 31, April 30, and so on."
    sub, p = contract(date(year, 1, 31)), plan("100.00")
    assert bill_dates(sub, p, 4) == [date(year, 1, 31), february_end, date(year, 3, 31), date(year, 4, 30)]
    assert [amount for *_, amount, rule in lines(sub, p, date(year, 4, 30))] == [Decimal("100.00")] * 4


def test_stripe_weekly_anchor_on_a_friday_bills_every_friday_across_the_year_end():
    # docs.stripe.com/billing/subscriptions/billing-cycle: "A weekly subscription with a billing cycle
    # anchor date of Friday, June 3 bills every Friday thereafter." (June 3, 2022 was a Friday.)
    sub, p = contract(date(2022, 6, 3)), plan("7.00", billing_period="week")
    assert sub.billing_weekday == 5
    dates = bill_dates(sub, p, 32)
    assert dates[0] == date(2022, 6, 3) and all(d.isoweekday() == 5 for d in dates)
    assert date(2022, 12, 30) in dates and date(2023, 1, 6) in dates  # across the year end, 7 days apart
    assert period_containing(sub.start_date, "week", sub.billing_day, date(2023, 1, 1), weekday=5) == Period(
        date(2022, 12, 30), date(2023, 1, 6))


def test_stripe_monthly_from_may_15_anchored_on_june_1_prorates_until_the_anchor():
    # docs.stripe.com/payments/checkout/billing-cycle: "a monthly subscription created on May 15 with an
    # anchor at June 1 is billed on May 15, then always on the 1st of the month", the first invoice
    # prorated until the anchor: 17 of May's 31 days (31.00 a month gives 17.00).
    sub, p = contract(date(2025, 5, 15), billing_day=1), plan("31.00")
    assert bill_dates(sub, p, 3) == [date(2025, 5, 15), date(2025, 6, 1), date(2025, 7, 1)]
    assert lines(sub, p, date(2025, 6, 1)) == [
        (date(2025, 5, 15), date(2025, 6, 1), Decimal("17.00"), by_day(17, 31, "2025-05-01", "2025-05-31")),
        (date(2025, 6, 1), date(2025, 7, 1), Decimal("31.00"), None)]


# Kill Bill ---------------------------------------------------------------------------------------
# KILLBILL_IN_ADVANCE below is github.com/killbill/killbill/blob/master/invoice/src/test/java/org/killbill/billing/
# invoice/generator/TestInAdvanceBillingIntervalDetail.java


@pytest.mark.parametrize(("start", "bcd", "annual", "monthly"), [
    (date(2012, 1, 16), 17, date(2012, 1, 17), date(2012, 1, 17)),  # testCalculateFirstBillingCycleDate1
    (date(2012, 2, 16), 30, date(2012, 2, 29), date(2012, 2, 29)),  # ...2: BCD 30 clamps in a leap February
    (date(2012, 1, 31), 30, date(2013, 1, 30), date(2012, 2, 29)),  # ...3: BCD before the start
    (date(2012, 2, 16), 14, date(2013, 2, 14), date(2012, 3, 14)),  # ...4
])
def test_killbill_first_billing_cycle_date(start, bcd, annual, monthly):
    # KILLBILL_IN_ADVANCE: an annual cycle's BCD falls in the start's month (our anniversary
    # billing_month), a monthly one in the first month that reaches it.
    assert first_billing_cycle_date(start, "annual", bcd, month=start.month) == annual
    assert first_billing_cycle_date(start, "month", bcd) == monthly


def test_killbill_bcd_31_starting_in_a_30_day_month():
    # KILLBILL_IN_ADVANCE testBCD31StartingWith30DayMonth: start 2012-04-30, BCD 31 -> the first
    # period ends 2012-05-31 (April 30 is April's 31st, clamped).
    assert period_containing(date(2012, 4, 30), "month", 31, date(2012, 4, 30)) == Period(
        date(2012, 4, 30), date(2012, 5, 31))


def test_killbill_bcd_31_from_january_31_bills_three_whole_periods_by_march_31():
    # KILLBILL_IN_ADVANCE testWithBCDLargerThanEndMonth (killbill issue #127): start 2017-01-31,
    # BCD 31, target 2017-03-31 -> 3 whole billing periods.
    sub, p = contract(date(2017, 1, 31)), plan("100.00")
    assert [(s, e, a) for s, e, a, _ in lines(sub, p, date(2017, 3, 31))] == [
        (date(2017, 1, 31), date(2017, 2, 28), Decimal("100.00")),
        (date(2017, 2, 28), date(2017, 3, 31), Decimal("100.00")),
        (date(2017, 3, 31), date(2017, 4, 30), Decimal("100.00"))]


@pytest.mark.parametrize(("start", "days", "of", "amount"), [
    (date(2023, 5, 23), 23, 31, Decimal("74.19")),  # 0.741935484
    (date(2023, 6, 23), 22, 30, Decimal("73.33")),  # 0.733333333
    (date(2023, 2, 23), 20, 28, Decimal("71.43")),  # 0.714285714, February
    (date(2024, 2, 23), 21, 29, Decimal("72.41")),  # 0.724137931, February of a leap year
])
def test_killbill_proration_before_the_first_billing_period(start, days, of, amount):
    # github.com/killbill/killbill/blob/master/invoice/src/test/java/org/killbill/billing/invoice/generator/
    # TestInvoiceDateUtilsWithoutFixedProration.java testProRationBeforeFirstBillingPeriod: a monthly
    # start before the next BCD (the 15th) bills days / days of the full period ending on it.
    sub, p = contract(start, billing_day=15), plan("100.00")
    (stub,) = lines(sub, p, start)
    next_bcd = date(start.year, start.month + 1, 15)
    assert stub[:3] == (start, next_bcd, amount)
    assert f"{days}/{of} days" in stub[3]


@pytest.mark.parametrize("timing", ["in_advance", "in_arrears"])
@pytest.mark.parametrize(("end", "amount"), [
    (date(2023, 6, 15), Decimal("74.19")),  # 23 of [May 23, Jun 23): 0.741935484
    (date(2023, 7, 15), Decimal("73.33")),  # 22 of [Jun 23, Jul 23): 0.733333333
    (date(2023, 3, 15), Decimal("71.43")),  # 20 of [Feb 23, Mar 23): 0.714285714
    (date(2024, 3, 15), Decimal("72.41")),  # 21 of [Feb 23, Mar 23) in 2024: 0.724137931
])
def test_killbill_proration_after_the_last_billing_cycle_date(end, amount, timing):
    # TestInvoiceDateUtilsWithoutFixedProration.java testProRationAfterLastBillingCycleDate: a contract
    # billed on the 23rd that ends on the 15th bills its last days / days of the full period. In
    # advance on the period's first day, in arrears on the end of service.
    start = date(end.year - (end.month < 3), (end.month - 3) % 12 + 1, 23)  # two periods before the end
    sub, p = contract(start, end_date=end), plan("100.00", timing=timing)
    last_start = date(end.year, end.month - 1, 23)
    *_, last = lines(sub, p, end)
    assert last[:3] == (last_start, end, amount)
    items = list(charge_items(sub, p.charges[0]))
    assert items[-1].bill_date == (last_start if timing == "in_advance" else end)


# Lago --------------------------------------------------------------------------------------------

def test_lago_calendar_month_started_on_august_10_is_prorated():
    # docs.getlago.com/guide/subscriptions/assign-plan: Premium plan, $50 monthly, calendar, signed up
    # August 10th: "22 days x $50 / 31 days = $35.48"; then full calendar months.
    sub, p = contract(date(2025, 8, 10), "calendar"), plan("50.00")
    assert lines(sub, p, date(2025, 9, 1)) == [
        (date(2025, 8, 10), date(2025, 9, 1), Decimal("35.48"), by_day(22, 31, "2025-08-01", "2025-08-31")),
        (date(2025, 9, 1), date(2025, 10, 1), Decimal("50.00"), None)]


def test_lago_calendar_month_from_july_14_then_full_months():
    # docs.getlago.com/guide/subscriptions/assign-plan: a monthly plan assigned on July 14th is invoiced
    # July 14th to July 31st, then August 1st to August 31st, then full calendar months.
    sub = contract(date(2025, 7, 14), "calendar")
    periods = list(billing_periods(sub.start_date, "month", sub.billing_day, date(2025, 10, 1)))
    assert [p.intersect(Period(sub.start_date, date(2100, 1, 1))) for p in periods] == [
        Period(date(2025, 7, 14), date(2025, 8, 1)), Period(date(2025, 8, 1), date(2025, 9, 1)),
        Period(date(2025, 9, 1), date(2025, 10, 1))]


def test_lago_anniversary_month_bills_on_the_10th():
    # getlago.com/changelog/anniversary-date: a monthly plan assigned on August 10th, anniversary:
    # "the customer will be billed every 10th of the month".
    sub, p = contract(date(2025, 8, 10)), plan("50.00")
    assert bill_dates(sub, p, 3) == [date(2025, 8, 10), date(2025, 9, 10), date(2025, 10, 10)]


def test_lago_trial_of_5_days_on_a_calendar_month_paid_in_advance():
    # doc.getlago.com/docs/guide/plans/plan-model: $50 monthly in advance, 5-day trial, starts April 1st:
    # invoice for April 6th to April 30th, "$50 x 25 days due / 30 days in April = $41.67". Lago issues it
    # on April 1st; here it is due on the trial's end (README: trials), with the same figures.
    sub, p = contract(date(2025, 4, 1), "calendar", trial_end=date(2025, 4, 6)), plan("50.00")
    assert lines(sub, p, date(2025, 4, 6)) == [
        (date(2025, 4, 6), date(2025, 5, 1), Decimal("41.67"), by_day(25, 30, "2025-04-01", "2025-04-30"))]


@pytest.mark.parametrize(("timing", "bill_date"), [("in_advance", date(2025, 1, 1)), ("in_arrears", date(2025, 1, 6))])
def test_lago_weekly_calendar_runs_monday_to_sunday_and_prorates_a_mid_week_start(timing, bill_date):
    # docs.getlago.com/guide/plans/plan-model and getlago.com/changelog/weekly-plan-interval: weeks run
    # Monday to Sunday; "if the customer's subscription starts in the middle of the week, the fees
    # will be applied on a pro-rata basis"; in advance at the week's start, in arrears at its end.
    # Wednesday January 1, 2025, 70.00 a week: 5 of 7 days (Wednesday to Sunday) = 50.00.
    sub, p = contract(date(2025, 1, 1), "calendar"), plan("70.00", billing_period="week", timing=timing)
    assert sub.billing_weekday == 1
    first = next(charge_items(sub, p.charges[0]))
    assert (first.period, first.service, first.bill_date) == (
        Period(date(2024, 12, 30), date(2025, 1, 6)), Period(date(2025, 1, 1), date(2025, 1, 6)), bill_date)
    assert lines(sub, p, date(2025, 1, 13))[:2] == [
        (date(2025, 1, 1), date(2025, 1, 6), Decimal("50.00"), by_day(5, 7, "2024-12-30", "2025-01-05")),
        (date(2025, 1, 6), date(2025, 1, 13), Decimal("70.00"), None)]


# Chargebee ---------------------------------------------------------------------------------------

def test_chargebee_calendar_billing_on_the_15th_from_february_5():
    # chargebee.com/docs/2.0/calendar-billing.html ("Immediate Alignment"): billing date the 15th,
    # $100/month, signed up February 5: first billing period Feb 5 - Feb 15, "~$33 (prorated for 10
    # days)", next renewal Feb 15. Chargebee's "~" is 10/30 of the price; by day against the full
    # period [Jan 15, Feb 15) (31 days) it is 32.26.
    sub, p = contract(date(2025, 2, 5), "calendar", billing_day=15), plan("100.00")
    assert bill_dates(sub, p, 2) == [date(2025, 2, 5), date(2025, 2, 15)]
    (stub,) = lines(sub, p, date(2025, 2, 5))
    assert stub == (date(2025, 2, 5), date(2025, 2, 15), Decimal("32.26"),
                    by_day(10, 31, "2025-01-15", "2025-02-14"))


@pytest.mark.parametrize(("kind", "second"), [
    ("month", date(2015, 11, 1)), ("week", date(2015, 10, 8)), ("annual", date(2016, 10, 1))])
def test_chargebee_next_billing_date(kind, second):
    # chargebee.com/docs/next-billing-date.html: sign-up October 1 -> next billing date November 1
    # (monthly), October 8 (weekly), October 1, 2016 (yearly).
    sub, p = contract(date(2015, 10, 1)), plan("10.00", billing_period=kind)
    assert bill_dates(sub, p, 2) == [date(2015, 10, 1), second]


def test_chargebee_trial_moves_the_anchor_to_the_activation():
    # chargebee.com/docs/next-billing-date.html: sign-up October 1, monthly plan with a 15-day trial:
    # activation October 16, next billing date November 16.
    start, activation = date(2015, 10, 1), date(2015, 10, 16)
    sub, p = contract(start, anchor=activation, trial_end=activation), plan("10.00")
    assert bill_dates(sub, p, 2) == [activation, date(2015, 11, 16)]
    assert lines(sub, p, activation) == [(activation, date(2015, 11, 16), Decimal("10.00"), None)]


# Cycles over a year on a month and day (V5-4469) -------------------------------------------------

def test_two_year_cycle_on_april_1_prorates_the_stub_against_731_days():
    # V5-4469 (seed 004): a day of the month and a month of the year for cycles longer than a year.
    # Finix (docs.finix.com/release-notes/2026/08/set-a-billing-cycle-day-for-subscriptions) prorates
    # the first invoice "for the days until the first billing cycle day", intervals up to TRIYEARLY.
    # Start March 15, 2025, every two years on April 1: [2023-04-01, 2025-04-01) has 731 days
    # (February 29, 2024 inside); 17 of them are billed: 731.00 gives 17.00.
    sub, p = contract(date(2025, 3, 15), "calendar", billing_day=1, billing_month=4), plan(
        "731.00", billing_period="two_years")
    assert bill_dates(sub, p, 3) == [date(2025, 3, 15), date(2025, 4, 1), date(2027, 4, 1)]
    assert lines(sub, p, date(2025, 4, 1)) == [
        (date(2025, 3, 15), date(2025, 4, 1), Decimal("17.00"), by_day(17, 731, "2023-04-01", "2025-03-31")),
        (date(2025, 4, 1), date(2027, 4, 1), Decimal("731.00"), None)]


def test_calendar_annual_on_a_fiscal_year_from_april_1_in_arrears():
    # a calendar-aligned annual fee on billing_month 4 (fiscal year from April 1), in arrears: the stub
    # January 15 - March 31, 2025 is 76 of the 365 days of [2024-04-01, 2025-04-01), billed at its end.
    sub, p = contract(date(2025, 1, 15), "calendar", billing_month=4), plan("365.00", billing_period="annual",
                                                                            timing="in_arrears")
    assert bill_dates(sub, p, 2) == [date(2025, 4, 1), date(2026, 4, 1)]
    assert lines(sub, p, date(2025, 4, 1)) == [
        (date(2025, 1, 15), date(2025, 4, 1), Decimal("76.00"), by_day(76, 365, "2024-04-01", "2025-03-31"))]


def test_calendar_annual_defaults_to_january():
    # without billing_month a calendar-aligned annual cycle is the calendar year (cycle_defaults: January):
    # March 1 - December 31, 2025 is 306 of 365 days.
    sub, p = contract(date(2025, 3, 1), "calendar"), plan("365.00", billing_period="annual")
    (stub,) = lines(sub, p, date(2025, 3, 1))
    assert stub[:3] == (date(2025, 3, 1), date(2026, 1, 1), Decimal("306.00"))
