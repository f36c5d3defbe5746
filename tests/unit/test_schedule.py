"""The billing schedule and rating: UC01 monthly, UC02 termination, proration, idempotency."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.billing.invoicing import content_hash, totals
from shared.billing.models import Charge, Plan, Subscription, Termination
from shared.billing.rating import rate_subscription
from shared.billing.schedule import due_items, next_bill_date

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def plan(**charge) -> Plan:
    fields = {"code": "ms-fee", "name": "Managed Service", "price": Decimal("0"), "gl_code": "7005"} | charge
    return Plan(code="ms", name="Managed Service", currency="USD", charges=[Charge(**fields)], created_at=NOW)


def contract(start=date(2025, 3, 1), price="1250.00", **fields) -> Subscription:
    return Subscription(id="sub_1", customer_id="cus_1", plan_code="ms", external_id="MS-001", start_date=start,
                        billing_day=fields.pop("billing_day", start.day),
                        price_overrides={"ms-fee": Decimal(price)}, created_at=NOW, **fields)


def terminated(sub: Subscription, service_end: date, effective="immediately") -> Subscription:
    sub.termination = Termination(effective=effective, service_end=service_end, requested_at=NOW,
                                  requested_by="test")
    return sub


def test_uc01_monthly_in_advance_bills_each_month_on_its_first_day():
    sub, p = contract(), plan()
    items = due_items(sub, {1: p}, date(2025, 5, 1), billed_keys=())
    assert [(i.period.start, i.period.end) for i in items] == [
        (date(2025, 3, 1), date(2025, 4, 1)), (date(2025, 4, 1), date(2025, 5, 1)),
        (date(2025, 5, 1), date(2025, 6, 1))]
    line = rate_one(items[0], sub, p)
    assert (line.amount, line.description, line.external_id, line.gl_code) == (
        Decimal("1250.00"), "Managed Service", "MS-001", "7005")
    assert line.proration is None


def test_billing_is_proposed_minus_billed():
    sub, p = contract(), plan()
    first = due_items(sub, {1: p}, date(2025, 4, 1), ())
    again = due_items(sub, {1: p}, date(2025, 4, 1), {i.key for i in first})
    assert again == []
    assert next_bill_date(sub, {1: p}, {i.key for i in first}) == date(2025, 5, 1)


def test_uc02_terminated_contract_bills_the_current_month_and_nothing_after():
    sub, p = contract(), plan()
    billed = {i.key for i in due_items(sub, {1: p}, date(2025, 3, 1), ())}
    terminated(sub, date(2025, 3, 20))  # immediately, mid-March: March stays billed, no refund
    assert due_items(sub, {1: p}, date(2025, 6, 1), billed) == []
    assert next_bill_date(sub, {1: p}, billed) is None


def test_end_of_period_termination_stops_after_the_period():
    sub, p = contract(), plan()
    terminated(sub, date(2025, 4, 1), "end_of_period")
    items = due_items(sub, {1: p}, date(2025, 12, 1), ())
    assert [i.period.start for i in items] == [date(2025, 3, 1)]


def test_calendar_alignment_prorates_the_first_stub_by_day():
    sub, p = contract(start=date(2025, 3, 15), billing_day=1, billing_alignment="calendar"), plan()
    first = due_items(sub, {1: p}, date(2025, 3, 15), ())[0]
    line = rate_one(first, sub, p)
    assert line.amount == Decimal("685.48")  # 1250 x 17/31 = 685.4838...
    assert line.proration.startswith("prorated by day: 17/31 days")
    assert (line.period_start, line.period_end) == (date(2025, 3, 15), date(2025, 4, 1))


def test_in_arrears_bills_at_period_end_and_prorates_a_final_partial_period():
    sub, p = contract(), plan(timing="in_arrears")
    assert due_items(sub, {1: p}, date(2025, 3, 31), ()) == []
    items = due_items(sub, {1: p}, date(2025, 4, 1), ())
    assert [(i.period.start, i.bill_date) for i in items] == [(date(2025, 3, 1), date(2025, 4, 1))]
    terminated(sub, date(2025, 4, 11))
    final = due_items(sub, {1: p}, date(2025, 4, 11), {i.key for i in items})
    assert len(final) == 1 and final[0].bill_date == date(2025, 4, 11)
    assert rate_one(final[0], sub, p).amount == Decimal("416.67")  # 1250 x 10/30


def rate_one(item, sub, p):
    [line] = rate_subscription(sub, {1: p}, {}, [item]).lines
    return line


def test_zero_price_listing_still_produces_a_line():
    sub, p = contract(price="0.00"), plan()
    line = rate_one(due_items(sub, {1: p}, date(2025, 3, 1), ())[0], sub, p)
    assert line.amount == Decimal("0.00") and line.description == "Managed Service"


def test_future_contract_has_nothing_due_yet():
    sub = contract(start=date(2025, 6, 1))
    assert due_items(sub, {1: plan()}, date(2025, 5, 31), ()) == []
    assert next_bill_date(sub, {1: plan()}, ()) == date(2025, 6, 1)


def test_totals_sum_rounded_lines_and_hash_changes_with_content(invoice_factory):
    invoice = invoice_factory()
    assert invoice.total == sum(line.amount for line in invoice.lines)
    first = content_hash(invoice)
    invoice.lines[0].amount += Decimal("0.01")
    assert content_hash(invoice) != first


@settings(max_examples=200)
@given(start=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)),
       cut=st.integers(1, 800), runs=st.lists(st.integers(0, 900), min_size=1, max_size=6),
       alignment=st.sampled_from(["anniversary", "calendar"]), timing=st.sampled_from(["in_advance", "in_arrears"]))
def test_any_sequence_of_runs_bills_each_period_once_and_never_more_than_the_contract(
        start, cut, runs, alignment, timing):
    sub = contract(start=start, billing_day=start.day if alignment == "anniversary" else 1,
                   billing_alignment=alignment)
    p = plan(timing=timing)
    terminated(sub, start + timedelta(days=cut), "on_date")
    billed: dict[str, Decimal] = {}
    for offset in sorted(runs) + [2000]:
        for item in due_items(sub, {1: p}, start + timedelta(days=offset), billed):
            assert item.key not in billed
            billed[item.key] = rate_one(item, sub, p).amount
    # every day of service is billed exactly once: full periods at full price, stubs by day
    assert sum(billed.values()) <= Decimal("1250.00") * (cut // 28 + 2)
    assert next_bill_date(sub, {1: p}, billed) is None


def test_totals_do_not_round_again():
    from shared.billing.models import InvoiceLine

    lines = [InvoiceLine(description="a", quantity=Decimal(1), unit_price=Decimal("0.10"), amount=Decimal("0.10"),
                         currency="USD")] * 3
    assert totals(lines, Decimal("0"), "USD")["total"] == Decimal("0.30")
