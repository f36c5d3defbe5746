"""Billing periods: half-open date intervals [start, end) and month arithmetic with clamping.

Month arithmetic always counts from the anchor, never from the previous result, so an anchor
on the 31st clamps in short months and comes back: Jan 31 -> Feb 28 (29) -> Mar 31.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

OPEN_END = date(9999, 1, 1)  # "no end" for open-ended contracts
MONTHS_IN = {"month": 1, "quarter": 3, "semi_annual": 6, "annual": 12}


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


def period_boundary(anchor: date, billing_period: str, index: int, day: int) -> date:
    """The `index`-th boundary of a schedule whose boundaries fall on `day` from `anchor`."""
    return add_months(anchor, index * MONTHS_IN[billing_period], day)


def first_boundary_on_or_after(start: date, day: int) -> date:
    """The first date >= start that falls on billing day `day` (clamped in short months)."""
    candidate = add_months(start, 0, day)
    return candidate if candidate >= start else add_months(start, 1, day)


def billing_periods(
    start: date, billing_period: str, billing_day: int, until: date,
    month: int | None = None, weekday: int | None = None,
) -> Iterator[Period]:
    """Consecutive full billing periods, the first containing `start`, covering [start, until).

    Boundaries fall on `billing_day` every `billing_period`. When `start` is not on a
    boundary the first period begins before it; callers bill only the overlap with the
    service (and prorate it), so a stub is always measured against its full period.
    """
    months = MONTHS_IN[billing_period]
    first = first_boundary_on_or_after(start, billing_day)
    offset = 0 if first == start else -1  # a start off the boundary sits in the period before it
    index = offset
    while True:
        period = Period(add_months(first, index * months, billing_day),
                        add_months(first, (index + 1) * months, billing_day))
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
