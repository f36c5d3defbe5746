"""No DynamoDB limit decides whether a customer can be billed (issue defects 7 and 5), on moto:
many subscriptions (beyond 100 writes a transaction), many lines (beyond 400 KB an item), a crash
between the saga's steps, concurrent runs, and a retried step of a customer with many documents."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from shared.adapters.dynamodb import Item, Put
from shared.billing.errors import BillingError, NonRetryableError, ValidationError
from shared.billing.invoicing import content_hash
from shared.services import billing, invoice_lifecycle, usage
from shared.services import contract_actions as actions
from shared.services.catalog import create_metric, create_plan
from shared.services.context import SYSTEM
from shared.services.invoices import get_invoice
from shared.services.requests.catalog import MetricCreate, PlanCreate
from shared.services.requests.contracts import ContractChargeAdd
from shared.services.requests.invoices import ManualInvoiceCreate
from tests.unit.moto_ports import moto_world
from tests.unit.test_contract_life import at, customer, plan, subscribe

DAY = date(2025, 4, 1)


@pytest.fixture
def world():
    with moto_world() as world:
        yield world


class LambdaDied(Exception):
    """The function stopped here (timeout, out of memory): nothing after this line ran."""


def run(world, customer_id: str, bill_run_id: str = "br_1", day: date = DAY):
    at(world, day.isoformat())
    return billing.invoice_account(world.ports, SYSTEM, customer_id, day, bill_run_id)


def documents(world, customer_id: str):
    invoices, _ = world.ports.repo.list_invoices(1000, None, customer_id)
    return invoices


def many_subscriptions(world, count: int = 60) -> tuple[str, list]:
    acme = customer(world)
    plan(world, "ms", "10.00")
    return acme, [subscribe(world, acme, "ms", DAY.isoformat()) for _ in range(count)]


def assert_billed_once(world, acme: str, subs: list, invoice) -> None:
    """One invoice for the customer, every subscription billed on it exactly once and moved on."""
    assert [d.id for d in documents(world, acme)] == [invoice.id]
    assert invoice.total == Decimal("10.00") * len(subs) and len(invoice.lines) == len(subs)
    for sub in subs:
        billed = world.ports.repo.billed(sub.id)
        assert [b["invoice_id"] for b in billed.values()] == [invoice.id]
        assert world.ports.repo.get_subscription(sub.id).next_bill_date == date(2025, 5, 1)
    assert world.ports.repo.invoicing_slot(acme).data["pending"] is None
    assert invoice_lifecycle.verify_chain(world.ports, invoice.billing_entity_id)["ok"]


def test_sixty_subscriptions_on_one_customer_are_invoiced_in_one_run(world):
    acme, subs = many_subscriptions(world)
    invoice = run(world, acme)
    assert invoice.status == "finalized" and invoice.number
    assert_billed_once(world, acme, subs, invoice)
    assert run(world, acme).id == invoice.id  # a retried step gets it back
    assert run(world, acme, "br_2") is None  # another run: nothing left


def test_eight_hundred_grouped_usage_lines_go_on_one_invoice_that_reads_back_whole(world):
    acme = customer(world)
    create_metric(world.ports, SYSTEM, MetricCreate(code="calls", name="Calls", field="n", group_by="zone"))
    create_plan(world.ports, SYSTEM, PlanCreate(code="tel", name="Telephony", currency="USD", charges=[{
        "code": "calls", "name": "Calls", "type": "usage", "model": "per_unit", "metric_code": "calls",
        "price": "0.10", "timing": "in_arrears"}]))
    sub = subscribe(world, acme, "tel", DAY.isoformat())
    at(world, "2025-04-10")
    events = [{"transaction_id": f"t{i}", "subscription_id": sub.id, "metric_code": "calls",
               "timestamp": "2025-04-10T12:00:00Z", "properties": {"zone": f"zone-{i:04d}", "n": "3"}}
              for i in range(800)]
    assert not usage.ingest(world.ports, SYSTEM, events).rejected
    invoice = run(world, acme, day=date(2025, 5, 1))
    assert len(invoice.lines) == 800 and invoice.total == Decimal("240.00")
    stored = world.ports.repo.store.get(f"INV#{invoice.id}", "A")
    assert stored.data["lines"] == [] and int(stored.extra["line_chunks"]) >= 2  # beside the item
    read = get_invoice(world.ports, invoice.id)  # what GET /v1/invoices/{id} returns
    assert read.lines == invoice.lines and content_hash(read) == invoice.content_hash
    assert [d.id for d in documents(world, acme)] == [invoice.id] and len(documents(world, acme)[0].lines) == 800
    read.pdf_key = "invoices/x.pdf"
    world.ports.repo.update_invoice(read)  # a later change of its item keeps the lines beside it
    assert get_invoice(world.ports, invoice.id).lines == invoice.lines
    assert invoice_lifecycle.verify_chain(world.ports, invoice.billing_entity_id)["ok"]
    assert run(world, acme, "br_2", date(2025, 5, 1)) is None


def test_a_small_invoice_stays_in_one_item(world):
    acme = customer(world)
    plan(world, "ms", "10.00")
    subscribe(world, acme, "ms", DAY.isoformat())
    invoice = run(world, acme)
    stored = world.ports.repo.store.get(f"INV#{invoice.id}", "A")
    assert len(stored.data["lines"]) == 1 and "line_chunks" not in stored.extra


def test_a_contract_fee_under_a_plan_charge_code_is_refused_at_creation_naming_the_field(world):
    acme = customer(world)
    plan(world, "onb", "100.00", charge={"code": "setup_fee", "type": "one_time"})
    with pytest.raises(ValidationError) as refused:
        subscribe(world, acme, "onb", DAY.isoformat(), setup_fee=Decimal("50.00"))
    assert refused.value.param == "setup_fee" and "setup_fee" in refused.value.message
    plan(world, "exit", "10.00", charge={"code": "early_termination_fee"})
    with pytest.raises(ValidationError) as refused:
        subscribe(world, acme, "exit", DAY.isoformat(), term_months=12, early_termination_fee=Decimal("90"))
    assert refused.value.param == "early_termination_fee"
    assert documents(world, acme) == [] and world.ports.repo.customer_subscriptions(acme) == []


def test_an_event_cannot_add_a_charge_under_a_fee_code_or_a_plan_charge_code(world):
    acme = customer(world)
    plan(world, "ms", "10.00")
    sub = subscribe(world, acme, "ms", DAY.isoformat())
    at(world, DAY.isoformat())
    for code in ("setup_fee", "ms-fee"):
        with pytest.raises(BillingError) as refused:
            actions.add_charge(world.ports, SYSTEM, sub.id, ContractChargeAdd(code=code, name="x", price="1"))
        assert refused.value.param == "code"
    actions.add_charge(world.ports, SYSTEM, sub.id, ContractChargeAdd(code="support", name="Support", price="5"))
    invoice = run(world, acme)
    assert sorted(line.amount for line in invoice.lines) == [Decimal("5.00"), Decimal("10.00")]


def _crash_claims(world, monkeypatch):
    client = world.ports.repo.store.client
    real, calls = client.batch_write_item, []

    def dies_on_the_second(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise LambdaDied()
        return real(**kwargs)
    monkeypatch.setattr(client, "batch_write_item", dies_on_the_second)


def _crash_final(world, monkeypatch):
    real, calls = billing.finalize_document, []

    def dies_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise LambdaDied()
        return real(*args, **kwargs)
    monkeypatch.setattr(billing, "finalize_document", dies_once)


def _crash_subscriptions(world, monkeypatch):
    real, calls = billing._update_subscription, []

    def dies_on_the_eleventh(*args):
        calls.append(1)
        if len(calls) == 11:
            raise LambdaDied()
        return real(*args)
    monkeypatch.setattr(billing, "_update_subscription", dies_on_the_eleventh)


@pytest.mark.parametrize("crash", [_crash_claims, _crash_final, _crash_subscriptions])
@pytest.mark.parametrize("retry", [("br_1", DAY), ("br_2", date(2025, 4, 2))], ids=["retried_step", "next_run"])
def test_a_crash_between_the_steps_then_a_retry_issues_exactly_one_invoice(world, monkeypatch, crash, retry):
    acme, subs = many_subscriptions(world)
    crash(world, monkeypatch)
    with pytest.raises(LambdaDied):
        run(world, acme)
    assert world.ports.repo.invoicing_slot(acme).data["pending"]  # the customer's document waits
    invoice = run(world, acme, *retry)
    assert invoice is not None and invoice.bill_run_id in (retry[0], "br_1")
    assert_billed_once(world, acme, subs, invoice)
    assert run(world, acme, "br_3", date(2025, 4, 3)) is None


@pytest.mark.parametrize("count", [1, 60], ids=["one_transaction", "saga"])
def test_two_concurrent_runs_for_one_customer_issue_one_invoice(world, monkeypatch, count):
    acme, subs = many_subscriptions(world, count)
    real, started, other = billing.finalize_document, [], []

    def the_other_run_finishes_first(*args, **kwargs):
        if not started:  # run A is about to finalize: run B does its whole work now
            started.append("B")
            other.append(run(world, acme, "br_B"))
        return real(*args, **kwargs)
    monkeypatch.setattr(billing, "finalize_document", the_other_run_finishes_first)
    first = run(world, acme, "br_A")
    issued = [i for i in (first, other[0]) if i is not None]
    assert len(issued) == 1
    assert_billed_once(world, acme, subs, issued[0])


def test_a_retried_step_gets_its_invoice_back_whatever_the_number_of_earlier_documents(world):
    acme = customer(world)
    for n in range(25):
        draft = invoice_lifecycle.create_draft(world.ports, SYSTEM, ManualInvoiceCreate(
            customer_id=acme, lines=[{"description": f"Work {n}", "unit_price": "1.00"}]))
        invoice_lifecycle.finalize_draft(world.ports, SYSTEM, draft.id)
    plan(world, "ms", "10.00")
    subscribe(world, acme, "ms", DAY.isoformat())
    invoice = run(world, acme)
    assert len(documents(world, acme)) == 26
    again = run(world, acme)  # Step Functions retries the step after a lost response
    assert again is not None and again.id == invoice.id


def test_a_run_that_finds_more_due_later_the_same_day_issues_a_second_invoice(world):
    acme = customer(world)
    plan(world, "ms", "10.00")
    sub = subscribe(world, acme, "ms", DAY.isoformat())
    first = run(world, acme)
    actions.add_charge(world.ports, SYSTEM, sub.id, ContractChargeAdd(code="install", name="Install", price="25",
                                                                      type="one_time"))
    second = run(world, acme)  # the same run fired again that day
    assert second.id != first.id and second.total == Decimal("25.00")
    assert run(world, acme).id == second.id


def test_limits_of_dynamodb_are_reported_as_errors_that_will_repeat(world):
    store = world.ports.repo.store
    with pytest.raises(NonRetryableError) as refused:
        store.transact([Put(Item(f"X#{n}", "A", "x", {})) for n in range(101)])
    assert refused.value.code == "transaction_too_large"
    with pytest.raises(NonRetryableError) as refused:
        store.transact([Put(Item("X#big", "A", "x", {"text": "x" * 420_000}))])
    assert refused.value.code in ("item_too_large", "invalid_transaction")
    with pytest.raises(NonRetryableError) as refused:
        store.put_plain(Item("X#big", "A", "x", {"text": "x" * 420_000}))
    assert refused.value.code == "item_too_large"
