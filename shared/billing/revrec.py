"""Revenue recognition: POB templates, revenue schedules per invoice line, adjustments, bundle explosion.

A schedule is created when an invoice is finalized: one per invoice line (one per component for a
bundle line), holding the line's amount and its entries by calendar month ("YYYY-MM").

Templates (seed 002's list; the method names are Zuora Revenue's, see
https://docs.zuora.com/en/zuora-revenue/advanced-revenue-operations/zuora-revenue-changes-for-integration-with-zuora-billing/supported-ratable-methods-in-pob-templates):
- ratable (`-OT-`): over the line's service period `[period_start, period_end)`.
  `daily` (default): each calendar month gets the line's amount x its days in the period / the
  period's days ("Daily recognition over time", https://docs.zuora.com/en/accounts-receivable/finance/zuora-finance-settings/manage-revenue-recognition-models).
  `monthly`: each calendar month counts 1 when the period covers all of it and 1/2 when it covers
  only part of it (the half-month convention); the amount is shared by these weights. 1,200.00
  from 2025-03-15 to 2026-03-15: March 50.00, April to February 100.00 each, March 50.00.
- point in time (`-PIT-`): all in one month: `STARTDATE` and `EVT-PIT-ACCEPTAN` in the month of
  `period_start` (the delivery date: seed 002 DS-006 rule 2), `CURRENT_PERIOD` in the month of the
  invoice date (the open period when the schedule is made).
- consumption (`CONSUMP`): a usage line in the month of the last day of its usage period; any other
  line (a prepayment) stays deferred until `recognize_consumption` draws it down, or until
  `release_remaining` / `terminate_schedule` lets the unused rest lapse.
- release: `BL-` templates (release upon billing) recognize nothing before the invoice's month;
  with `first_open_month`, nothing lands before it either: what would fall earlier is caught up in
  that month (Zuora: revenue of a closed period goes to the next open one).

Rounding: every entry is rounded half up at the currency's minor unit and the last entry takes the
remainder, so a schedule sums exactly to its line. When the remainder would take the opposite sign
of the amount (tiny amounts over many months), the shares are cumulative rounded instead
(entry = round(running total) - round(previous running total)), which keeps every entry's sign.
Entries of zero are left out.

Credit notes, voids and cancellations (ASC 606-10-32-42 to 32-45, IFRS 15.87-90: a change of the
transaction price is allocated on the same basis as at inception, and the part allocated to what was
already transferred adjusts revenue in the period of the change: a cumulative catch-up):
- `adjust_schedule(schedule, credit, effective)` (a credit note's line): the schedule's net becomes
  `net - credit`. Months before `effective`'s month never change; from that month on the cumulative
  revenue is the old cumulative x (net - credit) / net, so `effective`'s month reverses the credit's
  share of the months already recognized (credit x recognized before / net) and later months shrink in
  proportion. An unconsumed prepayment is credited first.
- `void_schedule(schedule, effective)`: the same with the whole net: what was recognized is reversed in
  `effective`'s month, nothing is recognized after it, nothing stays deferred.
- `terminate_schedule`: a cancellation without refund recognizes what is left by the month service
  ends (no further obligation, nothing refundable); with a prorated refund the refunded days are left
  for the refund's credit lines to reverse.
Every schedule keeps `credits` (month, billing reversed: credit notes and the void), so that per
schedule and month end recognized + deferred = net invoiced (`billed_through`).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

from shared.billing.errors import ValidationError
from shared.billing.models import BundleComponent, Charge, Invoice, InvoiceLine, Plan
from shared.billing.money import ZERO, round_money

Release = Literal["booking", "billing", "event"]
Method = Literal["ratable", "point_in_time", "consumption"]
Convention = Literal["daily", "monthly"]
CONVENTIONS = ("daily", "monthly")
MONTH_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
USAGE_KINDS = frozenset({"usage", "late_usage"})
DRAWN_DETAIL = "drawn from prepaid units"  # rating.py's detail on a usage line paid from a prepayment


@dataclass(frozen=True)
class PobTemplate:
    identifier: str
    name: str
    release: Release
    method: Method
    ratable_method: str  # Zuora Revenue's name of the method
    release_event: str  # as written in seed 002's charge_pob_map
    charge_types: frozenset[str]  # seed 002's POB selection matrix: the charge types it is for
    point_in_time_on: Literal["start", "invoice"] | None = None


def _template(identifier, name, release, method, ratable_method, release_event, charge_types, on=None):
    return PobTemplate(identifier, name, release, method, ratable_method, release_event,
                       frozenset(charge_types), on)


_BOOKING, _BILLING = "Upon Booking (Full Booking Release)", "Upon Billing (Full Billing Release)"
POB_TEMPLATES: dict[str, PobTemplate] = {t.identifier: t for t in (
    _template("BK-OT-RATABLE", "Over time, ratable from booking", "booking", "ratable", "Ratable", _BOOKING,
              {"recurring", "one_time"}),
    _template("BK-OT-CONSUMP-RATABLE-VC", "Consumption ratable with variable consideration", "booking", "ratable",
              "Ratable", _BOOKING, {"recurring"}),
    _template("BL-OT-INVRATABLE", "Over time, invoice ratable", "billing", "ratable", "Invoice Ratable", _BILLING,
              {"recurring"}),
    _template("BK-PIT-STARTDATE", "Immediate at booking, start date", "booking", "point_in_time",
              "Immediate Using Start Date", _BOOKING, {"one_time"}, "start"),
    _template("BK-PIT-CURRENT_PERIOD", "Immediate at booking, current period", "booking", "point_in_time",
              "Immediate Using Open Period", _BOOKING, {"one_time"}, "invoice"),
    _template("BL-PIT-STARTDATE", "Immediate at billing, start date", "billing", "point_in_time",
              "Immediate Using Start Date", _BILLING, {"one_time"}, "start"),
    _template("BL-PIT-CURRENT_PERIOD", "Immediate at billing, current period", "billing", "point_in_time",
              "Immediate Using Open Period", _BILLING, {"one_time"}, "invoice"),
    _template("EVT-PIT-ACCEPTAN", "Immediate upon acceptance", "event", "point_in_time",
              "Immediate Using Start Date", "Upon Event (Customer Acceptance)", {"one_time"}, "start"),
    _template("EVT-OT-RATABLE-GOLIVE", "Over time, ratable from go-live", "event", "ratable", "Ratable",
              "Upon Event (Go-Live)", {"one_time"}),
    _template("EVT-PIT-CONSUMP-USAGE", "Upon consumption event", "event", "consumption", "Consumption",
              "Upon Event (Consumption)", {"usage"}),
    _template("BL-PIT-CONSUMP-PAYGO", "Upon billing, pay as you go", "billing", "consumption", "Consumption",
              _BILLING, {"usage"}),
)}

# The template of a line no catalog charge explains (a discount, a commitment true-up, an adjustment).
DEFAULT_POB_BY_KIND = {
    "recurring": "BK-OT-RATABLE", "discount": "BK-OT-RATABLE", "one_time": "BK-PIT-STARTDATE",
    "usage": "BL-PIT-CONSUMP-PAYGO", "late_usage": "BL-PIT-CONSUMP-PAYGO", "commitment": "BL-PIT-CURRENT_PERIOD",
    "adjustment": "BL-PIT-CURRENT_PERIOD", "credit": "BL-PIT-CURRENT_PERIOD",
    "manual": "BL-OT-INVRATABLE",  # a one-off line: over its service dates, released when billed
    "proration": "BL-OT-INVRATABLE",  # a contract change's credit or charge: over its dates, released when billed
}


def default_pob(charge: Charge) -> str:
    """Seed 002's POB selection matrix, from the charge's type and timing.

    Recurring in advance: BK-OT-RATABLE; in arrears: BL-OT-INVRATABLE. One-time: BK-PIT-STARTDATE.
    Usage drawing down a prepayment and the prepayment itself ("recognize as credits consumed"):
    EVT-PIT-CONSUMP-USAGE; other usage: BL-PIT-CONSUMP-PAYGO.
    """
    if charge.type == "usage":
        return "EVT-PIT-CONSUMP-USAGE" if charge.drawdown_from else "BL-PIT-CONSUMP-PAYGO"
    if charge.prepaid_units is not None:
        return "EVT-PIT-CONSUMP-USAGE"
    if charge.type == "one_time":
        return "BK-PIT-STARTDATE"
    return "BK-OT-RATABLE" if charge.timing == "in_advance" else "BL-OT-INVRATABLE"


def check_pob(identifier: str, field: str, templates: Mapping[str, PobTemplate] = POB_TEMPLATES) -> PobTemplate:
    if identifier not in templates:
        raise ValidationError(f"'{identifier}' is not a configured POB template ({', '.join(sorted(templates))})",
                              param=field)
    return templates[identifier]


def pob_of_charge(charge: Charge, templates: Mapping[str, PobTemplate] = POB_TEMPLATES) -> str:
    """The charge's `pob_identifier` when set (it must be on the list), else `default_pob`."""
    identifier = charge.pob_identifier or default_pob(charge)
    return check_pob(identifier, "pob_identifier", templates).identifier


def template_fits(template: PobTemplate, charge_type: str, prepayment: bool = False) -> bool:
    """Whether seed 002's matrix assigns the template to this charge type; a prepayment may also
    be recognized on consumption (seed 002, prepay drawdown)."""
    return charge_type in template.charge_types or (prepayment and template.method == "consumption")


# ---------------------------------------------------------------------------------------------- months


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def check_month(month: str, field: str = "month") -> str:
    if not isinstance(month, str) or not MONTH_PATTERN.match(month):
        raise ValidationError(f"'{month}' is not a month written YYYY-MM", param=field)
    return month


def month_bounds(month: str) -> tuple[date, date]:
    """First day of the month and first day of the next one."""
    year, number = int(month[:4]), int(month[5:])
    first = date(year, number, 1)
    return first, first + timedelta(days=calendar.monthrange(year, number)[1])


def month_spans(start: date, end: date) -> list[tuple[str, int, int]]:
    """(month, days of [start, end) in it, days in the month) for every month [start, end) touches."""
    spans = []
    cursor = start
    while cursor < end:
        first, following = month_bounds(month_of(cursor))
        stop = min(end, following)
        spans.append((month_of(cursor), (stop - cursor).days, (following - first).days))
        cursor = stop
    return spans


# ---------------------------------------------------------------------------------------------- allocation


def allocate(total: Decimal, weights: Sequence[Decimal | int], currency: str) -> list[Decimal]:
    """`total` shared by `weights`, each share rounded half up at the currency's minor unit, the
    last share taking the remainder (cumulative rounding when that remainder would flip sign)."""
    weight_sum = sum((Decimal(w) for w in weights), ZERO)
    if not weights or weight_sum <= 0 or any(Decimal(w) < 0 for w in weights):
        raise ValueError("weights must be non-negative with a positive sum")
    shares = [round_money(total * Decimal(w) / weight_sum, currency) for w in weights[:-1]]
    last = total - sum(shares, ZERO)
    if last * total >= 0 and all(share * total >= 0 for share in shares):
        return [*shares, last]
    shares, running, previous = [], ZERO, ZERO
    for weight in weights:
        running += Decimal(weight)
        rounded = total if running == weight_sum else round_money(total * running / weight_sum, currency)
        shares.append(rounded - previous)
        previous = rounded
    return shares


def explode_bundle(amount: Decimal, components: Sequence[BundleComponent],
                   currency: str) -> list[tuple[BundleComponent, Decimal]]:
    """Split a bundle line by its components' standalone prices (seed 002, bundle explosion).

    Shares are rounded half up at the minor unit; the last component takes the remainder so the
    parts add up to the line exactly.
    """
    if not components:
        raise ValidationError("a bundle needs at least one component", param="components")
    for index, component in enumerate(components):
        if component.standalone_price < 0:
            raise ValidationError("a standalone price cannot be negative",
                                  param=f"components[{index}].standalone_price")
    if sum((c.standalone_price for c in components), ZERO) <= 0:
        raise ValidationError("the components' standalone prices add up to zero: nothing to split by",
                              param="components")
    shares = allocate(amount, [c.standalone_price for c in components], currency)
    return list(zip(components, shares, strict=True))


# ---------------------------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class ScheduleEntry:
    period: str  # "YYYY-MM"
    amount: Decimal


@dataclass(frozen=True)
class RevenueSchedule:
    invoice_id: str
    invoice_number: str | None
    customer_id: str
    line_index: int
    component: str | None  # the bundle component this schedule is the share of
    subscription_id: str | None
    external_id: str | None
    charge_code: str | None
    item_key: str | None
    pob_identifier: str
    method: Method
    convention: Convention
    gl_code: str | None
    currency: str
    amount: Decimal  # the line's amount (the component's share for a bundle part)
    billed_period: str  # month of the invoice date
    service_start: date
    service_end: date  # exclusive
    entries: tuple[ScheduleEntry, ...] = ()
    credits: tuple[ScheduleEntry, ...] = ()  # billing reversed by credit notes and the void: month and amount
    prepaid_units: Decimal | None = None  # a prepayment: units bought
    consumed_units: Decimal = ZERO
    voided: str | None = None  # the month the invoice's void took effect in

    @property
    def credited(self) -> Decimal:
        return sum((c.amount for c in self.credits), ZERO)

    @property
    def net(self) -> Decimal:
        """What the customer owes for the line after credits: what the schedule recognizes in the end."""
        return self.amount - self.credited

    @property
    def scheduled(self) -> Decimal:
        return sum((e.amount for e in self.entries), ZERO)

    @property
    def unscheduled(self) -> Decimal:
        """A prepayment's part not consumed yet (zero for every other schedule)."""
        return self.net - self.scheduled

    def recognized_in(self, month: str) -> Decimal:
        return sum((e.amount for e in self.entries if e.period == month), ZERO)

    def recognized_through(self, month: str) -> Decimal:
        return sum((e.amount for e in self.entries if e.period <= month), ZERO)

    def billed_in(self, month: str) -> Decimal:
        """The line as invoiced, in the month of its invoice (credit notes and voids: `reversed_in`)."""
        return self.amount if self.billed_period == month else ZERO

    def reversed_in(self, month: str) -> Decimal:
        """Billing reversed in `month` by credit notes and the void."""
        return sum((c.amount for c in self.credits if c.period == month), ZERO)

    def billed_through(self, month: str) -> Decimal:
        billed = self.amount if self.billed_period <= month else ZERO
        return billed - sum((c.amount for c in self.credits if c.period <= month), ZERO)

    def deferred_at_end_of(self, month: str) -> Decimal:
        """Billed and not yet recognized at the end of `month` (negative: recognized before billing)."""
        return self.billed_through(month) - self.recognized_through(month)


def _entries(amounts: Iterable[tuple[str, Decimal]]) -> tuple[ScheduleEntry, ...]:
    """Entries by month, added up per month, sorted, zeros left out."""
    by_month: dict[str, Decimal] = {}
    for month, amount in amounts:
        by_month[month] = by_month.get(month, ZERO) + amount
    return tuple(ScheduleEntry(m, a) for m, a in sorted(by_month.items()) if a != 0)


def ratable_entries(amount: Decimal, start: date, end: date, currency: str,
                    convention: Convention = "daily") -> tuple[ScheduleEntry, ...]:
    """`amount` over `[start, end)` by calendar month, by day or by the half-month convention."""
    if convention not in CONVENTIONS:
        raise ValidationError(f"convention is one of {', '.join(CONVENTIONS)}", param="convention")
    if end <= start:
        raise ValidationError(f"empty service period [{start}, {end})", param="period_end")
    spans = month_spans(start, end)
    if convention == "daily":
        weights = [Decimal(days) for _, days, _ in spans]
    else:
        weights = [Decimal(1) if days == month_days else Decimal("0.5") for _, days, month_days in spans]
    shares = allocate(amount, weights, currency)
    return _entries(zip((month for month, _, _ in spans), shares, strict=True))


def _release(entries: tuple[ScheduleEntry, ...], release_month: str | None) -> tuple[ScheduleEntry, ...]:
    """Entries before `release_month` caught up in it."""
    if release_month is None:
        return entries
    return _entries((max(e.period, release_month), e.amount) for e in entries)


def _line_pob(line: InvoiceLine, charge: Charge | None, index: int,
              templates: Mapping[str, PobTemplate]) -> str:
    if line.pob_identifier:
        return check_pob(line.pob_identifier, f"lines[{index}].pob_identifier", templates).identifier
    if charge is not None:
        identifier = charge.pob_identifier or default_pob(charge)
        return check_pob(identifier, f"lines[{index}].charge.pob_identifier", templates).identifier
    return check_pob(DEFAULT_POB_BY_KIND[line.kind], f"lines[{index}].kind", templates).identifier


def _recognize(amount: Decimal, template: PobTemplate, line: InvoiceLine, start: date, end: date,
               invoice: Invoice, convention: Convention) -> tuple[ScheduleEntry, ...]:
    if amount == 0:
        return ()
    if template.method == "ratable":
        return ratable_entries(amount, start, end, invoice.currency, convention)
    if template.method == "point_in_time":
        day = start if template.point_in_time_on == "start" else invoice.issue_date
        return _entries([(month_of(day), amount)])
    if line.kind in USAGE_KINDS:
        return _entries([(month_of(end - timedelta(days=1)), amount)])
    return ()  # a prepayment: deferred until consumed


def charge_finder(plan_of_subscription: Mapping[str, Plan]) -> Callable[[InvoiceLine], Charge | None]:
    """`charge_of` for `schedules_for_invoice`: the charge a line bills in its subscription's plan,
    None for lines no catalog charge bills (coupons, commitment true-ups)."""
    def charge_of(line: InvoiceLine) -> Charge | None:
        plan = plan_of_subscription.get(line.subscription_id or "")
        return next((c for c in plan.charges if c.code == line.charge_code), None) if plan else None

    return charge_of


def schedules_for_invoice(
    invoice: Invoice,
    charge_of: Callable[[InvoiceLine], Charge | None] = lambda line: None,
    convention: Convention = "daily",
    first_open_month: str | None = None,
    templates: Mapping[str, PobTemplate] = POB_TEMPLATES,
) -> list[RevenueSchedule]:
    """The revenue schedules of a finalized invoice: one per line, one per component of a bundle.

    `charge_of` gives the catalog charge a line bills (None: none), for its POB template
    (`line.pob_identifier`, else the charge's, else `default_pob`, else by line kind), its bundle
    components and its prepaid units. Tax is not revenue: tax lines get no schedule.
    """
    if invoice.status in ("draft", "void"):
        raise ValidationError(f"a {invoice.status} invoice has no revenue: schedules are made at finalization",
                              param="status")
    if convention not in CONVENTIONS:
        raise ValidationError(f"convention is one of {', '.join(CONVENTIONS)}", param="convention")
    if first_open_month is not None:
        check_month(first_open_month, "first_open_month")
    if is_credit_note(invoice):
        raise ValidationError("a credit note adjusts the schedules of the lines it credits: apply_credit_note",
                              param="lines")
    billed_period = month_of(invoice.issue_date)
    schedules = []
    for index, line in enumerate(invoice.lines):
        if line.currency != invoice.currency:
            raise ValidationError(f"line in {line.currency} on a {invoice.currency} invoice",
                                  param=f"lines[{index}].currency")
        charge = charge_of(line)
        pob = _line_pob(line, charge, index, templates)
        start = line.period_start or invoice.issue_date
        end = line.period_end or start + timedelta(days=1)
        if end <= start:
            raise ValidationError(f"empty service period [{start}, {end})", param=f"lines[{index}].period_end")
        parts: list[tuple[str | None, str, Decimal]] = [(None, pob, line.amount)]
        if charge is not None and charge.components:
            try:
                shares = explode_bundle(line.amount, charge.components, invoice.currency)
            except ValidationError as error:
                raise ValidationError(error.message, param=f"lines[{index}].charge.{error.param}") from None
            parts = [(component.name,
                      check_pob(component.pob_identifier,
                                f"lines[{index}].charge.components[{k}].pob_identifier",
                                templates).identifier if component.pob_identifier else pob,
                      share)
                     for k, (component, share) in enumerate(shares)]
        prepaid = None
        if charge is not None and not charge.components and charge.prepaid_units is not None:
            prepaid = charge.prepaid_units * line.quantity
        for component, identifier, amount in parts:
            template = templates[identifier]
            releases = [m for m in (first_open_month, billed_period if template.release == "billing" else None) if m]
            entries = _release(_recognize(amount, template, line, start, end, invoice, convention),
                               max(releases) if releases else None)
            schedules.append(RevenueSchedule(
                invoice_id=invoice.id, invoice_number=invoice.number, customer_id=invoice.customer_id,
                line_index=index, component=component, subscription_id=line.subscription_id,
                external_id=line.external_id, charge_code=line.charge_code, item_key=line.item_key,
                pob_identifier=identifier, method=template.method, convention=convention, gl_code=line.gl_code,
                currency=invoice.currency, amount=amount, billed_period=billed_period, service_start=start,
                service_end=end, entries=entries,
                prepaid_units=prepaid if template.method == "consumption" and line.kind not in USAGE_KINDS else None,
            ))
    return schedules


# ---------------------------------------------------------------------------------------------- adjustments


def _amount(value: object, currency: str, field: str) -> Decimal:
    if isinstance(value, float | bool) or not isinstance(value, Decimal | int | str):
        raise ValidationError("amounts are decimals, not floats", param=field)
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValidationError(f"'{value}' is not a decimal amount", param=field) from None
    if not amount.is_finite() or amount != round_money(amount, currency):
        raise ValidationError(f"'{value}' is not a {currency} amount", param=field)
    return amount


def _rescaled(schedule: RevenueSchedule, credit: Decimal, month: str) -> tuple[ScheduleEntry, ...]:
    """The entries once `credit` comes off the schedule's net from `month` on (cumulative catch-up).

    Months before `month` stay. An unconsumed prepayment takes the credit first; the rest scales the
    scheduled revenue by (scheduled - rest) / scheduled: from `month` on, each month's cumulative
    total is the old one scaled, rounded half up, so `month` takes the reversal of the months before
    it and the last month lands exactly on the new total."""
    rest = credit - min(credit, max(schedule.unscheduled, ZERO))
    scheduled = schedule.scheduled
    if rest == 0:
        return schedule.entries
    kept = scheduled - rest
    amounts = [(e.period, e.amount) for e in schedule.entries if e.period < month]
    cumulative = previous = sum((a for _, a in amounts), ZERO)
    later = {e.period: e.amount for e in schedule.entries if e.period >= month}
    months = sorted({month, *later})
    for period in months:
        cumulative += later.get(period, ZERO)
        target = kept if period == months[-1] else round_money(cumulative * kept / scheduled, schedule.currency)
        amounts.append((period, target - previous))
        previous = target
    return _entries(amounts)


def adjust_schedule(schedule: RevenueSchedule, credit: Decimal, effective: date) -> RevenueSchedule:
    """Take a credit note's line (a positive amount) off a schedule, effective in `effective`'s month.

    Months before it never change. The credit comes first off a prepayment's unconsumed part; the
    rest is the credit's share of every month (ASC 606-10-32-43, cumulative catch-up): the share of
    the months already recognized is reversed in `effective`'s month, the months from it on are
    reduced in proportion. 1,200.00 over 2025 by month, 300.00 credited on 2025-07-10: January to
    June keep 100.00, July is 75.00 - 150.00 = -75.00, August to December 75.00 each. Afterwards the
    schedule adds up to `amount - credited`.
    """
    credit = _amount(credit, schedule.currency, "credit")
    if schedule.voided:
        raise ValidationError(f"the invoice was voided in {schedule.voided}: nothing is left to credit",
                              param="schedule")
    if schedule.amount < 0:  # a discount's schedule: the credit takes off its (negative) revenue alike
        return _mirrored(adjust_schedule(_mirrored(schedule), credit, effective))
    if schedule.amount == 0:
        raise ValidationError("a schedule of a zero line has nothing to credit", param="schedule")
    if credit < 0:
        raise ValidationError("a credit is a positive amount", param="credit")
    if credit > schedule.net:
        raise ValidationError(f"credit {credit} exceeds what is left of the line ({schedule.net})", param="credit")
    month = month_of(effective)
    return replace(schedule, entries=_rescaled(schedule, credit, month),
                   credits=(*schedule.credits, ScheduleEntry(month, credit)))


def void_schedule(schedule: RevenueSchedule, effective: date) -> RevenueSchedule:
    """The invoice is void from `effective`'s month: what its line recognized before that month is
    reversed in it, nothing is recognized after, nothing stays deferred, and the billing of what was
    left of the line is reversed in it. Months before it never change. Voiding again changes nothing."""
    if schedule.voided:
        return schedule
    month = month_of(effective)
    net = schedule.net
    entries = [(e.period, e.amount) for e in schedule.entries if e.period < month]
    entries.append((month, -sum((a for _, a in entries), ZERO)))
    return replace(schedule, entries=_entries(entries), voided=month,
                   credits=(*schedule.credits, ScheduleEntry(month, net)) if net != 0 else schedule.credits)


def _mirrored(schedule: RevenueSchedule) -> RevenueSchedule:
    """The schedule with every amount's sign turned (a discount's schedule as a charge's, and back)."""
    return replace(schedule, amount=-schedule.amount,
                   entries=tuple(replace(e, amount=-e.amount) for e in schedule.entries),
                   credits=tuple(replace(c, amount=-c.amount) for c in schedule.credits))


def recognize_consumption(schedule: RevenueSchedule, units: Decimal, month: str) -> RevenueSchedule:
    """Recognize a prepayment as its units are consumed (seed 002: "recognize as credits consumed").

    The month gets the unconsumed amount x units used / units left, rounded half up; the use that
    exhausts the prepayment takes all that is left. Units beyond the prepayment are overage, billed
    and recognized on their own lines.
    """
    check_month(month)
    if schedule.prepaid_units is None or schedule.prepaid_units <= 0:
        raise ValidationError("only a prepayment's schedule is drawn down", param="schedule")
    if isinstance(units, float | bool) or not isinstance(units, Decimal | int) or not Decimal(units).is_finite() \
            or units < 0:
        raise ValidationError("units consumed are a non-negative decimal", param="units")
    left = schedule.prepaid_units - schedule.consumed_units
    used = min(Decimal(units), max(left, ZERO))
    if used == 0:
        return schedule
    unscheduled = schedule.unscheduled
    amount = unscheduled if used == left else round_money(unscheduled * used / left, schedule.currency)
    return replace(schedule, entries=_entries([*((e.period, e.amount) for e in schedule.entries), (month, amount)]),
                   consumed_units=schedule.consumed_units + used)


def apply_drawdowns(schedules: Sequence[RevenueSchedule], invoice: Invoice,
                    charge_of: Callable[[InvoiceLine], Charge | None]) -> list[RevenueSchedule]:
    """Recognize the prepayments an invoice's usage lines drew from, in the month of each usage
    period's last day: a usage line whose charge draws from a prepayment and that rating marked
    as paid from prepaid units (`DRAWN_DETAIL`) consumes its quantity, oldest prepayment first."""
    updated = list(schedules)
    for line in invoice.lines:
        charge = charge_of(line)
        if (line.kind != "usage" or charge is None or not charge.drawdown_from or line.amount != 0
                or not any(detail.startswith(DRAWN_DETAIL) for detail in line.details)):
            continue
        month = month_of((line.period_end or invoice.issue_date + timedelta(days=1)) - timedelta(days=1))
        units = line.quantity
        for i in sorted((i for i, s in enumerate(updated)
                         if s.subscription_id == line.subscription_id and s.charge_code == charge.drawdown_from
                         and s.prepaid_units is not None and s.consumed_units < s.prepaid_units),
                        key=lambda i: (updated[i].billed_period, updated[i].invoice_id)):
            if units <= 0:
                break
            used = min(units, updated[i].prepaid_units - updated[i].consumed_units)
            updated[i] = recognize_consumption(updated[i], used, month)
            units -= used
    return updated


def release_remaining(schedule: RevenueSchedule, month: str) -> RevenueSchedule:
    """Recognize what a prepayment has not consumed in `month` (expiry, end of term: use it or lose it)."""
    check_month(month)
    if schedule.unscheduled == 0:
        return schedule
    return replace(schedule, entries=_entries(
        [*((e.period, e.amount) for e in schedule.entries), (month, schedule.unscheduled)]))


def terminate_schedule(schedule: RevenueSchedule, service_end: date, effective: date,
                       refunded: bool = False) -> RevenueSchedule:
    """Service ends at `service_end` (exclusive). Without a refund (seed 000 §6.3) nothing more is
    owed to the customer and nothing is refundable, so what the schedule would recognize after the
    month service ends is recognized in that month (ASC 606-10-25-7 / IFRS 15.15: no remaining
    obligation, consideration received and nonrefundable), and an unconsumed prepayment lapses there.
    With a prorated refund (`refunded`) the days after `service_end` are credited on the customer's
    next invoice (proration lines), so their revenue is left as scheduled for those credits to
    reverse; only an unconsumed prepayment lapses. Months before `effective`'s month never change; if
    service ended before it, the catch-up lands in `effective`'s month. The schedule's service ends
    there too (never before it starts). A voided schedule has nothing left to recognize. Applying the
    same termination again changes nothing.
    """
    if schedule.voided:
        return schedule
    target = max(month_of(service_end - timedelta(days=1)), month_of(effective))
    amounts = [(min(e.period, target) if e.period >= month_of(effective) and not refunded else e.period, e.amount)
               for e in schedule.entries]
    if schedule.unscheduled != 0:
        amounts.append((target, schedule.unscheduled))
    ends = min(schedule.service_end, max(service_end, schedule.service_start))
    return replace(schedule, entries=_entries(amounts), service_end=ends)


def voided_on(invoice: Invoice) -> date | None:
    """The day the invoice was voided (its status history), None when it is not void."""
    if invoice.status != "void":
        return None
    for change in reversed(invoice.status_history):
        if change.get("status") == "void" and change.get("at"):
            return datetime.fromisoformat(str(change["at"]).replace("Z", "+00:00")).date()
    return invoice.issue_date


def status_at_end_of(invoice: Invoice, month: str) -> str:
    """The invoice's status on the last day of `month` (its status history), so a month's files say what
    was true then."""
    last = month_bounds(month)[1] - timedelta(days=1)
    status = invoice.status
    history = [c for c in invoice.status_history if c.get("status") and c.get("at")]
    if history:
        status = "finalized"
        for change in history:
            if datetime.fromisoformat(str(change["at"]).replace("Z", "+00:00")).date() <= last:
                status = change["status"]
    return status


def is_credit_note(document: Invoice) -> bool:
    return document.kind == "credit_note" or (bool(document.lines) and all(line.kind == "credit"
                                                                              for line in document.lines))


def apply_credit_note(schedules: Sequence[RevenueSchedule], credit_note: Invoice) -> list[RevenueSchedule]:
    """Every schedule a credit note's lines credit, adjusted from the credit note's date.

    A credit line names the line it credits: the invoice (`credit_note_of`) and its line index
    (`credited_line`), or else by `item_key` (and `subscription_id`); a line exploded into
    components is credited across them in proportion to what is left of each. A positive credit
    line credits a discount line (a negative schedule): its negative revenue is taken off alike.
    """
    if not is_credit_note(credit_note):
        raise ValidationError("a credit note's lines are all of kind 'credit'", param="lines")
    updated = list(schedules)
    for index, line in enumerate(credit_note.lines):
        if line.amount == 0:
            raise ValidationError("a credit line has an amount", param=f"lines[{index}].amount")
        sign = -1 if line.amount < 0 else 1  # negative: it credits a charge; positive: a discount
        if credit_note.credit_note_of and line.credited_line is not None:
            targets = [i for i, s in enumerate(updated) if s.invoice_id == credit_note.credit_note_of
                       and s.line_index == line.credited_line and s.amount * sign < 0]
        elif line.item_key:
            targets = [i for i, s in enumerate(updated) if s.item_key == line.item_key
                       and s.subscription_id == line.subscription_id and s.amount * sign < 0]
        else:
            raise ValidationError("a credit line names the invoice line it credits (credited_line or item_key)",
                                  param=f"lines[{index}].credited_line")
        if not targets:
            credited = (line.item_key if line.credited_line is None
                        else f"{credit_note.credit_note_of} line {line.credited_line}")
            raise ValidationError(f"no revenue schedule bills the credited line ({credited})",
                                  param=f"lines[{index}]")
        nets = [updated[i].net * -sign for i in targets]
        if sum(nets, ZERO) < abs(line.amount):
            raise ValidationError(f"credit {abs(line.amount)} exceeds what is left of '{line.item_key}'",
                                  param=f"lines[{index}].amount")
        for i, share in zip(targets, allocate(abs(line.amount), nets, credit_note.currency), strict=True):
            updated[i] = adjust_schedule(updated[i], share, credit_note.issue_date)
    return updated


def recognized_by_month(
    schedules: Iterable[RevenueSchedule],
    month: str,
    key: Callable[[RevenueSchedule], Hashable] = lambda s: (s.customer_id, s.currency),
) -> dict[Hashable, Decimal]:
    """Revenue recognized in `month`, added up by `key` (default: account and currency)."""
    check_month(month)
    totals: dict[Hashable, Decimal] = {}
    for schedule in schedules:
        amount = schedule.recognized_in(month)
        if amount != 0:
            group = key(schedule)
            totals[group] = totals.get(group, ZERO) + amount
    return totals
