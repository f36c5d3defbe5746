"""The customer's credit balance: money owed to the customer (an invoice whose credits exceed its
charges, a credit note on what was already paid) is kept and used on the next invoices, on moto."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.billing.errors import ConflictError
from shared.documents.html import render_invoice_html
from shared.services import contract_actions as actions
from shared.services import invoice_lifecycle
from shared.services.catalog import get_customer
from shared.services.context import SYSTEM
from shared.services.requests.contracts import RegretRequest
from shared.services.requests.invoices import CreditNoteCreate, ManualInvoiceCreate, PaymentCreate, StatusChange
from tests.unit.moto_ports import moto_world
from tests.unit.test_contract_life import at, bill, customer, plan, subscribe


@pytest.fixture
def world():
    with moto_world() as world:
        yield world


def balance(world, customer_id: str) -> Decimal:
    return get_customer(world.ports, customer_id).credit_balance.get("USD", Decimal("0"))


def manual(world, customer_id: str, *prices: str):
    draft = invoice_lifecycle.create_draft(world.ports, SYSTEM, ManualInvoiceCreate(
        customer_id=customer_id, lines=[{"description": f"Work {i}", "unit_price": p} for i, p in enumerate(prices)]))
    return invoice_lifecycle.finalize_draft(world.ports, SYSTEM, draft.id)


def test_credits_beyond_the_charges_go_on_the_balance_and_the_next_invoices_use_them(world):
    acme = customer(world)
    plan(world, "ms", "100.00", rules={"regret_days": 14})
    plan(world, "esp", "40.00")
    plan(world, "big", "200.00")
    at(world, "2025-04-01")
    sub = subscribe(world, acme, "ms", "2025-04-01", setup_fee=Decimal("50.00"))
    assert bill(world, acme, "2025-04-01").total == Decimal("150.00")
    at(world, "2025-04-05")
    actions.regret(world.ports, SYSTEM, sub.id, RegretRequest(reason="changed their mind"))
    negative = bill(world, acme, "2025-04-05")
    assert (negative.total, negative.amount_due, negative.amount_remaining, negative.balance_credited) == (
        Decimal("-150.00"), Decimal("-150.00"), Decimal("0"), Decimal("150.00"))
    assert balance(world, acme) == Decimal("150.00")

    subscribe(world, acme, "esp", "2025-05-01")
    covered = bill(world, acme, "2025-05-01")
    assert (covered.total, covered.balance_applied, covered.amount_due, covered.status) == (
        Decimal("40.00"), Decimal("40.00"), Decimal("0.00"), "paid")
    assert balance(world, acme) == Decimal("110.00")

    subscribe(world, acme, "big", "2025-06-01")
    partly = bill(world, acme, "2025-06-01")  # esp 40 + big 200
    assert (partly.total, partly.balance_applied, partly.amount_due, partly.amount_remaining, partly.status) == (
        Decimal("240.00"), Decimal("110.00"), Decimal("130.00"), Decimal("130.00"), "finalized")
    assert balance(world, acme) == Decimal("0.00")

    html = render_invoice_html(partly)
    assert "Credit balance applied" in html and "-$110.00" in html
    assert "Credited to your account balance" in render_invoice_html(negative)
    entity = partly.billing_entity_id
    assert invoice_lifecycle.verify_chain(world.ports, entity)["ok"]


def test_a_credit_note_on_a_paid_invoice_puts_what_was_paid_beyond_the_new_total_on_the_balance(world):
    acme = customer(world)
    invoice = manual(world, acme, "1200.00")
    invoice_lifecycle.record_payment(world.ports, SYSTEM, PaymentCreate(invoice_id=invoice.id, amount="1000.00"))
    note = invoice_lifecycle.create_credit_note(world.ports, SYSTEM, CreditNoteCreate(
        invoice_id=invoice.id, reason="SLA", lines=[{"line": 0, "amount": "500.00"}]))
    credited = invoice_lifecycle.get_document(world.ports, invoice.id)
    # 1000 paid on an invoice now worth 700: 200 were left to pay, 300 are owed back
    assert (credited.amount_remaining, credited.status, note.balance_credited) == (
        Decimal("0"), "paid", Decimal("300.00"))
    assert balance(world, acme) == Decimal("300.00")
    assert "Credited to your account balance" in render_invoice_html(note)
    covered = manual(world, acme, "80.00")  # paid from the balance: crediting it gives the balance back
    assert (covered.balance_applied, covered.status, balance(world, acme)) == (Decimal("80.00"), "paid",
                                                                               Decimal("220.00"))
    invoice_lifecycle.create_credit_note(world.ports, SYSTEM, CreditNoteCreate(
        invoice_id=covered.id, reason="goodwill", lines=[{"line": 0, "amount": "30.00"}]))
    assert balance(world, acme) == Decimal("250.00")
    beta = customer(world, "Beta")
    unpaid = invoice_lifecycle.create_credit_note(world.ports, SYSTEM, CreditNoteCreate(
        invoice_id=manual(world, beta, "80.00").id, reason="goodwill", lines=[{"line": 0, "amount": "30.00"}]))
    assert unpaid.balance_credited is None and balance(world, beta) == 0  # the credit only lowers what is due


def test_an_invoice_that_moved_the_balance_is_corrected_by_a_credit_note_not_voided(world):
    acme = customer(world)
    owed = manual(world, acme, "-25.00")
    assert balance(world, acme) == Decimal("25.00")
    for invoice in (owed, manual(world, acme, "60.00")):  # the second used the 25.00
        with pytest.raises(ConflictError, match="credit balance"):
            invoice_lifecycle.void_invoice(world.ports, SYSTEM, invoice.id, StatusChange(reason="wrong"))
    assert balance(world, acme) == Decimal("0.00")
    invoice = invoice_lifecycle.get_document(world.ports, invoice.id)
    invoice_lifecycle.create_credit_note(world.ports, SYSTEM, CreditNoteCreate(invoice_id=invoice.id, reason="wrong"))
    assert balance(world, acme) == Decimal("25.00")  # the balance it used comes back; the 35.00 due is cancelled


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(min_value=-300, max_value=300).filter(bool), min_size=1, max_size=6))
def test_what_the_customer_owes_minus_what_it_is_owed_is_everything_invoiced(cents):
    with moto_world() as world:
        acme = customer(world)
        invoices = [manual(world, acme, str(Decimal(c) / 100)) for c in cents]
        for invoice in invoices:
            assert invoice.total == invoice.amount_due + (invoice.balance_applied or 0)
            assert invoice.amount_remaining >= 0
        owes = sum(invoice.amount_remaining for invoice in invoices)
        assert owes - balance(world, acme) == sum(invoice.total for invoice in invoices)
        assert balance(world, acme) >= 0
