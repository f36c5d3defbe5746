"""Rating a subscription's due billing items into invoice lines.

Pure: usage records come from a reader the caller passes (`UsageReader`), so the same code
rates a bill run, a preview and a quote. Every line is rounded once at the currency's minor
unit; totals never round again. What this module decides, in order, for one subscription:

1. recurring and one-time items: one line per price segment the service crosses (seed 002:
   never an average), prorated by day when the service is shorter than its period;
   prepayment charges add their units to the subscription's drawdown balance;
2. usage items (in arrears): aggregate the metric over the service window (per group when the
   metric groups), consume bundle-included usage first (a zero-rated line), then prepaid
   units (a zero-rated line), then price what is left with the charge model;
3. per usage period: discounts from bundle indicators (seed 003), then the minimum commitment
   true-up (prorated by day for a partial period);
4. per billing cycle: coupons (once, N cycles or forever), at most once per cycle.

DS-009: for every usage item and group the line quantities add up to the metric's aggregate
of its records, and each usage line carries the number of records it comes from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from shared.billing.metering import Aggregate, Aggregator, event_value, matches
from shared.billing.models import Charge, Invoice, InvoiceLine, Metric, Plan, Subscription
from shared.billing.money import ZERO, round_money
from shared.billing.periods import Period, billing_periods, months_after, period_containing
from shared.billing.pricing import price_durations, price_quantity, price_transactions, unit_price_for_group
from shared.billing.schedule import BillingItem, cycle_of, item_charge, subtract
from shared.billing.tax import allocate, split_by_days

# The wording rating writes on lines (printed in the customer's language: shared/documents/wording.py)
PRORATION_RULE = "prorated by day: {days}/{of} days of {start} to {last_day}"
COMMITMENT_PRORATION_RULE = "commitment prorated by day: {days}/{of} days"
CREDIT_RULE = "credit by day: {days} of the {of} days billed for {amount} ({billed_start} to {billed_last_day})"
UNUSED_TIME_LINE = "{name}: unused time {start} to {last_day}"
LATE_USAGE_LINE = "{description}: late usage for {start} to {last_day}"
PERIOD_LINE = "{description}: {start} to {last_day}"
COUPON_LINE = "Coupon {code}: {name}"

UsageRecord = tuple[datetime, str, Mapping[str, str]]  # timestamp, transaction_id, properties
UsageReader = Callable[[str, Period], Iterable[UsageRecord]]  # metric code, window -> records


@dataclass
class Rated:
    lines: list[InvoiceLine]
    extra_keys: list[str]  # coupon cycles applied: billed once, like items
    balances: dict[str, Decimal]  # prepaid units left, by prepayment charge
    usage_billed: dict[str, list[dict]] = field(default_factory=dict)  # item key -> what its usage lines billed
    discounted: dict[int, Decimal] = field(default_factory=dict)  # line index -> its share of the coupons applied

    def kept(self, index: int) -> Decimal:
        """What line `index` bills net of its share of the coupon lines (what a later credit may give back)."""
        return self.lines[index].amount - self.discounted.get(index, ZERO)


def no_usage(metric_code: str, window: Period) -> Iterable[UsageRecord]:
    return ()


def rate_subscription(
    sub: Subscription,
    plans: Mapping[int, Plan],
    metrics: Mapping[str, Metric],
    items: list[BillingItem],
    usage: UsageReader = no_usage,
    billed_keys: Iterable[str] = (),
    language: str | None = None,
) -> Rated:
    """All lines for `items` (due items of one subscription, in date order), described in
    `language` where the charge has a translation of its name."""
    rater = _Rater(sub, plans, metrics, usage, language)
    for item in sorted(items, key=lambda i: (i.period.start, _usage_last(i, sub, plans), i.charge_code)):
        rater.rate(item)
    rater.usage_adjustments()
    keys = rater.coupons(set(billed_keys))
    return Rated(rater.lines, keys, rater.balances, rater.usage_billed, rater.discounted)


def _usage_last(item: BillingItem, sub: Subscription, plans: Mapping[int, Plan]) -> bool:
    return item_charge(sub, plans, item)[1].type == "usage"


def plan_for(sub: Subscription, plans: Mapping[int, Plan], item: BillingItem) -> Plan:
    return plans[sub.plan_version_on(item.period.start)]


def segment_windows(sub: Subscription, charge: Charge) -> list[tuple[Period, Decimal]]:
    """The price segments of a charge as date windows from the contract's start."""
    windows, start = [], sub.start_date
    for segment in charge.segments:
        end = date.max if segment.months is None else months_after(sub.start_date, start, segment.months)
        windows.append((Period(start, end), segment.price))
        start = end
        if segment.months is None:
            break
    return windows


def charge_name(charge: Charge, language: str | None) -> str:
    """The charge's name in `language` ("pt-BR", then "pt"), or its catalog name."""
    if language:
        for tag in (language, language.split("-")[0]):
            if tag in charge.translations:
                return charge.translations[tag]
    return charge.name


class _Rater:
    def __init__(self, sub: Subscription, plans: Mapping[int, Plan], metrics: Mapping[str, Metric],
                 usage: UsageReader, language: str | None = None):
        self.sub, self.plans, self.metrics, self.usage = sub, plans, metrics, usage
        self.language = language
        self.lines: list[InvoiceLine] = []
        self.balances = {code: Decimal(v) for code, v in sub.prepaid_balance.items()}
        self.usage_billed: dict[str, list[dict]] = {}
        self.usage_periods: dict[date, tuple[BillingItem, Plan]] = {}
        self.indicators: dict[tuple[str, Period], Decimal] = {}
        self.discounted: dict[int, Decimal] = defaultdict(lambda: ZERO)

    # recurring and one-time ----------------------------------------------------------
    def rate(self, item: BillingItem) -> None:
        plan, charge = item_charge(self.sub, self.plans, item)
        if charge.type == "usage":
            self.usage_periods.setdefault(item.period.start, (item, plan))
            self.lines += self.rate_usage(item, plan, charge)
            return
        if item.interim:  # annual pre-pay: the service is listed at 0 between renewals
            self.lines.append(self._line(
                item, plan, charge, item.service, kind="recurring", quantity=Decimal(1), unit_price=ZERO,
                amount=round_money(ZERO, plan.currency),
                details=[f"prepaid with the {charge.billing_period.replace('_', ' ')} fee"]))
            return
        for service, unit_price in self._price_windows(item, charge):
            self.lines.append(self._fixed_line(item, plan, charge, service, unit_price))
        if charge.prepaid_units:
            bought = charge.prepaid_units * (self.sub.quantity if charge.model != "flat_fee" else 1)
            self.balances[charge.code] = self.balances.get(charge.code, ZERO) + bought

    def _price_windows(self, item: BillingItem, charge: Charge) -> list[tuple[Period, Decimal]]:
        """(days billed, unit price): one per billable window and price segment it crosses."""
        windows = item.windows or (item.service,)
        if charge.proration == "none":  # billed whole once, over the days it covers
            windows = (Period(windows[0].start, windows[-1].end),)
        if not charge.segments or charge.code in self.sub.price_overrides:
            return [(window, self.sub.price_of(charge)) for window in windows]
        priced = []
        for window in windows:
            for segment, price in segment_windows(self.sub, charge):
                if charge.proration == "none":
                    if segment.contains(window.start):
                        priced.append((window, price))
                    continue
                part = segment.intersect(window)
                if part is not None:
                    priced.append((part, price))
        return priced

    def _fixed_line(self, item: BillingItem, plan: Plan, charge: Charge, service: Period,
                    unit_price: Decimal) -> InvoiceLine:
        quantity = Decimal(1) if charge.model == "flat_fee" else self.sub.quantity
        priced = price_quantity(charge, quantity, unit_price)
        proration = None
        if service != item.period and charge.proration == "daily" and charge.type == "recurring":
            days, of = service.days, item.period.days
            amount = round_money(priced.amount * days / of, plan.currency)
            last_day = item.period.end - timedelta(days=1)
            proration = PRORATION_RULE.format(days=days, of=of, start=item.period.start, last_day=last_day)
        else:
            amount = round_money(priced.amount, plan.currency)
        details = list(priced.details) if charge.model not in ("flat_fee", "per_unit") else []
        details += [f"includes {c.name}" for c in charge.components]
        details += [f"includes {q} {m} per period" for m, q in charge.includes.items()]
        if charge.prepaid_units:
            details.append(f"prepaid: {charge.prepaid_units * quantity} units")
        return self._line(item, plan, charge, service, kind="one_time" if charge.type == "one_time" else "recurring",
                          quantity=priced.quantity, unit_price=priced.unit_price, amount=amount,
                          proration=proration, details=details)

    def _line(self, item: BillingItem, plan: Plan, charge: Charge, service: Period, **fields) -> InvoiceLine:
        fields.setdefault("description", charge_name(charge, self.language))
        return InvoiceLine(charge_code=charge.code, currency=plan.currency, period_start=service.start,
                           period_end=service.end, subscription_id=self.sub.id,
                           external_id=self.sub.external_id, gl_code=charge.gl_code, tax_code=charge.tax_code,
                           item_key=item.key, pob_identifier=charge.pob_identifier, **fields)

    # usage ------------------------------------------------------------------------------
    def rate_usage(self, item: BillingItem, plan: Plan, charge: Charge, late: bool = False) -> list[InvoiceLine]:
        metric = self.metrics[charge.metric_code]
        window = item.service
        if charge.model in ("percentage", "duration"):
            return [self._rate_streamed(item, plan, charge, metric, window)]
        aggregator = Aggregator(metric)
        for timestamp, transaction_id, properties in self.usage(metric.code, window):
            aggregator.add(timestamp, transaction_id, properties)
        groups = aggregator.result() or {None: Aggregate(ZERO, 0, ZERO)}
        self.indicators[(metric.code, window)] = sum((g.quantity for g in groups.values()), ZERO)
        included = self._included(plan, metric.code, item)
        lines: list[InvoiceLine] = []
        billed: list[dict] = []
        for group in sorted(groups, key=lambda g: (g is not None, g or "")):
            aggregate = groups[group]
            left = aggregate.quantity
            name = charge_name(charge, self.language)
            name = f"{name} ({group})" if group is not None else name
            common = {"metric_code": metric.code, "group": group, "usage_records": aggregate.records}
            if included[1] > 0 and left > 0:
                used = min(left, included[1])
                included = (included[0], included[1] - used)
                left -= used
                lines.append(self._line(item, plan, charge, window, kind="usage", quantity=used, unit_price=ZERO,
                                        amount=round_money(ZERO, plan.currency), description=name,
                                        details=[f"included in {included[0]}: free"], **common))
            if charge.drawdown_from and left > 0 and not late:
                balance = self.balances.get(charge.drawdown_from, ZERO)
                drawn = min(left, balance)
                if drawn > 0:
                    self.balances[charge.drawdown_from] = balance - drawn
                    left -= drawn
                    lines.append(self._line(
                        item, plan, charge, window, kind="usage", quantity=drawn, unit_price=ZERO,
                        amount=round_money(ZERO, plan.currency), description=name,
                        details=[f"drawn from prepaid units: {balance - drawn} left"], **common))
            if charge.price_table and group is not None:
                unit_price = unit_price_for_group(charge, group, param=f"properties.{metric.group_by}")
            else:
                unit_price = self.sub.price_of(charge)
            priced = price_quantity(charge, left, unit_price)
            amount = round_money(priced.amount, plan.currency)
            lines.append(self._line(item, plan, charge, window, kind="usage", quantity=priced.quantity,
                                    unit_price=priced.unit_price, amount=amount, description=name,
                                    details=list(priced.details), **common))
            billed.append({"group": group, "quantity": str(aggregate.quantity),
                           "amount": str(sum((ln.amount for ln in lines if ln.group == group), ZERO))})
        self.usage_billed[item.key] = billed
        return lines

    def _rate_streamed(self, item: BillingItem, plan: Plan, charge: Charge, metric: Metric,
                       window: Period) -> InvoiceLine:
        aggregator = Aggregator(metric)

        def values() -> Iterator[Decimal]:
            for timestamp, transaction_id, properties in self.usage(metric.code, window):
                if matches(metric, properties):
                    aggregator.add(timestamp, transaction_id, properties)
                    yield event_value(metric, properties)

        price = price_transactions if charge.model == "percentage" else price_durations
        priced = price(charge, values())
        records = sum(a.records for a in aggregator.result().values())
        amount = round_money(priced.amount, plan.currency)
        self.usage_billed[item.key] = [{"group": None, "quantity": str(priced.quantity), "amount": str(amount)}]
        return self._line(item, plan, charge, window, kind="usage", quantity=priced.quantity,
                          unit_price=priced.unit_price, amount=amount, metric_code=metric.code,
                          usage_records=records, details=list(priced.details))

    def _included(self, plan: Plan, metric_code: str, item: BillingItem) -> tuple[str, Decimal]:
        """Usage a bundle of this plan includes for the period (seed 003: zero-rated, still listed)."""
        total, names = ZERO, []
        for charge in plan.charges:
            if metric_code in charge.includes:
                total += charge.includes[metric_code]
                names.append(charge.name)
        return ", ".join(names), total

    # per usage period: bundle-indicator discounts, then the commitment true-up ---------------
    def usage_adjustments(self) -> None:
        for start, (item, plan) in sorted(self.usage_periods.items()):
            period_lines = [ln for ln in self.lines if ln.kind == "usage" and ln.item_key
                            and ln.item_key.endswith(f"#{start.isoformat()}")]
            spent = sum((ln.amount for ln in period_lines), ZERO)
            for discount in plan.usage_discounts:
                indicator = self._indicator(discount.metric_code, item.service)
                if indicator <= discount.threshold:
                    continue
                base = sum((ln.amount for ln in period_lines
                            if not discount.applies_to or ln.charge_code in discount.applies_to), ZERO)
                amount = -round_money(base * discount.percent_off / 100, plan.currency)
                if amount:
                    spent += amount
                    self.lines.append(self._adjustment(
                        item, plan, kind="discount", description=discount.name, amount=amount,
                        details=[f"{discount.metric_code} {indicator} above {discount.threshold}: "
                                 f"{discount.percent_off}% off {base}"], code=discount.code,
                        metric_code=discount.metric_code))
            if plan.commitment is not None:
                commitment = plan.commitment.amount
                rule = None
                if item.service != item.period:
                    commitment = round_money(commitment * item.service.days / item.period.days, plan.currency)
                    rule = COMMITMENT_PRORATION_RULE.format(days=item.service.days, of=item.period.days)
                if spent < commitment:
                    self.lines.append(self._adjustment(
                        item, plan, kind="commitment", description=plan.commitment.name,
                        amount=commitment - spent, details=[f"minimum {commitment}, usage {spent}"],
                        code="commitment", proration=rule, gl_code=plan.commitment.gl_code,
                        tax_code=plan.commitment.tax_code))

    def _indicator(self, metric_code: str, window: Period) -> Decimal:
        if (metric_code, window) not in self.indicators:
            aggregator = Aggregator(self.metrics[metric_code])
            for record in self.usage(metric_code, window):
                aggregator.add(*record)
            self.indicators[(metric_code, window)] = sum((a.quantity for a in aggregator.result().values()), ZERO)
        return self.indicators[(metric_code, window)]

    def _adjustment(self, item: BillingItem, plan: Plan, kind: str, description: str, amount: Decimal,
                    details: list[str], code: str, **extra) -> InvoiceLine:
        return InvoiceLine(kind=kind, description=description, charge_code=code, quantity=Decimal(1),
                           unit_price=amount, amount=amount, currency=plan.currency,
                           period_start=item.service.start, period_end=item.service.end,
                           subscription_id=self.sub.id, external_id=self.sub.external_id,
                           item_key=f"{item.key}#{code}", details=details, **extra)

    # coupons ------------------------------------------------------------------------------
    def coupons(self, billed_keys: set[str]) -> list[str]:
        applied: list[str] = []
        if not self.sub.coupons or not self.lines:
            return applied
        cycle_period = next((c.billing_period for p in self.plans.values() for c in p.charges
                             if c.type == "recurring"), "month")
        currency = self.lines[0].currency
        cycles = _CycleIndex(self.sub, cycle_period)
        for redemption in self.sub.coupons:
            first = cycles.index(redemption.redeemed_on)
            limit = {"once": 1, "repeating": redemption.duration_in_cycles or 0, "forever": None}[redemption.duration]
            by_cycle: dict[Period, list[int]] = defaultdict(list)
            for index, line in enumerate(self.lines):
                if line.kind in ("discount", "commitment") or line.period_start is None:
                    continue
                if redemption.applies_to and line.charge_code not in redemption.applies_to:
                    continue
                by_cycle[cycles.period(line.period_start)].append(index)
            for cycle, indexes in sorted(by_cycle.items()):
                number = cycles.index(cycle.start) - first
                key = f"{self.sub.id}#coupon:{redemption.code}#{cycle.start.isoformat()}"
                if number < 0 or (limit is not None and number >= limit) or key in billed_keys:
                    continue
                lines = [self.lines[i] for i in indexes]
                base = sum((ln.amount for ln in lines), ZERO)
                if base <= 0:
                    continue
                if redemption.percent_off is not None:
                    off = round_money(base * redemption.percent_off / 100, currency)
                    rule = f"{redemption.percent_off}% off {base}"
                else:
                    off = min(base, redemption.amount_off or ZERO)
                    rule = f"{redemption.amount_off} off (at most the {base} it applies to)"
                # each line's share of the discount, by amount, adding up to it exactly
                for index, share in zip(indexes, allocate(off, [off * ln.amount / base for ln in lines], currency),
                                        strict=True):
                    self.discounted[index] += share
                cycle_rule = {"once": "once", "forever": "forever"}.get(
                    redemption.duration, f"cycle {number + 1} of {limit}")
                self.lines.append(InvoiceLine(
                    kind="discount", description=COUPON_LINE.format(code=redemption.code, name=redemption.name),
                    charge_code=f"coupon:{redemption.code}", quantity=Decimal(1), unit_price=-off, amount=-off,
                    # the service it discounts: within the cycle, the span of the lines it applies to
                    currency=currency, period_start=min(ln.period_start for ln in lines),
                    period_end=max(ln.period_end or cycle.end for ln in lines),
                    subscription_id=self.sub.id, external_id=self.sub.external_id, item_key=key,
                    details=[rule, f"applies {cycle_rule}"]))
                applied.append(key)
        return applied


class _CycleIndex:
    """Billing cycles of a subscription (its first recurring charge's period), numbered from 0."""

    def __init__(self, sub: Subscription, billing_period: str):
        self.sub, self.billing_period = sub, billing_period
        self.first = period_containing(sub.start_date, billing_period, sub.billing_day, sub.start_date, **cycle_of(sub))

    def period(self, day: date) -> Period:
        return period_containing(self.sub.start_date, self.billing_period, self.sub.billing_day,
                                 max(day, self.sub.start_date), **cycle_of(self.sub))

    def index(self, day: date) -> int:
        target = self.period(day)
        for number, period in enumerate(billing_periods(self.sub.start_date, self.billing_period,
                                                        self.sub.billing_day, until=target.end,
                                                        **cycle_of(self.sub))):
            if period == target:
                return number
        raise AssertionError("unreachable")  # pragma: no cover


def late_usage_lines(sub: Subscription, plans: Mapping[int, Plan], metrics: Mapping[str, Metric],
                     item: BillingItem, billed: list[dict], usage: UsageReader,
                     language: str | None = None) -> tuple[list[InvoiceLine], list[dict]]:
    """Usage that arrived after its period was invoiced: the difference, as dated lines.

    The item is re-rated (bundle-included usage applies again; prepaid units are not drawn
    for late usage) and each group's quantity and amount beyond what was billed becomes a
    `late_usage` line dated with the original period. Returns the lines and the new billed state.
    """
    rater = _Rater(sub, plans, metrics, usage, language)
    plan, charge = item_charge(sub, plans, item)
    if charge.model in ("percentage", "duration"):
        rated = [rater._rate_streamed(item, plan, charge, metrics[charge.metric_code], item.service)]
    else:
        rated = rater.rate_usage(item, plan, charge, late=True)
    before = {entry["group"]: entry for entry in billed}
    lines = []
    for entry in rater.usage_billed[item.key]:
        old = before.get(entry["group"], {"quantity": "0", "amount": "0"})
        quantity = Decimal(entry["quantity"]) - Decimal(old["quantity"])
        amount = Decimal(entry["amount"]) - Decimal(old["amount"])
        if not quantity and not amount:
            continue
        template = next(ln for ln in rated if ln.group == entry["group"])
        last_day = item.service.end - timedelta(days=1)
        lines.append(template.model_copy(update={
            "kind": "late_usage", "quantity": quantity, "amount": amount,
            "unit_price": template.unit_price,
            "description": LATE_USAGE_LINE.format(description=template.description, start=item.service.start,
                                                  last_day=last_day),
            "usage_records": sum(ln.usage_records or 0 for ln in rated if ln.group == entry["group"]),
            "item_key": f"{item.key}#late",
            "details": [f"received after the period was invoiced: {quantity} more, billed {old['quantity']}"],
        }))
    return lines, rater.usage_billed[item.key]


def cap_usage_charges(lines: list[InvoiceLine], limit: Decimal | None) -> list[InvoiceLine]:
    """V5-4180: a customer's usage charges above `limit` per usage period are not billed.

    Per usage period (the service dates of the usage lines) on this invoice, usage, late-usage
    and usage-discount lines are added up; what exceeds the limit comes off as one negative
    `adjustment` line dated with that period, so the lines themselves still show what was used.
    """
    if limit is None:
        return []
    totals: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    currency = None
    for line in lines:
        if line.kind in ("usage", "late_usage") or (line.kind == "discount" and line.metric_code):
            totals[(line.period_start, line.period_end)] += line.amount
            currency = line.currency
    caps = []
    for (start, end), total in sorted(totals.items()):
        if total > limit:
            excess = total - limit
            caps.append(InvoiceLine(
                kind="adjustment", description="Usage charge limit", charge_code="usage_charge_limit",
                quantity=Decimal(1), unit_price=-excess, amount=-excess, currency=currency,
                period_start=start, period_end=end,
                details=[f"usage charges {total} for the period, limit {limit}: {excess} not billed"]))
    return caps


def item_credit_notes(invoice: Invoice, key: str) -> Decimal:
    """What the credit notes on `invoice` credited on the recurring and one-time lines of billed item `key`."""
    credited = ZERO
    for credit in invoice.credits:
        for index, amount in credit["lines"].items():
            line = invoice.lines[int(index)]
            if line.item_key == key and line.kind in ("recurring", "one_time"):
                credited += Decimal(amount)
    return credited


def still_billed(billed: list[tuple[Period, Decimal]], invoice: Invoice, key: str,
                 noted: Decimal) -> tuple[list[tuple[Period, Decimal]], Decimal]:
    """What a billed item's windows still stand billed for after what happened to the invoice that billed
    them: a void leaves nothing; credit notes on the item's lines (`noted` of them taken off already) come
    off the windows in proportion to their amounts, never below zero. Returns the windows and the credit
    notes taken off so far (to store with them)."""
    if invoice.status == "void":
        return [(window, ZERO) for window, _ in billed], noted
    credited = item_credit_notes(invoice, key)
    total = sum((amount for _, amount in billed), ZERO)
    off = min(credited - noted, total)
    if off <= 0:
        return billed, max(credited, noted)
    shares = allocate(off, [off * amount / total for _, amount in billed], invoice.currency)
    return [(window, amount - share) for (window, amount), share in zip(billed, shares, strict=True)], credited


def recheck_lines(sub: Subscription, plans: Mapping[int, Plan], item: BillingItem,
                  billed: list[tuple[Period, Decimal]], language: str | None = None,
                  ) -> tuple[list[InvoiceLine], list[tuple[Period, Decimal]]]:
    """A billed item against what the contract now says it should bill (`item.windows`).

    Days billed that are no longer due (a pause, a trial extended, a regret, a termination with a
    refund, a plan change) are credited from what was billed for them: the billed window's amount
    times the days removed over the days it billed, rounded half up once; a window removed whole is
    credited exactly. Days now due that were not billed are charged like any period (prorated by
    day). Returns the lines and what the item stands billed for afterwards; credits never exceed
    what was billed, and billed-then-kept amounts add up to the original amount exactly.
    """
    rater = _Rater(sub, plans, {}, no_usage, language)
    plan, charge = item_charge(sub, plans, item)
    name = charge_name(charge, language)
    lines: list[InvoiceLine] = []
    state: list[tuple[Period, Decimal]] = []
    for window, amount in billed:
        kept = [part for due in item.windows if (part := window.intersect(due)) is not None]
        kept_days = sum(part.days for part in kept)
        if kept_days == window.days:
            state.append((window, amount))
            continue
        removed = subtract(window, kept)
        removed_days = window.days - kept_days
        credit = amount if not kept else round_money(amount * removed_days / window.days, plan.currency)
        for part, share in zip(removed, split_by_days(credit, removed, plan.currency), strict=True):
            if not share:
                continue  # nothing was billed net for these days (a 100% coupon, a credit note, a void)
            last_day = part.end - timedelta(days=1)
            lines.append(rater._line(
                item, plan, charge, part, kind="proration", quantity=Decimal(1), unit_price=-share, amount=-share,
                description=UNUSED_TIME_LINE.format(name=name, start=part.start, last_day=last_day),
                proration=CREDIT_RULE.format(days=part.days, of=window.days, amount=amount, billed_start=window.start,
                                             billed_last_day=window.end - timedelta(days=1))))
        if kept:
            state += zip(kept, split_by_days(amount - credit, kept, plan.currency), strict=True)
    for due in item.windows:
        for new in subtract(due, [window for window, _ in billed]):
            partial = BillingItem(item.subscription_id, item.charge_code, item.period, item.service, item.bill_date,
                                  (new,))
            for service, unit_price in rater._price_windows(partial, charge):
                line = rater._fixed_line(item, plan, charge, service, unit_price)
                last_day = service.end - timedelta(days=1)
                lines.append(line.model_copy(update={
                    "kind": "proration",
                    "description": PERIOD_LINE.format(description=line.description, start=service.start,
                                                      last_day=last_day)}))
                state.append((service, line.amount))
    return lines, sorted(state)
