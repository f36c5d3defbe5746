"""Credit notes correct invoices exactly (issue 9): a discount line is credited in proportion with the
lines it reduces, a credit note's tax per rate is taken from its invoice's, the credit completing the
invoice takes each rate's remainder; credits add up to the invoice and never go beyond it."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.billing.credits import credit_by_line, credit_tax_lines, tax_key
from shared.billing.errors import ValidationError
from shared.billing.models import InvoiceLine
from shared.billing.money import ZERO
from shared.billing.revrec import apply_credit_note, schedules_for_invoice
from shared.billing.tax import RulesTaxProvider, TaxableLine, TaxParty, TaxRequest
from shared.services import invoice_lifecycle
from shared.services.catalog import create_customer, create_entity
from shared.services.context import SYSTEM
from shared.services.requests.catalog import BillingEntityCreate, CustomerCreate
from shared.services.requests.invoices import CreditNoteCreate, ManualInvoiceCreate
from tests.unit.moto_ports import moto_world

UK_SELLER = TaxParty("GB", None, "GB980780684", registrations={"GB": "GB980780684"})
UK_BUYER = TaxParty("GB", None, None, customer_type="individual")
DAY = date(2025, 3, 3)


@pytest.fixture
def world():
    with moto_world() as world:
        yield world


def uk_invoice(world, *prices: str):
    create_entity(world.ports, SYSTEM, BillingEntityCreate(
        code="uk", name="UK Ltd", country="GB", currency="GBP", invoice_prefix="UK",
        tax_registrations={"GB": "GB980780684"}, address_lines=["1 King St", "London", "EC2V 8AU"]))
    buyer = create_customer(world.ports, SYSTEM, CustomerCreate(
        name="Jane", email="jane@example.com", country="GB", currency="GBP", billing_entity="uk",
        customer_type="individual", address_lines=["2 Queen St", "London", "EC4N 1SP"])).id
    draft = invoice_lifecycle.create_draft(world.ports, SYSTEM, ManualInvoiceCreate(
        customer_id=buyer, lines=[{"description": f"Item {i}", "unit_price": p} for i, p in enumerate(prices)]))
    return invoice_lifecycle.finalize_draft(world.ports, SYSTEM, draft.id)


def credit(world, invoice, lines=None):
    return invoice_lifecycle.create_credit_note(world.ports, SYSTEM, CreditNoteCreate(
        invoice_id=invoice.id, reason="correction", lines=lines))


def test_a_full_credit_of_an_invoice_with_a_discount_line_is_the_invoice_exactly(world):
    invoice = uk_invoice(world, "100.00", "-10.00")
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        Decimal("90.00"), Decimal("18.00"), Decimal("108.00"))
    note = credit(world, invoice)
    assert [(line.credited_line, line.amount) for line in note.lines] == [(0, Decimal("-100.00")),
                                                                          (1, Decimal("10.00"))]
    assert (note.subtotal, note.tax_total, note.total) == (Decimal("-90.00"), Decimal("-18.00"), Decimal("-108.00"))
    assert note.total == sum(line.amount for line in note.lines) + sum(t.amount for t in note.tax_lines)
    after = invoice_lifecycle.get_document(world.ports, invoice.id)
    assert (after.amount_credited, after.amount_remaining, after.status) == (Decimal("108.00"), ZERO, "paid")
    # revenue: the charge's schedule and the discount's (negative) schedule are both credited to nothing
    schedules = apply_credit_note(schedules_for_invoice(invoice), note)
    assert [(s.amount, s.net, sum(e.amount for e in s.entries)) for s in schedules] == [
        (Decimal("100.00"), ZERO, ZERO), (Decimal("-10.00"), ZERO, ZERO)]


def test_a_partial_credit_takes_its_share_of_the_discount_and_a_discount_is_not_credited_alone(world):
    invoice = uk_invoice(world, "100.00", "-10.00")
    note = credit(world, invoice, [{"line": 0, "amount": "50.00"}])
    assert [line.amount for line in note.lines] == [Decimal("-50.00"), Decimal("5.00")]
    assert (note.subtotal, note.tax_total) == (Decimal("-45.00"), Decimal("-9.00"))
    with pytest.raises(ValidationError) as refused:
        credit(world, invoice, [{"line": 1, "amount": "5.00"}])
    assert refused.value.param == "lines[0].line"
    rest = credit(world, invoice)
    assert (rest.subtotal, rest.tax_total, rest.total) == (Decimal("-45.00"), Decimal("-9.00"), Decimal("-54.00"))


def test_the_last_cent_of_invoice_level_tax_is_credited_by_the_last_credit(world):
    invoice = uk_invoice(world, "10.07", "10.07")  # 20% of 20.14 = 4.028 -> 4.03, but 2.014 -> 2.01 per line
    assert invoice.tax_total == Decimal("4.03")
    first = credit(world, invoice, [{"line": 0, "amount": "10.07"}])
    second = credit(world, invoice, [{"line": 1, "amount": "10.07"}])
    assert (first.tax_total, second.tax_total) == (Decimal("-2.02"), Decimal("-2.01"))  # half of 4.03, the rest
    after = invoice_lifecycle.get_document(world.ports, invoice.id)
    assert (after.amount_credited, after.amount_remaining) == (Decimal("24.17"), ZERO)


# the pure core, as a property ----------------------------------------------------------------------------

def taxed(amounts: list[Decimal]):
    lines = tuple(TaxableLine(i, a, None, DAY, DAY + timedelta(days=1)) for i, a in enumerate(amounts))
    return RulesTaxProvider().calculate(TaxRequest(UK_SELLER, UK_BUYER, "GBP", DAY, lines)).tax_lines


cents = st.integers(min_value=1, max_value=50_000).map(lambda c: Decimal(c).scaleb(-2))


@settings(max_examples=150, deadline=None)
@given(charges=st.lists(cents, min_size=1, max_size=4), discount_percent=st.integers(0, 100),
       steps=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 100)), max_size=8))
def test_any_sequence_of_partial_credits_adds_up_to_the_invoice_exactly_and_never_beyond(
        charges, discount_percent, steps):
    discount = -(sum(charges) * discount_percent / 100).quantize(Decimal("0.01"))
    amounts = charges + ([discount] if discount else [])
    lines = [InvoiceLine(description=f"line {i}", quantity=1, unit_price=a, amount=a, currency="GBP")
             for i, a in enumerate(amounts)]
    invoice_tax = taxed(amounts)
    credited: dict[int, Decimal] = {}
    earlier = []
    steps = steps + [(None, None)]  # then the rest: a full credit
    for target, percent in steps:
        left = {i: line.amount - credited.get(i, ZERO) for i, line in enumerate(lines) if line.amount > 0}
        if target is None:
            requested = {i: a for i, a in left.items() if a > 0}
        else:
            index = target % len(charges)
            requested = {index: (left[index] * percent / 100).quantize(Decimal("0.01"))}
        taken = credit_by_line(lines, credited, requested, "GBP")
        if not taken:
            continue
        for i, amount in taken.items():
            credited[i] = credited.get(i, ZERO) + amount
        completes = all(credited.get(i, ZERO) == line.amount for i, line in enumerate(lines))
        note_lines = [-amount for _, amount in sorted(taken.items())]
        note_tax = credit_tax_lines(invoice_tax, earlier, taxed(note_lines), "GBP", completes)
        assert sum(t.taxable_amount for t in note_tax) == sum(note_lines)
        earlier += note_tax
        for i, line in enumerate(lines):  # never beyond a line (a discount: never beyond its amount)
            assert abs(credited.get(i, ZERO)) <= abs(line.amount)
        for invoiced in invoice_tax:
            same = [t for t in earlier if tax_key(t) == tax_key(invoiced)]
            assert abs(sum(t.amount for t in same)) <= abs(invoiced.amount)
    assert credited == {i: line.amount for i, line in enumerate(lines)}
    for invoiced in invoice_tax:
        same = [t for t in earlier if tax_key(t) == tax_key(invoiced)]
        assert -sum(t.amount for t in same) == invoiced.amount
        assert -sum(t.taxable_amount for t in same) == invoiced.taxable_amount


def test_a_credit_note_states_and_stores_the_exchange_rate_its_invoice_was_booked_at(world):
    from shared.adapters.fx_rates import EcbRates, PackagedSnapshot
    from shared.services.taxes import TaxSetup
    from tests.unit.test_contract_life import at

    world.ports.tax = TaxSetup(rates=EcbRates(PackagedSnapshot()))
    create_entity(world.ports, SYSTEM, BillingEntityCreate(
        code="de", name="DE GmbH", country="DE", currency="EUR", invoice_prefix="DE",
        tax_registrations={"DE": "DE136695976"}, address_lines=["Hauptstr. 1", "Berlin", "10115"],
        tax_providers={"US": "not_collected"}))
    buyer = create_customer(world.ports, SYSTEM, CustomerCreate(
        name="Acme", email="ap@acme.example", country="US", region="US-OR", currency="USD", billing_entity="de",
        address_lines=["1 Main St", "Portland, OR", "97201"])).id
    at(world, "2025-03-03")
    draft = invoice_lifecycle.create_draft(world.ports, SYSTEM, ManualInvoiceCreate(
        customer_id=buyer, lines=[{"description": "Work", "unit_price": "100.00"}]))
    invoice = invoice_lifecycle.finalize_draft(world.ports, SYSTEM, draft.id)
    at(world, "2025-04-22")  # another ECB day, another rate
    note = credit(world, invoice)
    assert note.exchange_rate == invoice.exchange_rate and invoice.exchange_rate["rate_date"] == "2025-03-03"
    stated = [n for n in note.notes if n.startswith("Exchange rate:")]
    assert stated == [n for n in invoice.notes if n.startswith("Exchange rate:")]
    assert len(stated) == 1 and invoice.exchange_rate["rate"] in stated[0]
