"""A contract's life after activation (issue 4), through the services on moto: every figure is worked out
in the test from the stated convention (proration by day over the period's days, half up at the cent)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from shared.billing.errors import ConflictError, ValidationError
from shared.services import contract_actions as actions
from shared.services import preview, subscriptions
from shared.services.billing import invoice_account
from shared.services.catalog import create_customer, create_plan
from shared.services.context import SYSTEM
from shared.services.requests.catalog import CustomerCreate, PlanCreate
from shared.services.requests.contracts import (
    BillAhead,
    BillingDayChange,
    ContractChargeAdd,
    ContractChargeRemove,
    OwnershipTransfer,
    PauseRequest,
    PlanChangeRequest,
    RegretRequest,
    ResumeRequest,
    SubscriptionCreate,
    TerminateRequest,
    TrialExtension,
)
from tests.unit.moto_ports import moto_world


@pytest.fixture
def world():
    with moto_world() as world:
        yield world


def at(world, day: str) -> None:
    world.clock.at = datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


def customer(world, name: str = "Acme") -> str:
    return create_customer(world.ports, SYSTEM, CustomerCreate(
        name=name, email=f"{name.lower()}@example.com", country="US", region="US-OR", currency="USD")).id


def plan(world, code: str, price: str, period: str = "month", **extra) -> str:
    charge = {"code": f"{code}-fee", "name": f"{code} fee", "price": price, "billing_period": period}
    charge.update(extra.pop("charge", {}))
    create_plan(world.ports, SYSTEM, PlanCreate(code=code, name=code, currency="USD", charges=[charge], **extra))
    return code


def subscribe(world, customer_id: str, plan_code: str, start: str, **terms):
    return subscriptions.create_subscription(world.ports, SYSTEM, SubscriptionCreate(
        customer_id=customer_id, plan_code=plan_code, start_date=date.fromisoformat(start), **terms))


def bill(world, customer_id: str, day: str):
    at(world, day)
    return invoice_account(world.ports, SYSTEM, customer_id, date.fromisoformat(day))


def amounts(invoice) -> list[tuple[str, Decimal]]:
    return [(line.kind, line.amount) for line in invoice.lines]


def test_stripe_upgrade_halfway_credits_the_unused_half_and_charges_the_new_half(world):
    # docs.stripe.com/billing/subscriptions/prorations: $10/month upgraded to $20 halfway through the
    # month: unused time -$5.00, remaining time +$10.00. April has 30 days; 15 remain on the 16th.
    acme = customer(world)
    plan(world, "basic", "10.00")
    plan(world, "pro", "20.00")
    sub = subscribe(world, acme, "basic", "2025-04-01", external_id="C-1")
    assert amounts(bill(world, acme, "2025-04-01")) == [("recurring", Decimal("10.00"))]
    at(world, "2025-04-16")
    successor = actions.change_plan(world.ports, SYSTEM, sub.id, PlanChangeRequest(plan_code="pro"))
    assert successor.replaces == sub.id and successor.external_id == "C-1"
    assert subscriptions.get_subscription(world.ports, "C-1").id == successor.id  # the contract ID moved
    invoice = bill(world, acme, "2025-04-16")
    assert sorted(amounts(invoice)) == [("proration", Decimal("-5.00")), ("recurring", Decimal("10.00"))]
    assert invoice.total == Decimal("5.00")
    credit = next(line for line in invoice.lines if line.kind == "proration")
    assert credit.period_start == date(2025, 4, 16) and credit.period_end == date(2025, 5, 1)
    assert "15 of the 30 days billed for 10.00" in credit.proration
    assert amounts(bill(world, acme, "2025-05-01")) == [("recurring", Decimal("20.00"))]
    assert bill(world, acme, "2025-05-01") is None  # nothing twice
    events = [e["type"] for e in world.outbox()]
    assert "subscription.upgraded" in events


def test_a_downgrade_at_renewal_is_not_prorated_and_is_classified(world):
    acme = customer(world)
    plan(world, "pro", "20.00")
    plan(world, "basic", "10.00")
    sub = subscribe(world, acme, "pro", "2025-04-01")
    bill(world, acme, "2025-04-01")
    at(world, "2025-04-10")
    actions.change_plan(world.ports, SYSTEM, sub.id, PlanChangeRequest(plan_code="basic", timing="renewal"))
    assert bill(world, acme, "2025-04-10") is None  # nothing to credit
    assert amounts(bill(world, acme, "2025-05-01")) == [("recurring", Decimal("10.00"))]
    history = actions.history(world.ports, sub.id)
    assert "subscription.downgraded" in [h["action"] for h in history]


def test_a_quantity_change_is_prorated_by_day(world):
    acme = customer(world)
    plan(world, "seats", "12.00", charge={"model": "per_unit"})
    sub = subscribe(world, acme, "seats", "2025-06-01", quantity=Decimal(2))
    assert amounts(bill(world, acme, "2025-06-01")) == [("recurring", Decimal("24.00"))]
    at(world, "2025-06-21")  # 10 of June's 30 days left
    actions.change_plan(world.ports, SYSTEM, sub.id, PlanChangeRequest(quantity=Decimal(5)))
    invoice = bill(world, acme, "2025-06-21")
    assert sorted(amounts(invoice)) == [("proration", Decimal("-8.00")), ("recurring", Decimal("20.00"))]


def test_a_pause_credits_the_paused_days_billed_in_advance_and_resume_bills_again(world):
    acme = customer(world)
    plan(world, "ms", "31.00")
    sub = subscribe(world, acme, "ms", "2025-05-01")
    bill(world, acme, "2025-05-01")
    at(world, "2025-05-11")
    paused = actions.pause(world.ports, SYSTEM, sub.id, PauseRequest(end=date(2025, 5, 21)))
    assert paused.status_on(date(2025, 5, 11)) == "paused"
    invoice = bill(world, acme, "2025-05-11")
    assert amounts(invoice) == [("proration", Decimal("-10.00"))]  # 31.00 x 10/31
    assert amounts(bill(world, acme, "2025-06-01")) == [("recurring", Decimal("31.00"))]


def test_an_open_pause_stops_invoicing_until_resumed_early_then_bills_what_is_due(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    bill(world, acme, "2025-04-01")
    at(world, "2025-04-16")
    actions.pause(world.ports, SYSTEM, sub.id, PauseRequest())
    assert amounts(bill(world, acme, "2025-04-16")) == [("proration", Decimal("-15.00"))]
    assert bill(world, acme, "2025-05-01") is None  # paused: May is not billed
    at(world, "2025-05-11")
    resumed = actions.resume(world.ports, SYSTEM, sub.id, ResumeRequest())
    assert resumed.pauses[0].end == date(2025, 5, 11)
    assert amounts(bill(world, acme, "2025-05-11")) == [("recurring", Decimal("20.32"))]  # 30.00 x 21/31


def test_pause_rules_refuse_with_the_rule_and_the_refusal_is_in_the_history(world):
    acme = customer(world)
    plan(world, "ms", "30.00", rules={"pause_max_times_per_year": 1, "pause_min_days": 7, "pause_max_days": 30})
    sub = subscribe(world, acme, "ms", "2025-04-01")
    at(world, "2025-04-02")
    with pytest.raises(ConflictError) as short:
        actions.pause(world.ports, SYSTEM, sub.id, PauseRequest(end=date(2025, 4, 5)))
    assert short.value.code == "pause_too_short"
    paused = actions.pause(world.ports, SYSTEM, sub.id, PauseRequest(start=date(2025, 4, 10)))
    assert paused.pauses[0].end == date(2025, 5, 10)  # an open pause ends at the plan's maximum
    with pytest.raises(ConflictError) as again:
        actions.pause(world.ports, SYSTEM, sub.id, PauseRequest(start=date(2025, 6, 1), end=date(2025, 6, 10)))
    assert again.value.code == "pause_limit" and "rules.pause_max_times_per_year" in again.value.message
    history = actions.history(world.ports, sub.id)
    refused = [h for h in history if h["outcome"] == "rejected"]
    assert [h["rule"] for h in refused] == ["pause_limit", "pause_too_short"]
    assert all(h["actor"] == SYSTEM.name and h["at"] for h in history)


def test_regret_within_the_window_credits_everything_billed(world):
    acme = customer(world)
    plan(world, "ms", "100.00", rules={"regret_days": 14})
    at(world, "2025-04-01")
    sub = subscribe(world, acme, "ms", "2025-04-01", setup_fee=Decimal("50.00"))
    assert sorted(amounts(bill(world, acme, "2025-04-01"))) == [("one_time", Decimal("50.00")),
                                                                 ("recurring", Decimal("100.00"))]
    at(world, "2025-04-05")
    actions.regret(world.ports, SYSTEM, sub.id, RegretRequest(reason="changed their mind"))
    invoice = bill(world, acme, "2025-04-05")
    assert sorted(amounts(invoice)) == [("proration", Decimal("-100.00")), ("proration", Decimal("-50.00"))]
    assert subscriptions.get_subscription(world.ports, sub.id).status_on(date(2025, 4, 5)) == "terminated"


def test_regret_after_the_window_is_refused(world):
    acme = customer(world)
    plan(world, "ms", "100.00", rules={"regret_days": 14})
    at(world, "2025-04-01")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    at(world, "2025-04-15")
    with pytest.raises(ConflictError) as refused:
        actions.regret(world.ports, SYSTEM, sub.id, RegretRequest())
    assert refused.value.code == "regret_window_over"


def test_a_trial_bills_nothing_then_converts_and_an_extension_prorates_the_first_paid_period(world):
    acme = customer(world)
    plan(world, "saas", "30.00", trial_days=14)
    at(world, "2025-04-01")
    sub = subscribe(world, acme, "saas", "2025-04-01")
    assert sub.trial_end == date(2025, 4, 15) and sub.billing_day == 15
    assert sub.status_on(date(2025, 4, 1)) == "trialing"
    assert bill(world, acme, "2025-04-01") is None
    at(world, "2025-04-10")
    actions.extend_trial(world.ports, SYSTEM, sub.id, TrialExtension(trial_end=date(2025, 4, 20)))
    assert bill(world, acme, "2025-04-15") is None
    assert amounts(bill(world, acme, "2025-04-20")) == [("recurring", Decimal("25.00"))]  # 30.00 x 25/30
    assert amounts(bill(world, acme, "2025-05-15")) == [("recurring", Decimal("30.00"))]


def test_one_trial_per_customer_when_the_plan_says_so(world):
    acme = customer(world)
    plan(world, "saas", "30.00", trial_days=14, rules={"trial_once_per_customer": True})
    at(world, "2025-04-01")
    assert subscribe(world, acme, "saas", "2025-04-01").trial_end == date(2025, 4, 15)
    assert subscribe(world, acme, "saas", "2025-04-01").trial_end is None


def test_a_prorated_refund_on_termination_credits_the_days_after_the_end(world):
    acme = customer(world)
    plan(world, "ms", "30.00", refund_policy="prorated")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    bill(world, acme, "2025-04-01")
    at(world, "2025-04-11")
    subscriptions.terminate_subscription(world.ports, SYSTEM, sub.id, TerminateRequest(effective="immediately"))
    assert amounts(bill(world, acme, "2025-04-11")) == [("proration", Decimal("-20.00"))]


def test_a_plan_without_refunds_refuses_a_prorated_refund_and_keeps_the_billed_month(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    bill(world, acme, "2025-04-01")
    at(world, "2025-04-11")
    with pytest.raises(ConflictError) as refused:
        subscriptions.terminate_subscription(world.ports, SYSTEM, sub.id,
                                             TerminateRequest(effective="immediately", refund="prorated"))
    assert refused.value.code == "no_refund_policy"
    subscriptions.terminate_subscription(world.ports, SYSTEM, sub.id, TerminateRequest(effective="immediately"))
    assert bill(world, acme, "2025-04-11") is None


def test_early_termination_fee_when_the_contract_ends_before_its_term(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    sub = subscribe(world, acme, "ms", "2025-04-01", term_months=12, early_termination_fee=Decimal("500.00"))
    assert sub.end_date == date(2026, 4, 1)
    bill(world, acme, "2025-04-01")
    at(world, "2025-04-11")
    subscriptions.terminate_subscription(world.ports, SYSTEM, sub.id, TerminateRequest(effective="end_of_period"))
    assert amounts(bill(world, acme, "2025-04-11")) == [("one_time", Decimal("500.00"))]
    assert bill(world, acme, "2025-05-01") is None


def test_uc03_annual_prepay_fee_in_the_renewal_month_and_zero_in_the_others(world):
    acme = customer(world)
    plan(world, "esp", "12000.00", period="annual", charge={"show_monthly": True, "gl_code": "7010"})
    subscribe(world, acme, "esp", "2025-07-15", external_id="ESP-1")
    first = bill(world, acme, "2025-07-15")
    assert [(ln.amount, ln.period_start, ln.period_end) for ln in first.lines] == [
        (Decimal("12000.00"), date(2025, 7, 15), date(2026, 7, 15))]
    for month in range(8, 13):
        invoice = bill(world, acme, f"2025-{month:02d}-15")
        assert [(ln.amount, ln.period_start.month, ln.external_id) for ln in invoice.lines] == [
            (Decimal("0.00"), month, "ESP-1")]
    for month in range(1, 7):
        assert bill(world, acme, f"2026-{month:02d}-15").total == Decimal("0.00")
    assert amounts(bill(world, acme, "2026-07-15")) == [("recurring", Decimal("12000.00"))]


def test_uc05_termination_month_chosen_at_activation_and_refused_off_the_renewal_for_annual(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    plan(world, "esp", "1200.00", period="annual")
    sub = subscribe(world, acme, "ms", "2025-04-01", termination_month="2025-09")
    assert sub.termination.service_end == date(2025, 9, 1)
    assert sub.status_on(date(2025, 8, 31)) == "pending_termination"
    with pytest.raises(ValidationError) as refused:
        subscribe(world, acme, "esp", "2025-04-01", termination_month="2025-09")
    assert refused.value.param == "termination_month" and "annual" in refused.value.message
    assert subscribe(world, acme, "esp", "2025-04-01", termination_month="2026-04").termination.service_end == \
        date(2026, 4, 1)


def test_change_of_ownership_splits_the_period_at_the_date(world):
    acme, globex = customer(world), customer(world, "Globex")
    plan(world, "ms", "30.00")
    sub = subscribe(world, acme, "ms", "2025-04-01", external_id="C-9")
    bill(world, acme, "2025-04-01")
    at(world, "2025-04-21")
    successor = actions.transfer(world.ports, SYSTEM, sub.id, OwnershipTransfer(customer_id=globex))
    assert successor.customer_id == globex
    assert amounts(bill(world, acme, "2025-04-21")) == [("proration", Decimal("-10.00"))]
    assert amounts(bill(world, globex, "2025-04-21")) == [("recurring", Decimal("10.00"))]
    assert bill(world, acme, "2025-05-01") is None
    assert amounts(bill(world, globex, "2025-05-01")) == [("recurring", Decimal("30.00"))]


def test_billing_ahead_invoices_the_next_cycles_once(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    bill(world, acme, "2025-04-01")
    at(world, "2025-04-02")
    invoice = actions.bill_ahead(world.ports, SYSTEM, sub.id, BillAhead(cycles=2))
    assert [(ln.period_start, ln.amount) for ln in invoice.lines] == [
        (date(2025, 5, 1), Decimal("30.00")), (date(2025, 6, 1), Decimal("30.00"))]
    assert bill(world, acme, "2025-05-01") is None and bill(world, acme, "2025-06-01") is None
    assert amounts(bill(world, acme, "2025-07-01")) == [("recurring", Decimal("30.00"))]


def test_an_event_adds_a_recurring_charge_and_another_removes_it(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    bill(world, acme, "2025-04-01")
    at(world, "2025-04-16")
    actions.add_charge(world.ports, SYSTEM, sub.id, ContractChargeAdd(code="support", name="Premium support",
                                                                       price=Decimal("6.00")))
    assert amounts(bill(world, acme, "2025-04-16")) == [("recurring", Decimal("3.00"))]  # 6.00 x 15/30
    assert sorted(amounts(bill(world, acme, "2025-05-01"))) == [("recurring", Decimal("6.00")),
                                                                ("recurring", Decimal("30.00"))]
    at(world, "2025-05-11")
    actions.remove_charge(world.ports, SYSTEM, sub.id, "support", ContractChargeRemove())
    assert amounts(bill(world, acme, "2025-05-11")) == [("proration", Decimal("-4.06"))]  # 6.00 x 21/31
    assert amounts(bill(world, acme, "2025-06-01")) == [("recurring", Decimal("30.00"))]


def test_billing_day_change_applies_from_the_period_end_with_a_stub(world):
    acme = customer(world)
    plan(world, "ms", "31.00")
    sub = subscribe(world, acme, "ms", "2025-05-01")
    bill(world, acme, "2025-05-01")
    at(world, "2025-05-10")
    successor = actions.change_billing_day(world.ports, SYSTEM, sub.id, BillingDayChange(billing_day=15))
    assert successor.start_date == date(2025, 6, 1) and successor.billing_day == 15
    assert amounts(bill(world, acme, "2025-06-01")) == [("recurring", Decimal("14.00"))]  # 31.00 x 14/31
    assert amounts(bill(world, acme, "2025-06-15")) == [("recurring", Decimal("31.00"))]


def test_churned_subscriptions_are_hidden_unless_asked_and_states_filter(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    at(world, "2025-04-01")
    gone = subscribe(world, acme, "ms", "2025-04-01")
    live = subscribe(world, acme, "ms", "2025-04-01")
    subscriptions.terminate_subscription(world.ports, SYSTEM, gone.id, TerminateRequest(effective="immediately"))
    listed, _ = subscriptions.list_subscriptions(world.ports, 10, None, acme)
    assert [s.id for s in listed] == [live.id]
    everything, _ = subscriptions.list_subscriptions(world.ports, 10, None, acme, include_churned=True)
    assert {s.id for s in everything} == {gone.id, live.id}
    churned, _ = subscriptions.list_subscriptions(world.ports, 10, None, acme, ["terminated"])
    assert [s.id for s in churned] == [gone.id]
    with pytest.raises(ValidationError) as bad:
        subscriptions.list_subscriptions(world.ports, 10, None, acme, ["sleeping"])
    assert bad.value.param == "status"


def test_upcoming_previews_the_next_periods_without_storing(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    bill(world, acme, "2025-04-01")
    at(world, "2025-04-10")
    coming = preview.upcoming(world.ports, sub.id, 3)
    assert [(inv.lines[0].period_start, inv.total) for inv in coming] == [
        (date(2025, 5, 1), Decimal("30.00")), (date(2025, 6, 1), Decimal("30.00")),
        (date(2025, 7, 1), Decimal("30.00"))]
    assert amounts(bill(world, acme, "2025-05-01")) == [("recurring", Decimal("30.00"))]


def test_a_change_keeps_a_scheduled_termination(world):
    acme = customer(world)
    plan(world, "basic", "10.00")
    plan(world, "pro", "20.00")
    sub = subscribe(world, acme, "basic", "2025-04-01", termination_month="2025-07")
    at(world, "2025-04-16")
    successor = actions.change_plan(world.ports, SYSTEM, sub.id, PlanChangeRequest(plan_code="pro"))
    assert successor.termination.service_end == date(2025, 7, 1)
    assert successor.status_on(date(2025, 7, 1)) == "terminated"


def test_a_retrospective_amendment_rebills_the_periods_since_its_date(world):
    # seed 002: original charge ends at mod_date - 1, the new one runs from mod_date
    acme = customer(world)
    plan(world, "ms", "10.00")
    sub = subscribe(world, acme, "ms", "2025-04-01", external_id="C-7")
    bill(world, acme, "2025-04-01")
    bill(world, acme, "2025-05-01")
    at(world, "2025-05-10")
    actions.change_plan(world.ports, SYSTEM, sub.id, PlanChangeRequest(
        price_overrides={"ms-fee": Decimal("20.00")}, timing="on_date", date=date(2025, 4, 16)))
    invoice = bill(world, acme, "2025-05-10")
    assert sorted(amounts(invoice)) == [("proration", Decimal("-10.00")), ("proration", Decimal("-5.00")),
                                        ("recurring", Decimal("10.00")), ("recurring", Decimal("20.00"))]
    assert invoice.total == Decimal("15.00")


def test_every_write_moves_the_stored_version_so_a_stale_copy_cannot_overwrite(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    stale = subscriptions.get_subscription(world.ports, sub.id)
    bill(world, acme, "2025-04-01")  # the bill run writes the next bill date
    at(world, "2025-04-02")
    with pytest.raises(ConflictError):
        actions._save(world.ports, SYSTEM, stale, stale.model_copy(), "subscription.test")
    fresh = subscriptions.get_subscription(world.ports, sub.id)
    subscriptions.terminate_subscription(world.ports, SYSTEM, sub.id, TerminateRequest())
    with pytest.raises(ConflictError):
        actions._save(world.ports, SYSTEM, fresh, fresh.model_copy(), "subscription.test")


def test_a_quantity_change_on_flat_fees_only_is_refused_as_changing_nothing(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    with pytest.raises(ConflictError) as refused:
        actions.change_plan(world.ports, SYSTEM, sub.id, PlanChangeRequest(quantity=Decimal(3)))
    assert (refused.value.code, refused.value.param) == ("no_change", "quantity")


def test_a_weekly_plan_bills_on_the_start_weekday_and_refuses_a_day_of_the_month(world):
    acme = customer(world)
    plan(world, "weekly", "7.00", period="week")
    sub = subscribe(world, acme, "weekly", "2025-04-02")  # a Wednesday
    assert sub.billing_weekday == 3
    assert amounts(bill(world, acme, "2025-04-02")) == [("recurring", Decimal("7.00"))]
    assert [ln.period_end for ln in bill(world, acme, "2025-04-09").lines] == [date(2025, 4, 16)]
    with pytest.raises(ValidationError) as refused:
        subscribe(world, acme, "weekly", "2025-04-02", billing_day=15)
    assert refused.value.param == "billing_day"


def test_show_monthly_needs_a_charge_longer_than_a_month(world):
    from pydantic import ValidationError as SchemaError
    with pytest.raises(SchemaError, match="show_monthly"):
        plan(world, "ms", "30.00", charge={"show_monthly": True})


def test_a_change_checks_contract_prices_like_a_new_contract(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    with pytest.raises(ValidationError) as refused:
        actions.change_plan(world.ports, SYSTEM, sub.id,
                            PlanChangeRequest(price_overrides={"ms-fee": Decimal("1.005")}))
    assert refused.value.param == "price_overrides.ms-fee"
