"""Billable metrics: worked examples from Lago's published docs, the semantics metering.py
decides, and hypothesis properties of the streaming aggregator and of allowance consumption."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.billing.errors import ValidationError
from shared.billing.metering import (
    AVERAGE_PRECISION,
    Aggregate,
    Aggregator,
    Allowance,
    aggregate,
    consume_allowances,
    event_value,
    group_of,
    matches,
)
from shared.billing.models import Metric, UsageEvent

T0 = datetime(2022, 3, 16, tzinfo=UTC)


def metric(aggregation="sum", field="value", **fields) -> Metric:
    return Metric(code="m", name="M", aggregation=aggregation, field=field, **fields)


def run(m: Metric, records) -> dict:
    aggregator = Aggregator(m)
    for timestamp, transaction_id, properties in records:
        aggregator.add(timestamp, transaction_id, properties)
    return aggregator.result()


def only(result: dict) -> Aggregate:
    assert list(result) == [None]
    return result[None]


# Lago, "Aggregation examples" (tracked pages):
# https://getlago.com/docs/guide/billable-metrics/aggregation-types/aggregation-examples
# Two events, pageviews 10 and 20, same tracked_user_id: COUNT 2, SUM 30, MAX 20, COUNT UNIQUE 1.
TRACKED_PAGES = [
    (datetime(2022, 3, 16, tzinfo=UTC), "1111-1111-1111-1111", {"tracked_user_id": "1234-5678-9098-7654",
                                                                  "pageviews": "10"}),
    (datetime(2022, 3, 17, tzinfo=UTC), "2222-2222-2222-2222", {"tracked_user_id": "1234-5678-9098-7654",
                                                                  "pageviews": "20"}),
]


@pytest.mark.parametrize(("aggregation", "field", "units"), [
    ("count", None, Decimal(2)),
    ("sum", "pageviews", Decimal(30)),
    ("max", "pageviews", Decimal(20)),
    ("unique_count", "tracked_user_id", Decimal(1)),
    # not on Lago's page, same events: seed 003 bundles by SUM/AVERAGE/MIN/MAX
    ("min", "pageviews", Decimal(10)),
    ("average", "pageviews", Decimal(15)),
])
def test_lago_aggregation_examples(aggregation, field, units):
    result = only(run(metric(aggregation, field), TRACKED_PAGES))
    assert result.quantity == units
    assert result.records == 2


def test_lago_latest_takes_the_most_recent_event():
    # https://getlago.com/docs/guide/billable-metrics/aggregation-types/latest: 20 on 03-16, 10 on 03-17 -> 10
    events = [(datetime(2022, 3, 17, tzinfo=UTC), "transaction_2", {"total_requests": "10"}),
              (datetime(2022, 3, 16, tzinfo=UTC), "transaction_1", {"total_requests": "20"})]
    assert only(run(metric("latest", "total_requests"), events)).quantity == Decimal(10)
    # https://getlago.com/changelog/latest-aggregation-type: 5 GB, 7 GB, 6 GB -> 6
    storage = [(T0 + timedelta(hours=i), f"t{i}", {"gb": gb}) for i, gb in enumerate(["5", "7", "6"])]
    assert only(run(metric("latest", "gb"), storage)).quantity == Decimal(6)


def test_latest_ties_go_to_the_greatest_transaction_id_whatever_the_order():
    events = [(T0, "b", {"value": "2"}), (T0, "c", {"value": "3"}), (T0, "a", {"value": "1"})]
    for order in (events, events[::-1], events[1:] + events[:1]):
        assert only(run(metric("latest"), order)).quantity == Decimal(3)


def test_lago_sum_example_and_total_is_the_ds009_proof():
    # https://getlago.com/docs/guide/billable-metrics/aggregation-types/sum: 20 + 10 -> 30
    events = [(T0, "transaction_1", {"total_requests": "20"}), (T0, "transaction_2", {"total_requests": "10"})]
    assert only(run(metric("sum", "total_requests"), events)) == Aggregate(Decimal(30), 2, Decimal(30))


def test_count_ignores_the_field_and_its_total_is_the_record_count():
    events = [(T0, f"t{i}", {}) for i in range(3)]
    assert only(run(Metric(code="api_requests", name="API requests", aggregation="count"), events)) == \
        Aggregate(Decimal(3), 3, Decimal(3))


def test_lago_filters_are_exact_and_case_sensitive():
    # https://getlago.com/docs/guide/billable-metrics/filters: compute hours filtered by provider and region;
    # "Values are case-sensitive": "AWS" is not "aws".
    compute = metric("sum", "hours", filters={"provider": ["aws", "gcp"], "region": ["europe", "usa"]})
    assert matches(compute, {"hours": "0.07", "provider": "aws", "region": "europe"})
    assert not matches(compute, {"hours": "0.07", "provider": "AWS", "region": "europe"})
    assert not matches(compute, {"hours": "0.07", "provider": "aws"})  # a filtered property is missing
    assert not matches(metric(filters={"provider": []}), {"provider": "aws"})  # an empty list accepts nothing
    assert matches(metric(), {})  # no filters: every event
    events = [(T0, "e1", {"hours": "0.07", "provider": "aws", "region": "europe"}),
              (T0, "e2", {"hours": "5", "provider": "AWS", "region": "europe"}),
              (T0, "e3", {"hours": "not a number", "provider": "azure", "region": "europe"})]
    assert only(run(compute, events)) == Aggregate(Decimal("0.07"), 1, Decimal("0.07"))


def test_group_by_tariff_zone_gives_one_aggregate_per_zone():
    # seed 003: a look-up table assigns the call to a tariff zone, each zone has its price
    minutes = metric("sum", "minutes", group_by="zone")
    events = [(T0, "c1", {"minutes": "3", "zone": "EU"}), (T0, "c2", {"minutes": "4.5", "zone": "US"}),
              (T0, "c3", {"minutes": "2", "zone": "EU"})]
    assert run(minutes, events) == {"EU": Aggregate(Decimal(5), 2, Decimal(5)),
                                    "US": Aggregate(Decimal("4.5"), 1, Decimal("4.5"))}
    assert group_of(minutes, {"zone": "EU"}) == "EU"
    assert group_of(metric(), {"zone": "EU"}) is None


@pytest.mark.parametrize("properties", [{"value": "1"}, {"value": "1", "zone": ""}, {"value": "1", "zone": "  "}])
def test_an_event_without_its_group_value_is_refused_at_ingestion_and_rating(properties):
    grouped = metric(group_by="zone")
    with pytest.raises(ValidationError) as caught:
        event_value(grouped, properties)
    assert caught.value.param == "properties.zone"
    aggregator = Aggregator(grouped)
    with pytest.raises(ValidationError) as caught:
        aggregator.add(T0, "t1", properties)
    assert caught.value.param == "properties.zone"
    assert aggregator.result() == {}


@pytest.mark.parametrize("raw", ["", "abc", "1e3", "NaN", "Infinity", "1.5.2", " 12", "+1", ".5", "5.",
                                 "0.1000000000000000055511151231257827", "1" * 31])
def test_event_value_refuses_what_is_not_a_plain_decimal_naming_the_field(raw):
    with pytest.raises(ValidationError) as caught:
        event_value(metric("sum", "seconds"), {"seconds": raw})
    assert caught.value.param == "properties.seconds"


def test_event_value_parses_and_names_the_missing_field_under_the_callers_path():
    assert event_value(metric("sum", "seconds"), {"seconds": "-12.50"}) == Decimal("-12.50")
    assert event_value(metric("max", "seconds"), {"seconds": "9" * 30 + "." + "9" * 20}) == Decimal("9" * 30 + "."
                                                                                                   + "9" * 20)
    assert event_value(Metric(code="c", name="C", aggregation="count"), {}) is None
    assert event_value(metric("unique_count", "user"), {"user": "u-1"}) is None
    with pytest.raises(ValidationError) as caught:
        event_value(metric("sum", "seconds"), {}, param="events[3].properties")
    assert caught.value.param == "events[3].properties.seconds"
    with pytest.raises(ValidationError) as caught:
        event_value(metric("unique_count", "user"), {"user": ""})
    assert caught.value.param == "properties.user"


def test_a_metric_that_aggregates_a_value_needs_its_field():
    with pytest.raises(ValidationError) as caught:
        Aggregator(metric("sum", None))
    assert caught.value.param == "field"


def test_a_bad_record_at_rating_raises_and_leaves_no_empty_group():
    aggregator = Aggregator(metric(group_by="zone"))
    aggregator.add(T0, "t1", {"value": "1", "zone": "EU"})
    with pytest.raises(ValidationError) as caught:
        aggregator.add(T0, "t2", {"value": "x", "zone": "US"})
    assert caught.value.param == "properties.value"
    assert list(aggregator.result()) == ["EU"]


def test_empty_period_has_no_groups():
    assert Aggregator(metric()).result() == {}
    assert aggregate(metric(), []) == {}


def test_average_is_not_rounded_to_money():
    result = only(run(metric("average"), [(T0, "a", {"value": "10"}), (T0, "b", {"value": "0"}),
                                          (T0, "c", {"value": "0"})]))
    assert result.quantity == Decimal("3." + "3" * (AVERAGE_PRECISION - 1))
    assert result.total == Decimal(10) and result.records == 3


def test_sums_beyond_28_digits_stay_exact():
    big = "9" * 30 + "." + "9" * 20  # 50 significant digits: the default context (28) would round the sum
    result = only(run(metric(), [(T0, str(i), {"value": big}) for i in range(3)]))
    assert str(result.quantity) == "2" + "9" * 30 + "." + "9" * 19 + "7"
    assert Decimal(big) * 3 != result.quantity  # what plain Decimal arithmetic would have billed


def test_unique_count_compares_values_as_exact_strings():
    events = [(T0, "a", {"user": "u-1"}), (T0, "b", {"user": "U-1"}), (T0, "c", {"user": "u-1"}),
              (T0, "d", {"user": "1"}), (T0, "e", {"user": "1.0"})]
    assert only(run(metric("unique_count", "user"), events)) == Aggregate(Decimal(4), 5, Decimal(5))


def test_latest_refuses_mixing_naive_and_aware_timestamps():
    aggregator = Aggregator(metric("latest"))
    aggregator.add(T0, "a", {"value": "1"})
    with pytest.raises(ValidationError) as caught:
        aggregator.add(datetime(2022, 3, 17), "b", {"value": "2"})
    assert caught.value.param == "timestamp"
    assert only(aggregator.result()) == Aggregate(Decimal(1), 1, Decimal(1))  # the refused record left no trace


def test_aggregate_reads_usage_events():
    events = [UsageEvent(transaction_id=f"t{i}", subscription_id="sub_1", customer_id="cus_1", metric_code="m",
                         timestamp=T0 + timedelta(minutes=i), properties={"value": v, "zone": z})
              for i, (v, z) in enumerate([("1.5", "EU"), ("2", "US"), ("3", "EU")])]
    assert aggregate(metric("max", group_by="zone"), events) == {
        "EU": Aggregate(Decimal(3), 2, Decimal("4.5")), "US": Aggregate(Decimal(2), 1, Decimal(2))}


# seed 004 V5-2834: "consume usage starting from the oldest and shortest one-time service, leaving
# termed service (if any) last"
SERVICES = [
    Allowance("termed-nov", termed=True, start=date(2024, 11, 1), end=None, quantity=Decimal(100)),
    Allowance("once-jan-long", termed=False, start=date(2025, 1, 1), end=date(2025, 2, 1), quantity=Decimal(10)),
    Allowance("once-jan-short", termed=False, start=date(2025, 1, 1), end=date(2025, 1, 15), quantity=Decimal(5)),
    Allowance("once-dec-open", termed=False, start=date(2024, 12, 1), end=None, quantity=Decimal(3)),
]


def test_allowances_are_consumed_oldest_then_shortest_one_time_first_termed_last():
    consumed, left = consume_allowances(Decimal(20), SERVICES)
    assert consumed == [("once-dec-open", Decimal(3)), ("once-jan-short", Decimal(5)),
                        ("once-jan-long", Decimal(10)), ("termed-nov", Decimal(2))]
    assert left == 0
    consumed, left = consume_allowances(Decimal("200.5"), SERVICES)
    assert consumed[-1] == ("termed-nov", Decimal(100)) and left == Decimal("82.5")
    assert consume_allowances(Decimal(0), SERVICES) == ([], Decimal(0))


def test_equal_services_are_taken_by_source_id_and_empty_ones_are_skipped():
    twins = [Allowance(s, False, date(2025, 1, 1), date(2025, 2, 1), Decimal(q)) for s, q in
             [("b", "4"), ("a", "4"), ("c", "0")]]
    assert consume_allowances(Decimal(10), twins) == ([("a", Decimal(4)), ("b", Decimal(4))], Decimal(2))


def test_only_services_whose_window_contains_the_day_are_consumed_when_a_day_is_given():
    consumed, left = consume_allowances(Decimal(20), SERVICES, on=date(2025, 1, 20))
    assert [source for source, _ in consumed] == ["once-dec-open", "once-jan-long", "termed-nov"]
    assert left == 0
    consumed, _ = consume_allowances(Decimal(1), SERVICES, on=date(2024, 11, 30))
    assert consumed == [("termed-nov", Decimal(1))]


@pytest.mark.parametrize(("used", "allowances", "param"), [
    (Decimal(-1), SERVICES, "used"),
    (Decimal("NaN"), SERVICES, "used"),
    (Decimal(1), SERVICES + [SERVICES[0]], "allowances[4].source_id"),
    (Decimal(1), [Allowance("x", False, date(2025, 1, 1), None, Decimal(-2))], "allowances[0].quantity"),
    (Decimal(1), [Allowance("x", False, date(2025, 1, 2), date(2025, 1, 2), Decimal(2))], "allowances[0].end"),
])
def test_consume_allowances_refuses_bad_input_naming_it(used, allowances, param):
    with pytest.raises(ValidationError) as caught:
        consume_allowances(used, allowances)
    assert caught.value.param == param


# properties ------------------------------------------------------------------------------
values = st.decimals(min_value=-10**9, max_value=10**9, places=4, allow_nan=False, allow_infinity=False)
records = st.lists(st.tuples(values, st.sampled_from(["EU", "US", "APAC"]), st.sampled_from(["in", "out"]),
                             st.integers(0, 10**6)), max_size=40)


def as_records(rows):
    return [(T0 + timedelta(seconds=second), f"t{i:03d}", {"value": format(v, "f"), "zone": zone, "direction": d})
            for i, (v, zone, d, second) in enumerate(rows)]


def exact_sum(numbers) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 200
        return sum(numbers, Decimal(0))


@given(records, st.randoms(use_true_random=False))
def test_sum_equals_the_plain_sum_whatever_the_order(rows, rnd):
    events = as_records(rows)
    shuffled = events[:]
    rnd.shuffle(shuffled)
    expected = exact_sum(v for v, *_ in rows)
    for order in (events, shuffled):
        result = run(metric(), order)
        quantity = result[None].quantity if result else Decimal(0)
        assert quantity == expected
        assert (result[None].total if result else Decimal(0)) == expected


@given(records, st.randoms(use_true_random=False))
def test_latest_max_min_do_not_depend_on_the_order(rows, rnd):
    events = as_records(rows)
    shuffled = events[:]
    rnd.shuffle(shuffled)
    for aggregation in ("latest", "max", "min", "unique_count"):
        m = metric(aggregation, group_by="zone")
        assert run(m, events) == run(m, shuffled)


@given(records, st.integers(0, 40), st.sampled_from(["sum", "count"]))
def test_two_aggregators_over_a_split_stream_add_up_to_one(rows, cut, aggregation):
    m = metric(aggregation, "value" if aggregation == "sum" else None, group_by="zone")
    events = as_records(rows)
    whole = run(m, events)
    first, second = run(m, events[:cut]), run(m, events[cut:])
    for group in set(whole) | set(first) | set(second):
        parts = [r[group] for r in (first, second) if group in r]
        assert whole[group].quantity == exact_sum(p.quantity for p in parts)
        assert whole[group].records == sum(p.records for p in parts)
        assert whole[group].total == exact_sum(p.total for p in parts)


@given(records)
def test_max_at_least_average_at_least_min(rows):
    events = as_records(rows)
    high, mean, low = (run(metric(a, group_by="zone"), events) for a in ("max", "average", "min"))
    assert high.keys() == mean.keys() == low.keys()
    for group in high:
        assert high[group].quantity >= mean[group].quantity >= low[group].quantity


@given(records, st.sets(st.sampled_from(["in", "out"])), st.sampled_from(["sum", "count", "average", "latest"]))
def test_records_count_the_matching_events_only(rows, directions, aggregation):
    m = metric(aggregation, "value" if aggregation != "count" else None, filters={"direction": sorted(directions)})
    result = run(m, as_records(rows))
    matching = sum(1 for _, _, d, _ in rows if d in directions)
    assert sum(a.records for a in result.values()) == matching
    assert (matching > 0) == bool(result)


quantities = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False)
allowance_lists = st.lists(
    st.builds(Allowance, source_id=st.uuids().map(str), termed=st.booleans(),
              start=st.dates(date(2024, 1, 1), date(2025, 12, 31)),
              end=st.none() | st.dates(date(2026, 1, 1), date(2027, 12, 31)), quantity=quantities),
    max_size=8, unique_by=lambda a: a.source_id)


@settings(max_examples=200)
@given(quantities, allowance_lists, st.none() | st.dates(date(2023, 6, 1), date(2028, 1, 1)))
def test_consumption_never_exceeds_what_is_available_or_used(used, allowances, on):
    consumed, left = consume_allowances(used, allowances, on=on)
    available = {a.source_id: a.quantity for a in allowances}
    assert all(0 < taken <= available[source] for source, taken in consumed)
    assert len({source for source, _ in consumed}) == len(consumed)
    assert exact_sum(taken for _, taken in consumed) + left == used
    assert 0 <= left <= used
    eligible = exact_sum(a.quantity for a in allowances
                         if on is None or (a.start <= on and (a.end is None or on < a.end)))
    assert left == max(Decimal(0), used - eligible)
