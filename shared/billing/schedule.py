"""Which charge periods of a subscription are billable, and when.

A `BillingItem` is one charge for one billing period of one subscription. The schedule is
derived from the contract alone, so "what is due" is always "proposed minus already billed"
(STYLE 5): re-running a bill run, retrying a step or previewing all come out of the same
function, and an item's `key` is what makes billing it twice impossible.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from shared.billing.models import Charge, Plan, Subscription
from shared.billing.periods import OPEN_END, Period, billing_periods


@dataclass(frozen=True)
class BillingItem:
    subscription_id: str
    charge_code: str
    period: Period  # the full billing period
    service: Period  # the part of it the contract covers (prorated when shorter)
    bill_date: date

    @property
    def key(self) -> str:
        return f"{self.subscription_id}#{self.charge_code}#{self.period.start.isoformat()}"

    @property
    def is_partial(self) -> bool:
        return self.service != self.period


def cycle_of(subscription: Subscription) -> dict:
    """The billing-day options of the subscription's cycles beyond the day of the month."""
    return {"month": subscription.billing_month, "weekday": subscription.billing_weekday}


def charge_items(subscription: Subscription, charge: Charge) -> Iterator[BillingItem]:
    """Every billing item of one charge, in date order (infinite for open-ended contracts).

    Recurring charges bill in advance or in arrears per their timing; usage charges always
    bill in arrears, at the end of the period (or of the service, when that comes first).
    """
    start, end = subscription.start_date, subscription.service_end
    if end is not None and end <= start:
        return
    if charge.type == "one_time":
        day = Period(start, start + timedelta(days=1))
        yield BillingItem(subscription.id, charge.code, day, day, start)
        return
    for period in billing_periods(start, charge.billing_period, subscription.billing_day, **cycle_of(subscription),
                                  until=end or OPEN_END):
        service = period.intersect(Period(start, end or OPEN_END))
        if service is None:
            return
        in_advance = charge.type == "recurring" and charge.timing == "in_advance"
        bill_date = period.start if in_advance else service.end
        yield BillingItem(subscription.id, charge.code, period, service, bill_date)


def plan_phases(subscription: Subscription) -> list[tuple[int, date, date]]:
    """(plan version, from, to): items whose period starts in [from, to) use that version."""
    changes = sorted(subscription.plan_changes, key=lambda c: c.effective)
    bounds = [date.min] + [c.effective for c in changes] + [date.max]
    versions = [subscription.plan_version] + [c.plan_version for c in changes]
    return [(v, bounds[i], bounds[i + 1]) for i, v in enumerate(versions) if bounds[i] < bounds[i + 1]]


def scheduled_items(subscription: Subscription, plans: Mapping[int, Plan]) -> Iterator[Iterator[BillingItem]]:
    """One date-ordered stream of items per charge and plan phase."""
    for version, since, until in plan_phases(subscription):
        plan = plans[version]
        for charge in plan.charges:
            yield (item for item in _until(charge_items(subscription, charge), until)
                   if item.period.start >= since)


def _until(items: Iterator[BillingItem], until: date) -> Iterator[BillingItem]:
    for item in items:
        if item.period.start >= until:
            return
        yield item


def due_items(
    subscription: Subscription, plans: Mapping[int, Plan], as_of: date, billed_keys: Iterable[str]
) -> list[BillingItem]:
    """Items whose bill date is on or before `as_of` and that no invoice has billed yet."""
    billed = set(billed_keys)
    due: list[BillingItem] = []
    for stream in scheduled_items(subscription, plans):
        for item in stream:
            if item.bill_date > as_of:
                break
            if item.key not in billed:
                due.append(item)
    return sorted(due, key=lambda i: (i.period.start, i.charge_code))


def next_bill_date(subscription: Subscription, plans: Mapping[int, Plan], billed_keys: Iterable[str]) -> date | None:
    """The earliest bill date of an item not yet billed, or None when nothing is left."""
    billed = set(billed_keys)
    earliest: date | None = None
    for stream in scheduled_items(subscription, plans):
        for item in stream:
            if earliest is not None and item.bill_date >= earliest:
                break
            if item.key not in billed:
                earliest = item.bill_date
                break
    return earliest
