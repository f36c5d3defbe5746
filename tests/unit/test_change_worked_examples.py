"""Mid-cycle changes against vendors' published worked examples (figures recomputed in USD; the
arithmetic does not depend on the currency). Conventions: shared/billing/README.md."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from shared.services import contract_actions as actions
from shared.services.context import SYSTEM
from shared.services.requests.contracts import PlanChangeRequest
from tests.unit.moto_ports import moto_world
from tests.unit.test_contract_life import amounts, at, bill, customer, plan, subscribe


@pytest.fixture
def world():
    with moto_world() as world:
        yield world


def test_lago_upgrade_of_a_plan_paid_in_arrears(world):
    # getlago.com/docs/guide/subscriptions/upgrades-downgrades: Plan A 100/month in arrears, calendar,
    # from January 1st, upgraded to Plan B 200/month on January 15th: Plan A is invoiced for 14 days
    # (14/31 x 100 = 45.16) on the 15th, Plan B for the 17 days left (17/31 x 200 = 109.68) at the period end.
    acme = customer(world)
    plan(world, "plan-a", "100.00", charge={"timing": "in_arrears"})
    plan(world, "plan-b", "200.00", charge={"timing": "in_arrears"})
    sub = subscribe(world, acme, "plan-a", "2025-01-01", billing_alignment="calendar")
    at(world, "2025-01-15")
    actions.change_plan(world.ports, SYSTEM, sub.id, PlanChangeRequest(plan_code="plan-b"))
    first = bill(world, acme, "2025-01-15")
    assert [(ln.description, ln.amount, ln.period_start, ln.period_end) for ln in first.lines] == [
        ("plan-a fee", Decimal("45.16"), date(2025, 1, 1), date(2025, 1, 15))]
    assert "14/31 days" in first.lines[0].proration
    second = bill(world, acme, "2025-02-01")  # the period's end: Jan 31 inclusive
    assert [(ln.description, ln.amount, ln.period_start) for ln in second.lines] == [
        ("plan-b fee", Decimal("109.68"), date(2025, 1, 15))]


def test_autumn_upgrade_halfway_charges_the_prorated_difference(world):
    # docs.useautumn.com/documentation/modelling-pricing/proration: 20/month upgraded to 50/month
    # halfway through the cycle: charged 15 (the prorated difference for the remaining half).
    acme = customer(world)
    plan(world, "pro", "20.00")
    plan(world, "max", "50.00")
    sub = subscribe(world, acme, "pro", "2025-06-01")
    bill(world, acme, "2025-06-01")
    at(world, "2025-06-16")  # June has 30 days: 15 left
    actions.change_plan(world.ports, SYSTEM, sub.id, PlanChangeRequest(plan_code="max"))
    invoice = bill(world, acme, "2025-06-16")
    assert sorted(amounts(invoice)) == [("proration", Decimal("-10.00")), ("recurring", Decimal("25.00"))]
    assert invoice.subtotal == Decimal("15.00")


def test_stripe_downgrade_halfway_gives_a_credit_proration(world):
    # docs.stripe.com/billing/subscriptions/prorations ("credit prorations"): a downgrade credits the
    # unused time at the old price and charges the remaining time at the new one.
    acme = customer(world)
    plan(world, "pro", "20.00")
    plan(world, "basic", "10.00")
    sub = subscribe(world, acme, "pro", "2025-06-01")
    bill(world, acme, "2025-06-01")
    at(world, "2025-06-16")
    actions.change_plan(world.ports, SYSTEM, sub.id, PlanChangeRequest(plan_code="basic"))
    invoice = bill(world, acme, "2025-06-16")
    assert sorted(amounts(invoice)) == [("proration", Decimal("-10.00")), ("recurring", Decimal("5.00"))]
    assert "subscription.downgraded" in [e["type"] for e in world.outbox()]


def test_month_end_anchor_change_in_february_of_a_leap_year(world):
    # a contract billed on the 31st: Feb 2024 has 29 days ([Jan 31, Feb 29) is 29 days long);
    # a change on Feb 15 leaves 14 of its 29 days.
    acme = customer(world)
    plan(world, "a", "29.00")
    plan(world, "b", "58.00")
    sub = subscribe(world, acme, "a", "2024-01-31")
    bill(world, acme, "2024-01-31")
    at(world, "2024-02-15")
    actions.change_plan(world.ports, SYSTEM, sub.id, PlanChangeRequest(plan_code="b"))
    invoice = bill(world, acme, "2024-02-15")
    assert sorted(amounts(invoice)) == [("proration", Decimal("-14.00")), ("recurring", Decimal("28.00"))]
    assert amounts(bill(world, acme, "2024-02-29")) == [("recurring", Decimal("58.00"))]
    assert [ln.period_end for ln in bill(world, acme, "2024-03-31").lines] == [date(2024, 4, 30)]
