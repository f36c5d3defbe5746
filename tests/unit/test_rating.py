"""Rating a subscription's due items into lines: segments, bundles, prepaid drawdown, seed 003's
bundle rules, coupons and late usage (pure, no AWS)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.billing.models import (
    Charge,
    Commitment,
    CouponRedemption,
    Metric,
    Plan,
    PriceSegment,
    Subscription,
    Tier,
    UsageDiscount,
)
from shared.billing.periods import Period
from shared.billing.rating import late_usage_lines, rate_subscription
from shared.billing.schedule import due_items

NOW = datetime(2025, 1, 1, tzinfo=UTC)
MINUTES = Metric(code="minutes", name="Call minutes", aggregation="sum", field="minutes")
CALLS = Metric(code="calls", name="Calls", aggregation="count")
METRICS = {m.code: m for m in (MINUTES, CALLS)}


def plan(*charges: Charge, **extra) -> dict[int, Plan]:
    return {1: Plan(code="p", name="P", currency="USD", charges=list(charges), created_at=NOW, **extra)}


def sub(start=date(2026, 1, 1), **extra) -> Subscription:
    return Subscription(id="sub_1", customer_id="cus_1", plan_code="p", external_id="C-1", start_date=start,
                        billing_day=start.day, created_at=NOW, **extra)


def usage(records: list[tuple[str, str, dict]]):
    """A reader over (metric, timestamp, properties) records, like the repository's."""
    def read(metric_code: str, window: Period):
        for i, (metric, stamp, props) in enumerate(records):
            when = datetime.fromisoformat(stamp)
            if metric == metric_code and window.start <= when.date() < window.end:
                yield when, f"t-{i}", props
    return read


def rate(s: Subscription, plans, as_of: date, records=(), billed=()):
    items = due_items(s, plans, as_of, billed)
    return rate_subscription(s, plans, METRICS, items, usage(list(records)), billed)


def amounts(rated) -> list[tuple[str, str, str]]:
    return [(ln.charge_code, format(ln.quantity, "f"), format(ln.amount, "f")) for ln in rated.lines]


def test_price_segments_bill_each_price_with_its_own_dates_never_an_average():
    # seed 002: 12-month contract, 15/month for months 1-3, then 20/month
    service = Charge(code="svc", name="Service", price="20.00",
                     segments=[PriceSegment(months=3, price="15.00"), PriceSegment(price="20.00")])
    rated = rate(sub(end_date=date(2027, 1, 1)), plan(service), date(2026, 12, 1))
    assert [ln.amount for ln in rated.lines] == [Decimal("15.00")] * 3 + [Decimal("20.00")] * 9
    assert rated.lines[3].period_start == date(2026, 4, 1)


def test_a_segment_boundary_inside_a_period_splits_the_line_by_day():
    service = Charge(code="svc", name="Service", price="20.00",
                     segments=[PriceSegment(months=1, price="31.00"), PriceSegment(price="62.00")])
    s = sub(start=date(2026, 1, 15), billing_alignment="calendar").model_copy(update={"billing_day": 1})
    rated = rate(s, plan(service), date(2026, 2, 1))
    # Jan 15-31 at 31.00 (17/31 days), Feb 1-14 at 31.00 (14/28), Feb 15-28 at 62.00 (14/28)
    assert [(ln.period_start, ln.amount) for ln in rated.lines] == [
        (date(2026, 1, 15), Decimal("17.00")), (date(2026, 2, 1), Decimal("15.50")),
        (date(2026, 2, 15), Decimal("31.00"))]


def test_prepaid_units_are_drawn_down_before_overage_is_billed():
    # seed 002 PPDD: 1,000 minutes prepaid each month, overage 0.10 per minute
    prepay = Charge(code="prepay", name="Prepaid minutes", price="80.00", prepaid_units="1000")
    drawdown = Charge(code="use", name="Minutes", type="usage", model="per_unit", price="0.10",
                      metric_code="minutes", drawdown_from="prepay")
    plans = plan(prepay, drawdown)
    s = sub()
    records = [("minutes", "2026-01-10T00:00:00+00:00", {"minutes": "700"}),
               ("minutes", "2026-01-20T00:00:00+00:00", {"minutes": "500"})]
    rated = rate(s, plans, date(2026, 2, 1), records)
    assert amounts(rated) == [("prepay", "1", "80.00"), ("use", "1000", "0.00"), ("use", "200", "20.00"),
                              ("prepay", "1", "80.00")]
    # January's 1,000 units were used up; February's prepayment brings 1,000 more
    assert rated.balances == {"prepay": Decimal("1000")}


def test_bundle_included_usage_is_listed_free_then_discount_and_commitment_follow_seed_003():
    bundle = Charge(code="bundle", name="Voice bundle", price="10.00", includes={"minutes": "100"})
    minutes = Charge(code="min", name="Minutes", type="usage", model="per_unit", price="0.05",
                     metric_code="minutes")
    plans = plan(bundle, minutes, commitment=Commitment(amount="30.00"),
                 usage_discounts=[UsageDiscount(code="big", name="High volume", metric_code="minutes",
                                                threshold="500", percent_off="10")])
    records = [("minutes", "2026-01-05T00:00:00+00:00", {"minutes": "700"})]
    rated = rate(sub(), plans, date(2026, 2, 1), records)
    assert amounts(rated) == [
        ("bundle", "1", "10.00"),
        ("min", "100", "0.00"),  # included in the bundle, still listed
        ("min", "600", "30.00"),
        ("bundle", "1", "10.00"),  # February, in advance
        ("big", "1", "-3.00"),  # 700 minutes > 500: 10% off the usage
        ("commitment", "1", "3.00"),  # 30.00 minimum, 27.00 after the discount
    ]
    included = rated.lines[1]
    assert included.details == ["included in Voice bundle: free"] and included.usage_records == 1


def test_percentage_and_duration_charges_rate_each_transaction():
    fee = Charge(code="fee", name="Payment fee", type="usage", model="percentage", percentage_rate="2.9",
                 fixed_fee_per_transaction="0.30", metric_code="minutes")
    calls = Charge(code="calls", name="Calls", type="usage", model="duration", rating_unit="minute",
                   metric_code="calls", setup_fee="0.15",
                   tiers=[Tier(up_to="15", unit_price="0"), Tier(up_to=None, unit_price="0.10")])
    records = [("minutes", "2026-01-05T00:00:00+00:00", {"minutes": "100.00"}),
               ("minutes", "2026-01-06T00:00:00+00:00", {"minutes": "50.00"})]
    rated = rate(sub(), plan(fee, calls), date(2026, 2, 1), records)
    # (100 x 2.9% + 0.30) + (50 x 2.9% + 0.30) = 4.95; no calls: 0 transactions
    assert amounts(rated) == [("calls", "0", "0.00"), ("fee", "2", "4.95")]
    assert rated.lines[1].usage_records == 2


def test_a_coupon_for_two_cycles_applies_once_per_cycle():
    service = Charge(code="svc", name="Service", price="100.00")
    s = sub(coupons=[CouponRedemption(code="HALF", name="Half", percent_off="50", duration="repeating",
                                      duration_in_cycles=2, redeemed_on=date(2026, 1, 1))])
    first = rate(s, plan(service), date(2026, 1, 1))
    assert amounts(first) == [("svc", "1", "100.00"), ("coupon:HALF", "1", "-50.00")]
    billed = {ln.item_key for ln in first.lines if ln.kind == "recurring"} | set(first.extra_keys)
    rest = rate(s, plan(service), date(2026, 4, 1), billed=billed)
    assert [a for a in amounts(rest) if a[0].startswith("coupon")] == [("coupon:HALF", "1", "-50.00")]
    assert len([a for a in amounts(rest) if a[0] == "svc"]) == 3


def test_late_usage_bills_only_the_difference_with_the_original_period():
    minutes = Charge(code="min", name="Minutes", type="usage", model="tiered", metric_code="minutes",
                     tiers=[Tier(up_to="100", unit_price="0"), Tier(up_to=None, unit_price="0.50")])
    s, plans = sub(), plan(minutes)
    records = [("minutes", "2026-01-05T00:00:00+00:00", {"minutes": "120"})]
    first = rate(s, plans, date(2026, 2, 1), records)
    assert amounts(first) == [("min", "120", "10.00")]
    item = due_items(s, plans, date(2026, 2, 1), ())[0]
    records.append(("minutes", "2026-01-30T00:00:00+00:00", {"minutes": "10"}))
    lines, state = late_usage_lines(s, plans, METRICS, item, first.usage_billed[item.key], usage(records))
    assert [(ln.kind, ln.quantity, ln.amount, ln.period_start) for ln in lines] == [
        ("late_usage", Decimal("10"), Decimal("5.00"), date(2026, 1, 1))]
    again, _ = late_usage_lines(s, plans, METRICS, item, state, usage(records))
    assert again == []  # nothing new: nothing billed twice


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5000), max_size=30), st.integers(min_value=0, max_value=3000))
def test_usage_line_quantities_add_up_to_the_records_ds009(values, included):
    bundle = Charge(code="bundle", name="Bundle", price="0", includes={"minutes": str(included)})
    minutes = Charge(code="min", name="Minutes", type="usage", model="per_unit", price="0.01",
                     metric_code="minutes")
    records = [("minutes", f"2026-01-{1 + i % 28:02d}T00:00:00+00:00", {"minutes": str(v)})
               for i, v in enumerate(values)]
    rated = rate(sub(), plan(bundle, minutes), date(2026, 2, 1), records)
    usage_lines = [ln for ln in rated.lines if ln.kind == "usage"]
    assert sum(ln.quantity for ln in usage_lines) == sum(values)
    assert sum(ln.amount for ln in usage_lines) == Decimal(max(sum(values) - included, 0)) / 100
