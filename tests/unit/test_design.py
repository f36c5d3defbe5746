"""Seed 002 designs: import, export, the design check (POB, DS-006, DS-008, DS-009), and billing an imported design."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from shared.billing.design import (
    CommercialTerm,
    billing_to_design,
    check_design,
    design_to_billing,
    dump_design,
    parse_design,
)
from shared.billing.errors import ValidationError
from shared.billing.invoicing import totals
from shared.billing.models import Invoice, PartySnapshot
from shared.billing.periods import Period
from shared.billing.rating import rate_subscription
from shared.billing.revrec import apply_drawdowns, charge_finder, schedules_for_invoice
from shared.billing.schedule import due_items

D = Decimal
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def design(name: str):
    return parse_design((FIXTURES / f"design_{name}.json").read_text())


def raw(name: str) -> dict:
    return json.loads((FIXTURES / f"design_{name}.json").read_text())


def imported(name: str):
    return design_to_billing(design(name), plan_code="plan", subscription_id="sub_1", customer_id="cus_1",
                             created_at=NOW, external_id="CT-1")


def term(name, price, start=None, end=None, **fields) -> CommercialTerm:
    return CommercialTerm(chargeName=name, price=D(price), effectiveStart=start, effectiveEnd=end, **fields)


# Commercial terms ledgers (DS-008), as the contracts of the fixtures state them.
SEGMENTED_LEDGER = [term("Service - Promo", "15", date(2026, 1, 1), date(2026, 3, 31), source="$15/mo months 1-3"),
                    term("Service - Standard", "20", date(2026, 4, 1), date(2026, 12, 31), source="$20/mo months 4-12")]
PREPAY_LEDGER = [term("Prepaid Credits", "12000", chargeType="OneTime"), term("Credit Drawdown", "0.12"),
                 term("Credit Overage", "0.15")]
BUNDLE_LEDGER = [term("Enterprise Support Bundle", "10000", date(2026, 1, 1), date(2026, 12, 31))]
BROKEN_LEDGER = [term("Service", "15", date(2026, 1, 1), date(2026, 3, 31)),
                 term("Service", "20", date(2026, 4, 1), date(2026, 12, 31)),
                 term("Support", "100"), term("Setup", "500"), term("Prepaid Credits", "5000"),
                 term("API Calls", "0.002"), term("Storage", "0.5")]


@pytest.mark.parametrize(("name", "ledger"), [("segmented_service", SEGMENTED_LEDGER),
                                              ("prepay_drawdown", PREPAY_LEDGER), ("bundle", BUNDLE_LEDGER)])
def test_the_example_designs_pass_the_check(name, ledger):
    assert check_design(design(name), ledger) == []


def test_the_broken_design_reports_every_violation_with_its_path():
    found = {(v.rule, v.path) for v in check_design(design("broken"), BROKEN_LEDGER)}
    assert found == {
        # POB: a component identifier, a charge without mapping, one not on the list, one the matrix does not
        # give to Usage charges, and a mapping to no charge
        ("POB", "$.assumptions[0]"),
        ("POB", "$.rate_plans[0].charges[3]"),
        ("POB", "$.charge_pob_map[3].pob_identifier"),
        ("POB", "$.charge_pob_map[4].pob_identifier"),
        ("POB", "$.charge_pob_map[6].chargeName"),
        # DS-006: a ratable window stretched to 2027; a point-in-time window that is not the delivery day
        ("DS-006", "$.charge_pob_map[1].recognition_window.end"),
        ("DS-006", "$.charge_pob_map[2].recognition_window.start"),
        ("DS-006", "$.charge_pob_map[2].recognition_window.end"),
        # DS-008: 18.75 averages $15 then $20; Onboarding is not in the contract
        ("DS-008", "$.rate_plans[0].charges[0].sellPrice"),
        ("DS-008", "$.rate_plans[0].charges[3].name"),
        # DS-009: 150,000 against records of 140,000; a quantity without records; a record of no charge
        ("DS-009", "$.rate_plans[1].charges[0].quantity"),
        ("DS-009", "$.rate_plans[1].charges[1].quantity"),
        ("DS-009", "$.usage[2]"),
    }


def test_violation_messages_say_what_is_wrong():
    messages = {(v.rule, v.path): v.message for v in check_design(design("broken"), BROKEN_LEDGER)}
    assert "140000" in messages[("DS-009", "$.rate_plans[1].charges[0].quantity")]
    assert "BK-OT-CONSUMP-RATABLE" in messages[("POB", "$.charge_pob_map[3].pob_identifier")]
    assert "2026-01-15" in messages[("DS-006", "$.charge_pob_map[2].recognition_window.start")]
    assert "15 (2026-01-01 to 2026-03-31)" in messages[("DS-008", "$.rate_plans[0].charges[0].sellPrice")]


def test_without_a_ledger_prices_are_not_checked():
    assert not [v for v in check_design(design("broken")) if v.rule == "DS-008"]


def test_a_price_needing_clarification_is_not_billable():
    data = raw("segmented_service")
    data["rate_plans"][0]["charges"][1]["sellPrice"] = "NEEDS_CLARIFICATION"
    data["rate_plans"][0]["charges"][1]["price"] = None
    violations = check_design(parse_design(json.dumps(data)), SEGMENTED_LEDGER)
    assert [(v.rule, v.path) for v in violations] == [("DS-008", "$.rate_plans[0].charges[1].sellPrice")]
    with pytest.raises(ValidationError) as error:
        design_to_billing(parse_design(json.dumps(data)), plan_code="p", subscription_id="s", customer_id="c",
                          created_at=NOW)
    assert error.value.param == "rate_plans[0].charges[1].sellPrice"


def test_a_window_beyond_the_term_is_reported_even_when_the_charge_says_so():
    data = raw("prepay_drawdown")
    data["rate_plans"][0]["charges"][2]["effectiveEndDate"] = "2027-06-30"
    data["charge_pob_map"][2]["recognition_window"]["end"] = "2027-06-30"
    violations = check_design(parse_design(json.dumps(data)))
    assert [(v.rule, v.path) for v in violations] == [("DS-006", "$.charge_pob_map[2].recognition_window.end")]


# --- parsing and export -------------------------------------------------------------------------------------------


def test_numbers_are_read_exactly_and_written_back_as_numbers():
    parsed = design("prepay_drawdown")
    assert parsed.rate_plans[0].charges[1].sellPrice == D("0.12")
    text = dump_design(parsed)
    again = json.loads(text)
    assert again["rate_plans"][0]["charges"][1]["sellPrice"] == 0.12
    assert again["rate_plans"][0]["charges"][0]["prepaymentUnits"] == 100000
    assert parse_design(text) == parsed


def test_bad_designs_name_the_offending_field():
    with pytest.raises(ValidationError) as error:
        parse_design("{not json")
    assert error.value.param == "design"
    data = raw("segmented_service")
    data["rate_plans"][0]["charges"][1]["model"] = "Stairstep"
    with pytest.raises(ValidationError) as error:
        parse_design(json.dumps(data))
    assert error.value.param == "rate_plans[0].charges[1].model"
    data["rate_plans"][0]["charges"][1]["model"] = "FlatFee"
    data["rate_plans"][0]["charges"][1]["sellPrice"] = "twenty"
    with pytest.raises(ValidationError) as error:
        parse_design(json.dumps(data))
    assert error.value.param == "rate_plans[0].charges[1].sellPrice"


# --- to and from our objects --------------------------------------------------------------------------------------


def test_segments_of_one_service_become_one_charge_with_price_segments():
    result = imported("segmented_service")
    [charge] = result.plan.charges
    assert (charge.code, charge.name, charge.pob_identifier) == ("service", "Service", "BK-OT-RATABLE")
    assert [(s.months, s.price) for s in charge.segments] == [(3, D(15)), (None, D(20))]
    sub = result.subscription
    assert (sub.start_date, sub.end_date, sub.billing_day, sub.external_id) == (
        date(2026, 1, 1), date(2027, 1, 1), 1, "CT-1")  # the design's inclusive 2026-12-31 is our exclusive end


def test_a_prepay_drawdown_design_maps_to_prepaid_units_and_a_drawdown_charge():
    result = imported("prepay_drawdown")
    prepaid, drawdown, overage = result.plan.charges
    assert (prepaid.type, prepaid.prepaid_units, prepaid.pob_identifier) == (
        "one_time", D(100000), "EVT-PIT-CONSUMP-USAGE")
    assert (drawdown.type, drawdown.drawdown_from, drawdown.metric_code, drawdown.price) == (
        "usage", "prepaid-credits", "Credit", D("0.12"))
    assert (overage.drawdown_from, overage.pob_identifier) == (None, "BL-PIT-CONSUMP-PAYGO")
    assert [(e.metric_code, e.properties["quantity"]) for e in result.usage_events] == [
        ("Credit", "8000"), ("Credit", "9500"), ("Credit", "10000")]
    assert {m.code for m in result.metrics} == {"Credit", "Overage Credit"}


def test_bundle_components_come_from_the_assumptions():
    [charge] = imported("bundle").plan.charges
    assert [(c.name, c.standalone_price, c.pob_identifier) for c in charge.components] == [
        ("24/7 Support", D(5000), "BK-OT-RATABLE"), ("Connectivity Management", D(5000), "BK-OT-RATABLE"),
        ("Annual Architecture Review", D(5000), "BK-PIT-STARTDATE")]


@pytest.mark.parametrize("name", ["segmented_service", "prepay_drawdown", "bundle"])
def test_export_of_an_imported_design_passes_the_check_and_keeps_prices_and_dates(name):
    original = design(name)
    result = imported(name)
    exported = billing_to_design(result.plan, result.subscription, usage=original.usage)
    assert check_design(exported) == []
    assert exported.assumptions == [a for a in original.assumptions if a.startswith("Bundle explosion applies")]

    def terms(d):
        return [(c.type, c.sellPrice, c.effectiveStartDate, c.effectiveEndDate, c.quantity)
                for p in d.rate_plans for c in p.charges]

    assert terms(exported) == terms(original)
    assert [m.pob_identifier for m in exported.charge_pob_map] == [m.pob_identifier for m in original.charge_pob_map]
    assert [c.name for c in exported.rate_plans[0].charges][:2] == (
        ["Service (months 1-3)", "Service (from month 4)"] if name == "segmented_service"
        else [c.name for c in original.rate_plans[0].charges][:2])


def test_what_our_objects_cannot_hold_is_refused_with_its_path():
    data = raw("broken")
    with pytest.raises(ValidationError) as error:  # Setup starts 2026-01-15, after the subscription starts
        design_to_billing(parse_design(json.dumps(data)), plan_code="p", subscription_id="s", customer_id="c",
                          created_at=NOW)
    assert error.value.param == "rate_plans[0].charges[2].effectiveStartDate"
    tiered = raw("segmented_service")
    for charge in tiered["rate_plans"][0]["charges"]:
        charge["model"] = "Tiered"
    with pytest.raises(ValidationError) as error:
        design_to_billing(parse_design(json.dumps(tiered)), plan_code="p", subscription_id="s", customer_id="c",
                          created_at=NOW)
    assert error.value.param == "rate_plans[0].charges[0].model"
    uneven = raw("segmented_service")
    uneven["rate_plans"][0]["charges"][0]["effectiveEndDate"] = "2026-03-14"
    uneven["rate_plans"][0]["charges"][1]["effectiveStartDate"] = "2026-03-15"
    with pytest.raises(ValidationError) as error:
        design_to_billing(parse_design(json.dumps(uneven)), plan_code="p", subscription_id="s", customer_id="c",
                          created_at=NOW)
    assert error.value.param == "rate_plans[0].charges[0].effectiveEndDate"


# --- loaded, checked and billed --------------------------------------------------------------------------------------


def bill(result, as_of: date, reader=None, billed=()):
    plans = {1: result.plan}
    items = due_items(result.subscription, plans, as_of, billed)
    metrics = {m.code: m for m in result.metrics}
    rated = rate_subscription(result.subscription, plans, metrics, items, **({"usage": reader} if reader else {}))
    sums = totals(rated.lines, D(0), result.plan.currency)
    return Invoice(id=f"inv_{as_of}", number=f"INV-{as_of}", status="finalized", customer_id="cus_1",
                   billing_entity_id="ent_1", currency=result.plan.currency, issue_date=as_of, due_date=as_of,
                   lines=rated.lines, seller=PartySnapshot(name="S", country="US"),
                   buyer=PartySnapshot(name="B", country="US"), created_at=NOW, **sums), items


def test_the_segmented_design_bills_15_then_20_and_recognizes_each_month():
    result = imported("segmented_service")
    invoice, _ = bill(result, date(2026, 12, 1))
    assert [line.amount for line in invoice.lines] == [D("15.00")] * 3 + [D("20.00")] * 9
    schedules = schedules_for_invoice(invoice, charge_finder({"sub_1": result.plan}))
    assert {s.pob_identifier for s in schedules} == {"BK-OT-RATABLE"}
    assert [(s.entries[0].period, s.entries[0].amount) for s in schedules][2:4] == [
        ("2026-03", D("15.00")), ("2026-04", D("20.00"))]


def test_the_bundle_design_bills_one_line_and_recognizes_three_components():
    result = imported("bundle")
    invoice, _ = bill(result, date(2026, 1, 1))
    assert [line.amount for line in invoice.lines] == [D("10000.00")]
    schedules = schedules_for_invoice(invoice, charge_finder({"sub_1": result.plan}), convention="monthly")
    assert [(s.component, s.amount) for s in schedules] == [
        ("24/7 Support", D("3333.33")), ("Connectivity Management", D("3333.33")),
        ("Annual Architecture Review", D("3333.34"))]


def test_the_prepay_design_recognizes_the_prepayment_as_its_credits_are_drawn():
    result = imported("prepay_drawdown")
    charge_of = charge_finder({"sub_1": result.plan})
    first, items = bill(result, date(2026, 1, 1))
    schedules = schedules_for_invoice(first, charge_of)
    prepaid = next(s for s in schedules if s.charge_code == "prepaid-credits")
    assert (prepaid.entries, prepaid.prepaid_units) == ((), D(100000))

    def reader(metric_code: str, window: Period):
        return [(e.timestamp, e.transaction_id, e.properties) for e in result.usage_events
                if e.metric_code == metric_code and window.contains(e.timestamp.date())]

    result.subscription.prepaid_balance = {"prepaid-credits": D(100000)}
    january, _ = bill(result, date(2026, 2, 1), reader, billed={i.key for i in items})
    drawn = [ln for ln in january.lines if ln.charge_code == "credit-drawdown"]
    assert [(ln.quantity, ln.amount) for ln in drawn] == [(D(8000), D("0.00")), (D(0), D("0.00"))]
    [prepaid] = [s for s in apply_drawdowns(schedules, january, charge_of) if s.charge_code == "prepaid-credits"]
    assert [(e.period, e.amount) for e in prepaid.entries] == [("2026-01", D("960.00"))]
