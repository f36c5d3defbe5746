"""Charge models (shared/billing/pricing.py) against published worked examples, plus invariants.

Sources (each test names the one it reproduces):
- Stripe tiered pricing (Typographic fonts):  https://docs.stripe.com/subscriptions/pricing-models/tiered-pricing
- Stripe price tiers (`up_to`: "up to and including"): https://docs.stripe.com/api/prices/object
- Zuora volume pricing:   https://knowledgecenter.zuora.com/Zuora_Billing/B_Set_up_Zuora_Billing/Build_products_and_prices/Charge_models_-_configure_any_pricing/DD_Volume_pricing
- Zuora RatingDetail examples (tiered with overage, per unit, flat fee):
  https://docs.zuora.com/en/zuora-billing/bill-your-customer/billing-document-templates-configuration/configure-html-templates-for-billing-documents/customize-html-templates/configure-ratingdetails-in-html-template/ratingdetail-schema
- Zuora overage pricing:  https://docs.zuora.com/en/zuora-billing/set-up-zuora-billing/build-product-and-prices/charge-models---configure-any-pricing/overage-pricing
- Zuora tiered (dynamic pricing use case): https://docs.zuora.com/en/zuora-billing/set-up-zuora-billing/build-product-and-prices/dynamic-pricing/use-cases/usage-tiered-pricing-with-adjustments-and-formula-support
- Lago docs:  https://getlago.com/docs/guide/plans/charges/charge-models/{graduated,graduated-percentage,volume,package,percentage}
- Lago specs (getlago/lago-api on GitHub):
  spec/services/charge_models/{graduated,volume,package,percentage}_service_spec.rb
- Chargebee package pricing: https://www.chargebee.com/docs/billing/2.0/product-catalog/package-pricing
- Seed 003 (rating functions: linear, time ranges, setup cost): ../shared/seeds/003_631d664bf7c1ce4c.txt
"""

import tracemalloc
from decimal import ROUND_CEILING, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.billing.errors import ValidationError
from shared.billing.models import Charge, Tier
from shared.billing.pricing import (
    Priced,
    price_durations,
    price_quantity,
    price_transactions,
    unit_price_for_group,
    validate_charge,
)

D = Decimal


def tiers(*rows) -> list[Tier]:
    """rows of (up_to, unit_price[, flat_price]); up_to None for the open last tier."""
    return [Tier(up_to=None if r[0] is None else D(str(r[0])), unit_price=D(str(r[1])),
                 flat_price=D(str(r[2])) if len(r) > 2 else D(0)) for r in rows]


def charge(model: str, **fields) -> Charge:
    usage = model not in ("flat_fee",)
    base = {"code": f"{model}-charge", "name": model, "model": model}
    if usage:
        base |= {"type": "usage", "metric_code": "m", "timing": "in_arrears"}
    return Charge(**(base | fields))


def amount(c: Charge, quantity) -> Decimal:
    return price_quantity(c, D(str(quantity))).amount


# -- Stripe --------------------------------------------------------------------------------------------------

TYPOGRAPHIC = tiers((5, "7"), (10, "6.5"), (None, "6"))  # fonts 1-5 7 USD, 6-10 6.5 USD, 11+ 6 USD


@pytest.mark.parametrize(("fonts", "total"), [(1, "7"), (5, "35"), (6, "39"), (20, "120"), (25, "150")])
def test_stripe_volume_typographic(fonts, total):
    # Stripe tiered-pricing page, volume-based table: "6 fonts ... 39 USD (6 x 6.5 USD)".
    priced = price_quantity(charge("volume", tiers=TYPOGRAPHIC), D(fonts))
    assert priced.amount == D(total)


@pytest.mark.parametrize(("fonts", "total"), [(1, "7"), (5, "35"), (6, "41.50"), (20, "127.50"), (25, "157.50")])
def test_stripe_graduated_typographic(fonts, total):
    # Same page, graduated table: "the quantity is multiplied by the amount for each tier and the totals
    # for each tier are summed" (6 fonts: 5 x 7 + 1 x 6.5 = 41.50).
    assert amount(charge("tiered", tiers=TYPOGRAPHIC), fonts) == D(total)


def test_stripe_volume_uses_the_unit_price_of_the_tier_and_shows_it():
    priced = price_quantity(charge("volume", tiers=TYPOGRAPHIC), D(6))
    assert priced.unit_price == D("6.5")
    assert priced.details == ("6 to 10: 6 x 6.5 = 39.0",)


# -- Zuora ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("licenses", "total"), [(5, "600"), (60, "6000"), (50, "6000"), (51, "5100")])
def test_zuora_volume_pricing(licenses, total):
    # "0-50 licenses ... $120 (5 units x $120 per unit = $600) ... 51-100 ... $100 (60 units x $100 = $6000)".
    # Rows 50 and 51 are the tier bounds (inclusive up_to). Our tables are open-ended: a last tier is added.
    c = charge("volume", tiers=tiers((50, "120"), (100, "100"), (None, "90")))
    assert amount(c, licenses) == D(total)


def test_zuora_tiered_with_overage_rating_detail():
    # RatingDetail "Tiered with Overage Pricing": 130 units, tiers 0-100 at 0.00 and 101-200 at 2.00:
    # "100 * USD0.00 + 30 * USD2.00 = USD60.00".
    priced = price_quantity(charge("tiered", tiers=tiers((100, "0.00"), (None, "2.00"))), D(130))
    assert priced.amount == D("60.00")
    assert priced.quantity == D(130)
    assert priced.details == ("0 to 100: 100 x 0.00 = 0.00", "101 and above: 30 x 2.00 = 60.00")


def test_zuora_tiered_usage_example():
    # Dynamic-pricing use case, tiers 0-1000 at $0.05 and 1001+ at $0.03: "800 calls -> Base = $40".
    # (Its 1,500-call line, "$40 (tier 1) + $15", does not follow its own table: tier 1 holds 1000 x 0.05 = 50.)
    c = charge("tiered", tiers=tiers((1000, "0.05"), (None, "0.03")))
    assert amount(c, 800) == D("40.00")
    assert amount(c, 1500) == D("65.00")


def test_zuora_per_unit_and_flat_fee_rating_details():
    # RatingDetail "Per Unit Pricing": "120 * USD100.00 = USD12,000.0"; "Flat Fee Pricing": 160 used, USD99.00.
    assert price_quantity(charge("per_unit", price=D("100.00")), D(120)).amount == D("12000.00")
    flat = price_quantity(charge("flat_fee", price=D("99.00")), D(160))
    assert (flat.amount, flat.quantity, flat.unit_price) == (D("99.00"), D(1), D("99.00"))


@pytest.mark.parametrize(("minutes", "total"), [(0, "0"), (499, "0"), (500, "0"), (620, "60.00")])
def test_zuora_overage_cell_phone_plan(minutes, total):
    # "the basic package includes up to 500 minutes, but overage is charged for any usage above 500 at
    # $0.50 per unit" (totals are ours from those terms).
    c = charge("overage", included_quantity=D(500), price=D("0.50"))
    priced = price_quantity(c, D(minutes))
    assert priced.amount == D(total)
    assert priced.unit_price == D("0.50")


def test_overage_detail_states_the_allowance():
    priced = price_quantity(charge("overage", included_quantity=D(500), price=D("0.50")), D(620))
    assert priced.details == ("620 units, 500 included: 120 x 0.50 = 60.00",)


# -- Lago ----------------------------------------------------------------------------------------------------

LAGO_GRADUATED = tiers((10, "10", "2"), (20, "5", "3"), (None, "5", "3"))


@pytest.mark.parametrize(("units", "total"), [(0, "2"), (1, "12"), (10, "102"), (11, "110"), (12, "115"),
                                              (21, "163")])
def test_lago_graduated_spec(units, total):
    # graduated_service_spec.rb, ranges 0-10 (10/unit, flat 2), 11-20 (5, flat 3), 21+ (5, flat 3);
    # "when aggregation is 0 ... applies the flat amount from the first tier" -> 2.
    assert amount(charge("tiered", tiers=LAGO_GRADUATED), units) == D(total)


@pytest.mark.parametrize(("units", "total"), [("0.05", "0.5"), ("0.5", "3.0")])
def test_lago_graduated_decimal_ranges(units, total):
    # graduated_service_spec.rb "with decimal adjacent ranges": 0.5 -> 0.1 x 10 + 0.4 x 5 = 3.0.
    c = charge("tiered", tiers=tiers(("0.1", "10"), ("1", "5"), (None, "2")))
    assert amount(c, units) == D(total)


def test_lago_graduated_percentage_doc():
    # Graduated percentage doc: tiers 0-1,000 at 1% (+$200), 1,001-10,000 at 2% (+$300), 10,001+ at 3% (+$400);
    # transactions of $500, $550 and $4,000 cost $205.00, $306.00 and $80.00 (each the increase of the
    # graduated amount over the running total). A percent is a unit price of rate/100 per unit of amount.
    c = charge("tiered", tiers=tiers((1000, "0.01", "200"), (10000, "0.02", "300"), (None, "0.03", "400")))
    running = [D(0), D(500), D(1050), D(5050)]
    costs = [amount(c, b) - (amount(c, a) if a else D(0)) for a, b in zip(running, running[1:], strict=False)]
    assert costs == [D("205.00"), D("306.00"), D("80.00")]


LAGO_VOLUME = tiers((100, "2", "10"), (200, "1", "0"), (None, "0.5", "50"))


@pytest.mark.parametrize(("units", "total"), [("0", "10"), ("1", "12"), ("100", "210"), ("100.5", "100.5"),
                                              ("101", "101"), ("200", "200"), ("300", "200")])
def test_lago_volume_spec(units, total):
    # volume_service_spec.rb: 0 -> first tier's flat 10; 100 (the limit) -> tier 1; 100.5 -> tier 2.
    assert amount(charge("volume", tiers=LAGO_VOLUME), units) == D(total)


def test_lago_volume_doc():
    # Volume doc: 65,000 API calls in tier 3 (50,001-100,000 at $0.0006, $10 fixed) -> $49.
    c = charge("volume", tiers=tiers((10000, "0.0010", "10"), (50000, "0.0008", "10"), (100000, "0.0006", "10"),
                                     (None, "0.0004", "10")))
    assert amount(c, 65000) == D("49")


def test_lago_package_doc():
    # Package doc: $5 per 100 units, first 100 free: 201 units cost $0 + $5 + $5 = $10.
    c = charge("package", price=D("5"), package_size=D(100), free_units=D(100))
    priced = price_quantity(c, D(201))
    assert priced.amount == D("10")
    assert priced.details == ("201 units, 100 free: 2 packages of 100 x 5 = 10",)


@pytest.mark.parametrize(("free", "total"), [("0", "1300"), ("10", "1200"), ("200", "0")])
def test_lago_package_spec(free, total):
    # package_service_spec.rb: 121 units, 100 per package of 10; free 10 -> 1200; free 200 -> 0.
    c = charge("package", price=D("100"), package_size=D(10), free_units=D(free))
    assert amount(c, 121) == D(total)


@pytest.mark.parametrize(("tokens", "total"), [(10, "1.25"), (1_000_000, "1.25"), (1_500_000, "2.50")])
def test_chargebee_package_rounds_up(tokens, total):
    # Chargebee package pricing: $1.25 per 1M tokens; 10 tokens -> 1 package, 1.5M -> 2 packages = $2.50.
    # Same rule as Stripe transform_quantity with round "up" and Lago ("a group counts from its first unit").
    c = charge("package", price=D("1.25"), package_size=D(1_000_000))
    assert amount(c, tokens) == D(total)


def percentage(**fields) -> Charge:
    return charge("percentage", **fields)


def test_lago_percentage_doc():
    # Percentage doc: 1.2% + $0.10 per transaction, first 3 events or $500 free; $200, $100, $100 free,
    # the fourth ($50) pays "$0.10 x 1 event + 1.2% of $50 = $0.70".
    c = percentage(percentage_rate=D("1.2"), fixed_fee_per_transaction=D("0.10"), free_events=3, free_units=D(500))
    priced = price_transactions(c, [D(200), D(100), D(100), D(50)])
    assert priced.amount == D("0.70")
    assert priced.quantity == D(4)


# percentage_service_spec.rb: running totals [50, 150, 400] of 4 events summing to 800 -> [50, 100, 250, 400].
SPEC_EVENTS = [D(50), D(100), D(250), D(400)]


@pytest.mark.parametrize(("fields", "total"), [
    ({"free_events": 3, "free_units": D(250)}, "11.15"),  # (800 - 250) x 1.3% + (4 - 2) x 2
    ({"free_units": D(250)}, "11.15"),  # "when free_units_per_events is nil"
    ({"free_events": 3}, "7.2"),  # "when free_units_per_total_aggregation is nil": (800 - 400) x 1.3% + 1 x 2
    ({"free_events": 3, "free_units": D(500)}, "7.2"),  # "> last running total": the 3 free events end it
    ({}, "18.4"),  # "when free units are not set": 800 x 1.3% + 4 x 2
    ({"percentage_rate": D(0)}, "8"),  # "when rate is 0": 4 x 2
    ({"free_events": 5}, "0"),  # "when free_units_count > number of events"
])
def test_lago_percentage_spec(fields, total):
    c = percentage(**({"percentage_rate": D("1.3"), "fixed_fee_per_transaction": D("2.0")} | fields))
    assert price_transactions(c, SPEC_EVENTS).amount == D(total)


def test_lago_percentage_small_units_spec():
    # "with small units amount": 4 units at 2.9% -> 0.116.
    assert price_transactions(percentage(percentage_rate=D("2.9")), [D(1), D(3)]).amount == D("0.116")


@pytest.mark.parametrize(("fields", "total"), [
    ({}, "16.142"),  # 1.75 (min) + 2.392 + 12 (max)
    ({"fixed_fee_per_transaction": D("2.0")}, "18.691"),  # 2.299 + 4.392 + 12
    ({"free_events": 2}, "12"),  # only the third pays: 299 -> max 12
    ({"free_units": D(30)}, "13.794"),  # 10 free, 60 of 80 paid (1.794), 12 (max)
    ({"free_events": 3, "free_units": D(10000)}, "2.691"),  # third pays on its 90 above the free 10,000
])
def test_lago_percentage_min_max_spec(fields, total):
    # "when applying min / max amount per transaction": events 10, 80, 10,000 at 2.99%, min 1.75, max 12.
    c = percentage(**({"percentage_rate": D("2.99"), "per_transaction_min": D("1.75"),
                       "per_transaction_max": D("12")} | fields))
    assert price_transactions(c, [D(10), D(80), D(10000)]).amount == D(total)


def test_percentage_details_explain_the_fee():
    c = percentage(percentage_rate=D("1.2"), fixed_fee_per_transaction=D("0.10"), free_events=3, free_units=D(500))
    details = price_transactions(c, [D(200), D(100), D(100), D(50)]).details
    assert details == ("4 transactions totalling 450", "free: 3 transactions, 400 of amount", "1.2% of 50 = 0.6",
                       "fixed fee 0.10 x 1 transactions = 0.10")


def test_a_transaction_exactly_using_up_the_free_amount_is_free():
    # Our choice where Lago's docs are silent (its code uses a strict >): fully covered means free.
    c = percentage(percentage_rate=D("1"), fixed_fee_per_transaction=D("0.30"), free_units=D(100))
    assert price_transactions(c, [D(100), D(50)]).amount == D("0.80")


# -- seed 003: duration rating -------------------------------------------------------------------------------

PARKING = {"rating_unit": "minute", "tiers": tiers((15, "0", "1.00"), (None, "0.10")), "setup_fee": D("0.15")}


@pytest.mark.parametrize(("seconds", "total"), [(0, "1.15"), (600, "1.15"), (900, "1.15"), (901, "1.25"),
                                                (2400, "3.65")])
def test_seed_003_parking_time_ranges_with_setup_cost(seconds, total):
    # Seed 003: "the 15 first minutes ... cost 1$ and any additional minutes ... 10 cents each", "adding an
    # initial 15cts to setup"; each event rounded up to the minute (15 min 1 s -> 16 minutes).
    priced = price_durations(charge("duration", **PARKING), [D(seconds)])
    assert priced.amount == D(total)


def test_seed_003_time_ranges_are_per_event_not_cumulative():
    # Two 40-minute stays pay the first-15-minutes flat twice: 2 x 3.65.
    priced = price_durations(charge("duration", **PARKING), [D(2400), D(2370)])
    assert priced.amount == D("7.30")
    assert priced.quantity == D(80)
    assert priced.details == ("2 events, 80 minutes (each rounded up to the minute)",
                              "0 to 15 minutes of each event: 30 x 0 + 2 x flat 1.00 = 2.00",
                              "16 and above minutes of each event: 50 x 0.10 = 5.00",
                              "setup fee 0.15 x 2 events = 0.30")


def test_seed_003_first_minutes_free_variant():
    c = charge("duration", rating_unit="minute", tiers=tiers((15, "0"), (None, "0.10")))
    assert price_durations(c, [D(2400)]).amount == D("2.50")


@pytest.mark.parametrize(("unit", "price", "seconds", "units", "total"), [
    ("minute", "0.10", "61", "2", "0.20"),  # A to B call rounded per minute
    ("second", "0.002", "61.2", "62", "0.124"),  # rounded per second
    ("minute", "0.10", "60", "1", "0.10"),
])
def test_seed_003_linear_duration(unit, price, seconds, units, total):
    priced = price_durations(charge("duration", rating_unit=unit, price=D(price)), [D(seconds)])
    assert (priced.quantity, priced.amount, priced.unit_price) == (D(units), D(total), D(price))


def test_duration_with_a_tariff_zone_price():
    # Seed 003: a lookup table turns the call's country into a tariff zone, then its price applies.
    c = charge("duration", rating_unit="minute", price_table={"zone1": D("0.05"), "zone2": D("0.20")})
    assert price_durations(c, [D(90)], unit_price=unit_price_for_group(c, "zone2")).amount == D("0.40")


# -- conventions ---------------------------------------------------------------------------------------------

def test_up_to_is_inclusive_and_a_fraction_above_a_bound_goes_to_the_next_tier():
    c = charge("tiered", tiers=tiers((100, "1.00"), (None, "2.00")))
    assert price_quantity(c, D(100)).details == ("0 to 100: 100 x 1.00 = 100.00",)
    assert price_quantity(c, D("100.5")).details == ("0 to 100: 100 x 1.00 = 100.00",
                                                     "101 and above: 0.5 x 2.00 = 1.000")


def test_volume_at_exact_bounds_uses_the_lower_tier():
    c = charge("volume", tiers=tiers((100, "1.00"), (200, "0.90"), (None, "0.80")))
    assert [amount(c, q) for q in ("100", "100.001", "200", "200.5")] == [
        D("100.00"), D("90.0009"), D("180.00"), D("160.400")]


def test_zero_quantity_pays_the_first_tier_flat_price_unless_a_free_zero_tier_is_added():
    with_flat = tiers((100, "0", "10.00"), (None, "1"))
    assert amount(charge("tiered", tiers=with_flat), 0) == D("10.00")
    assert amount(charge("volume", tiers=with_flat), 0) == D("10.00")
    zero_first = tiers((0, "0"), (100, "0", "10.00"), (None, "1"))
    assert amount(charge("tiered", tiers=zero_first), 0) == D("0")
    assert amount(charge("tiered", tiers=zero_first), 1) == D("10.00")


@pytest.mark.parametrize("bad", [D(-1), D("-0.5"), D("NaN"), D("Infinity"), 1.5, True, "10"])
def test_bad_quantities_are_refused(bad):
    with pytest.raises(ValidationError) as caught:
        price_quantity(charge("per_unit", price=D(1)), bad)
    assert caught.value.param == "quantity"


def test_negative_transactions_and_durations_name_their_position():
    with pytest.raises(ValidationError) as caught:
        price_transactions(percentage(percentage_rate=D(1)), [D(1), D(-2)])
    assert caught.value.param == "amounts[1]"
    with pytest.raises(ValidationError) as caught:
        price_durations(charge("duration", **PARKING), [D(1), D(2), D(-3)])
    assert caught.value.param == "durations[2]"


def test_unit_price_override_applies_to_single_price_models():
    assert price_quantity(charge("per_unit", price=D("2")), D(3), unit_price=D("1.5")).amount == D("4.5")
    assert price_quantity(charge("flat_fee", price=D("100")), D(1), unit_price=D("80")).amount == D("80")
    package = charge("package", price=D("5"), package_size=D(10))
    assert price_quantity(package, D(11), unit_price=D("4")).amount == D("8")
    overage = charge("overage", price=D("1"), included_quantity=D(10))
    assert price_quantity(overage, D(12), unit_price=D("3")).amount == D("6")


def test_tiers_refuse_a_unit_price_override_but_accept_the_charge_price():
    c = charge("tiered", tiers=TYPOGRAPHIC)
    assert price_quantity(c, D(6), unit_price=D(0)).amount == D("41.5")
    with pytest.raises(ValidationError) as caught:
        price_quantity(c, D(6), unit_price=D(5))
    assert caught.value.param == "unit_price"


def test_each_model_has_its_own_entry_point():
    with pytest.raises(ValidationError) as caught:
        price_quantity(percentage(percentage_rate=D(1)), D(1))
    assert caught.value.param == "charge.model"
    with pytest.raises(ValidationError):
        price_transactions(charge("per_unit", price=D(1)), [D(1)])
    with pytest.raises(ValidationError):
        price_durations(charge("per_unit", price=D(1)), [D(1)])


def test_unit_price_shown():
    graduated = price_quantity(charge("tiered", tiers=LAGO_GRADUATED), D(21))
    assert graduated.unit_price == D("7.761904761905")  # 163 / 21, 12 decimals
    assert price_quantity(charge("tiered", tiers=LAGO_GRADUATED), D(0)).unit_price == D(0)
    assert price_quantity(charge("package", price=D(5), package_size=D(100)), D(201)).unit_price == D(5)
    fees = price_transactions(percentage(percentage_rate=D(1)), [D(100), D(300)])
    assert fees.unit_price == D(2)  # average fee per transaction


def test_amounts_are_not_rounded():
    priced = price_quantity(charge("per_unit", price=D("0.0015")), D(333))
    assert priced.amount == D("0.4995")
    assert isinstance(priced, Priced)


# -- lookup tables -------------------------------------------------------------------------------------------

def test_lookup_table_price_per_group():
    c = charge("per_unit", price_table={"zone1": D("0.05"), "zone2": D("0.20")})
    assert unit_price_for_group(c, "zone2") == D("0.20")
    assert price_quantity(c, D(10), unit_price=unit_price_for_group(c, "zone1")).amount == D("0.50")


def test_unknown_group_is_named():
    c = charge("per_unit", price_table={"zone1": D("0.05")})
    with pytest.raises(ValidationError) as caught:
        unit_price_for_group(c, "zone9", param="properties.zone")
    assert caught.value.param == "properties.zone"
    assert "'zone9'" in caught.value.message and "zone1" in caught.value.message


# -- validation ----------------------------------------------------------------------------------------------

def test_valid_charges_pass():
    for good in [
        charge("flat_fee", price=D("1250.00")),
        charge("per_unit", price=D("0.0015")),  # sub-cent unit prices are legal
        charge("tiered", tiers=tiers((0, "0"), (100, "0.0015", "10.00"), (None, "0.001"))),
        charge("volume", tiers=LAGO_VOLUME),
        charge("package", price=D("5"), package_size=D(100), free_units=D(100)),
        charge("overage", price=D("0.50"), included_quantity=D(500)),
        percentage(percentage_rate=D("2.9"), fixed_fee_per_transaction=D("0.30"), free_events=3,
                   free_units=D(500), per_transaction_min=D("0.5"), per_transaction_max=D("5")),
        charge("duration", **PARKING),
        charge("tiered", type="recurring", timing="in_advance", metric_code=None,
               tiers=TYPOGRAPHIC),
    ]:
        validate_charge(good, "USD", param="charges[0]")


@pytest.mark.parametrize(("model", "fields", "path"), [
    ("tiered", {"tiers": tiers((100, "1"), (50, "1"), (None, "1"))}, "tiers[1].up_to"),
    ("tiered", {"tiers": tiers((10, "1"), (10, "1"), (None, "1"))}, "tiers[1].up_to"),
    ("tiered", {"tiers": tiers((None, "1"), (10, "1"))}, "tiers[0].up_to"),
    ("tiered", {"tiers": tiers((10, "1"), (20, "1"))}, "tiers[1].up_to"),
    ("volume", {"tiers": tiers((-1, "1"), (None, "1"))}, "tiers[0].up_to"),
    ("volume", {"tiers": tiers((10, "1"), (20, "-1"), (None, "1"))}, "tiers[1].unit_price"),
    ("tiered", {"tiers": tiers((10, "1"), (20, "1", "-2"), (None, "1"))}, "tiers[1].flat_price"),
    ("tiered", {"tiers": tiers((10, "1"), (20, "1", "0.001"), (None, "1"))}, "tiers[1].flat_price"),
    ("tiered", {}, "tiers"),
    ("tiered", {"tiers": TYPOGRAPHIC, "price": D(1)}, "price"),
    ("volume", {"tiers": TYPOGRAPHIC, "price_table": {"a": D(1)}}, "price_table"),
    ("per_unit", {"price": D(-1)}, "price"),
    ("per_unit", {"price": D(1), "tiers": TYPOGRAPHIC}, "tiers"),
    ("per_unit", {"price": D(1), "included_quantity": D(10)}, "included_quantity"),
    ("per_unit", {"price_table": {"zone1": D(-1)}}, "price_table.zone1"),
    ("flat_fee", {"price": D("10.005")}, "price"),
    ("flat_fee", {"price": D(10), "metric_code": None, "type": "recurring", "package_size": D(5)}, "package_size"),
    ("package", {"price": D(5)}, "package_size"),
    ("package", {"price": D(5), "package_size": D(0)}, "package_size"),
    ("package", {"price": D(5), "package_size": D(10), "free_units": D(-1)}, "free_units"),
    ("overage", {"price": D(1)}, "included_quantity"),
    ("percentage", {}, "percentage_rate"),
    ("percentage", {"percentage_rate": D("100.01")}, "percentage_rate"),
    ("percentage", {"percentage_rate": D(1), "per_transaction_min": D(5), "per_transaction_max": D(1)},
     "per_transaction_min"),
    ("percentage", {"percentage_rate": D(1), "free_events": -1}, "free_events"),
    ("percentage", {"percentage_rate": D(1), "setup_fee": D(1)}, "setup_fee"),
    ("duration", {"price": D(1)}, "rating_unit"),
    ("duration", {"rating_unit": "minute", "price": D(1), "tiers": TYPOGRAPHIC}, "price"),
    ("duration", {"rating_unit": "minute", "tiers": TYPOGRAPHIC, "price_table": {"a": D(1)}}, "price_table"),
    ("overage", {"price": D(1), "included_quantity": D(5), "type": "recurring"}, "type"),
    ("per_unit", {"price": D(1), "metric_code": None}, "metric_code"),
])
def test_invalid_charges_name_the_field(model, fields, path):
    with pytest.raises(ValidationError) as caught:
        validate_charge(charge(model, **fields), "USD", param="charges[3]")
    assert caught.value.param == f"charges[3].{path}"


def test_flat_amounts_respect_the_currency_minor_unit():
    with pytest.raises(ValidationError) as caught:
        validate_charge(charge("flat_fee", price=D("10.5")), "JPY", param="charges[0]")
    assert caught.value.param == "charges[0].price"
    validate_charge(charge("flat_fee", price=D("10.005")), "BHD")
    with pytest.raises(ValidationError) as caught:
        validate_charge(charge("flat_fee", price=D("1")), "usd")
    assert caught.value.param == "currency"


# -- streaming -----------------------------------------------------------------------------------------------

def test_a_million_transactions_stream_through():
    # 2.9% + 0.30, min 0.50, max 5.00, first 3 transactions or 500 free. Per cycle of 4 amounts after the
    # first: 0.65786 + 0.50 (min) + 5 (max) + 1.605 = 7.76286. The first cycle: 12.34 and 0.5 free, 999.99
    # pays on its 512.83 above the remaining free 487.16 (-> max 5), then 1.605.
    c = percentage(percentage_rate=D("2.9"), fixed_fee_per_transaction=D("0.30"), free_events=3, free_units=D(500),
                   per_transaction_min=D("0.50"), per_transaction_max=D("5"))
    cycle = [D("12.34"), D("0.5"), D("999.99"), D("45")]
    priced = price_transactions(c, (cycle[i % 4] for i in range(1_000_000)))
    assert priced.quantity == D(1_000_000)
    assert priced.amount == D("6.605") + 249_999 * D("7.76286")


def test_streaming_holds_nothing_per_transaction():
    c = percentage(percentage_rate=D("2.9"), fixed_fee_per_transaction=D("0.30"))
    durations = charge("duration", **PARKING)
    tracemalloc.start()
    try:
        price_transactions(c, (D(i % 997) for i in range(30_000)))
        price_durations(durations, (D(i % 3600) for i in range(30_000)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024  # a list of 30,000 Decimals alone would take over 3 MB


# -- properties ----------------------------------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=100, places=4)
flats = st.decimals(min_value=0, max_value=50, places=2)
quantities = st.decimals(min_value=0, max_value=5000, places=3)


@st.composite
def tier_tables(draw) -> list[Tier]:
    bounds = sorted(draw(st.sets(st.decimals(min_value=0, max_value=3000, places=1), max_size=5)))
    return [Tier(up_to=up, unit_price=draw(prices), flat_price=draw(flats)) for up in [*bounds, None]]


def graduated_by_definition(table: list[Tier], q: Decimal) -> Decimal:
    """Stripe's definition, written independently: units of each tier times its price, flat of tiers reached."""
    total, lower = D(0), D(0)
    for index, tier in enumerate(table):
        upper = tier.up_to if tier.up_to is not None else max(q, lower)
        units = max(min(q, upper) - lower, D(0))
        if index == 0 or q > lower:
            total += units * tier.unit_price + tier.flat_price
        lower = upper
    return total


@settings(max_examples=150)
@given(tier_tables(), quantities, quantities)
def test_graduated_is_monotonic(table, a, b):
    c = charge("tiered", tiers=table)
    low, high = sorted([a, b])
    assert amount(c, low) <= amount(c, high)


@given(tier_tables(), quantities)
def test_graduated_equals_the_sum_over_tiers(table, q):
    priced = price_quantity(charge("tiered", tiers=table), q)
    assert priced.amount == graduated_by_definition(table, q)
    assert len(priced.details) == sum(1 for i, t in enumerate(table)
                                      if i == 0 or q > (table[i - 1].up_to or D(0)))


@given(tier_tables(), quantities)
def test_volume_is_quantity_times_its_tier_price_plus_flat(table, q):
    tier = next(t for t in table if t.up_to is None or q <= t.up_to)
    assert amount(charge("volume", tiers=table), q) == q * tier.unit_price + tier.flat_price


@given(st.decimals(min_value="0.5", max_value=500, places=1), st.decimals(min_value=0, max_value=300, places=1),
       prices, quantities)
def test_package_steps_only_at_package_boundaries(size, free, price, q):
    c = charge("package", price=price, package_size=size, free_units=free)
    packages = ((q - free) / size).to_integral_value(rounding=ROUND_CEILING) if q > free else D(0)
    upper = free + packages * size  # the last quantity of q's package
    lower = free + (packages - 1) * size if packages else D(0)
    assert amount(c, q) == packages * price
    assert amount(c, upper) == amount(c, q)
    assert amount(c, upper + D("0.001")) == amount(c, q) + price
    if packages:
        assert amount(c, lower) == amount(c, q) - price


transaction_lists = st.lists(st.decimals(min_value=0, max_value=10000, places=2), max_size=30)


@given(transaction_lists, st.decimals(min_value=0, max_value=5, places=2), st.decimals(min_value=0, max_value=1,
       places=2), st.decimals(min_value=0, max_value=2, places=2), st.decimals(min_value=0, max_value=20, places=2))
def test_percentage_respects_min_and_max_per_transaction(amounts, rate, fixed, low, spread):
    c = percentage(percentage_rate=rate, fixed_fee_per_transaction=fixed, per_transaction_min=low,
                   per_transaction_max=low + spread)
    singles = [price_transactions(c, [a]).amount for a in amounts]
    assert all(low <= fee <= low + spread for fee in singles)
    assert price_transactions(c, amounts).amount == sum(singles, D(0))


@given(transaction_lists, st.integers(min_value=0, max_value=5), st.decimals(min_value=0, max_value=3000, places=2),
       st.decimals(min_value=0, max_value=2, places=2), st.decimals(min_value=0, max_value=20, places=2))
def test_percentage_free_allowance_never_adds(amounts, free_events, free_units, low, spread):
    paid = percentage(percentage_rate=D("2.5"), fixed_fee_per_transaction=D("0.25"), per_transaction_min=low,
                      per_transaction_max=low + spread)
    free = paid.model_copy(update={"free_events": free_events, "free_units": free_units})
    with_allowance = price_transactions(free, amounts).amount
    assert D(0) <= with_allowance <= price_transactions(paid, amounts).amount
    assert with_allowance <= len(amounts) * (low + spread)


@given(transaction_lists, st.integers(min_value=0, max_value=5), st.decimals(min_value=0, max_value=3000, places=2))
def test_streamed_transactions_equal_the_list(amounts, free_events, free_units):
    c = percentage(percentage_rate=D("1.3"), fixed_fee_per_transaction=D("2"), free_events=free_events,
                   free_units=free_units, per_transaction_min=D("1"), per_transaction_max=D("50"))
    assert price_transactions(c, iter(amounts)) == price_transactions(c, amounts)
    assert price_transactions(c, (a for a in amounts)) == price_transactions(c, amounts)


@given(st.lists(st.decimals(min_value=0, max_value=20000, places=1), max_size=30), st.booleans())
def test_streamed_durations_equal_the_list(durations, tiered):
    c = charge("duration", **PARKING) if tiered else charge("duration", rating_unit="second", price=D("0.002"))
    assert price_durations(c, iter(durations)) == price_durations(c, durations)
    assert price_durations(c, (d for d in durations)) == price_durations(c, durations)
