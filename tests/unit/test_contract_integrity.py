"""Money integrity over a contract's life (issue: credits from what was net billed, auto-renewal terms,
usage-only periods, upcoming after a trial), through the services on moto; the renewal arithmetic as a
property of the pure core."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.billing.errors import ValidationError
from shared.billing.models import Charge, Plan, Subscription
from shared.billing.periods import add_months, renewed_end
from shared.billing.rating import rate_subscription
from shared.billing.schedule import due_items
from shared.services import contract_actions as actions
from shared.services import contract_calendar, invoice_lifecycle, preview, subscriptions, usage
from shared.services.catalog import create_coupon, create_metric, get_customer
from shared.services.context import SYSTEM
from shared.services.requests.catalog import CouponCreate, MetricCreate
from shared.services.requests.contracts import RegretRequest, TerminateRequest
from shared.services.requests.invoices import CreditNoteCreate, StatusChange
from tests.unit.moto_ports import moto_world
from tests.unit.test_contract_life import amounts, at, bill, customer, plan, subscribe


@pytest.fixture
def world():
    with moto_world() as world:
        yield world


def balance(world, customer_id: str) -> Decimal:
    return get_customer(world.ports, customer_id).credit_balance.get("USD", Decimal("0"))


def coupon(world, code: str, percent: str, duration: str) -> str:
    create_coupon(world.ports, SYSTEM, CouponCreate(code=code, name=code, percent_off=percent, duration=duration))
    return code


def owed_equals_invoiced(world, customer_id: str) -> None:
    """What the customer owes minus what it is owed (its balance) is everything net invoiced, to the cent."""
    documents, _ = world.ports.repo.list_invoices(limit=100, after=None, customer_id=customer_id)
    invoices = [d for d in documents if d.kind == "invoice" and d.status != "void"]
    invoiced = sum((i.total for i in invoices), Decimal(0))
    credited = sum((i.amount_credited for i in invoices), Decimal(0))
    paid = sum((i.amount_paid for i in invoices), Decimal(0))
    outstanding = sum((i.amount_remaining for i in invoices), Decimal(0))
    assert invoiced - credited - paid == outstanding - balance(world, customer_id)


# 1. credits for unused time never exceed what is still net billed -------------------------------------

def test_a_regret_after_a_full_once_coupon_credits_nothing(world):
    acme = customer(world)
    plan(world, "ms", "100.00", rules={"regret_days": 14})
    coupon(world, "FREE", "100", "once")
    at(world, "2025-04-01")
    sub = subscribe(world, acme, "ms", "2025-04-01", coupons=["FREE"])
    april = bill(world, acme, "2025-04-01")
    assert april.total == Decimal("0.00")
    at(world, "2025-04-05")
    actions.regret(world.ports, SYSTEM, sub.id, RegretRequest(reason="changed their mind"))
    assert bill(world, acme, "2025-04-05") is None  # April was billed 0.00: nothing to give back
    assert balance(world, acme) == 0
    owed_equals_invoiced(world, acme)


def test_a_forever_coupon_terminated_mid_month_with_a_refund_credits_the_net_unused_days(world):
    acme = customer(world)
    plan(world, "ms", "100.00", refund_policy="prorated")
    coupon(world, "HALF", "50", "forever")
    sub = subscribe(world, acme, "ms", "2025-04-01", coupons=["HALF"])
    assert bill(world, acme, "2025-04-01").total == Decimal("50.00")
    at(world, "2025-04-16")  # 15 of April's 30 days unused: 50.00 kept x 15/30
    subscriptions.terminate_subscription(world.ports, SYSTEM, sub.id, TerminateRequest(effective="immediately"))
    assert amounts(bill(world, acme, "2025-04-16")) == [("proration", Decimal("-25.00"))]
    assert balance(world, acme) == Decimal("25.00")
    owed_equals_invoiced(world, acme)


def test_a_coupon_over_several_lines_is_shared_by_amount_and_the_credits_add_up_to_the_net(world):
    acme = customer(world)
    plan(world, "ms", "100.00", refund_policy="prorated")
    coupon(world, "THIRD", "33.33", "once")
    sub = subscribe(world, acme, "ms", "2025-04-01", coupons=["THIRD"], setup_fee=Decimal("50.00"))
    first = bill(world, acme, "2025-04-01")  # 150.00 - 50.00 (33.33% of 150.00, half up)
    assert first.total == Decimal("100.00")
    billed = world.ports.repo.billed(sub.id)
    kept = sum(Decimal(w[2]) for data in billed.values() if data.get("fixed") for w in data["fixed"]["windows"])
    assert kept == first.total  # 66.67 + 33.33: the discount apportioned by amount, to the cent


@pytest.mark.parametrize("undo", ["credit_note", "void"])
def test_a_period_credited_or_voided_is_not_credited_again_by_a_refund(world, undo):
    acme = customer(world)
    plan(world, "ms", "30.00", refund_policy="prorated")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    april = bill(world, acme, "2025-04-01")
    if undo == "credit_note":
        invoice_lifecycle.create_credit_note(world.ports, SYSTEM, CreditNoteCreate(invoice_id=april.id,
                                                                                   reason="goodwill"))
    else:
        invoice_lifecycle.void_invoice(world.ports, SYSTEM, april.id, StatusChange(reason="wrong"))
    at(world, "2025-04-11")
    subscriptions.terminate_subscription(world.ports, SYSTEM, sub.id, TerminateRequest(effective="immediately"))
    assert bill(world, acme, "2025-04-11") is None
    assert balance(world, acme) == 0
    owed_equals_invoiced(world, acme)


def test_a_partly_credited_period_credits_only_the_unused_share_of_what_is_left(world):
    acme = customer(world)
    plan(world, "ms", "30.00", refund_policy="prorated")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    april = bill(world, acme, "2025-04-01")
    invoice_lifecycle.create_credit_note(world.ports, SYSTEM, CreditNoteCreate(
        invoice_id=april.id, reason="SLA", lines=[{"line": 0, "amount": "12.00"}]))
    at(world, "2025-04-11")  # 18.00 left, 20 of 30 days unused: 12.00
    subscriptions.terminate_subscription(world.ports, SYSTEM, sub.id, TerminateRequest(effective="immediately"))
    assert amounts(bill(world, acme, "2025-04-11")) == [("proration", Decimal("-12.00"))]
    owed_equals_invoiced(world, acme)


# 4. auto-renewal: terms counted from the start, billing continues -------------------------------------

def test_monthly_auto_renewal_from_the_31st_keeps_billing_full_months(world):
    acme = customer(world)
    plan(world, "ms", "310.00")
    at(world, "2025-01-31")
    sub = subscribe(world, acme, "ms", "2025-01-31", term_months=1)
    assert sub.end_date == date(2025, 2, 28)
    totals, ends = [], []
    day = date(2025, 1, 31)
    while day < date(2025, 7, 1):
        at(world, day.isoformat())
        contract_calendar.run_day(world.ports, SYSTEM, day, [])
        current = subscriptions.get_subscription(world.ports, sub.id)
        if current.next_bill_date == day:
            totals.append(bill(world, acme, day.isoformat()).total)
        ends.append(current.end_date)
        day += timedelta(days=1)
    assert totals == [Decimal("310.00")] * 6  # Jan 31, Feb 28, Mar 31, Apr 30, May 31, Jun 30
    assert sorted(set(ends))[:5] == [date(2025, 2, 28), date(2025, 3, 31), date(2025, 4, 30), date(2025, 5, 31),
                                     date(2025, 6, 30)]


def test_a_missed_calendar_day_renews_instead_of_terminating(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    at(world, "2025-01-31")
    sub = subscribe(world, acme, "ms", "2025-01-31", term_months=1)
    bill(world, acme, "2025-01-31")
    # the calendar did not run on Feb 27 (nor on the end day): it catches up on Mar 2, term by term
    assert contract_calendar.run_day(world.ports, SYSTEM, date(2025, 3, 2), []) == {"renewed": [sub.id]}
    renewed = subscriptions.get_subscription(world.ports, sub.id)
    assert renewed.end_date == date(2025, 3, 31) and renewed.next_bill_date == date(2025, 2, 28)
    assert not [e for e in world.outbox() if e["type"] == "subscription.terminated"]
    assert bill(world, acme, "2025-03-02").total == Decimal("30.00")


@settings(max_examples=60, deadline=None)
@given(start=st.dates(min_value=date(2023, 1, 1), max_value=date(2026, 12, 31)),
       term=st.sampled_from([1, 2, 3, 6, 12]), renewals=st.integers(min_value=1, max_value=8))
def test_renewed_terms_bill_contiguous_full_periods(start, term, renewals):
    end = add_months(start, term)
    for _ in range(renewals):
        end = renewed_end(start, end, term)
    assert end == add_months(start, term * (renewals + 1))
    plan_ = Plan(code="p", name="p", currency="USD", created_at="2023-01-01T00:00:00Z", charges=[
        Charge(code="fee", name="fee", price=Decimal("310.00"), billing_period="month")])
    sub = Subscription(id="sub_1", customer_id="c", plan_code="p", start_date=start, end_date=end,
                       billing_day=start.day, term_months=term, created_at="2023-01-01T00:00:00Z")
    items = due_items(sub, {1: plan_}, end, ())
    assert items[0].service.start == start and items[-1].service.end == end
    for before, after in zip(items, items[1:], strict=False):
        assert before.service.end == after.service.start
    lines = rate_subscription(sub, {1: plan_}, {}, items).lines
    assert all(line.amount == Decimal("310.00") for line in lines)
    assert len(lines) == term * (renewals + 1)


# 13. end of period on a usage-only plan ------------------------------------------------------------

def test_end_of_period_on_a_usage_only_plan_ends_with_the_billing_period_and_bills_its_usage(world):
    acme = customer(world)
    create_metric(world.ports, SYSTEM, MetricCreate(code="calls", name="Calls", aggregation="count"))
    plan(world, "payg", "0.10", charge={"type": "usage", "metric_code": "calls", "model": "per_unit"})
    sub = subscribe(world, acme, "payg", "2025-04-01")
    at(world, "2025-04-10")
    ended = subscriptions.terminate_subscription(world.ports, SYSTEM, sub.id,
                                                 TerminateRequest(effective="end_of_period"))
    assert ended.service_end == date(2025, 5, 1)
    at(world, "2025-04-25")
    ingested = usage.ingest(world.ports, SYSTEM, [{"transaction_id": f"t{i}", "subscription_id": sub.id,
                                                   "metric_code": "calls", "timestamp": "2025-04-20T10:00:00Z"}
                                                  for i in range(30)])
    assert not ingested.rejected
    assert amounts(bill(world, acme, "2025-05-01")) == [("usage", Decimal("3.00"))]


# 16. upcoming after a trial; a yearly billing day in February --------------------------------------

def test_upcoming_after_a_trial_dates_the_first_invoice_on_the_trial_end(world):
    acme = customer(world)
    plan(world, "saas", "30.00", trial_days=14)
    at(world, "2025-04-01")
    sub = subscribe(world, acme, "saas", "2025-04-01", billing_alignment="calendar")
    assert sub.trial_end == date(2025, 4, 15) and sub.next_bill_date == date(2025, 4, 15)
    first = preview.upcoming(world.ports, sub.id, 1)[0]
    assert first.issue_date == date(2025, 4, 15) and first.total == Decimal("16.00")  # 30.00 x 16/30
    assert bill(world, acme, "2025-04-15").issue_date == first.issue_date


def test_a_yearly_billing_day_february_never_has_is_refused_with_or_without_the_month(world):
    acme = customer(world)
    plan(world, "yr", "1200.00", period="annual")
    for terms in ({"billing_day": 30}, {"billing_day": 30, "billing_month": 2}):
        with pytest.raises(ValidationError) as refused:
            subscribe(world, acme, "yr", "2025-02-10", **terms)
        assert refused.value.param == "billing_day" and "February" in refused.value.message
    assert subscribe(world, acme, "yr", "2025-02-10", billing_day=29).billing_day == 29  # Feb 28 in 2026
    assert subscribe(world, acme, "yr", "2025-02-10", billing_day=30, billing_month=3).billing_month == 3


def test_a_credit_note_after_a_refund_credits_at_most_what_is_left_of_the_period(world):
    acme = customer(world)
    plan(world, "ms", "30.00", refund_policy="prorated")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    april = bill(world, acme, "2025-04-01")
    at(world, "2025-04-11")
    subscriptions.terminate_subscription(world.ports, SYSTEM, sub.id, TerminateRequest(effective="immediately"))
    assert amounts(bill(world, acme, "2025-04-11")) == [("proration", Decimal("-20.00"))]
    with pytest.raises(ValidationError) as refused:  # 20.00 of April's 30.00 were credited already
        invoice_lifecycle.create_credit_note(world.ports, SYSTEM, CreditNoteCreate(invoice_id=april.id,
                                                                                   reason="goodwill"))
    assert refused.value.param == "lines" and "10.00" in refused.value.message
    invoice_lifecycle.create_credit_note(world.ports, SYSTEM, CreditNoteCreate(
        invoice_id=april.id, reason="SLA", lines=[{"line": 0, "amount": "10.00"}]))
    with pytest.raises(ValidationError):
        invoice_lifecycle.create_credit_note(world.ports, SYSTEM, CreditNoteCreate(
            invoice_id=april.id, reason="again", lines=[{"line": 0, "amount": "0.01"}]))
    owed_equals_invoiced(world, acme)
