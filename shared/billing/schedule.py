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
from shared.billing.periods import MONTHS_IN, OPEN_END, Period, billing_periods


@dataclass(frozen=True)
class BillingItem:
    subscription_id: str
    charge_code: str
    period: Period  # the full billing period
    service: Period  # the part of it the contract covers (prorated when shorter)
    bill_date: date
    windows: tuple[Period, ...] = ()  # the days of `service` billed: outside trials and pauses
    interim: bool = False  # a month between the renewals of a longer period: shown at 0 (seed 000 §6.3)

    @property
    def key(self) -> str:
        key = f"{self.subscription_id}#{self.charge_code}#{self.period.start.isoformat()}"
        return f"{key}#interim" if self.interim else key

    @property
    def is_partial(self) -> bool:
        return self.service != self.period


def cycle_of(subscription: Subscription) -> dict:
    """The billing-day options of the subscription's cycles beyond the day of the month."""
    return {"month": subscription.billing_month, "weekday": subscription.billing_weekday}


def charge_items(subscription: Subscription, charge: Charge, since: date | None = None,
                 until: date | None = None) -> Iterator[BillingItem]:
    """Every billing item of one charge, in date order (infinite for open-ended contracts).

    Recurring charges bill in advance or in arrears per their timing; usage charges always
    bill in arrears, at the end of the period (or of the service, when that comes first).
    A contract charge runs over [since, until) inside the contract. Recurring items with no
    billable day (a trial or a pause covers them) are not scheduled: there is nothing to bill.
    """
    start, end = subscription.start_date, subscription.service_end
    if since is not None:
        start = max(start, since)
    if until is not None:
        end = min(end, until) if end is not None else until
    if charge.type != "usage":  # an open-ended pause: nothing more to bill until it is resumed
        end = min([end or OPEN_END] + [p.start for p in subscription.pauses if p.end is None])
        end = None if end == OPEN_END else end
    if end is not None and end <= start:
        return
    if charge.type == "one_time":
        on = max(start, subscription.trial_end or start) if since is None else start  # a plan's fee: at conversion
        if end is not None and on >= end:
            return
        day = Period(on, on + timedelta(days=1))
        yield BillingItem(subscription.id, charge.code, day, day, on, (day,))
        return
    for period in billing_periods(start, charge.billing_period, subscription.billing_day, **cycle_of(subscription),
                                  until=end or OPEN_END):
        service = period.intersect(Period(start, end or OPEN_END))
        if service is None:
            return
        windows = (service,) if charge.type == "usage" else billable_windows(subscription, service)
        if not windows:
            continue
        in_advance = charge.type == "recurring" and charge.timing == "in_advance"
        bill_date = windows[0].start if in_advance else service.end
        item = BillingItem(subscription.id, charge.code, period, service, max(bill_date, period.start), windows)
        if charge.show_monthly and charge.type == "recurring" and MONTHS_IN.get(charge.billing_period, 0) > 1:
            yield from _with_interim_months(subscription, item)
        else:
            yield item


def _with_interim_months(subscription: Subscription, item: BillingItem) -> Iterator[BillingItem]:
    """The item, and a 0 item for each later month of its period the service covers (annual pre-pay)."""
    yield item
    months = billing_periods(item.period.start, "month", subscription.billing_day, until=item.service.end)
    for month in months:
        service = month.intersect(item.service)
        if month.start <= item.period.start or service is None:
            continue
        yield BillingItem(subscription.id, item.charge_code, month, service, month.start, (service,), interim=True)


def billable_windows(subscription: Subscription, service: Period) -> tuple[Period, ...]:
    """The days of `service` a recurring charge bills: not in the trial, not paused."""
    gaps = [Period(subscription.start_date, subscription.trial_end)] if (
        subscription.trial_end and subscription.trial_end > subscription.start_date) else []
    gaps += [Period(p.start, p.end or OPEN_END) for p in subscription.pauses if (p.end or OPEN_END) > p.start]
    return subtract(service, gaps)


def subtract(window: Period, gaps: Iterable[Period]) -> tuple[Period, ...]:
    """`window` minus `gaps`, as ordered disjoint periods."""
    pieces = [window]
    for gap in gaps:
        cut = []
        for piece in pieces:
            if gap.end <= piece.start or gap.start >= piece.end:
                cut.append(piece)
                continue
            if piece.start < gap.start:
                cut.append(Period(piece.start, gap.start))
            if gap.end < piece.end:
                cut.append(Period(gap.end, piece.end))
        pieces = cut
    return tuple(sorted(pieces))


def plan_phases(subscription: Subscription) -> list[tuple[int, date, date]]:
    """(plan version, from, to): items whose period starts in [from, to) use that version."""
    changes = sorted(subscription.plan_changes, key=lambda c: c.effective)
    bounds = [date.min] + [c.effective for c in changes] + [date.max]
    versions = [subscription.plan_version] + [c.plan_version for c in changes]
    return [(v, bounds[i], bounds[i + 1]) for i, v in enumerate(versions) if bounds[i] < bounds[i + 1]]


def scheduled_items(subscription: Subscription, plans: Mapping[int, Plan]) -> Iterator[Iterator[BillingItem]]:
    """One date-ordered stream of items per charge and plan phase, then per contract charge."""
    for version, since, until in plan_phases(subscription):
        plan = plans[version]
        for charge in plan.charges:
            yield (item for item in _until(charge_items(subscription, charge), until)
                   if item.period.start >= since)
    for extra in subscription.contract_charges:
        yield charge_items(subscription, extra.charge, extra.start, extra.end)


def item_charge(subscription: Subscription, plans: Mapping[int, Plan], item: BillingItem) -> tuple[Plan, Charge]:
    """The plan in force for the item's period and the charge it bills (the plan's or the contract's)."""
    plan = plans[subscription.plan_version_on(item.period.start)]
    for extra in subscription.contract_charges:
        if extra.charge.code == item.charge_code:
            return plan, extra.charge
    return plan, plan.charge(item.charge_code)


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


def find_item(subscription: Subscription, plans: Mapping[int, Plan], key: str) -> BillingItem | None:
    """The item the contract now schedules under `key`, or None (nothing left to bill for it)."""
    start = date.fromisoformat(key.split("#")[2])
    for stream in scheduled_items(subscription, plans):
        for item in stream:
            if item.period.start > start:
                break
            if item.key == key:
                return item
    return None


def credit_view(subscription: Subscription) -> Subscription:
    """The contract as credits see it: a termination without refund leaves billed days billed."""
    if subscription.termination is not None and subscription.termination.refund == "none":
        return subscription.model_copy(update={"termination": None})
    return subscription
