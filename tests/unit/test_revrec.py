"""Revenue recognition: POB templates, ratable / point-in-time / consumption schedules, bundle explosion,
credits, terminations and prepaid drawdown (seed 002), with worked examples and invariants."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.billing.errors import ValidationError
from shared.billing.models import BundleComponent, Charge, Invoice, InvoiceLine, PartySnapshot, Plan
from shared.billing.money import quantum
from shared.billing.revrec import (
    DRAWN_DETAIL,
    POB_TEMPLATES,
    adjust_schedule,
    allocate,
    apply_credit_note,
    apply_drawdowns,
    charge_finder,
    default_pob,
    explode_bundle,
    month_of,
    month_spans,
    pob_of_charge,
    ratable_entries,
    recognize_consumption,
    recognized_by_month,
    release_remaining,
    schedules_for_invoice,
    status_at_end_of,
    terminate_schedule,
    void_schedule,
    voided_on,
)

D = Decimal
SEED_002_LIST = {"BK-OT-RATABLE", "BK-OT-CONSUMP-RATABLE-VC", "BL-OT-INVRATABLE", "BK-PIT-STARTDATE",
                 "BK-PIT-CURRENT_PERIOD", "BL-PIT-STARTDATE", "BL-PIT-CURRENT_PERIOD", "EVT-PIT-ACCEPTAN",
                 "EVT-OT-RATABLE-GOLIVE", "EVT-PIT-CONSUMP-USAGE", "BL-PIT-CONSUMP-PAYGO"}


def line(amount="1200.00", start=date(2025, 3, 15), end=date(2026, 3, 15), **fields) -> InvoiceLine:
    base = dict(description="Enterprise Support", charge_code="esp-fee", quantity=D(1), unit_price=D(amount),
                amount=D(amount), currency="USD", period_start=start, period_end=end, subscription_id="sub_1",
                external_id="ESP-2025-007", gl_code="7010", item_key=f"sub_1#esp-fee#{start}")
    return InvoiceLine(**(base | fields))


def invoice(*lines: InvoiceLine, issue=date(2025, 3, 15), currency="USD", **fields) -> Invoice:
    total = sum((ln.amount for ln in lines), D(0))
    base = dict(id=f"inv_{issue}", number=f"INV-{issue}", status="finalized", customer_id="cus_1",
                billing_entity_id="ent_1", currency=currency, issue_date=issue, due_date=issue + timedelta(days=30),
                lines=list(lines), subtotal=total, tax_total=D(0), total=total, amount_due=total,
                seller=PartySnapshot(name="Soracom", country="US"), buyer=PartySnapshot(name="Acme", country="US"),
                created_at=datetime(2025, 1, 1, tzinfo=UTC))
    return Invoice(**(base | fields))


def by_month(schedule) -> dict[str, Decimal]:
    return {e.period: e.amount for e in schedule.entries}


def charge(**fields) -> Charge:
    return Charge(**({"code": "esp-fee", "name": "Enterprise Support", "price": D("1200")} | fields))


# --- templates ----------------------------------------------------------------------------------------------------


def test_the_templates_are_seed_002s_list_and_follow_its_naming_convention():
    assert set(POB_TEMPLATES) == SEED_002_LIST
    for identifier, template in POB_TEMPLATES.items():
        prefix = identifier.split("-")[0]
        assert template.release == {"BK": "booking", "BL": "billing", "EVT": "event"}[prefix]
        assert (template.method == "ratable") == ("-OT-" in identifier)
        assert (template.method == "consumption") == ("CONSUMP" in identifier and "-PIT-" in identifier)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"type": "recurring", "timing": "in_advance"}, "BK-OT-RATABLE"),
    ({"type": "recurring", "timing": "in_arrears"}, "BL-OT-INVRATABLE"),
    ({"type": "one_time"}, "BK-PIT-STARTDATE"),
    ({"type": "usage", "metric_code": "calls"}, "BL-PIT-CONSUMP-PAYGO"),
    ({"type": "usage", "metric_code": "credits", "drawdown_from": "prepay"}, "EVT-PIT-CONSUMP-USAGE"),
    ({"type": "one_time", "prepaid_units": D(100000)}, "EVT-PIT-CONSUMP-USAGE"),
])
def test_default_pob_follows_seed_002s_selection_matrix(fields, expected):
    assert default_pob(charge(**fields)) == expected


def test_a_charge_overrides_its_pob_only_with_a_listed_identifier():
    assert pob_of_charge(charge(pob_identifier="EVT-PIT-ACCEPTAN")) == "EVT-PIT-ACCEPTAN"
    with pytest.raises(ValidationError) as error:
        pob_of_charge(charge(pob_identifier="BK-OT-CONSUMP-RATABLE"))  # named by seed 002's PPDD text, not listed
    assert error.value.param == "pob_identifier"


# --- ratable: worked examples -------------------------------------------------------------------------------------


def test_daily_ratable_1200_from_2025_03_15_is_days_over_365_with_the_remainder_in_the_last_month():
    # Zuora "Daily recognition over time: revenue is recognized evenly each day over the recognition term"
    # https://docs.zuora.com/en/accounts-receivable/finance/zuora-finance-settings/manage-revenue-recognition-models
    [schedule] = schedules_for_invoice(invoice(line()))
    assert by_month(schedule) == {
        "2025-03": D("55.89"),   # 1200 x 17/365 = 55.890...
        "2025-04": D("98.63"),   # x 30/365 = 98.630...
        "2025-05": D("101.92"),  # x 31/365 = 101.917...
        "2025-06": D("98.63"), "2025-07": D("101.92"), "2025-08": D("101.92"), "2025-09": D("98.63"),
        "2025-10": D("101.92"), "2025-11": D("98.63"), "2025-12": D("101.92"), "2026-01": D("101.92"),
        "2026-02": D("92.05"),   # x 28/365 = 92.054...
        "2026-03": D("46.02"),   # x 14/365 = 46.027... rounds to 46.03, but the last month takes the remainder
    }
    assert schedule.scheduled == D("1200.00") == schedule.amount
    assert (schedule.method, schedule.pob_identifier, schedule.gl_code) == ("ratable", "BK-OT-RATABLE", "7010")


def test_monthly_convention_counts_a_partial_month_as_half_a_month():
    # The half-month (mid-month) convention, as IRS Publication 946 treats property placed in service mid-month
    # (https://www.irs.gov/publications/p946); Zuora's "Monthly recognition over time" likewise gives whole months
    # equal amounts and shares one month's amount between the partial first and last months:
    # https://docs.zuora.com/en/accounts-receivable/finance/zuora-finance-settings/manage-revenue-recognition-rules/components-and-configuration-options/recognition-rules
    [schedule] = schedules_for_invoice(invoice(line()), convention="monthly")
    months = by_month(schedule)
    assert months["2025-03"] == months["2026-03"] == D("50.00")
    assert [months[m] for m in sorted(months)[1:-1]] == [D("100.00")] * 11
    assert sum(months.values()) == D("1200.00")


def test_leap_february_2028_has_29_days():
    quarter = ratable_entries(D("300.00"), date(2028, 2, 1), date(2028, 5, 1), "USD")
    assert [(e.period, e.amount) for e in quarter] == [
        ("2028-02", D("96.67")),   # 300 x 29/90
        ("2028-03", D("103.33")),  # 300 x 31/90
        ("2028-04", D("100.00")),  # remainder (= 300 x 30/90)
    ]
    year = {e.period: e.amount for e in ratable_entries(D("1200.00"), date(2027, 3, 1), date(2028, 3, 1), "USD")}
    assert year["2028-02"] == D("95.08")  # 1200 x 29/366 = 95.081...
    assert year["2027-03"] == D("101.64")  # 1200 x 31/366 = 101.639...
    monthly = ratable_entries(D("1200.00"), date(2027, 3, 1), date(2028, 3, 1), "USD", "monthly")
    assert {e.amount for e in monthly} == {D("100.00")}


def test_remainders_go_to_the_last_month_and_minor_units_follow_the_currency():
    assert allocate(D("100.00"), [1, 1, 1], "USD") == [D("33.33"), D("33.33"), D("33.34")]
    assert allocate(D("1000"), [1, 1, 1], "JPY") == [D("333"), D("333"), D("334")]
    assert allocate(D("1.000"), [1, 1, 1], "BHD") == [D("0.333"), D("0.333"), D("0.334")]


def test_a_tiny_amount_over_many_months_never_gets_a_negative_month():
    entries = ratable_entries(D("1.00"), date(2025, 1, 1), date(2035, 1, 1), "USD")
    assert sum(e.amount for e in entries) == D("1.00")
    assert all(e.amount > 0 for e in entries)


# --- point in time, release upon billing, consumption ---------------------------------------------------------------


def test_point_in_time_templates_use_the_start_date_or_the_invoice_month():
    setup = line("500.00", date(2025, 3, 20), date(2025, 3, 21), kind="one_time", charge_code="setup",
                 item_key="sub_1#setup#2025-03-20")
    cases = {"BK-PIT-STARTDATE": "2025-03", "EVT-PIT-ACCEPTAN": "2025-03", "BK-PIT-CURRENT_PERIOD": "2025-04",
             "BL-PIT-CURRENT_PERIOD": "2025-04", "BL-PIT-STARTDATE": "2025-04"}
    for identifier, month in cases.items():
        [schedule] = schedules_for_invoice(invoice(setup.model_copy(update={"pob_identifier": identifier}),
                                                   issue=date(2025, 4, 2)))
        assert by_month(schedule) == {month: D("500.00")}, identifier


def test_release_upon_billing_recognizes_nothing_before_the_invoice_month():
    march = line("100.00", date(2025, 3, 1), date(2025, 4, 1))
    in_arrears = invoice(march, issue=date(2025, 4, 1))
    [billing] = schedules_for_invoice(in_arrears, lambda ln: charge(timing="in_arrears"))
    assert billing.pob_identifier == "BL-OT-INVRATABLE"
    assert by_month(billing) == {"2025-04": D("100.00")}
    [booking] = schedules_for_invoice(in_arrears, lambda ln: charge(timing="in_arrears",
                                                                    pob_identifier="BK-OT-RATABLE"))
    assert by_month(booking) == {"2025-03": D("100.00")}


def test_revenue_of_a_closed_month_is_caught_up_in_the_first_open_one():
    # Zuora: "the revenue that would be placed in the closed accounting period is instead placed in the next open
    # accounting period" (POSTRevenueScheduleByDateRange, recognition_start)
    [schedule] = schedules_for_invoice(invoice(line(), issue=date(2025, 5, 2)), first_open_month="2025-05")
    months = by_month(schedule)
    assert "2025-03" not in months and "2025-04" not in months
    assert months["2025-05"] == D("55.89") + D("98.63") + D("101.92")
    assert schedule.scheduled == D("1200.00")


def test_usage_is_recognized_in_the_month_its_usage_period_ends_or_when_billed():
    def recognized(start, end, issue, pob=None):
        calls = line("42.50", start, end, kind="usage", charge_code="calls", pob_identifier=pob)
        [schedule] = schedules_for_invoice(invoice(calls, issue=issue))
        return schedule.pob_identifier, by_month(schedule)

    event = "EVT-PIT-CONSUMP-USAGE"
    anniversary = recognized(date(2025, 3, 15), date(2025, 4, 15), date(2025, 4, 15), event)
    assert anniversary == (event, {"2025-04": D("42.50")})
    assert recognized(date(2025, 3, 1), date(2025, 4, 1), date(2025, 4, 1), event) == (event, {"2025-03": D("42.50")})
    # pay as you go is released upon billing: March's usage invoiced on 1 April is April's revenue
    assert recognized(date(2025, 3, 1), date(2025, 4, 1), date(2025, 4, 1)) == (
        "BL-PIT-CONSUMP-PAYGO", {"2025-04": D("42.50")})


def test_a_discount_line_spreads_like_the_service_it_discounts():
    discount = line("-120.00", kind="discount", charge_code="coupon:WELCOME", item_key="sub_1#coupon:WELCOME#1")
    [schedule] = schedules_for_invoice(invoice(line(), discount), charge_finder({}))[1:]
    assert schedule.scheduled == D("-120.00")
    assert all(e.amount < 0 for e in schedule.entries)


def test_schedules_are_made_only_for_finalized_invoices_with_listed_templates():
    with pytest.raises(ValidationError) as error:
        schedules_for_invoice(invoice(line(), status="draft"))
    assert error.value.param == "status"
    with pytest.raises(ValidationError) as error:
        schedules_for_invoice(invoice(line(pob_identifier="BK-OT-SMOOTH")))
    assert error.value.param == "lines[0].pob_identifier"
    with pytest.raises(ValidationError) as error:
        schedules_for_invoice(invoice(line()), first_open_month="2025-13")
    assert error.value.param == "first_open_month"


# --- bundles ------------------------------------------------------------------------------------------------------


BUNDLE = [BundleComponent(name="24/7 Support", standalone_price=D(5000), pob_identifier="BK-OT-RATABLE"),
          BundleComponent(name="Connectivity Management", standalone_price=D(5000)),
          BundleComponent(name="Annual Architecture Review", standalone_price=D(5000),
                          pob_identifier="BK-PIT-STARTDATE")]


def test_a_bundle_line_splits_by_standalone_price_with_the_remainder_on_the_last_component():
    # Zuora Revenue bundle explosion splits the parent line's selling price among its children by the split method:
    # https://docs.zuora.com/en/zuora-revenue/advanced-revenue-operations/bundle-explosion
    shares = explode_bundle(D("10000.00"), BUNDLE, "USD")
    assert [s for _, s in shares] == [D("3333.33"), D("3333.33"), D("3333.34")]
    annual = line("10000.00", date(2026, 1, 1), date(2027, 1, 1))
    schedules = schedules_for_invoice(invoice(annual, issue=date(2026, 1, 1)),
                                      lambda ln: charge(components=BUNDLE, billing_period="annual"),
                                      convention="monthly")
    assert [(s.component, s.pob_identifier, s.amount) for s in schedules] == [
        ("24/7 Support", "BK-OT-RATABLE", D("3333.33")),
        ("Connectivity Management", "BK-OT-RATABLE", D("3333.33")),  # no POB of its own: the line's
        ("Annual Architecture Review", "BK-PIT-STARTDATE", D("3333.34")),
    ]
    assert by_month(schedules[2]) == {"2026-01": D("3333.34")}
    assert by_month(schedules[0])["2026-01"] == D("277.78") and by_month(schedules[0])["2026-12"] == D("277.75")
    assert sum(s.scheduled for s in schedules) == D("10000.00")


def test_a_bundle_needs_standalone_prices_to_split_by():
    with pytest.raises(ValidationError) as error:
        explode_bundle(D("100.00"), [BundleComponent(name="A", standalone_price=D(0))], "USD")
    assert error.value.param == "components"
    bad = [BundleComponent(name="A", standalone_price=D(1), pob_identifier="EVT-PIT-HEALTH")]
    with pytest.raises(ValidationError) as error:
        schedules_for_invoice(invoice(line()), lambda ln: charge(components=bad))
    assert error.value.param == "lines[0].charge.components[0].pob_identifier"


# --- credits and terminations -------------------------------------------------------------------------------------


def annual_monthly_schedule():
    [schedule] = schedules_for_invoice(invoice(line(start=date(2025, 1, 1), end=date(2026, 1, 1)),
                                               issue=date(2025, 1, 1)), convention="monthly")
    return schedule


def test_a_credit_part_way_reverses_its_share_of_the_past_in_its_month_and_reduces_the_rest():
    # ASC 606-10-32-43 / IFRS 15.89 (cumulative catch-up): 300 of 1,200 is a quarter of every month.
    # January to June (600 recognized, closed) stay; July reverses their quarter (150) and keeps 75 of its 100.
    schedule = annual_monthly_schedule()
    credited = adjust_schedule(schedule, D("300.00"), date(2025, 7, 10))
    months = by_month(credited)
    assert [months[f"2025-{m:02d}"] for m in range(1, 7)] == [D("100.00")] * 6  # January to June unchanged
    assert months["2025-07"] == D("75.00") - D("150.00")
    assert [months[f"2025-{m:02d}"] for m in range(8, 13)] == [D("75.00")] * 5
    assert credited.recognized_through("2025-07") == D("525.00") == D("700.00") * 3 / 4
    assert credited.scheduled == credited.net == D("900.00")
    assert (credited.billed_in("2025-07"), credited.reversed_in("2025-07")) == (D("0"), D("300.00"))


def test_a_credit_larger_than_what_is_left_reverses_revenue_in_its_month():
    schedule = annual_monthly_schedule()
    credited = adjust_schedule(schedule, D("1000.00"), date(2025, 11, 5))
    months = by_month(credited)
    assert months["2025-10"] == D("100.00")
    # 1,000 of 1,200 leaves a sixth of every month: through November 1,100 / 6 = 183.33, so November
    # is 183.33 - 1,000.00 (recognized through October) = -816.67, December the remaining 16.67.
    assert months["2025-11"] == D("-816.67") and months["2025-12"] == D("16.67")
    assert credited.scheduled == D("200.00")


def test_a_credit_is_a_decimal_no_larger_than_the_line():
    schedule = annual_monthly_schedule()
    for credit, param in ((D("1200.01"), "credit"), (0.5, "credit"), (D("-1"), "credit"), (D("1.001"), "credit")):
        with pytest.raises(ValidationError) as error:
            adjust_schedule(schedule, credit, date(2025, 6, 1))
        assert error.value.param == param


def test_a_credit_note_names_the_lines_it_credits():
    bill = invoice(line(start=date(2025, 1, 1), end=date(2026, 1, 1)), issue=date(2025, 1, 1))
    schedules = schedules_for_invoice(bill, convention="monthly")
    note = invoice(line("-600.00", date(2025, 1, 1), date(2026, 1, 1), kind="credit"), issue=date(2025, 7, 1))
    [credited] = apply_credit_note(schedules, note)
    # half of the line: July reverses half of January to June (300) and keeps half of its own 100
    assert by_month(credited) == {**{f"2025-{m:02d}": D("100.00") for m in range(1, 7)}, "2025-07": D("-250.00"),
                                  **{f"2025-{m:02d}": D("50.00") for m in range(8, 13)}}
    assert (credited.net, credited.credits[0].period) == (D("600.00"), "2025-07")
    with pytest.raises(ValidationError) as error:
        schedules_for_invoice(note)  # a credit note makes no schedule of its own
    assert error.value.param == "lines"
    orphan = invoice(line("-10.00", kind="credit", item_key=None), issue=date(2025, 7, 1))
    with pytest.raises(ValidationError) as error:
        apply_credit_note(schedules, orphan)
    assert error.value.param == "lines[0].credited_line"


def test_termination_recognizes_the_rest_in_the_month_service_ends_and_rows_stop():
    schedule = annual_monthly_schedule()
    ended = terminate_schedule(schedule, service_end=date(2025, 6, 10), effective=date(2025, 6, 10))
    assert by_month(ended) == {**{f"2025-{m:02d}": D("100.00") for m in range(1, 6)}, "2025-06": D("700.00")}
    at_renewal = terminate_schedule(schedule, service_end=date(2026, 1, 1), effective=date(2025, 6, 10))
    assert at_renewal.entries == schedule.entries  # seed 000: annual plans stop at the next renewal
    late = terminate_schedule(schedule, service_end=date(2025, 3, 1), effective=date(2025, 6, 10))
    assert by_month(late)["2025-05"] == D("100.00") and by_month(late)["2025-06"] == D("700.00")


def test_termination_with_a_prorated_refund_leaves_the_served_days():
    [schedule] = schedules_for_invoice(invoice(line()))
    ended = terminate_schedule(schedule, date(2025, 9, 15), date(2025, 9, 15))
    refund = D("595.07")  # 1200 x 181/365 days from 2025-09-15 to 2026-03-15
    refunded = adjust_schedule(ended, refund, date(2025, 9, 15))
    assert by_month(refunded)["2025-09"] == D("46.02")
    assert max(by_month(refunded)) == "2025-09"
    assert refunded.scheduled == D("1200.00") - refund


def test_a_void_reverses_what_was_recognized_in_its_month_and_leaves_nothing_deferred():
    schedule = annual_monthly_schedule()
    voided = void_schedule(schedule, date(2025, 4, 20))
    assert by_month(voided) == {"2025-01": D("100.00"), "2025-02": D("100.00"), "2025-03": D("100.00"),
                                "2025-04": D("-300.00")}  # the closed months stay; April reverses them
    assert (voided.voided, voided.net, voided.scheduled) == ("2025-04", D("0.00"), D("0.00"))
    assert voided.reversed_in("2025-04") == D("1200.00")
    assert [voided.deferred_at_end_of(m) for m in ("2025-03", "2025-04", "2025-12")] == [D("900.00"), 0, 0]
    assert void_schedule(voided, date(2025, 6, 1)) == voided  # a redelivered void changes nothing
    assert terminate_schedule(voided, date(2025, 5, 1), date(2025, 5, 1)) == voided
    with pytest.raises(ValidationError) as error:
        adjust_schedule(voided, D("1.00"), date(2025, 5, 1))
    assert error.value.param == "schedule"
    same_month = void_schedule(schedule, date(2025, 1, 31))  # voided in its own month: nothing at all
    assert same_month.entries == () and same_month.deferred_at_end_of("2025-01") == 0


def test_the_void_date_and_the_status_at_a_months_end_come_from_the_status_history():
    bill = invoice(line(), status="void", status_history=[
        {"status": "finalized", "at": "2025-03-15T02:00:00+00:00"}, {"status": "paid", "at": "2025-03-20T00:00:00"},
        {"status": "void", "at": "2025-05-02T10:00:00Z"}])
    assert voided_on(bill) == date(2025, 5, 2)
    assert [status_at_end_of(bill, m) for m in ("2025-03", "2025-04", "2025-05")] == ["paid", "paid", "void"]
    assert voided_on(invoice(line())) is None


def test_a_credit_note_on_a_point_in_time_line_reverses_in_its_own_month():
    # Stripe and Zuora alike: revenue already recognized is reduced in the period of the credit note.
    [setup] = schedules_for_invoice(invoice(line("500.00", date(2025, 3, 1), date(2025, 3, 2), kind="one_time")))
    credited = adjust_schedule(setup, D("200.00"), date(2025, 6, 3))
    assert by_month(credited) == {"2025-03": D("500.00"), "2025-06": D("-200.00")}


def test_a_cancellation_without_refund_recognizes_the_rest_when_service_ends_with_a_refund_none_of_it():
    schedule = annual_monthly_schedule()
    kept = terminate_schedule(schedule, date(2025, 7, 1), date(2025, 6, 10))  # no refund: nothing is owed back
    assert by_month(kept)["2025-06"] == D("700.00") and kept.scheduled == D("1200.00")
    refunded = terminate_schedule(schedule, date(2025, 7, 1), date(2025, 6, 10), refunded=True)
    assert refunded.entries == schedule.entries  # the refund's credit takes July to December away
    credited = adjust_schedule(refunded, D("600.00"), date(2025, 7, 1))
    assert by_month(credited)["2025-07"] == D("-250.00") and credited.recognized_through("2026-12") == D("600.00")
    # refund by credit note after a cancellation without refund: the refunded part is no revenue either
    after = adjust_schedule(kept, D("600.00"), date(2025, 6, 20))
    assert by_month(after)["2025-06"] == D("100.00") and after.scheduled == D("600.00")


# --- prepaid drawdown ---------------------------------------------------------------------------------------------


PREPAY = charge(code="prepaid-credits", name="Prepaid Credits", type="one_time", price=D("12000"),
                prepaid_units=D(100000))
DRAWDOWN = charge(code="credit-drawdown", name="Credit Drawdown", type="usage", metric_code="Credit",
                  price=D("0.12"), drawdown_from="prepaid-credits")


def prepayment_schedule():
    prepaid = line("12000.00", date(2026, 1, 1), date(2026, 1, 2), kind="one_time", charge_code="prepaid-credits",
                   item_key="sub_1#prepaid-credits#2026-01-01")
    [schedule] = schedules_for_invoice(invoice(prepaid, issue=date(2026, 1, 1)),
                                       charge_finder({"sub_1": Plan(code="p", name="P", currency="USD",
                                                                    charges=[PREPAY, DRAWDOWN],
                                                                    created_at=datetime(2026, 1, 1, tzinfo=UTC))}))
    return schedule


def test_a_prepayment_stays_deferred_until_its_credits_are_consumed():
    # Seed 002 PPDD: "Revenue waterfall for prepayment shows $0 until usage posts"; 12,000 for 100,000 credits
    schedule = prepayment_schedule()
    assert (schedule.pob_identifier, schedule.entries, schedule.unscheduled) == (
        "EVT-PIT-CONSUMP-USAGE", (), D("12000.00"))
    for units, month in ((8000, "2026-01"), (9500, "2026-02"), (10000, "2026-03")):
        schedule = recognize_consumption(schedule, D(units), month)
    assert by_month(schedule) == {"2026-01": D("960.00"), "2026-02": D("1140.00"), "2026-03": D("1200.00")}
    lapsed = release_remaining(schedule, "2026-12")  # unused credits lapse at the end of the term
    assert by_month(lapsed)["2026-12"] == D("8700.00") and lapsed.scheduled == D("12000.00")
    used_up = recognize_consumption(schedule, D(999999), "2026-04")  # beyond the prepayment: overage
    assert used_up.consumed_units == D(100000) and used_up.scheduled == D("12000.00")


def test_drawdowns_on_an_invoice_recognize_the_prepayment():
    schedule = prepayment_schedule()
    drawn = line("0.00", date(2026, 1, 1), date(2026, 2, 1), kind="usage", charge_code="credit-drawdown",
                 quantity=D(8000), unit_price=D(0), details=[f"{DRAWN_DETAIL}: 92000 left"])
    overage = line("3.60", date(2026, 1, 1), date(2026, 2, 1), kind="usage", charge_code="credit-drawdown",
                   quantity=D(30), unit_price=D("0.12"))
    bill = invoice(drawn, overage, issue=date(2026, 2, 1))
    [updated] = apply_drawdowns([schedule], bill, lambda ln: DRAWDOWN if ln.charge_code == "credit-drawdown" else None)
    assert by_month(updated) == {"2026-01": D("960.00")} and updated.consumed_units == D(8000)


def test_only_a_prepayment_is_drawn_down():
    with pytest.raises(ValidationError) as error:
        recognize_consumption(annual_monthly_schedule(), D(1), "2025-01")
    assert error.value.param == "schedule"


def test_recognized_by_month_adds_up_by_account_and_currency():
    schedules = schedules_for_invoice(invoice(line(), line("600.00", kind="recurring", charge_code="ms-fee",
                                                              item_key="sub_1#ms-fee#2025-03-15")))
    assert recognized_by_month(schedules, "2025-04") == {("cus_1", "USD"): D("98.63") + D("49.32")}


# --- properties ---------------------------------------------------------------------------------------------------

CURRENCIES = st.sampled_from(["USD", "JPY", "BHD"])


@st.composite
def ratable_lines(draw):
    currency = draw(CURRENCIES)
    minor = draw(st.integers(min_value=-10**7, max_value=10**9))
    amount = Decimal(minor) * quantum(currency)
    start = draw(st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)))
    end = start + timedelta(days=draw(st.integers(min_value=1, max_value=1200)))
    return currency, amount, start, end


@settings(max_examples=150, deadline=None)
@given(ratable_lines(), st.sampled_from(["daily", "monthly"]))
def test_every_schedule_sums_to_its_line_within_its_service_months(drawn, convention):
    currency, amount, start, end = drawn
    item = line(str(amount), start, end, currency=currency, unit_price=amount)
    [schedule] = schedules_for_invoice(invoice(item, issue=start, currency=currency), convention=convention)
    months = {month for month, _, _ in month_spans(start, end)}
    assert schedule.scheduled == amount
    assert all(e.period in months for e in schedule.entries)
    assert all(e.amount * amount > 0 for e in schedule.entries)  # same sign as the line, no zero entries
    assert all(e.amount == e.amount.quantize(quantum(currency)) for e in schedule.entries)


@settings(max_examples=150, deadline=None)
@given(ratable_lines(), st.integers(min_value=0, max_value=100), st.integers(min_value=-40, max_value=1300),
       st.sampled_from(["daily", "monthly"]))
def test_a_credit_never_changes_past_months_and_leaves_line_minus_credit(drawn, percent, offset, convention):
    currency, amount, start, end = drawn
    amount = abs(amount) or quantum(currency)
    item = line(str(amount), start, end, currency=currency, unit_price=amount)
    [schedule] = schedules_for_invoice(invoice(item, issue=start, currency=currency), convention=convention)
    credit = (amount * percent / 100).quantize(quantum(currency))
    effective = start + timedelta(days=offset)
    adjusted = adjust_schedule(schedule, credit, effective)
    cut = month_of(effective)
    assert {e for e in adjusted.entries if e.period < cut} == {e for e in schedule.entries if e.period < cut}
    assert adjusted.scheduled == amount - credit == adjusted.net
    again = adjust_schedule(adjusted, adjusted.net, effective + timedelta(days=40))
    assert again.scheduled == 0


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-10**8, max_value=10**8),
       st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=6).filter(lambda w: sum(w) > 0))
def test_bundle_parts_add_up_to_the_line(minor, prices):
    amount = Decimal(minor) / 100
    components = [BundleComponent(name=f"c{i}", standalone_price=Decimal(p)) for i, p in enumerate(prices)]
    shares = [share for _, share in explode_bundle(amount, components, "USD")]
    assert sum(shares) == amount
    assert all(share * amount >= 0 for share in shares)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=10**6), st.lists(st.integers(min_value=0, max_value=5000), max_size=8))
def test_drawdown_never_recognizes_more_than_the_prepayment(total_units, uses):
    schedule = prepayment_schedule()
    schedule = replace(schedule, prepaid_units=Decimal(total_units))
    for index, units in enumerate(uses):
        schedule = recognize_consumption(schedule, Decimal(units), f"2026-{index + 1:02d}")
        assert D(0) <= schedule.scheduled <= D("12000.00")
    assert release_remaining(schedule, "2026-12").scheduled == D("12000.00")


def test_every_kind_of_invoice_line_has_a_default_pob():
    import typing

    from shared.billing.models import InvoiceLine
    from shared.billing.revrec import DEFAULT_POB_BY_KIND, POB_TEMPLATES

    kinds = set(typing.get_args(InvoiceLine.model_fields["kind"].annotation))
    assert kinds == set(DEFAULT_POB_BY_KIND) and set(DEFAULT_POB_BY_KIND.values()) <= set(POB_TEMPLATES)


# --- credit notes, voids and cancellations: recognized + deferred = net invoiced ----------------------------------

def _months(first: str, count: int) -> list[str]:
    year, month = int(first[:4]), int(first[5:])
    return [f"{year + (month - 1 + k) // 12:04d}-{(month - 1 + k) % 12 + 1:02d}" for k in range(count)]


EVENTS = st.lists(st.tuples(st.sampled_from(["credit", "void", "cancel", "cancel_refunded"]),
                            st.integers(min_value=0, max_value=800), st.integers(min_value=1, max_value=100),
                            st.integers(min_value=-60, max_value=400)), max_size=5)


@settings(max_examples=200, deadline=None)
@given(ratable_lines(), st.sampled_from(["daily", "monthly"]), st.booleans(), EVENTS)
def test_recognized_plus_deferred_is_net_invoiced_at_every_month_end_and_never_negative(drawn, convention,
                                                                                         point_in_time, events):
    currency, amount, start, end = drawn
    amount = abs(amount) or quantum(currency)
    kind = "one_time" if point_in_time else "recurring"
    item = line(str(amount), start, end, currency=currency, unit_price=amount, kind=kind)
    schedules = schedules_for_invoice(invoice(item, issue=start, currency=currency), convention=convention)
    first = month_of(start)
    horizon = _months(first, (end.year - start.year) * 12 + end.month - start.month + 30)
    day = start
    for what, offset, percent, service_offset in sorted(events, key=lambda e: e[1]):
        day = max(day, start + timedelta(days=offset))
        before = schedules
        [schedule] = schedules
        if what == "credit" and schedule.net > 0 and not schedule.voided:
            credit = max((schedule.net * percent / 100).quantize(quantum(currency)), quantum(currency))
            schedules = apply_credit_note(schedules, invoice(line(str(-min(credit, schedule.net)), start, end,
                                                                  currency=currency, kind="credit"),
                                                             issue=day, currency=currency, id="cn_1"))
        elif what == "void":
            schedules = [void_schedule(schedule, day)]
        elif what.startswith("cancel"):
            service_end = max(start, day + timedelta(days=service_offset))
            schedules = [terminate_schedule(schedule, service_end, day, refunded=what == "cancel_refunded")]
        cut = month_of(day)
        assert [e for e in schedules[0].entries if e.period < cut] == [
            e for e in before[0].entries if e.period < cut]  # a written month never changes
    [schedule] = schedules
    for month in horizon:
        recognized, deferred = schedule.recognized_through(month), schedule.deferred_at_end_of(month)
        assert recognized + deferred == schedule.billed_through(month)
        assert recognized >= 0 and deferred >= 0, month
        if schedule.voided and month >= schedule.voided:
            assert recognized == deferred == 0
    assert schedule.recognized_through(horizon[-1]) == schedule.net == amount - schedule.credited
    assert schedule.deferred_at_end_of(horizon[-1]) == 0
