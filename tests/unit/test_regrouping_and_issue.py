"""Consolidation and splitting (seed 001 §1.2), grouping per customer or per subscription in the bill
run, branding snapshots, documents issued outside the bill run and draft previews, on moto."""

from __future__ import annotations

import base64
import email
import json
from datetime import date
from decimal import Decimal
from email import policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.aws import LambdaPreviews
from shared.adapters.dynamodb import Delete
from shared.billing.errors import ConflictError, NotFoundError, ValidationError
from shared.billing.invoicing import content_hash
from shared.billing.models import DocumentLink, Invoice, InvoiceLine
from shared.services import bill_runs, invoice_lifecycle, regrouping
from shared.services.catalog import get_entity, update_customer, update_entity
from shared.services.context import SYSTEM
from shared.services.requests.catalog import BillingEntityUpdate, CustomerUpdate
from shared.services.requests.invoices import InvoiceMerge, InvoiceSplit, ManualInvoiceCreate, RebillRequest
from tests.documents.document_fixtures import make_invoice
from tests.unit.moto_ports import moto_world
from tests.unit.test_contract_life import at, bill, customer, plan, subscribe


@pytest.fixture
def world():
    with moto_world() as world:
        yield world


def draft(world, acme: str, *lines: tuple[str, str, dict], **extra) -> Invoice:
    return invoice_lifecycle.create_draft(world.ports, SYSTEM, ManualInvoiceCreate(customer_id=acme, lines=[
        {"description": d, "unit_price": a, "attributes": attrs} for d, a, attrs in lines], **extra))


# the hash chain across versions -----------------------------------------------------------------
def test_documents_finalized_before_the_new_fields_existed_still_verify():
    invoice = make_invoice()
    before = invoice.model_dump(mode="json", exclude={"branding", "related", "replaced_by"})
    for line in before["lines"]:
        line.pop("attributes")
    old = Invoice.model_validate(before)  # as read back today: the new fields at their defaults
    assert content_hash(old) == content_hash(invoice)
    invoice.replaced_by.append("inv_other")  # set after finalization: outside the hash
    assert content_hash(invoice) == content_hash(old)
    invoice.related = [DocumentLink(relation="corrects", id="inv_1", number="N-1")]
    assert content_hash(invoice) != content_hash(old)  # but a link is content


# the bill run: one invoice per customer, or per subscription -------------------------------------
def test_a_customer_is_invoiced_once_per_bill_date_unless_it_asks_for_one_invoice_per_subscription(world):
    together, apart = customer(world, "Together"), customer(world, "Apart")
    plan(world, "ms", "30.00")
    plan(world, "esp", "12.00")
    for who in (together, apart):
        subscribe(world, who, "ms", "2025-04-01")
        subscribe(world, who, "esp", "2025-04-01")
    update_customer(world.ports, SYSTEM, apart, CustomerUpdate(invoice_grouping="subscription"))
    at(world, "2025-04-01")
    due = bill_runs.list_due(world.ports, SYSTEM, {"as_of": "2025-04-01"})["accounts"]
    accounts = [(a["customer_id"], "subscription_id" in a) for a in due]
    assert sorted(accounts) == sorted([(apart, True), (apart, True), (together, False)])
    from shared.services.billing import invoice_account

    issued = [invoice_account(world.ports, SYSTEM, a["customer_id"], date(2025, 4, 1), a["bill_run_id"],
                              subscription_id=a.get("subscription_id")) for a in due]
    by_customer = {}
    for invoice in issued:
        by_customer.setdefault(invoice.customer_id, []).append(invoice.total)
    assert sorted(by_customer[apart]) == [Decimal("12.00"), Decimal("30.00")]
    assert by_customer[together] == [Decimal("42.00")]
    again = [invoice_account(world.ports, SYSTEM, a["customer_id"], date(2025, 4, 1), a["bill_run_id"],
                             subscription_id=a.get("subscription_id")) for a in due]
    assert [i.id for i in again] == [i.id for i in issued]  # a retried step gets its own invoice back


def test_customer_updates_are_checked_with_the_creation_rules_and_audited(world):
    acme = customer(world)
    with pytest.raises(ValidationError) as bad:
        update_customer(world.ports, SYSTEM, acme, CustomerUpdate(language="xx-nope"))
    assert bad.value.param == "language"
    with pytest.raises(ValidationError) as removed:
        update_customer(world.ports, SYSTEM, acme, CustomerUpdate.model_validate({"email": None}))
    assert removed.value.param == "email"
    changed = update_customer(world.ports, SYSTEM, acme, CustomerUpdate(document_format="facturx", language="de"))
    assert (changed.document_format, changed.language, changed.version) == ("facturx", "de", 2)
    audit, _ = world.ports.repo.list_audit(5, None, object_id=acme)
    assert audit[0].action == "customer.updated" and audit[0].before["language"] == "en"


# branding -----------------------------------------------------------------------------------------
def test_a_document_keeps_the_branding_it_was_issued_with(world):
    acme = customer(world)
    first = draft(world, acme, ("Audit", "100.00", {}))
    entity = get_entity(world.ports, first.billing_entity_id)
    update_entity(world.ports, SYSTEM, entity.id, BillingEntityUpdate(accent_color="#aa0000"))
    assert first.branding.accent_color == "#1f4e79"
    assert world.ports.repo.get_invoice(first.id).branding.accent_color == "#1f4e79"
    final = invoice_lifecycle.finalize_draft(world.ports, SYSTEM, first.id)
    assert final.branding.accent_color == "#aa0000"  # finalization takes the entity as it is that day
    update_entity(world.ports, SYSTEM, entity.id, BillingEntityUpdate(accent_color="#00aa00"))
    assert world.ports.repo.get_invoice(final.id).branding.accent_color == "#aa0000"


# merge, split, re-bill ----------------------------------------------------------------------------
def test_merge_keeps_every_line_and_names_the_drafts_it_replaces(world):
    acme = customer(world)
    a = draft(world, acme, ("Consulting", "1000.00", {}), custom_fields={"po_number": "PO-1", "project": "alpha"})
    b = draft(world, acme, ("Subscription", "250.00", {}), custom_fields={"po_number": "PO-1", "project": "beta"})
    merged = regrouping.merge_drafts(world.ports, SYSTEM, InvoiceMerge(invoice_ids=[a.id, b.id]))
    assert (merged.subtotal, merged.custom_fields) == (Decimal("1250.00"), {"po_number": "PO-1"})
    assert [(ln.description, ln.attributes) for ln in merged.lines] == [
        ("Consulting", {"project": "alpha"}), ("Subscription", {"project": "beta"})]
    assert [(r.relation, r.id) for r in merged.related] == [("merged_from", a.id), ("merged_from", b.id)]
    assert world.ports.repo.get_invoice(a.id) is None and world.ports.repo.get_invoice(b.id) is None
    audit, _ = world.ports.repo.list_audit(10, None, object_id=a.id)
    assert audit[0].action == "invoice.draft_merged" and audit[0].after == {"merged_into": merged.id}


@pytest.mark.parametrize(("body", "param"), [
    ({"invoice_ids": ["X", "X"]}, "invoice_ids"),
    ({"invoice_ids": ["FIRST", "inv_missing"]}, "invoice_ids[1]"),
])
def test_a_bad_merge_names_the_draft_and_writes_nothing(world, body, param):
    acme = customer(world)
    first = draft(world, acme, ("Consulting", "10.00", {}))
    ids = [first.id if i in ("X", "FIRST") else i for i in body["invoice_ids"]]
    with pytest.raises((ValidationError, NotFoundError)) as refused:
        regrouping.merge_drafts(world.ports, SYSTEM, InvoiceMerge(invoice_ids=ids))
    assert refused.value.param == param
    assert world.ports.repo.get_invoice(first.id).status == "draft"


def test_a_finalized_invoice_is_not_merged_or_split_but_re_billed(world):
    acme = customer(world)
    final = invoice_lifecycle.finalize_draft(world.ports, SYSTEM, draft(world, acme, ("Audit", "80.00", {})).id)
    other = draft(world, acme, ("Audit", "20.00", {}))
    with pytest.raises(ConflictError) as refused:
        regrouping.merge_drafts(world.ports, SYSTEM, InvoiceMerge(invoice_ids=[other.id, final.id]))
    assert (refused.value.code, refused.value.param) == ("not_a_draft", "invoice_ids[1]")
    note, copy = regrouping.rebill(world.ports, SYSTEM, final.id, RebillRequest(reason="wrong PO"))
    assert (note.kind, note.total, note.credit_note_of) == ("credit_note", Decimal("-80.00"), final.id)
    assert (copy.status, copy.total, copy.related[0].relation, copy.related[0].number) == (
        "draft", Decimal("80.00"), "rebill_of", final.number)
    stored = world.ports.repo.get_invoice(final.id)
    assert (stored.status, stored.amount_remaining, stored.replaced_by) == ("paid", Decimal("0.00"), [copy.id])
    assert content_hash(stored) == stored.content_hash  # re-billing changes no finalized content
    kinds = [e["data"].get("origin") for e in world.outbox() if e["type"] == "invoice.finalized"]
    assert kinds == ["api", "api"]  # the invoice, then its credit note: both rendered and sent by document_issue


def test_split_by_line_lists_must_place_every_line_once(world):
    acme = customer(world)
    parent = draft(world, acme, ("A", "1.00", {}), ("B", "2.00", {}), ("C", "3.00", {}))
    for groups, param in [([[0, 1], [1, 2]], "lines[1][0]"), ([[0], [1]], "lines"), ([[0, 5], [1, 2]], "lines[0][1]")]:
        with pytest.raises(ValidationError) as refused:
            regrouping.split_draft(world.ports, SYSTEM, parent.id, InvoiceSplit(lines=groups))
        assert refused.value.param == param
    with pytest.raises(ValidationError) as two_ways:
        regrouping.split_draft(world.ports, SYSTEM, parent.id, InvoiceSplit(by="project", lines=[[0], [1, 2]]))
    assert two_ways.value.param == "by"
    with pytest.raises(ValidationError) as same:
        regrouping.split_draft(world.ports, SYSTEM, parent.id, InvoiceSplit(by="project"))
    assert same.value.param == "by"
    children = regrouping.split_draft(world.ports, SYSTEM, parent.id, InvoiceSplit(lines=[[2], [0, 1]]))
    assert [[ln.description for ln in c.lines] for c in children] == [["C"], ["A", "B"]]


def test_a_draft_changed_meanwhile_is_not_removed(world):
    acme = customer(world)
    stale = draft(world, acme, ("A", "1.00", {}), ("B", "2.00", {}))
    invoice_lifecycle.finalize_draft(world.ports, SYSTEM, stale.id)  # numbered after `stale` was read
    with pytest.raises(ConflictError):
        world.ports.repo.store.transact([Delete(f"INV#{stale.id}", "A", expected_version=stale.version)])
    assert world.ports.repo.get_invoice(stale.id).status == "finalized"


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)


@st.composite
def shares(draw) -> list[Decimal]:
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=9999), min_size=1, max_size=5)))
    points = [0, *cuts, 10000]
    return [Decimal(b - a) / 100 for a, b in zip(points, points[1:], strict=False)]


@settings(max_examples=200, deadline=None)
@given(line_amounts=st.lists(amounts, min_size=1, max_size=6), split=shares())
def test_a_split_by_percentage_loses_and_adds_no_cent(line_amounts, split):
    parent = make_invoice(status="draft", lines=[
        InvoiceLine(description=f"L{i}", quantity=Decimal(3), unit_price=a, amount=a, currency="USD")
        for i, a in enumerate(line_amounts)])
    children = regrouping._by_percentage(parent, split)
    for index, amount in enumerate(line_amounts):
        parts = [child[index].amount for child in children]
        assert sum(parts) == amount  # every line: the children add up to it exactly
        assert all(p == p.quantize(Decimal("0.01")) for p in parts)
        for part, share in zip(parts[:-1], split[:-1], strict=True):
            assert abs(part - amount * share / 100) <= Decimal("0.005")  # rounded once, half up


def test_percentages_must_add_up_to_100(world):
    acme = customer(world)
    parent = draft(world, acme, ("A", "10.00", {}))
    with pytest.raises(ValidationError) as refused:
        regrouping.split_draft(world.ports, SYSTEM, parent.id, InvoiceSplit(percentages=["50", "40"]))
    assert refused.value.param == "percentages"


# documents outside the bill run --------------------------------------------------------------------
class Context:
    function_name, memory_limit_in_mb, aws_request_id = "document", 2048, "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:document"


def envelope(data: dict) -> dict:
    return {"id": "e1", "source": "billing", "detail-type": "invoice.finalized", "account": "123456789012",
            "time": "2025-04-01T00:00:00Z", "region": "us-east-1", "resources": [], "version": "0",
            "detail": {"id": "evt_1", "type": "invoice.finalized", "version": "1",
                       "occurred_at": "2025-04-01T00:00:00Z", "data": data}}


def test_document_issue_renders_and_sends_api_documents_and_leaves_bill_run_ones(world):
    from functions.document_issue.handler import handler

    acme = customer(world)
    plan(world, "ms", "30.00")
    subscribe(world, acme, "ms", "2025-04-01")
    by_run = bill(world, acme, "2025-04-01")
    skipped = handler(envelope({"invoice_id": by_run.id, "bill_run_id": "br_1", "origin": "bill_run"}),
                      Context(), ports=world.ports)
    assert "skipped" in skipped and world.ports.repo.get_invoice(by_run.id).pdf_key is None
    note = invoice_lifecycle.create_credit_note(world.ports, SYSTEM, invoice_lifecycle.CreditNoteCreate(
        invoice_id=by_run.id, reason="goodwill", lines=[{"line": 0, "amount": "5.00"}]))
    done = handler(envelope({"invoice_id": note.id, "bill_run_id": None, "origin": "api"}), Context(),
                   ports=world.ports)
    assert done["delivery_status"] == "sent" and done["pdf_key"].endswith(f"{note.number}.pdf")
    assert world.ports.documents.get(done["pdf_key"]).startswith(b"%PDF")
    (sent,) = world.sent()
    mail = email.message_from_string(sent.raw_data, policy=policy.default)
    assert mail["Subject"].startswith(f"Credit note {note.number}") and by_run.number in mail["Subject"]
    assert [p.get_filename() for p in mail.iter_attachments()] == [f"{note.number}.pdf"]
    again = handler(envelope({"invoice_id": note.id, "bill_run_id": None, "origin": "api"}), Context(),
                    ports=world.ports)
    assert again["delivery_status"] == "sent" and len(world.sent()) == 1  # EventBridge may deliver twice


def test_document_preview_returns_refusals_and_the_adapter_raises_them_again(world):
    from functions.document_preview.handler import handler

    acme = customer(world)
    created = draft(world, acme, ("Audit", "100.00", {}))
    rendered = handler({"invoice_id": created.id, "mode": "proforma"}, Context(), ports=world.ports)
    assert base64.b64decode(rendered["pdf_base64"]).startswith(b"%PDF")
    final = invoice_lifecycle.finalize_draft(world.ports, SYSTEM, created.id)
    refused = handler({"invoice_id": final.id, "mode": "preview"}, Context(), ports=world.ports)
    assert refused["error"]["status"] == 409 and refused["error"]["code"] == "invoice_finalized"

    class Lambda:
        def invoke(self, FunctionName, Payload):  # noqa: N803 (boto3's names)
            body = json.dumps(handler(json.loads(Payload), Context(), ports=world.ports)).encode()
            return {"Payload": type("Body", (), {"read": lambda self: body})()}

    previews = LambdaPreviews("document_preview", client=Lambda())
    with pytest.raises(ConflictError) as again:
        previews.render(final.id, "preview")
    assert again.value.code == "invoice_finalized"
    with pytest.raises(NotFoundError):
        previews.render("inv_missing", "preview")
