"""Billable metrics: how a period's usage events become a quantity (pure, streaming).

A `Metric` aggregates the property `field` of the events that match its `filters`, one
result per value of `group_by` (e.g. a tariff zone, seed 003's look-up tables). Seed 003
bundles usage by SUM/AVERAGE/MIN/MAX; the aggregation types follow Lago's billable metrics
(https://getlago.com/docs/guide/billable-metrics/aggregation-types/overview).

Semantics (decided here; the tests pin them):
- **filters**: an event matches when, for every filtered property, the event has that
  property and its value is one of the accepted values, compared exactly (case-sensitive,
  as Lago's filters: https://getlago.com/docs/guide/billable-metrics/filters). An empty list
  of accepted values accepts nothing. Events that do not match are not aggregated and do not
  count in `records`.
- **values**: `field` must be a plain decimal string, `-?digits[.digits]`, at most 30 integer
  digits and 20 decimals (no exponent, no NaN/Infinity, no float repr); anything else is a
  `ValidationError(param="properties.<field>")`. Negative values are accepted (corrections).
- **sum**: the exact sum. Sums are computed in a context of 100 digits with `Inexact`
  trapped, so they are never rounded (30 + 20 digits per value leave room for 10^40 records).
- **count**: the number of matching events; `field` is ignored.
- **max / min**: the greatest / smallest value.
- **average**: the arithmetic mean, total / records, not rounded to money: computed at 50
  significant digits, ROUND_HALF_EVEN (exact whenever the mean has at most 50 digits; a
  value has at most 50, so min <= average <= max always holds). Rating rounds the money.
- **unique_count**: the number of distinct values of `field`, compared as exact strings
  (identifiers such as a user id, not numbers: "1" and "1.0" are two values). The field must
  be present and non-empty; it is not parsed as a number. Keeps the distinct set in memory.
- **latest**: the value of the event with the greatest timestamp; ties go to the greatest
  transaction_id (so the result does not depend on the order records are read in).
- **group_by**: an event without a (non-blank) value for the group property is refused, at
  ingestion (`event_value` raises `ValidationError(param="properties.<group_by>")`) and at
  rating (`Aggregator.add` raises the same): usage is never billed under a guessed group.
- **records** (DS-009) counts the matching events aggregated; **total** is the plain sum of
  their values (for count and unique_count every record counts 1, so total == records).
- An empty period has no groups: `result()` is `{}` and callers show a zero line.
- Duplicates: ingestion stores one event per subscription (or customer) and transaction_id; the aggregator
  keeps constant memory (except unique_count) and does not deduplicate again.

Allowances (seed 004 V5-2834): usage recorded without naming a service consumes the included
quantity of the customer's services "starting from the oldest and shortest one-time
service, leaving termed services last": see `consume_allowances` for the exact order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation, Overflow

from shared.billing.errors import ValidationError
from shared.billing.models import Metric, UsageEvent
from shared.billing.money import ZERO

MAX_INTEGER_DIGITS = 30
MAX_DECIMALS = 20
AVERAGE_PRECISION = 50  # significant digits of an average (>= the 30 + 20 digits of a value)
SUM_PRECISION = 100  # room for any sum of values of 30 + 20 digits without rounding

_DECIMAL = re.compile(rf"-?\d{{1,{MAX_INTEGER_DIGITS}}}(?:\.\d{{1,{MAX_DECIMALS}}})?")
_EXACT = Context(prec=SUM_PRECISION, rounding=ROUND_HALF_EVEN, traps=[Inexact, InvalidOperation, Overflow])
_AVERAGE = Context(prec=AVERAGE_PRECISION, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, Overflow])
_ONE = Decimal(1)
_BOUNDS = f" (at most {MAX_INTEGER_DIGITS} integer digits and {MAX_DECIMALS} decimals)"


def _check_metric(metric: Metric) -> None:
    if metric.aggregation != "count" and not metric.field:
        raise ValidationError(f"a {metric.aggregation} metric needs the property to aggregate", param="field")


def matches(metric: Metric, properties: Mapping[str, str]) -> bool:
    """Whether an event counts for the metric: every filtered property has an accepted value."""
    for name, accepted in metric.filters.items():
        value = properties.get(name)
        if value is None or value not in accepted:
            return False
    return True


def group_of(metric: Metric, properties: Mapping[str, str], param: str = "properties") -> str | None:
    """The event's group value (None when the metric has no group_by); a missing one is refused."""
    if metric.group_by is None:
        return None
    value = properties.get(metric.group_by)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"the metric {metric.code} groups by '{metric.group_by}': the event has no value for it",
                              param=f"{param}.{metric.group_by}")
    return value


def _parse(metric: Metric, properties: Mapping[str, str], param: str) -> Decimal | None:
    field = metric.field
    raw = properties.get(field)
    if raw is None:
        raise ValidationError(f"the metric {metric.code} needs the property '{field}'", param=f"{param}.{field}")
    if not isinstance(raw, str):
        raise ValidationError(f"'{field}' must be a string property; got {raw!r}", param=f"{param}.{field}")
    if metric.aggregation == "unique_count":
        if not raw.strip():
            raise ValidationError(f"'{field}' is blank", param=f"{param}.{field}")
        return None
    if _DECIMAL.fullmatch(raw) is None:
        raise ValidationError(
            f"'{field}' must be a decimal string such as \"12.5\" (at most {MAX_INTEGER_DIGITS} digits and "
            f"{MAX_DECIMALS} decimals); got {raw!r}", param=f"{param}.{field}")
    return Decimal(raw)


def event_value(metric: Metric, properties: Mapping[str, str], param: str = "properties") -> Decimal | None:
    """The value an event contributes: None for count and unique_count (which still need their
    properties); raises ValidationError naming `<param>.<field>` or `<param>.<group_by>`.

    Does not look at the filters: an ingestion that accepts non-matching events unchecked calls
    `matches` first.
    """
    _check_metric(metric)
    group_of(metric, properties, param)
    if metric.aggregation == "count":
        return None
    return _parse(metric, properties, param)


@dataclass
class Aggregate:
    quantity: Decimal  # the metric's value for the period
    records: int  # how many usage records were aggregated (DS-009)
    total: Decimal  # the plain sum of the records' values (count, unique_count: == records)


class _Group:
    __slots__ = ("records", "total", "low", "high", "latest_key", "latest_value", "distinct")

    def __init__(self) -> None:
        self.records = 0
        self.total = ZERO
        self.low: Decimal | None = None
        self.high: Decimal | None = None
        self.latest_key: tuple[datetime, str] | None = None
        self.latest_value: Decimal | None = None
        self.distinct: set[str] | None = None


class Aggregator:
    """Streams one metric's records of a period; memory is constant per group except for
    unique_count, which keeps each group's set of distinct values."""

    def __init__(self, metric: Metric):
        _check_metric(metric)
        self.metric = metric
        self._groups: dict[str | None, _Group] = {}
        self._kind = metric.aggregation
        self._field = metric.field
        self._group_by = metric.group_by
        self._filtered = bool(metric.filters)

    def add(self, timestamp: datetime, transaction_id: str, properties: Mapping[str, str]) -> None:
        metric = self.metric
        if self._filtered and not matches(metric, properties):
            return
        group = None
        if self._group_by is not None:
            group = properties.get(self._group_by)
            if group.__class__ is not str or not group.strip():
                group = group_of(metric, properties)  # refuses it, naming the property
        kind = self._kind
        value = None
        if kind != "count":
            raw = properties.get(self._field)
            if kind != "unique_count" and raw.__class__ is str and _DECIMAL.fullmatch(raw) is not None:
                value = Decimal(raw)
            else:
                value = _parse(metric, properties, "properties")  # unique_count's check, or the refusal
        state = self._groups.get(group)
        if state is None:
            state = self._groups[group] = _Group()
        if value is None:  # count, unique_count: each record counts 1
            state.total += _ONE
            if kind == "unique_count":
                if state.distinct is None:
                    state.distinct = set()
                state.distinct.add(raw)
        else:
            if kind == "latest":
                self._latest(state, (timestamp, transaction_id), value)  # may refuse: before any change
            elif kind == "max":
                if state.high is None or value > state.high:
                    state.high = value
            elif kind == "min":
                if state.low is None or value < state.low:
                    state.low = value
            state.total = _EXACT.add(state.total, value)
        state.records += 1

    @staticmethod
    def _latest(state: _Group, key: tuple[datetime, str], value: Decimal) -> None:
        try:
            newer = state.latest_key is None or key > state.latest_key
        except TypeError:
            raise ValidationError("timestamps must all carry a time zone (or none do)", param="timestamp") from None
        if newer:
            state.latest_key, state.latest_value = key, value

    def _quantity(self, state: _Group) -> Decimal:
        aggregation = self.metric.aggregation
        if aggregation in ("sum", "count"):
            return state.total
        if aggregation == "max":
            return state.high
        if aggregation == "min":
            return state.low
        if aggregation == "average":
            return _AVERAGE.divide(state.total, Decimal(state.records))
        if aggregation == "unique_count":
            return Decimal(len(state.distinct))
        return state.latest_value

    def result(self) -> dict[str | None, Aggregate]:
        """By group (None when the metric has no group_by); only groups with records."""
        return {group: Aggregate(self._quantity(state), state.records, state.total)
                for group, state in self._groups.items()}


def aggregate(metric: Metric, events: Iterable[UsageEvent]) -> dict[str | None, Aggregate]:
    """`Aggregator` over UsageEvent objects (already selected for one subscription and period)."""
    aggregator = Aggregator(metric)
    for event in events:
        aggregator.add(event.timestamp, event.transaction_id, event.properties)
    return aggregator.result()


@dataclass(frozen=True)
class Allowance:
    """Included usage from one service of the customer (seed 004 V5-2834)."""

    source_id: str  # e.g. the subscription id
    termed: bool  # a termed (recurring) service: consumed last
    start: date
    end: date | None  # exclusive; None: open
    quantity: Decimal  # included quantity left


def consumption_order(allowance: Allowance) -> tuple:
    """The sort key (termed, start, open end, window days, source_id): one-time services before
    termed ones; then the oldest start; then the shortest window (an open end is the longest);
    then source_id, so equal services are always taken in the same order."""
    length = (allowance.end - allowance.start).days if allowance.end is not None else None
    return (allowance.termed, allowance.start, length is None, length or 0, allowance.source_id)


def _bounded_quantity(quantity: object) -> bool:
    """A non-negative Decimal within the bounds of an event value (so differences are exact)."""
    return (isinstance(quantity, Decimal) and quantity.is_finite() and quantity >= 0
            and quantity.adjusted() < MAX_INTEGER_DIGITS and quantity.as_tuple().exponent >= -MAX_DECIMALS)


def consume_allowances(used: Decimal, allowances: Sequence[Allowance], on: date | None = None,
                       param: str = "allowances") -> tuple[list[tuple[str, Decimal]], Decimal]:
    """Consume `used` from the allowances in `consumption_order`.

    Returns (the quantity taken from each source, in consumption order, sources that give
    nothing left out; the quantity left over to bill). With `on`, only the services whose
    window [start, end) contains that day are consumed. Never takes more than an allowance
    has nor more than `used`; taken + left over == used, exactly. Quantities have the bounds of
    an event value (30 integer digits, 20 decimals) so every difference is exact.
    """
    if not _bounded_quantity(used):
        raise ValidationError(f"usage to consume must be a non-negative decimal{_BOUNDS}; got {used!r}", param="used")
    seen: set[str] = set()
    for index, allowance in enumerate(allowances):
        where = f"{param}[{index}]"
        if allowance.source_id in seen:
            raise ValidationError(f"'{allowance.source_id}' is listed twice", param=f"{where}.source_id")
        seen.add(allowance.source_id)
        if not _bounded_quantity(allowance.quantity):
            raise ValidationError(f"an allowance is a non-negative decimal quantity{_BOUNDS}",
                                  param=f"{where}.quantity")
        if allowance.end is not None and allowance.end <= allowance.start:
            raise ValidationError("a service window ends after it starts (end is exclusive)", param=f"{where}.end")
    left = used
    consumed: list[tuple[str, Decimal]] = []
    for allowance in sorted(allowances, key=consumption_order):
        if left == 0:
            break
        if on is not None and not (allowance.start <= on and (allowance.end is None or on < allowance.end)):
            continue
        taken = min(left, allowance.quantity)
        if taken > 0:
            consumed.append((allowance.source_id, taken))
            left = _EXACT.subtract(left, taken)
    return consumed, left
