"""Usage events: ingestion (API batches and files), the allowance view and the DS-009 check."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from pydantic import ValidationError as PydanticValidationError

from shared.billing.errors import NotFoundError, ValidationError
from shared.billing.metering import Aggregator, event_value, matches
from shared.billing.models import Invoice, Metric, Plan, Subscription, UsageEvent
from shared.billing.money import ZERO
from shared.billing.periods import Period
from shared.billing.rating import plan_for
from shared.billing.schedule import scheduled_items
from shared.services.billing import metrics_for, plans_for
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
    subs = _subscriptions(ports, [e for _, e in parsed])
    plans = plans_for(ports, [s for s in subs.values() if s]) if any(subs.values()) else {}
    metrics = metrics_for(ports, plans) if plans else {}
    now = ports.clock.now()
    events: dict[str, UsageEvent] = {}
    for index, body in parsed:
        try:
            event = _checked(body, subs, plans, metrics, now)
        except ValidationError as error:
            result.rejected.append({"index": index, "param": _at(param, index, error.param), "message": error.message})
            continue
        if event.transaction_id in events:
            result.duplicates += 1
            continue
        events[event.transaction_id] = event
    existing = ports.repo.store.existing(ports.repo.usage_key(t) for t in events)
    new = [e for t, e in events.items() if ports.repo.usage_key(t) not in existing]
    result.duplicates += len(events) - len(new)
    late = [e for e in new if _is_late(subs[e.subscription_id], e)]
    ports.repo.store.batch_put([*(ports.repo.usage_item(e) for e in new), *(ports.repo.late_marker(e) for e in late)])
    late += _billed_meanwhile(ports, [e for e in new if e not in late])
    result.accepted, result.late = len(new), len(late)
    return result


def _at(param: str, index: int, field_path: str | None) -> str:
    return f"{param}[{index}].{field_path}" if field_path else f"{param}[{index}]"


def _subscriptions(ports: Ports, bodies: list[UsageEventInput]) -> dict[str, Subscription | None]:
    """The batch's subscriptions by id and by external id (None when unknown)."""
    subs: dict[str, Subscription | None] = {}
    for ref in {b.subscription_id or b.external_subscription_id for b in bodies}:
        try:
            sub = get_subscription(ports, ref)
        except NotFoundError:
            sub = None
        subs[ref] = sub
        if sub is not None:
            subs[sub.id] = sub
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


def _billed_meanwhile(ports: Ports, events: list[UsageEvent]) -> list[UsageEvent]:
    """Re-read the subscriptions after writing: a bill run that finalized meanwhile may have missed these."""
    late: list[UsageEvent] = []
    for sub_id in {e.subscription_id for e in events}:
        sub = ports.repo.get_subscription(sub_id)
        late += [e for e in events if e.subscription_id == sub_id and _is_late(sub, e)]
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
            plan = plan_for(sub, plans, item)
            charge = plan.charge(item.charge_code)
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
