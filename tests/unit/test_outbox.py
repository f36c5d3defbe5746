"""The transactional outbox: every committed change's events are written in its transaction and
published from the table's stream (at least once); nothing a use case announces is lost when the
bus fails, and nothing is doubled when a request is retried. On moto, with BillingTable's stream."""

from __future__ import annotations

import ast
import json
from decimal import Decimal
from pathlib import Path

import pytest

from shared.billing.errors import ConflictError
from shared.services import invoice_lifecycle, subscriptions, webhooks
from shared.services.catalog import update_customer
from shared.services.context import SYSTEM, Actor, Ports
from shared.services.requests.catalog import CustomerUpdate
from shared.services.requests.contracts import TerminateRequest
from shared.services.requests.invoices import CreditNoteCreate, ManualInvoiceCreate, PaymentCreate, StatusChange
from tests.unit.moto_ports import moto_world
from tests.unit.test_contract_life import at, bill, customer, plan, subscribe
from tests.unit.test_webhook_delivery import ENVELOPE, Receiver, endpoint

ROOT = Path(__file__).resolve().parents[2]
FINANCE = Actor("key:finance", "finance")


@pytest.fixture
def world():
    with moto_world() as world:
        yield world


def new_events(world, seen: list[dict]) -> list[str]:
    """The types of the events committed since `seen` was taken (and remember them)."""
    now = world.outbox()
    fresh = now[len(seen):]
    seen[:] = now
    return [e["type"] for e in fresh]


def draft(world, customer_id: str, price: str = "100.00"):
    return invoice_lifecycle.create_draft(world.ports, SYSTEM, ManualInvoiceCreate(
        customer_id=customer_id, lines=[{"description": "Work", "unit_price": price}]))


# -- no use case publishes after its commit -------------------------------------------------

def test_a_use_case_can_only_commit_its_events():
    assert not hasattr(Ports, "publish")  # the old post-commit publish is gone
    offenders = []
    for path in sorted((ROOT / "shared" / "services").rglob("*.py")):
        if path.name == "outbox.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("publisher", "publish", "put_events"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert offenders == []


# -- (b) one outbox entry per event, in the change's transaction; none when it fails ------------

def test_every_use_case_commits_one_outbox_entry_per_event_and_a_conflict_commits_none(world):
    seen: list[dict] = []
    acme = customer(world)
    plan(world, "ms", "100.00")
    assert new_events(world, seen) == ["billing_entity.created", "customer.created", "plan.created"]
    at(world, "2025-04-01")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    assert new_events(world, seen) == ["subscription.created", "subscription.activated"]
    invoice = bill(world, acme, "2025-04-01")
    (finalized,) = [e for e in world.outbox() if e["type"] == "invoice.finalized"]
    assert new_events(world, seen) == ["invoice.finalized"]
    assert finalized["data"] == {"invoice_id": invoice.id, "customer_id": acme, "bill_run_id": None,
                                 "origin": "api"}
    invoice_lifecycle.record_payment(world.ports, FINANCE, PaymentCreate(invoice_id=invoice.id, amount="40.00"))
    assert new_events(world, seen) == ["payment.succeeded"]
    note = invoice_lifecycle.create_credit_note(world.ports, FINANCE, CreditNoteCreate(
        invoice_id=invoice.id, reason="goodwill", lines=[{"line": 0, "amount": "10.00"}]))
    assert new_events(world, seen) == ["invoice.finalized"]
    assert world.outbox()[-1]["data"]["credit_note_of"] == invoice.id and note.kind == "credit_note"
    other = draft(world, acme)
    assert new_events(world, seen) == []  # a draft announces nothing
    invoice_lifecycle.finalize_draft(world.ports, FINANCE, other.id)
    invoice_lifecycle.void_invoice(world.ports, FINANCE, other.id, StatusChange(reason="duplicate"))
    assert new_events(world, seen) == ["invoice.finalized", "invoice.voided"]
    assert world.outbox()[-1]["data"]["invoice"]["version"] == world.ports.repo.get_invoice(other.id).version
    subscriptions.terminate_subscription(world.ports, SYSTEM, sub.id, TerminateRequest(effective="end_of_period"))
    assert new_events(world, seen) == ["subscription.termination_scheduled"]

    stale = world.ports.repo.get_customer(acme)
    update_customer(world.ports, SYSTEM, acme, CustomerUpdate(name="Acme Inc"))
    assert new_events(world, seen) == ["customer.updated"]
    world.ports.repo.get_customer = lambda _id: stale  # a writer that read before the update
    with pytest.raises(ConflictError):
        update_customer(world.ports, SYSTEM, acme, CustomerUpdate(name="Acme Corp"))
    assert new_events(world, seen) == []  # rolled back with its change
    ids = [e["id"] for e in world.outbox()]
    assert len(ids) == len(set(ids))


def test_the_events_of_one_change_share_its_transaction(world):
    acme = customer(world)
    records = world.stream_records()
    created = next(r for r in records if r["dynamodb"]["NewImage"]["type"]["S"] == "customer")
    event = next(r for r in records if r["dynamodb"]["NewImage"]["type"]["S"] == "outbox"
                 and '"customer.created"' in r["dynamodb"]["NewImage"]["data"]["S"])
    # one TransactWriteItems (customer, its alias, audit, event): moto's stream lists its writes together
    assert 1 <= int(event["dynamodb"]["SequenceNumber"]) - int(created["dynamodb"]["SequenceNumber"]) <= 3
    assert event["dynamodb"]["NewImage"]["expires_at"]["N"].isdigit() and acme


# -- (a) the bus fails after a finalize ------------------------------------------------------

def test_a_finalize_whose_bus_fails_is_announced_once_the_bus_works_and_a_retry_doubles_nothing(world):
    acme = customer(world)
    world.ports.publisher.failing = True
    invoice = invoice_lifecycle.finalize_draft(world.ports, FINANCE, draft(world, acme).id)
    assert world.publish_outbox() != []  # the publisher reports the batch failed: Lambda retries it
    assert world.ports.publisher.events == []
    with pytest.raises(ConflictError):  # the client's retry: the invoice is finalized, once
        invoice_lifecycle.finalize_draft(world.ports, FINANCE, invoice.id)
    world.ports.publisher.failing = False
    assert world.publish_outbox() == []
    finalized = [e for e in world.ports.publisher.events if e["type"] == "invoice.finalized"]
    assert [e["data"]["invoice_id"] for e in finalized] == [invoice.id]
    assert world.ports.repo.get_invoice(invoice.id).number == invoice.number
    published = len(world.ports.publisher.events)
    assert world.publish_outbox() == [] and len(world.ports.publisher.events) == published  # checkpointed


# -- payments recorded once --------------------------------------------------------------------

def commit_then_fail(world):
    """The store commits the next transaction, then the request fails (a timeout, a lost response)."""
    store, commit = world.ports.repo.store, world.ports.repo.store.transact

    def transact(*args, **kwargs):
        commit(*args, **kwargs)
        store.transact = commit
        raise TimeoutError("the response was lost after the commit")

    store.transact = transact


def test_a_payment_retried_after_a_failure_after_its_commit_is_recorded_once(world):
    acme = customer(world)
    invoice = invoice_lifecycle.finalize_draft(world.ports, FINANCE, draft(world, acme).id)
    body = PaymentCreate(invoice_id=invoice.id, amount="30.00")
    commit_then_fail(world)
    with pytest.raises(TimeoutError):
        invoice_lifecycle.record_payment(world.ports, FINANCE, body, request_key="pay-1")
    again = invoice_lifecycle.record_payment(world.ports, FINANCE, body, request_key="pay-1")
    stored = world.ports.repo.get_invoice(invoice.id)
    assert (stored.amount_paid, stored.amount_remaining) == (Decimal("30.00"), Decimal("70.00"))
    assert [e["data"]["payment"]["id"] for e in world.outbox() if e["type"] == "payment.succeeded"] == [again["id"]]
    # another payment (another key) of the same amount is another payment
    invoice_lifecycle.record_payment(world.ports, FINANCE, body, request_key="pay-2")
    assert world.ports.repo.get_invoice(invoice.id).amount_paid == Decimal("60.00")


def test_the_same_payment_entered_twice_is_recorded_once(world):
    acme = customer(world)
    invoice = invoice_lifecycle.finalize_draft(world.ports, FINANCE, draft(world, acme).id)
    body = PaymentCreate(invoice_id=invoice.id, amount="100.00", reference="BANK-7781", received_on="2025-04-02")
    first = invoice_lifecycle.record_payment(world.ports, FINANCE, body)
    assert invoice_lifecycle.record_payment(world.ports, FINANCE, body) == first  # paid invoice: no 409 either
    stored = world.ports.repo.get_invoice(invoice.id)
    assert (stored.status, stored.amount_paid) == ("paid", Decimal("100.00"))


# -- consumers are idempotent by event id --------------------------------------------------------

def test_an_event_delivered_twice_reaches_each_webhook_endpoint_once(world):
    endpoint(world, "good")
    post = Receiver(good=[200])
    assert webhooks.dispatch(world.ports, ENVELOPE, post, attempt=1) == 1
    assert webhooks.dispatch(world.ports, ENVELOPE, post, attempt=1) == 0  # the outbox published it again
    assert post.hosts() == ["good"]


# -- (d) the bill run announces an invoice before rendering and delivering it ------------------

def test_a_bill_run_invoice_is_announced_by_its_finalization_whatever_deliver_does(world):
    from datetime import date

    from shared.services.billing import invoice_account

    acme = customer(world)
    plan(world, "ms", "100.00")
    at(world, "2025-04-01")
    subscribe(world, acme, "ms", "2025-04-01")
    invoice = invoice_account(world.ports, SYSTEM, acme, date(2025, 4, 1), bill_run_id="br_sched_20250401")
    # InvoiceAccount is the only step that ran: RenderPdf and Deliver may fail, the event is committed
    (finalized,) = [e for e in world.outbox() if e["type"] == "invoice.finalized"]
    assert finalized["data"] == {"invoice_id": invoice.id, "customer_id": acme, "bill_run_id": "br_sched_20250401",
                                 "origin": "bill_run"}  # rule DocumentIssue leaves it to the bill run's steps
    assert world.ports.repo.get_invoice(invoice.id).delivery_status is None


# -- the publisher function ------------------------------------------------------------------------

class RefusingBus:
    """EventBridge answering PutEvents with FailedEntryCount for the envelopes whose id is in `refuse`."""

    def __init__(self, refuse=()):
        self.refuse, self.entries = set(refuse), []

    def put_events(self, Entries):
        self.entries += Entries
        results = [{"ErrorCode": "InternalFailure"} if json.loads(e["Detail"])["id"] in self.refuse
                   else {"EventId": "x"} for e in Entries]
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def test_outbox_publish_puts_the_stream_sample_on_the_bus_and_reports_the_first_refused_record():
    from functions.outbox_publish.handler import handler
    from shared.adapters.aws import EventBridgePublisher

    event = json.loads((ROOT / "events" / "dynamodb" / "outbox_stream.json").read_text())

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "outbox_publish", 256, "req"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:outbox_publish"

    bus = RefusingBus()
    ports = Ports(repo=None, clock=None, publisher=EventBridgePublisher("bus", client=bus))
    assert handler(event, Context(), ports=ports) == {"batchItemFailures": []}
    assert [(e["DetailType"], e["Source"], e["EventBusName"]) for e in bus.entries] == [
        ("invoice.finalized", "billing", "bus"), ("payment.succeeded", "billing", "bus")]
    assert json.loads(bus.entries[0]["Detail"])["data"]["origin"] == "bill_run"
    refusing = RefusingBus(refuse={"evt_sample2"})
    ports.publisher = EventBridgePublisher("bus", client=refusing)
    second = event["Records"][1]["dynamodb"]["SequenceNumber"]
    assert handler(event, Context(), ports=ports) == {"batchItemFailures": [{"itemIdentifier": second}]}
