"""Usage events: ingestion (API batches and files), the allowance view and the DS-009 check."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from pydantic import ValidationError as PydanticValidationError

from shared.adapters.dynamodb import ConditionFailed, Put
from shared.billing.errors import NotFoundError, RetryableError, ValidationError
from shared.billing.metering import Aggregator, Allowance, consume_allowances, consumption_order, event_value, matches
from shared.billing.models import Invoice, Metric, Plan, Subscription, UsageEvent
from shared.billing.money import ZERO
from shared.billing.periods import Period
from shared.billing.schedule import item_charge, scheduled_items
from shared.services.billing import metrics_for, plans_for
from shared.services.catalog import get_customer
from shared.services.context import Actor, Ports
from shared.services.invoices import get_invoice
from shared.services.requests.common import first_error_field
from shared.services.requests.usage import UsageEventInput
from shared.services.subscriptions import get_subscription

MAX_BATCH = 1000


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    rejected: list[dict] = field(default_factory=list)
    # duplicates whose content differs from the event stored first (which stands): index, transaction_id, message
    differing_duplicates: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "late": self.late,
                "rejected": self.rejected, "differing_duplicates": self.differing_duplicates}


@dataclass
class _Sent:
    """One event as sent, valid so far, and what storing it takes."""

    index: int
    scope: str  # the subscription it names, or the customer for an event sent for a customer
    transaction_id: str
    digest: str
    events: list[UsageEvent]  # several when a customer's event was split across services
    windows: list[Period | None] = field(default_factory=list)  # each event's usage period
    used: dict[tuple, Decimal] = field(default_factory=dict)  # limited usage counters it adds to
    late: list[bool] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return self.scope, self.transaction_id


def ingest(ports: Ports, actor: Actor, raw_events: list[dict], param: str = "events") -> IngestResult:
    """Store each new event once, for good, per subscription (or customer) and transaction_id.

    Bad events come back with their index and the field at fault; the good ones are kept. A
    transaction_id its subscription (or customer) sent before, in this batch or an earlier one,
    is a duplicate and changes nothing: the first event stands, and one sent with other content
    is also listed in `differing_duplicates`. The claim of the transaction id is written with the
    event, on condition it does not exist yet, so of concurrent sends exactly one is accepted.
    An event for a period already invoiced is stored and marked late, so the next bill run
    invoices it as a separate dated line (also when the contract has ended meanwhile).
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
    for _, owned in customers.values():
        subs.update({sub.id: sub for sub in owned})
    plans = plans_for(ports, [s for s in subs.values() if s]) if any(subs.values()) else {}
    metrics = metrics_for(ports, plans) if plans else {}
    now = ports.clock.now()
    allocation = _Allocation(ports, plans, metrics)
    sent: dict[tuple[str, str], _Sent] = {}
    for index, body in parsed:
        scope = _scope(body, subs, customers)
        digest = _digest(body)
        if scope is not None and (scope, body.transaction_id) in sent:
            _duplicate(result, index, body.transaction_id, sent[(scope, body.transaction_id)].digest, digest)
            continue
        try:
            if body.customer_id:
                owned = customers.get(body.customer_id, (None, None))[1]
                produced = allocation.split(body, owned, subs, now)
            else:
                produced = [_checked(body, subs, plans, metrics, now)]
        except ValidationError as error:
            result.rejected.append({"index": index, "param": _at(param, index, error.param), "message": error.message})
            continue
        sent[(scope, body.transaction_id)] = _Sent(index, scope, body.transaction_id, digest, produced)
    stored = ports.repo.usage_claims(list(sent))
    for key, claim in stored.items():
        _duplicate(result, sent[key].index, key[1], claim.get("digest"), sent.pop(key).digest)
    for entry in sent.values():
        for event in entry.events:
            sub = subs[event.subscription_id]
            entry.windows.append(_usage_window(sub, plans[sub.plan_code], event))
    over, limits = _over_limit(ports, list(sent.values()), subs, metrics)
    writer = _Writer(ports, subs, now.date(), result, limits, lambda entry, message: result.rejected.append({
        "index": entry.index, "message": message, "param": _at(param, entry.index, _limited_field(entry, metrics))}))
    for entry, message in over:
        del sent[entry.key]
        writer.reject(entry, message)
    writer.write(sorted(sent.values(), key=lambda e: e.index))
    result.rejected.sort(key=lambda r: r["index"])
    result.differing_duplicates.sort(key=lambda r: r["index"])
    return result


def _limited_field(entry: _Sent, metrics: dict[str, Metric]) -> str:
    field_name = metrics[entry.events[0].metric_code].field
    return f"properties.{field_name}" if field_name else "metric_code"


def _scope(body: UsageEventInput, subs: dict, customers: dict) -> str | None:
    """Who the transaction id belongs to: the subscription named, or the customer (None: unknown)."""
    if body.customer_id:
        return customers.get(body.customer_id, (None,))[0]
    sub = subs.get(body.subscription_id or body.external_subscription_id)
    return sub.id if sub else None


def _digest(body: UsageEventInput) -> str:
    """The event's content, whatever reference named its subscription: tells a retry from a different event."""
    content = {"metric_code": body.metric_code, "timestamp": body.timestamp.isoformat(),
               "properties": {k: format(v, "f") if isinstance(v, Decimal) else str(v)
                              for k, v in sorted(body.properties.items())}}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _duplicate(result: IngestResult, index: int, transaction_id: str, first: str | None, this: str) -> None:
    result.duplicates += 1
    if first is not None and first != this:
        result.differing_duplicates.append({
            "index": index, "transaction_id": transaction_id,
            "message": f"transaction_id '{transaction_id}' was already accepted with other content; "
                       "the event accepted first stands and this one was not stored"})


class _Writer:
    """Writes accepted events in transactions of up to 100 writes: each event's claim and records
    (and late marker) "must not exist yet", each subscription's usage fence and each limited
    usage counter once per transaction. A transaction whose condition fails is written again event
    by event, so only the events at fault are set apart (duplicate, late, over the limit)."""

    ATTEMPTS = 4

    def __init__(self, ports: Ports, subs: dict, today: date, result: IngestResult,
                 limits: dict[tuple, tuple[Decimal, Decimal]], reject):
        self.ports, self.subs, self.today, self.result = ports, subs, today, result
        self.limits = limits  # usage counter -> (its first value when not stored yet, the limit)
        self.reject = reject  # (entry, message): reports an event over its usage limit

    def write(self, entries: list[_Sent]) -> None:
        for entry in entries:
            self._classify(entry)
        group: list[_Sent] = []
        size, shared = 0, set()  # writes of the group's events; its fences and counters (one write each)
        for entry in entries:
            own = 1 + len(entry.events) + sum(entry.late)
            keys = {("fence", e.subscription_id) for e in entry.events} | {("used", k) for k in entry.used}
            if group and size + own + len(shared | keys) > MAX_TRANSACTION:
                self._commit(group)
                group, size, shared = [], 0, set()
            group.append(entry)
            size, shared = size + own, shared | keys
        if group:
            self._commit(group)

    def _classify(self, entry: _Sent) -> None:
        entry.late = [_is_late(self.subs[e.subscription_id], e) for e in entry.events]

    def _operations(self, group: list[_Sent]) -> tuple[list, list]:
        """The writes, and for each what it is for: ("event", entry), ("fence", sub id), ("used", key)."""
        repo = self.ports.repo
        operations, owners = [], []
        fences: dict[str, date] = {}
        used: dict[tuple, Decimal] = {}
        for entry in group:
            items = [repo.usage_claim(entry.scope, entry.transaction_id, entry.digest, entry.events)]
            for event, window, late in zip(entry.events, entry.windows, entry.late, strict=True):
                items.append(repo.usage_item(event))
                sub = self.subs[event.subscription_id]
                if late:
                    items.append(repo.late_marker(event, sub.next_bill_date or self.today))
                elif window is None or window.end <= self.today + CLOSING:  # a bill run may be rating it now
                    day = event.timestamp.date()
                    fences[sub.id] = min(fences.get(sub.id, day), day)
            operations += [Put(item) for item in items]
            owners += [("event", entry)] * len(items)
            for key, value in entry.used.items():
                used[key] = used.get(key, ZERO) + value
        for sub_id, earliest in fences.items():
            operations.append(repo.usage_fence_claim(sub_id, earliest))
            owners.append(("fence", sub_id))
        for key, value in used.items():
            seed, limit = self.limits[key]
            operations.append(repo.usage_used_add(key, seed, value, limit))
            owners.append(("used", key))
        return operations, owners

    def _commit(self, group: list[_Sent]) -> None:
        for _ in range(self.ATTEMPTS):
            operations, owners = self._operations(group)
            try:
                self.ports.repo.store.transact(operations)
            except ConditionFailed as failure:
                if len(group) > 1:
                    for entry in group:
                        self._commit([entry])
                    return
                if not self._set_apart(group[0], {owners[i][0] for i in failure.failed if i < len(owners)}):
                    return
                continue
            for entry in group:
                self.result.accepted += 1
                self.result.late += sum(entry.late)
            return
        raise RetryableError(f"usage '{group[0].transaction_id}' kept conflicting with concurrent writes")

    def _set_apart(self, entry: _Sent, failed: set[str]) -> bool:
        """Why one event's write failed; True when it should be written again (now late)."""
        if "event" in failed:  # its claim exists: sent concurrently (or a record key already taken)
            claim = self.ports.repo.usage_claims([entry.key]).get(entry.key, {})
            _duplicate(self.result, entry.index, entry.transaction_id, claim.get("digest"), entry.digest)
            return False
        if "fence" in failed:  # a bill run invoiced its period meanwhile: the event is late
            fresh = self.ports.repo.get_subscriptions({e.subscription_id for e in entry.events})
            self.subs.update(fresh)
            self._classify(entry)
            return True
        if "used" not in failed or not entry.used:
            raise RetryableError(f"usage '{entry.transaction_id}' could not be written: conditions {sorted(failed)}")
        key = next(iter(entry.used))  # a concurrent batch used the period's limit meanwhile
        used = self.ports.repo.usage_used([key]).get(key, ZERO)
        self.reject(entry, f"usage limit of {self.limits[key][1]} {key[1]} per period reached "
                           f"({used} used from {key[2]})")
        return False


MAX_TRANSACTION = 100  # writes in one DynamoDB transaction
CLOSING = timedelta(days=1)  # usage of a period ending by tomorrow may be rated by a run right now: fenced


SPLIT = "~"  # a customer-level event consumed from several services: txid, txid~2, txid~3, ...


def _customer_subscriptions(ports: Ports, bodies: list[UsageEventInput]) -> dict[str, tuple[str, list[Subscription]]]:
    """By the reference sent: the customer's id and its subscriptions."""
    found: dict[str, tuple[str, list[Subscription]]] = {}
    for ref in {b.customer_id for b in bodies}:
        try:
            customer = get_customer(ports, ref, param="customer_id")
        except NotFoundError:
            continue
        found[ref] = (customer.id, ports.repo.customer_subscriptions(customer.id))
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


def _over_limit(ports: Ports, entries: list[_Sent], subs: dict, metrics: dict[str, Metric]):
    """V5-4180: events that would take a customer's period usage of a metric beyond its limit.

    What a period used of a limited metric is a counter stored beside the subscription (first set
    from the stored records), added to in the transaction that stores the events on condition it
    stays within the limit: two batches at once cannot both pass a check on the same count. Sets
    each entry's `used` (what it adds to which counter); returns the entries over the limit with
    their message, and each counter's (seed, limit) for the writes.
    """
    events = [e for entry in entries for e in entry.events]
    if not events:
        return [], {}
    customers = ports.repo.get_customers({e.customer_id for e in events})
    entities = ports.repo.get_entities({c.billing_entity for c in customers.values()})
    limits: dict[str, dict[str, Decimal]] = {}
    for customer_id, customer in customers.items():
        entity = entities.get(customer.billing_entity)
        limits[customer_id] = {**(entity.usage_limits if entity else {}), **customer.usage_limits}
    if not any(limits.values()):
        return [], {}
    wanted: dict[tuple, tuple[Subscription, Metric, Period, Decimal]] = {}
    for entry in entries:
        for event, window in zip(entry.events, entry.windows, strict=True):
            limit = limits.get(event.customer_id, {}).get(event.metric_code)
            if limit is not None and window is not None:
                wanted[(event.subscription_id, event.metric_code, window.start)] = (
                    subs[event.subscription_id], metrics[event.metric_code], window, limit)
    stored = ports.repo.usage_used(list(wanted))
    counters = {key: (stored[key] if key in stored else _aggregate(ports, sub, metric, window), limit)
                for key, (sub, metric, window, limit) in wanted.items()}
    used = {key: seed for key, (seed, _) in counters.items()}
    over = []
    for entry in sorted(entries, key=lambda e: (e.events[0].timestamp, e.transaction_id)):
        adds: dict[tuple, Decimal] = {}
        message = None
        for event, window in zip(entry.events, entry.windows, strict=True):
            key = (event.subscription_id, event.metric_code, window.start if window else None)
            if key not in counters:
                continue
            metric = metrics[event.metric_code]
            value = event_value(metric, event.properties) if matches(metric, event.properties) else ZERO
            value = Decimal(1) if value is None else value
            limit = counters[key][1]
            if used[key] + adds.get(key, ZERO) + value > limit:
                message = (f"usage limit of {limit} {event.metric_code} per period reached "
                           f"({used[key]} used from {window.start})")
                break
            adds[key] = adds.get(key, ZERO) + value
        if message:
            over.append((entry, message))
            continue
        for key, value in adds.items():
            used[key] += value
        entry.used = adds
    return over, {key: (seed if key not in stored else ZERO, limit) for key, (seed, limit) in counters.items()}


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
