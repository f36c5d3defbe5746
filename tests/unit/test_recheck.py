"""Re-checking a billed period after a contract change (`rating.recheck_lines`): properties and examples."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from shared.billing.models import Charge, Pause, Plan, Subscription, Termination
from shared.billing.periods import Period
from shared.billing.rating import rate_subscription, recheck_lines
from shared.billing.schedule import BillingItem, credit_view, due_items, find_item

NOW = datetime(2025, 1, 1, tzinfo=UTC)
PLAN = Plan(code="ms", name="MS", currency="USD", created_at=NOW,
            charges=[Charge(code="fee", name="Managed Service", price=Decimal("100.00"))])
PLANS = {1: PLAN}


def subscription(**changes) -> Subscription:
    return Subscription(id="sub_1", customer_id="cus_1", plan_code="ms", start_date=date(2025, 1, 1),
                        billing_day=1, created_at=NOW, **changes)


def billed_march(sub: Subscription) -> list[tuple[Period, Decimal]]:
    (item,) = [i for i in due_items(sub, PLANS, date(2025, 3, 1), ()) if i.period.start == date(2025, 3, 1)]
    lines = rate_subscription(sub, PLANS, {}, [item]).lines
    return [(Period(ln.period_start, ln.period_end), ln.amount) for ln in lines]


def recheck(sub: Subscription, billed):
    view = credit_view(sub)
    key = "sub_1#fee#2025-03-01"
    march = Period(date(2025, 3, 1), date(2025, 4, 1))
    item = find_item(view, PLANS, key) or BillingItem("sub_1", "fee", march, march, march.start)
    return recheck_lines(view, PLANS, item, billed)


days = st.integers(min_value=0, max_value=30)


@given(days, days)
def test_a_pause_credits_exactly_what_was_billed_for_its_days_and_nothing_is_lost(a, b):
    start, end = sorted((a, b))
    if start == end:
        end += 1
    pause = Pause(start=date(2025, 3, 1) + timedelta(days=start), end=date(2025, 3, 1) + timedelta(days=end),
                  requested_at=NOW, requested_by="t")
    billed = billed_march(subscription())
    lines, state = recheck(subscription(pauses=[pause]), billed)
    credit = sum((ln.amount for ln in lines), Decimal(0))
    assert credit <= 0 and -credit <= Decimal("100.00")
    assert sum((amount for _, amount in state), Decimal(0)) + (-credit) == Decimal("100.00")  # kept + credited
    paused_days = min(end, 31) - start
    assert abs(-credit - Decimal("100.00") * paused_days / 31) <= Decimal("0.01")
    kept_days = sum(window.days for window, _ in state)
    assert kept_days == 31 - paused_days


@given(days)
def test_pausing_then_resuming_at_the_pause_start_restores_the_billed_amount(start):
    pause = Pause(start=date(2025, 3, 1) + timedelta(days=start), end=None, requested_at=NOW, requested_by="t")
    billed = billed_march(subscription())
    credits, state = recheck(subscription(pauses=[pause]), billed)
    charges, restored = recheck(subscription(), state)
    net = sum((ln.amount for ln in credits + charges), Decimal(0))
    assert abs(net) <= Decimal("0.01")  # each step rounds once, half up: at most a cent apart
    assert sum(window.days for window, _ in restored) == 31


def test_a_regret_credits_the_whole_billed_amount_exactly():
    billed = billed_march(subscription())
    regretted = subscription(termination=Termination(effective="regret", service_end=date(2025, 1, 1),
                                                     requested_at=NOW, requested_by="t", refund="full"))
    lines, state = recheck(regretted, billed)
    assert [ln.amount for ln in lines] == [Decimal("-100.00")] and state == []


def test_a_termination_without_refund_keeps_the_billed_period():
    billed = billed_march(subscription())
    ended = subscription(termination=Termination(effective="immediately", service_end=date(2025, 3, 10),
                                                 requested_at=NOW, requested_by="t", refund="none"))
    assert recheck(ended, billed) == ([], billed)


def test_a_prorated_refund_credits_the_days_after_the_end_and_states_the_rule():
    billed = billed_march(subscription())
    ended = subscription(termination=Termination(effective="immediately", service_end=date(2025, 3, 10),
                                                 requested_at=NOW, requested_by="t", refund="prorated"))
    (line,), state = recheck(ended, billed)
    assert line.amount == Decimal("-70.97")  # 100.00 x 22/31, half up
    assert (line.period_start, line.period_end) == (date(2025, 3, 10), date(2025, 4, 1))
    assert line.proration == "credit by day: 22 of the 31 days billed for 100.00 (2025-03-01 to 2025-03-31)"
    assert state == [(Period(date(2025, 3, 1), date(2025, 3, 10)), Decimal("29.03"))]


def test_a_proration_credit_reverses_revenue_over_the_days_it_credits():
    from shared.billing.models import Invoice, PartySnapshot
    from shared.billing.revrec import charge_finder, schedules_for_invoice

    billed = billed_march(subscription())
    ended = subscription(termination=Termination(effective="immediately", service_end=date(2025, 3, 10),
                                                 requested_at=NOW, requested_by="t", refund="prorated"))
    (credit,), _ = recheck(ended, billed)
    party = PartySnapshot(name="x", country="US")
    invoice = Invoice(id="inv_1", status="finalized", customer_id="cus_1", billing_entity_id="ent_1",
                      currency="USD", issue_date=date(2025, 3, 10), due_date=date(2025, 4, 9), lines=[credit],
                      seller=party, buyer=party, created_at=NOW, subtotal=credit.amount, tax_total=Decimal(0),
                      total=credit.amount, amount_due=credit.amount, number="INV-1")
    (schedule,) = schedules_for_invoice(invoice, charge_finder({"sub_1": PLAN}))
    assert schedule.pob_identifier == "BK-OT-RATABLE" and schedule.amount == Decimal("-70.97")
    assert sum((e.amount for e in schedule.entries), Decimal(0)) == Decimal("-70.97")
    assert {e.period for e in schedule.entries} == {"2025-03"}
