"""Issue 7's rules without storage: the export's rows for contracts in service, terminations closing a
schedule's service, the stored form of a schedule, MRR and its movements, AR aging and DSO."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.revenue_repository import (
    FinanceSettings,
    StoredSchedule,
    schedule_from_data,
    schedule_to_data,
)
from shared.billing.exports import recognized_revenue_csv
from shared.billing.models import (
    BundleComponent,
    Charge,
    Invoice,
    InvoiceLine,
    PartySnapshot,
    Plan,
    PriceSegment,
    Subscription,
    Termination,
)
from shared.billing.revrec import adjust_schedule, schedules_for_invoice, terminate_schedule
from shared.services.analytics import aging_rows, dso_rows, mrr_rows, mrr_totals, subscription_mrr

D = Decimal
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def line(amount, start, end, sub="sub_esp", code="esp-fee", **fields) -> InvoiceLine:
    base = dict(description="Enterprise Support", charge_code=code, quantity=D(1), unit_price=D(amount),
                amount=D(amount), currency="USD", period_start=start, period_end=end, subscription_id=sub,
                external_id=sub.upper(), gl_code="7010", item_key=f"{sub}#{code}#{start}")
    return InvoiceLine(**(base | fields))


def invoice(issue, *lines, status="finalized", customer="cus_1", number="INV-1", due=None) -> Invoice:
    total = sum((ln.amount for ln in lines), D(0))
    return Invoice(id=f"inv_{number}", number=number, status=status, customer_id=customer, billing_entity_id="ent",
                   currency="USD", issue_date=issue, due_date=due or issue + timedelta(days=30), lines=list(lines),
                   subtotal=total, tax_total=D(0), total=total, amount_due=total,
                   seller=PartySnapshot(name="Soracom Inc.", country="US"),
                   buyer=PartySnapshot(name="Acme", country="US"), created_at=NOW)


def months_listed(schedules, month) -> dict[str, str]:
    rows = recognized_revenue_csv(schedules, month).splitlines()[1:]
    return {r.split(",")[2]: r.split(",")[-1] for r in rows}  # subscription_id -> recognized


# --- the export's rows ------------------------------------------------------------------------------------------


def test_a_zero_dollar_contract_in_service_has_a_row_so_reconciliation_finds_it():
    # Seed 000 UC06: a $0 listing shows on the invoice; the export names it too, with 0.00.
    bill = invoice(date(2025, 4, 1), line("0.00", date(2025, 4, 1), date(2025, 5, 1), sub="sub_partner"),
                   line("1250.00", date(2025, 4, 1), date(2025, 5, 1), sub="sub_ms", code="ms-fee"))
    schedules = schedules_for_invoice(bill)
    assert months_listed(schedules, "2025-04") == {"sub_ms": "1250.00", "sub_partner": "0.00"}
    assert months_listed(schedules, "2025-05") == {}  # the service is over: no row
    assert months_listed(schedules, "2025-03") == {}  # not billed yet


def test_a_line_billed_after_the_month_adds_no_row_to_it_so_reruns_stay_identical():
    # Usage of March billed on April 1 (released on billing, BL-PIT-CONSUMP-PAYGO): March's file,
    # written on April 1, stays the same when re-run later.
    usage = line("42.00", date(2025, 3, 1), date(2025, 4, 1), sub="sub_api", code="calls", kind="usage")
    [schedule] = schedules_for_invoice(invoice(date(2025, 4, 1), usage))
    assert months_listed([schedule], "2025-03") == {}
    assert months_listed([schedule], "2025-04") == {"sub_api": "42.00"}


def test_a_termination_ends_the_schedules_service_and_repeating_it_changes_nothing():
    [schedule] = schedules_for_invoice(invoice(date(2025, 4, 1), line("12000.00", date(2025, 4, 1),
                                                                         date(2026, 4, 1))), convention="monthly")
    ended = terminate_schedule(schedule, date(2025, 8, 20), date(2025, 8, 20))
    assert ended.service_end == date(2025, 8, 20)
    assert terminate_schedule(ended, date(2025, 8, 20), date(2025, 8, 20)) == ended
    assert months_listed([ended], "2025-08") == {"sub_esp": "8000.00"}  # 4 x 1,000 before, the rest in August
    assert months_listed([ended], "2025-09") == {}
    at_renewal = terminate_schedule(schedule, date(2026, 4, 1), date(2025, 8, 20))
    assert at_renewal == schedule  # seed 000: an annual plan stops at its next renewal
    before_it_starts = terminate_schedule(schedule, date(2025, 1, 1), date(2025, 3, 20))
    assert before_it_starts.service_end == before_it_starts.service_start


# --- the stored form ---------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(amount=st.decimals(min_value=D("0.01"), max_value=D("99999.99"), places=2),
       days=st.integers(min_value=1, max_value=800), credit_share=st.integers(min_value=0, max_value=100))
def test_a_stored_schedule_reads_back_identical(amount, days, credit_share):
    start = date(2024, 2, 29)
    bundle = Charge(code="esp-fee", name="Bundle", price=amount,
                    components=[BundleComponent(name="Support", standalone_price=D(3), pob_identifier="BK-OT-RATABLE"),
                                BundleComponent(name="Setup", standalone_price=D(1),
                                                pob_identifier="BK-PIT-STARTDATE")])
    schedules = schedules_for_invoice(invoice(start, line(str(amount), start, start + timedelta(days=days))),
                                      charge_of=lambda ln: bundle)
    credited = [adjust_schedule(s, (s.net * credit_share / 100).quantize(D("0.01")), start + timedelta(days=days // 2))
                if s.net > 0 else s for s in schedules]
    for schedule in credited:
        assert schedule_from_data(schedule_to_data(schedule)) == schedule
    ids = [StoredSchedule(s, i, "ent").id for i, s in enumerate(credited)]
    assert ids == [f"rs_INV-1_0_{i}" for i in range(len(credited))]


def test_finance_recipients_default_for_local_and_come_from_the_environment():
    assert FinanceSettings().recipients == ["cre@example.com", "finance@example.com"]
    configured = FinanceSettings.model_validate({"CRE_EMAIL": "cre@soracom.example", "FINANCE_EMAIL": "ap@x.example"})
    assert configured.recipients == ["cre@soracom.example", "ap@x.example"]


# --- MRR -----------------------------------------------------------------------------------------------------------


def plan(code, *charges) -> dict[int, Plan]:
    return {1: Plan(code=code, name=code, currency="USD", charges=list(charges), created_at=NOW)}


def sub(id_, customer, plan_code, start, end=None, **fields) -> Subscription:
    return Subscription(id=id_, customer_id=customer, plan_code=plan_code, start_date=start, end_date=end,
                        billing_day=start.day, created_at=NOW, **fields)


ESP = plan("esp", Charge(code="esp-fee", name="ESP", billing_period="annual", price=D("12000.00")))
MS = plan("ms", Charge(code="ms-fee", name="MS", price=D("1250.00")),
          Charge(code="calls", name="Calls", type="usage", metric_code="calls", price=D("0.01"), timing="in_arrears"))
SEATS = plan("seats", Charge(code="seat", name="Seat", model="per_unit", billing_period="quarter", price=D("30.00"),
                             segments=[PriceSegment(months=3, price=D("15.00")), PriceSegment(price=D("30.00"))]))
PLANS = {"esp": ESP, "ms": MS, "seats": SEATS}


def test_recurring_charges_are_normalized_to_a_month_and_usage_is_left_out():
    assert subscription_mrr(sub("s1", "c1", "esp", date(2025, 1, 15)), ESP, date(2025, 3, 31)) == D("1000")
    assert subscription_mrr(sub("s2", "c1", "ms", date(2025, 1, 1)), MS, date(2025, 3, 31)) == D("1250.00")
    seats = sub("s3", "c1", "seats", date(2025, 1, 1), quantity=D(10))
    assert subscription_mrr(seats, SEATS, date(2025, 3, 31)) == D("50")  # 10 x 15.00 a quarter / 3
    assert subscription_mrr(seats, SEATS, date(2025, 4, 30)) == D("100")  # the second price segment
    override = sub("s4", "c1", "ms", date(2025, 1, 1), price_overrides={"ms-fee": D("780.00")})
    assert subscription_mrr(override, MS, date(2025, 3, 31)) == D("780.00")
    assert subscription_mrr(override, MS, date(2024, 12, 31)) == 0  # not started


def test_movements_follow_chartmogul_and_the_bridge_adds_up():
    # https://help.chartmogul.com/hc/en-us/articles/203299912: new, expansion, contraction, churn, reactivation
    terminated = Termination(effective="on_date", service_end=date(2025, 6, 1), requested_at=NOW, requested_by="t")
    subs = [
        sub("new", "c_new", "ms", date(2025, 6, 10)),
        sub("grow-1", "c_grow", "ms", date(2025, 1, 1)), sub("grow-2", "c_grow", "esp", date(2025, 6, 15)),
        sub("shrink-1", "c_shrink", "ms", date(2025, 1, 1)),
        sub("shrink-2", "c_shrink", "esp", date(2025, 1, 1), termination=terminated),
        sub("churn", "c_churn", "esp", date(2025, 1, 1), termination=terminated),
        sub("gone", "c_back", "ms", date(2024, 1, 1), end=date(2025, 2, 1)),
        sub("back", "c_back", "ms", date(2025, 6, 1)),
        sub("steady", "c_steady", "esp", date(2025, 1, 1)),
    ]
    rows = mrr_rows(subs, PLANS, "2025-06")
    assert {r["customer_id"]: (r["previous_mrr"], r["mrr"], r["movement"], r["change"]) for r in rows} == {
        "c_new": ("0.00", "1250.00", "new", "1250.00"),
        "c_grow": ("1250.00", "2250.00", "expansion", "1000.00"),
        "c_shrink": ("2250.00", "1250.00", "contraction", "-1000.00"),
        "c_churn": ("1000.00", "0.00", "churned", "-1000.00"),
        "c_back": ("0.00", "1250.00", "reactivation", "1250.00"),
        "c_steady": ("1000.00", "1000.00", "unchanged", "0.00"),
    }
    (usd,) = mrr_totals(rows)
    assert usd == {"currency": "USD", "mrr": "7000.00", "arr": "84000.00", "previous_mrr": "5500.00",
                   "new_mrr": "1250.00", "reactivation_mrr": "1250.00", "expansion_mrr": "1000.00",
                   "contraction_mrr": "1000.00", "churned_mrr": "1000.00", "net_new_mrr": "1500.00", "customers": 5}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.sampled_from(["esp", "ms", "seats"]),
                          st.integers(0, 400), st.one_of(st.none(), st.integers(1, 400)),
                          st.integers(1, 50)), max_size=12))
def test_every_month_the_bridge_from_previous_mrr_adds_up(contracts):
    base = date(2024, 6, 1)
    subs = [sub(f"s{i}", customer, code, base + timedelta(days=start),
                base + timedelta(days=start + length) if length else None, quantity=D(quantity))
            for i, (customer, code, start, length, quantity) in enumerate(contracts)]
    for month in ("2024-07", "2024-12", "2025-03"):
        for total in mrr_totals(mrr_rows(subs, PLANS, month)):
            moves = sum(D(total[f"{m}_mrr"]) * (1 if m in ("new", "reactivation", "expansion") else -1)
                        for m in ("new", "reactivation", "expansion", "contraction", "churned"))
            assert D(total["previous_mrr"]) + moves == D(total["mrr"]) == D(total["previous_mrr"]) + D(
                total["net_new_mrr"])


# --- receivables ---------------------------------------------------------------------------------------------------


def test_aging_buckets_count_days_past_the_due_date():
    day = date(2025, 9, 30)
    bills = [invoice(day - timedelta(days=5), line("10.00", day, day + timedelta(days=1)), number="A",
                     due=day),  # due today: current
             invoice(day - timedelta(days=40), line("20.00", day, day + timedelta(days=1)), number="B",
                     due=day - timedelta(days=30)),  # 30 days late
             invoice(day - timedelta(days=70), line("30.00", day, day + timedelta(days=1)), number="C",
                     due=day - timedelta(days=31)),
             invoice(day - timedelta(days=99), line("40.00", day, day + timedelta(days=1)), number="D",
                     due=day - timedelta(days=90)),
             invoice(day - timedelta(days=99), line("50.00", day, day + timedelta(days=1)), number="E",
                     due=day - timedelta(days=91)),
             invoice(day - timedelta(days=99), line("60.00", day, day + timedelta(days=1)), number="F",
                     status="paid"),
             invoice(day + timedelta(days=1), line("70.00", day, day + timedelta(days=1)), number="G")]  # later
    (row,) = aging_rows(bills, day)
    assert (row["current"], row["1_30"], row["31_60"], row["61_90"], row["over_90"], row["total"], row["invoices"]) == (
        "10.00", "20.00", "30.00", "40.00", "50.00", "150.00", 5)
    bills[4] = bills[4].model_copy(update={"amount_paid": D("35.00"), "amount_remaining": D("15.00")})  # part paid
    (row,) = aging_rows(bills, day)
    assert (row["over_90"], row["total"], row["invoices"]) == ("15.00", "115.00", 5)


def test_dso_is_receivables_over_the_months_sales_times_its_days():
    # https://quickbooks.intuit.ca/r/finance-accounting/days-sales-outstanding/: in January, 450,000 of sales
    # and 300,000 receivable: 300,000 / 450,000 x 31 = 20.67 days.
    sold = invoice(date(2025, 1, 10), line("450000.00", date(2025, 1, 1), date(2025, 2, 1)), number="S")
    paid_part = sold.model_copy(update={"amount_due": D("300000.00")})
    (row,) = dso_rows([paid_part], "2025-01")
    assert (row["receivables"], row["invoiced"], row["days"], row["dso"]) == ("300000.00", "450000.00", 31, "20.67")
    (quiet,) = dso_rows([paid_part], "2025-02")  # nothing invoiced in February: no DSO
    assert (quiet["receivables"], quiet["dso"]) == ("300000.00", None)


@pytest.mark.parametrize("month", ["2025-2", "2025-13", "25-01"])
def test_months_are_checked(month):
    from shared.billing.errors import ValidationError

    with pytest.raises(ValidationError) as error:
        mrr_rows([], PLANS, month)
    assert error.value.param == "month"


# --- the export day of an entity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("country", "region", "month", "expected"), [
    ("US", None, "2025-08", date(2025, 9, 2)),  # Labor Day, 1 September 2025
    ("US", "US-CA", "2025-08", date(2025, 9, 2)),
    ("GB", "GB-SCT", "2025-12", date(2026, 1, 5)),  # Scotland: 1 and 2 January, then a weekend
    ("JP", None, "2025-12", date(2026, 1, 5)),  # Japan: 1 to 3 January are bank holidays, then a weekend
    ("US", "US-ZZ", "2025-08", date(2025, 9, 2)),  # a region the calendars do not know: the country's days
    ("AQ", None, "2025-10", date(2025, 11, 3)),  # no calendar for Antarctica: the first weekday
])
def test_an_entitys_export_day_is_the_first_business_day_of_the_next_month(country, region, month, expected):
    from shared.billing.models import BillingEntity
    from shared.services.revenue import due_date

    entity = BillingEntity(id="ent_1", code="e", name="E", country=country, region=region, currency="USD",
                           invoice_prefix="INV", created_at=NOW)
    assert due_date(month, entity) == expected
