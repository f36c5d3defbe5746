"""Billing periods: half-open date intervals [start, end) and month arithmetic with clamping.

Month arithmetic always counts from the anchor, never from the previous result, so an anchor
on the 31st clamps in short months and comes back: Jan 31 -> Feb 28 (29) -> Mar 31.

Cycles (shared/billing/README.md, "Cycles and billing days"):
- month-based (`MONTHS_IN`): boundaries on `billing_day`; for cycles of a year or more also in
  `billing_month` when given (V5-4469; Stripe's and Kill Bill's yearly anchor is a month and a day);
- week-based (`DAYS_IN`): boundaries on the ISO `weekday` (1 = Monday) when given, else on the
  start's weekday; `billing_day` does not apply.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from shared.billing.errors import ValidationError

OPEN_END = date(9999, 1, 1)  # "no end" for open-ended contracts
MONTHS_IN = {"month": 1, "quarter": 3, "semi_annual": 6, "annual": 12, "two_years": 24, "three_years": 36}
DAYS_IN = {"week": 7, "two_weeks": 14}
YEARLY_MONTHS = 12  # cycles of at least this many months may fall in a `billing_month`


@dataclass(frozen=True, order=True)
class Period:
    start: date
    end: date  # exclusive

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"empty period [{self.start}, {self.end})")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end

    def intersect(self, other: Period) -> Period | None:
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Period(start, end) if start < end else None


def add_months(anchor: date, months: int, day: int | None = None) -> date:
    """The date `months` after `anchor`'s month, on `day` (default: anchor's day), clamped."""
    index = anchor.year * 12 + (anchor.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    wanted = day if day is not None else anchor.day
    return date(year, month, min(wanted, calendar.monthrange(year, month)[1]))


def months_after(anchor: date, day: date, months: int) -> date:
    """`months` after `day`, counted from `anchor` so that month ends clamp and come back
    (anchor Jan 31: Feb 28 + 1 month is Mar 31, not Mar 28)."""
    elapsed = (day.year - anchor.year) * 12 + day.month - anchor.month
    return add_months(anchor, elapsed + months)


def renewed_end(start: date, end: date, term_months: int) -> date:
    """The end of the term after the one ending on `end`: start + the months of every term so far
    plus one (start Jan 31, monthly: Feb 28 -> Mar 31 -> Apr 30), never the previous end + a term."""
    return months_after(start, end, term_months)


def monthly_equivalent(amount: Decimal, billing_period: str) -> Decimal:
    """`amount` per `billing_period` as an amount per month, unrounded (MRR): a year is 52 weeks."""
    if billing_period in DAYS_IN:
        return amount * 52 * DAYS_IN["week"] / (12 * DAYS_IN[billing_period])
    return amount / MONTHS_IN[billing_period]


def period_boundary(anchor: date, billing_period: str, index: int, day: int) -> date:
    """The `index`-th boundary of a schedule whose boundaries fall on `day` from `anchor`
    (week-based cycles: every `DAYS_IN` days from `anchor`, `day` unused)."""
    if billing_period in DAYS_IN:
        return anchor + timedelta(days=index * DAYS_IN[billing_period])
    return add_months(anchor, index * MONTHS_IN[billing_period], day)


def first_boundary_on_or_after(start: date, day: int, month: int | None = None) -> date:
    """The first date >= start on billing day `day` (clamped in short months), in `month` when given."""
    if month is not None:
        candidate = add_months(date(start.year, month, 1), 0, day)
        return candidate if candidate >= start else add_months(candidate, 12, day)
    candidate = add_months(start, 0, day)
    return candidate if candidate >= start else add_months(start, 1, day)


def first_weekday_on_or_after(start: date, weekday: int | None) -> date:
    """The first date >= start on ISO `weekday` (1 = Monday); `start` itself when None."""
    if weekday is None:
        return start
    return start + timedelta(days=(weekday - start.isoweekday()) % 7)


def billing_periods(
    start: date, billing_period: str, billing_day: int, until: date,
    month: int | None = None, weekday: int | None = None,
) -> Iterator[Period]:
    """Consecutive full billing periods, the first containing `start`, covering [start, until).

    Boundaries fall on `billing_day` every `billing_period` (and in `month` for cycles of a year
    or more; on `weekday` for weekly cycles). When `start` is not on a boundary the first period
    begins before it; callers bill only the overlap with the service (and prorate it), so a stub
    is always measured against its full period.
    """
    if billing_period in DAYS_IN:
        first = first_weekday_on_or_after(start, weekday)
    else:
        yearly = MONTHS_IN[billing_period] >= YEARLY_MONTHS
        first = first_boundary_on_or_after(start, billing_day, month if yearly else None)
    index = 0 if first == start else -1  # a start off the boundary sits in the period before it
    while True:
        period = Period(period_boundary(first, billing_period, index, billing_day),
                        period_boundary(first, billing_period, index + 1, billing_day))
        if period.start >= until:
            return
        yield period
        index += 1


def period_containing(
    start: date, billing_period: str, billing_day: int, day: date,
    month: int | None = None, weekday: int | None = None,
) -> Period:
    """The billing period of a schedule starting at `start` that contains `day`."""
    if day < start:
        raise ValueError(f"{day} is before the schedule starts on {start}")
    for period in billing_periods(start, billing_period, billing_day, until=OPEN_END, month=month, weekday=weekday):
        if period.contains(day):
            return period
    raise AssertionError("unreachable")  # pragma: no cover


def cycle_defaults(alignment: str, anchor: date, billing_day: int | None = None, billing_month: int | None = None,
                   billing_weekday: int | None = None) -> tuple[int, int, int]:
    """(billing_day, billing_month, billing_weekday) with the alignment's defaults filled in.

    Anniversary: the anchor's day, month and weekday (Stripe: the anchor sets the day of the
    month, the month of the year and the day of the week). Calendar: the 1st, January, Monday
    (Lago: calendar months and years, weeks Monday to Sunday).
    """
    if alignment == "anniversary":
        return billing_day or anchor.day, billing_month or anchor.month, billing_weekday or anchor.isoweekday()
    return billing_day or 1, billing_month or 1, billing_weekday or 1


def validate_cycle(billing_periods: Iterable[str], alignment: str, billing_day: int | None,
                   billing_month: int | None, billing_weekday: int | None, default_month: int | None = None) -> None:
    """Refuse billing-day options the plan's cycles cannot use, naming the field.

    `billing_periods` are the plan's recurring and usage cycles; the options are those the
    caller was given (before defaults). `billing_day` applies to month-based cycles,
    `billing_month` to cycles of a year or more, `billing_weekday` to weekly ones. A day must
    exist in its month: February 29 is accepted (Feb 28 in common years), February 30 is not;
    on a yearly cycle that is the `billing_month` given, else `default_month` (the month the
    cycle falls in by default: the anchor's), so a day is refused alike with or without the month.
    """
    cycles = set(billing_periods)
    unknown = sorted(cycles - MONTHS_IN.keys() - DAYS_IN.keys())
    if unknown:
        raise ValidationError(f"unknown billing period {unknown[0]!r}", param="billing_period")
    if alignment not in ("anniversary", "calendar"):
        raise ValidationError("billing_alignment is 'anniversary' or 'calendar'", param="billing_alignment")
    months = [MONTHS_IN[c] for c in cycles if c in MONTHS_IN]
    weekly = [c for c in cycles if c in DAYS_IN]
    if billing_day is not None:
        if not 1 <= billing_day <= 31:
            raise ValidationError(f"billing_day {billing_day} is not a day of a month (1 to 31)", param="billing_day")
        if not months:
            raise ValidationError("weekly cycles bill on a day of the week: set billing_weekday, not billing_day",
                                  param="billing_day")
    if billing_month is not None:
        if not 1 <= billing_month <= 12:
            raise ValidationError(f"billing_month {billing_month} is not a month (1 to 12)", param="billing_month")
        if not any(m >= YEARLY_MONTHS for m in months):
            raise ValidationError("billing_month applies only to cycles of a year or more (V5-4469)",
                                  param="billing_month")
    yearly_month = billing_month or default_month
    if billing_day is not None and yearly_month is not None and any(m >= YEARLY_MONTHS for m in months):
        longest = calendar.monthrange(2000, yearly_month)[1]  # a leap year: February 29 exists
        if billing_day > longest:
            given = "" if billing_month else " (billing_month, by default the anchor's month)"
            raise ValidationError(f"{calendar.month_name[yearly_month]}{given} has no day {billing_day} "
                                  f"(at most {longest}; the last day clamps in shorter years)", param="billing_day")
    if billing_weekday is not None:
        if not 1 <= billing_weekday <= 7:
            raise ValidationError(f"billing_weekday {billing_weekday} is not an ISO weekday (1 = Monday to 7 = Sunday)",
                                  param="billing_weekday")
        if not weekly:
            raise ValidationError("billing_weekday applies only to weekly cycles (V5-4469)", param="billing_weekday")
