"""Attachments of invoices and credit notes, on moto."""

from __future__ import annotations

import base64
import email
import hashlib
from email import policy

import pytest

from shared.billing.errors import ConflictError, ValidationError
from shared.billing.invoicing import content_hash
from shared.services import attachments, invoice_lifecycle
from shared.services.context import SYSTEM
from shared.services.requests.invoices import AttachmentCreate, StatusChange
from tests.unit.moto_ports import moto_world
from tests.unit.test_contract_life import bill, customer, plan, subscribe

PDF = b"%PDF-1.7\n% timesheet\n"


@pytest.fixture
def issued():
    with moto_world() as world:
        acme = customer(world)
        plan(world, "ms", "30.00")
        subscribe(world, acme, "ms", "2025-04-01")
        yield world, bill(world, acme, "2025-04-01")


def attach(world, invoice_id, content=PDF, **fields):
    body = {"filename": "timesheet-2025-04.pdf", "content_type": "application/pdf",
            "content_base64": base64.b64encode(content).decode()} | fields
    return attachments.add_attachment(world.ports, SYSTEM, invoice_id, AttachmentCreate(**body))


def test_a_finalized_invoice_takes_a_file_kept_with_its_hash_outside_the_content_hash(issued):
    world, invoice = issued
    added = attach(world, invoice.id)
    assert (added.size, added.sha256) == (len(PDF), hashlib.sha256(PDF).hexdigest())
    stored = world.ports.repo.get_invoice(invoice.id)
    assert [a.id for a in stored.attachments] == [added.id]
    assert content_hash(stored) == stored.content_hash == invoice.content_hash  # the chain still verifies
    assert attachments.read_attachment(world.ports, invoice.id, added.id) == (added, PDF)
    assert attachments.attachment_files(world.ports, stored) == [("timesheet-2025-04.pdf", PDF, "application/pdf")]
    audit, _ = world.ports.repo.list_audit(10, None, object_id=invoice.id)
    assert audit[0].action == "invoice.attachment_added" and audit[0].after["sha256"] == added.sha256


@pytest.mark.parametrize(("fields", "param"), [
    ({"content_base64": "not base64!"}, "content_base64"),
    ({"content_type": "image/png"}, "content_type"),  # the bytes are a PDF
    ({"content_type": "application/x-msdownload"}, "content_type"),
    ({"filename": "../../etc/passwd"}, "filename"),
])
def test_bad_files_are_refused_naming_the_field_and_nothing_is_stored(issued, fields, param):
    world, invoice = issued
    with pytest.raises(ValidationError) as refused:
        attach(world, invoice.id, **fields)
    assert refused.value.param == param
    assert world.ports.repo.get_invoice(invoice.id).attachments == []


def test_a_void_invoice_takes_no_attachment(issued):
    world, invoice = issued
    invoice_lifecycle.void_invoice(world.ports, SYSTEM, invoice.id, StatusChange(reason="issued in error"))
    with pytest.raises(ConflictError):
        attach(world, invoice.id)



def test_attachments_travel_with_the_invoice_email(issued):
    from shared.services import delivery

    world, invoice = issued
    world.ports.documents.put(f"invoices/{invoice.id}.pdf", PDF, "application/pdf")
    stored = world.ports.repo.get_invoice(invoice.id)
    stored.pdf_key = f"invoices/{invoice.id}.pdf"
    world.ports.repo.update_invoice(stored)
    attach(world, invoice.id, content=b"day,hours\n2025-04-01,8\n", filename="hours.csv", content_type="text/csv")
    delivery.resend(world.ports, SYSTEM, invoice.id, delivery.email_composer(None))
    (sent,) = world.sent()
    message = email.message_from_string(sent.raw_data, policy=policy.default)
    assert [a.get_filename() for a in message.iter_attachments()] == [f"{invoice.number}.pdf", "hours.csv"]


def test_attachments_that_would_not_fit_one_email_are_refused(issued, monkeypatch):
    world, invoice = issued
    monkeypatch.setattr(attachments, "MAX_TOTAL_BYTES", len(PDF) + 5)
    attach(world, invoice.id)
    with pytest.raises(ConflictError) as refused:
        attach(world, invoice.id, filename="second.pdf")
    assert refused.value.code == "attachments_too_large"
