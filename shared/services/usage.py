"""Usage events: ingestion (API batches and files), the allowance view and the DS-009 check."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from pydantic import ValidationError as PydanticValidationError

from shared.billing.errors import NotFoundError, ValidationError
from shared.billing.metering import Aggregator, Allowance, consume_allowances, consumption_order, event_value, matches
from shared.billing.models import Invoice, Metric, Plan, Subscription, UsageEvent
from shared.billing.money import ZERO
from shared.billing.periods import Period
from shared.billing.schedule import item_charge, scheduled_items
from shared.services.billing import metrics_for, plans_for
from shared.services.catalog import get_customer
from shared.services.context import Actor, Ports
from shared.services.invoices import get_invoice
from shared.services.schemas import UsageEventInput, first_error_field
from shared.services.subscriptions import get_subscription

MAX_BATCH = 1000


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    rejected: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "late": self.late,
                "rejected": self.rejected}


def ingest(ports: Ports, actor: Actor, raw_events: list[dict], param: str = "events") -> IngestResult:
    """Store each new event once, for good, by its transaction_id.

    Bad events come back with their index and the field at fault; the good ones are kept. A
    transaction_id seen before (in this batch or any earlier one) is a duplicate and changes
    nothing. An event for a period already invoiced is stored and marked late, so the next
    invoice of the subscription bills it as a separate dated line.
    """
    actor.require("usage:write")
    if len(raw_events) > MAX_BATCH:
        raise ValidationError(f"at most {MAX_BATCH} events per batch, got {len(raw_events)}", param=param)
    result = IngestResult()
    parsed: list[tuple[int, UsageEventInput]] = []
    for index, raw in enumerate(raw_events):
        try:
            parsed.append((index, UsageEventInput.model_validate(raw)))
        except PydanticValidationError as error:
            first = error.errors()[0]
            result.rejected.append({"index": index, "param": _at(param, index, first_error_field(first["loc"])),
                                    "message": first["msg"]})
    subs = _subscriptions(ports, [e for _, e in parsed if not e.customer_id])
    customers = _customer_subscriptions(ports, [e for _, e in parsed if e.customer_id])
    for owned in customers.values():
        subs.update({sub.id: sub for sub in owned})
    plans = plans_for(ports, [s for s in subs.values() if s]) if any(subs.values()) else {}
    metrics = metrics_for(ports, plans) if plans else {}
    now = ports.clock.now()
    allocation = _Allocation(ports, plans, metrics)
    events: dict[str, list[UsageEvent]] = {}  # by the transaction_id sent; several when one was split
    indexes: dict[str, int] = {}
    for index, body in parsed:
        if body.transaction_id in events:
            result.duplicates += 1
            continue
        try:
            if body.customer_id:
                produced = allocation.split(body, customers.get(body.customer_id), subs, now)
            else:
                produced = [_checked(body, subs, plans, metrics, now)]
        except ValidationError as error:
            result.rejected.append({"index": index, "param": _at(param, index, error.param), "message": error.message})
            continue
        events[body.transaction_id] = produced
        indexes[body.transaction_id] = index
    existing = ports.repo.store.existing(ports.repo.usage_key(t) for t in events)
    fresh = {t: produced for t, produced in events.items() if ports.repo.usage_key(t) not in existing}
    result.duplicates += len(events) - len(fresh)
    over = _over_limit(ports, [e for produced in fresh.values() for e in produced], subs, plans, metrics)
    for event, message in over:
        origin = event.transaction_id.split(SPLIT)[0]
        field_name = metrics[event.metric_code].field
        if origin in fresh:
            del fresh[origin]
            result.rejected.append({"index": indexes[origin], "message": message, "param": _at(
                param, indexes[origin], f"properties.{field_name}" if field_name else "metric_code")})
    new = [e for produced in fresh.values() for e in produced]
    result.rejected.sort(key=lambda r: r["index"])
    late = [e for e in new if _is_late(subs[e.subscription_id], e)]
    ports.repo.store.batch_put([*(ports.repo.usage_item(e) for e in new), *(ports.repo.late_marker(e) for e in late)])
    closed = _closed_periods(subs, plans, [e for e in new if e not in late], now.date())
    late += _billed_meanwhile(ports, closed)
    result.accepted, result.late = len(fresh), len(late)
    return result


SPLIT = "~"  # a customer-level event consumed from several services: txid, txid~2, txid~3, ...


def _customer_subscriptions(ports: Ports, bodies: list[UsageEventInput]) -> dict[str, list[Subscription]]:
    found: dict[str, list[Subscription]] = {}
    for ref in {b.customer_id for b in bodies}:
        try:
            customer = get_customer(ports, ref, param="customer_id")
        except NotFoundError:
            continue
        found[ref] = ports.repo.customer_subscriptions(customer.id)
    return found


class _Allocation:
    """Seed 004 V5-2834: usage sent for a customer, consumed from its services' included usage,
    oldest and shortest one-time services first and termed services last (metering.consumption_order);
    what no allowance covers is billed on the last termed service (or the last service)."""

    def __init__(self, ports: Ports, plans: dict, metrics: dict[str, Metric]):
        self.ports, self.plans, self.metrics = ports, plans, metrics
        self.used: dict[tuple, Decimal] = {}

    def split(self, body: UsageEventInput, owned: list[Subscription] | None, subs: dict, now) -> list[UsageEvent]:
        if owned is None:
            raise ValidationError(f"no customer '{body.customer_id}'", param="customer_id")
        metric = self.metrics.get(body.metric_code)
        if metric is None or metric.aggregation != "sum":
            raise ValidationError("usage sent for a customer is split across its services, so it needs a sum "
                                  "metric billed by one of them", param="metric_code")
        day = body.timestamp.date()
        eligible = []
        for sub in owned:
            if sub.status_on(day) not in ("active", "pending_termination", "trialing"):
                continue
            plan = self.plans[sub.plan_code][sub.plan_version_on(day)]
            window = _usage_window(sub, self.plans[sub.plan_code], body)
            if window is not None:
                eligible.append((sub, plan, window))
        if not eligible:
            raise ValidationError(f"no service of customer '{body.customer_id}' bills '{body.metric_code}' on {day}",
                                  param="customer_id")
        properties = {k: format(v, "f") if isinstance(v, Decimal) else str(v) for k, v in body.properties.items()}
        value = event_value(metric, properties) if matches(metric, properties) else None
        allowances = []
        for sub, plan, window in eligible:
            included = sum((c.includes.get(metric.code, ZERO) for c in plan.charges), ZERO) + sum(
                (c.included_quantity or ZERO for c in plan.charges if c.metric_code == metric.code), ZERO)
            key = (sub.id, metric.code, window)
            if key not in self.used:
                self.used[key] = _aggregate(self.ports, sub, metric, window)
            termed = any(c.type == "recurring" for c in plan.charges)
            allowances.append(Allowance(sub.id, termed, sub.start_date, sub.service_end,
                                        max(included - self.used[key], ZERO)))
        ordered = sorted(allowances, key=consumption_order)
        fallback = next((a.source_id for a in reversed(ordered) if a.termed), ordered[-1].source_id)
        if value is None or value <= 0:
            parts = [(fallback, value)]
        else:
            consumed, left = consume_allowances(value, allowances, on=day)
            parts = consumed + ([(fallback, left)] if left > 0 else [])
        produced = []
        for number, (sub_id, quantity) in enumerate(parts, start=1):
            sub = subs[sub_id]
            window = next(w for s, _, w in eligible if s.id == sub_id)
            if quantity is not None:
                self.used[(sub_id, metric.code, window)] += quantity
            props = dict(properties)
            if quantity is not None:
                props[metric.field] = format(quantity, "f")
            if len(parts) > 1:
                props["split_of"] = body.transaction_id
            produced.append(UsageEvent(
                transaction_id=body.transaction_id if number == 1 else f"{body.transaction_id}{SPLIT}{number}",
                subscription_id=sub.id, customer_id=sub.customer_id, metric_code=metric.code,
                timestamp=body.timestamp, properties=props, received_at=now))
        return produced


def _over_limit(ports: Ports, events: list[UsageEvent], subs: dict, plans: dict, metrics: dict[str, Metric]):
    """V5-4180: events that would take a customer's period usage of a metric beyond its limit."""
    if not events:
        return []
    customers = ports.repo.get_customers({e.customer_id for e in events})
    entities = ports.repo.get_entities({c.billing_entity for c in customers.values()})
    limits: dict[str, dict[str, Decimal]] = {}
    for customer_id, customer in customers.items():
        entity = entities.get(customer.billing_entity)
        limits[customer_id] = {**(entity.usage_limits if entity else {}), **customer.usage_limits}
    if not any(limits.values()):
        return []
    used: dict[tuple, Decimal] = {}
    over = []
    for event in sorted(events, key=lambda e: (e.timestamp, e.transaction_id)):
        limit = limits.get(event.customer_id, {}).get(event.metric_code)
        if limit is None:
            continue
        sub = subs[event.subscription_id]
        window = _usage_window(sub, plans[sub.plan_code], event)
        if window is None:
            continue
        key = (sub.id, event.metric_code, window)
        if key not in used:
            used[key] = _aggregate(ports, sub, metrics[event.metric_code], window)
        metric = metrics[event.metric_code]
        value = event_value(metric, event.properties) if matches(metric, event.properties) else ZERO
        value = Decimal(1) if value is None else value
        if used[key] + value > limit:
            over.append((event, f"usage limit of {limit} {event.metric_code} per period reached "
                                f"({used[key]} used from {window.start})"))
            continue
        used[key] += value
    return over


def _usage_window(sub: Subscription, plans: dict[int, Plan], event: UsageEvent) -> Period | None:
    day = event.timestamp.date()
    for stream in scheduled_items(sub, plans):
        for item in stream:
            if item.period.start > day:
                break
            charge = item_charge(sub, plans, item)[1]
            if charge.type == "usage" and charge.metric_code == event.metric_code and item.service.contains(day):
                return item.service
    return None


def _at(param: str, index: int, field_path: str | None) -> str:
    return f"{param}[{index}].{field_path}" if field_path else f"{param}[{index}]"


def _subscriptions(ports: Ports, bodies: list[UsageEventInput]) -> dict[str, Subscription | None]:
    """The batch's subscriptions by id and by external id (None when unknown), in two batch reads."""
    refs = {b.subscription_id or b.external_subscription_id for b in bodies}
    aliases = ports.repo.resolve_aliases("subscription", {r for r in refs if not r.startswith("sub_")})
    found = ports.repo.get_subscriptions({aliases.get(r, r) for r in refs})
    subs: dict[str, Subscription | None] = {r: found.get(aliases.get(r, r)) for r in refs}
    subs.update(found)
    return subs


def _checked(body: UsageEventInput, subs: dict[str, Subscription | None], plans: dict[str, dict[int, Plan]],
             metrics: dict[str, Metric], now) -> UsageEvent:
    ref_field = "subscription_id" if body.subscription_id else "external_subscription_id"
    sub = subs.get(body.subscription_id or body.external_subscription_id)
    if sub is None:
        raise ValidationError(f"no subscription '{body.subscription_id or body.external_subscription_id}'",
                              param=ref_field)
    day = body.timestamp.date()
    if day < sub.start_date or (sub.service_end is not None and day >= sub.service_end):
        raise ValidationError(f"{body.timestamp:%Y-%m-%dT%H:%M:%SZ} is outside the subscription's service "
                              f"[{sub.start_date}, {sub.service_end or 'open'})", param="timestamp")
    if body.timestamp > now.replace(microsecond=0) + _SKEW:
        raise ValidationError("timestamp is in the future", param="timestamp")
    plan = plans[sub.plan_code][sub.plan_version_on(day)]
    codes = {c.metric_code for c in plan.charges if c.metric_code} | {d.metric_code for d in plan.usage_discounts}
    if body.metric_code not in codes:
        raise ValidationError(f"plan '{plan.code}' v{plan.plan_version} bills no metric '{body.metric_code}'",
                              param="metric_code")
    properties = {k: format(v, "f") if isinstance(v, Decimal) else str(v) for k, v in body.properties.items()}
    metric = metrics[body.metric_code]
    if matches(metric, properties):  # events the metric filters out are kept but never counted
        event_value(metric, properties)
    return UsageEvent(transaction_id=body.transaction_id, subscription_id=sub.id, customer_id=sub.customer_id,
                      metric_code=body.metric_code, timestamp=body.timestamp, properties=properties,
                      received_at=now)


_SKEW = timedelta(minutes=5)


def _is_late(sub: Subscription, event: UsageEvent) -> bool:
    return sub.usage_billed_until is not None and event.timestamp.date() < sub.usage_billed_until


def _closed_periods(subs: dict, plans: dict, events: list[UsageEvent], today: date) -> list[UsageEvent]:
    """The events whose usage period has ended: only those can be billed by a run (as_of <= today)."""
    ends: dict[tuple, date | None] = {}
    closed = []
    for event in events:
        key = (event.subscription_id, event.metric_code, event.timestamp.date())
        if key not in ends:
            sub = subs[event.subscription_id]
            window = _usage_window(sub, plans[sub.plan_code], event)
            ends[key] = window.end if window else None
        if ends[key] is None or ends[key] <= today:
            closed.append(event)
    return closed


def _billed_meanwhile(ports: Ports, events: list[UsageEvent]) -> list[UsageEvent]:
    """Re-read the subscriptions after writing: a bill run that finalized meanwhile may have missed these."""
    subs = ports.repo.get_subscriptions({e.subscription_id for e in events}) if events else {}
    late = [e for e in events if _is_late(subs[e.subscription_id], e)]
    if late:
        ports.repo.store.batch_put([ports.repo.late_marker(e) for e in late])
    return late


# reading ------------------------------------------------------------------------------
def list_events(ports: Ports, sub_id: str, metric_code: str, limit: int, after: str | None):
    sub = get_subscription(ports, sub_id, param="subscription_id")
    return ports.repo.usage_events(sub.id, metric_code, limit, after)


def allowances(ports: Ports, sub_id: str, on: date | None = None) -> dict:
    """Seed 004 V5-2760: per metric, what the period includes, what is used and what is left."""
    sub = get_subscription(ports, sub_id)
    day = on or ports.clock.now().date()
    plans = plans_for(ports, [sub])[sub.plan_code]
    metrics = metrics_for(ports, {sub.plan_code: plans})
    rows = []
    for stream in scheduled_items(sub, plans):
        for item in stream:
            if item.period.start > day:
                break
            plan, charge = item_charge(sub, plans, item)
            if charge.type != "usage" or not item.period.contains(day):
                continue
            metric = metrics[charge.metric_code]
            used = _aggregate(ports, sub, metric, item.service)
            included = sum((c.includes.get(metric.code, ZERO) for c in plan.charges), ZERO)
            included += charge.included_quantity or ZERO
            prepaid = Decimal(sub.prepaid_balance.get(charge.drawdown_from, 0)) if charge.drawdown_from else None
            rows.append({
                "metric_code": metric.code, "charge_code": charge.code,
                "period_start": item.service.start.isoformat(), "period_end": item.service.end.isoformat(),
                "included": format(included, "f"), "used": format(used, "f"),
                "remaining": format(max(included - used, ZERO), "f"),
                "prepaid_units_left": None if prepaid is None else format(prepaid, "f"),
            })
    return {"subscription_id": sub.id, "as_of": day.isoformat(), "data": rows}


def _aggregate(ports: Ports, sub: Subscription, metric: Metric, window: Period) -> Decimal:
    aggregator = Aggregator(metric)
    for record in ports.repo.usage_records(sub.id, metric.code, window.start, window.end):
        aggregator.add(*record)
    return sum((a.quantity for a in aggregator.result().values()), ZERO)


def check_invoice_usage(ports: Ports, invoice_id: str) -> dict:
    """DS-009: every usage line's quantity equals the aggregate of its usage records.

    Recomputes each usage item's aggregate from the stored records that had arrived when the
    invoice was rated (`received_at` up to its creation), per group, and compares it with the
    sum of the invoice's line quantities for that item and group (included, drawn-down and
    billed parts together) and with the number of records the lines name. Records that arrived
    later are billed, and checked, on a later invoice's late-usage line.
    """
    invoice = get_invoice(ports, invoice_id)
    subs = {s: get_subscription(ports, s) for s in invoice.subscription_ids}
    plans = plans_for(ports, list(subs.values())) if subs else {}
    metrics = metrics_for(ports, plans) if plans else {}
    checked, violations = 0, []
    for (key, group, metric_code, charge_code, start, end, sub_id), quantity, records in _usage_groups(invoice):
        metric = metrics[metric_code]
        sub = subs[sub_id]
        model = plans[sub.plan_code][sub.plan_version_on(start)].charge(charge_code).model
        aggregator = Aggregator(metric)
        for record in ports.repo.usage_records(sub_id, metric_code, start, end, received_until=invoice.created_at):
            aggregator.add(*record)
        expected = aggregator.result().get(group)
        expected_records = expected.records if expected else 0
        # percentage and duration lines count transactions and rounded units: their records must match
        expected_quantity = expected.quantity if expected else ZERO
        checked += 1
        if expected_records != records or (model not in ("percentage", "duration") and expected_quantity != quantity):
            violations.append({"item_key": key, "group": group, "line_quantity": format(quantity, "f"),
                               "records_quantity": format(expected_quantity, "f"),
                               "records": expected.records if expected else 0})
    return {"invoice_id": invoice.id, "rule": "DS-009", "usage_lines_checked": checked,
            "ok": not violations, "violations": violations}


def _usage_groups(invoice: Invoice):
    groups: dict[tuple, list] = {}
    for line in invoice.lines:
        if line.kind != "usage" or not line.metric_code:
            continue
        key = (line.item_key, line.group, line.metric_code, line.charge_code, line.period_start, line.period_end,
               line.subscription_id)
        entry = groups.setdefault(key, [ZERO, line.usage_records or 0])
        entry[0] += line.quantity
    return [(key, quantity, records) for key, (quantity, records) in groups.items()]
