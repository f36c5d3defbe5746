"""An invoice's life after the bill run: one-off drafts, finalization, payments, void, uncollectible,
credit notes (the only correction of a finalized document) and the verification of the hash chain.

Status moves: draft -> finalized -> paid | void | uncollectible; uncollectible -> paid | void.
A finalized document's content never changes (its hash covers it); what changes (status, its
history, payments, credits) is kept beside the content and left out of the hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from shared.adapters.dynamodb import Delete, Item, Put, audit_item
from shared.billing.credits import credit_by_line
from shared.billing.errors import ConflictError, NotFoundError, ValidationError
from shared.billing.invoicing import CREDIT_LINE, CREDIT_NOTE_NOTE, content_hash, totals
from shared.billing.models import DocumentLink, Invoice, InvoiceLine, TaxLine
from shared.billing.money import ZERO, round_money
from shared.services.billing import buyer_snapshot, check_credit_note_limits, finalize_document, seller_snapshot
from shared.services.catalog import get_customer, get_entity
from shared.services.context import Actor, Ports, as_updated
from shared.services.ids import new_id
from shared.services.requests.invoices import CreditNoteCreate, ManualInvoiceCreate, PaymentCreate, StatusChange
from shared.services.taxes import CreditedTax, apply_tax

ATTEMPTS = 5


def get_document(ports: Ports, document_id: str, kind: str = "invoice", param: str = "id") -> Invoice:
    document = ports.repo.get_invoice(document_id)
    if document is None or document.kind != kind:
        raise NotFoundError(f"no {kind.replace('_', ' ')} '{document_id}'", param=param)
    return document


# one-off invoices -------------------------------------------------------------------------
def create_draft(ports: Ports, actor: Actor, body: ManualInvoiceCreate) -> Invoice:
    """A one-off invoice with manual lines, kept as a draft (no number) until finalized."""
    actor.require("invoices:write")
    customer = get_customer(ports, body.customer_id, param="customer_id")
    entity = get_entity(ports, customer.billing_entity, param="billing_entity")
    today = ports.clock.now().date()
    lines = []
    for index, line in enumerate(body.lines):
        amount = round_money(line.quantity * line.unit_price, customer.currency)
        if line.period_end and line.period_start and line.period_end <= line.period_start:
            raise ValidationError("period_end is exclusive and must be after period_start",
                                  param=f"lines[{index}].period_end")
        lines.append(InvoiceLine(kind="manual", description=line.description, quantity=line.quantity,
                                 unit_price=line.unit_price, amount=amount, currency=customer.currency,
                                 period_start=line.period_start or today,
                                 period_end=line.period_end or (line.period_start or today) + timedelta(days=1),
                                 gl_code=line.gl_code, tax_code=line.tax_code, attributes=line.attributes))
    draft = Invoice(id=new_id("inv"), status="draft", customer_id=customer.id, billing_entity_id=entity.id,
                    currency=customer.currency, language=customer.language, issue_date=today,
                    due_date=today + timedelta(days=customer.net_terms_days), lines=lines,
                    notes=list(body.notes), custom_fields=body.custom_fields, seller=seller_snapshot(entity),
                    buyer=buyer_snapshot(customer), branding=entity.branding, created_at=ports.clock.now(),
                    **totals(lines, ZERO, customer.currency))
    apply_tax(ports.tax, entity, customer, draft)
    ports.repo.store_lines(draft)
    ports.repo.store.transact([Put(ports.repo.invoice_item(draft))],
                              [ports.audit(actor, "invoice.draft_created", "invoice", draft.id, after=draft)])
    return draft


def finalize_draft(ports: Ports, actor: Actor, invoice_id: str) -> Invoice:
    """Number the draft, dated today, its tax recomputed for today."""
    actor.require("invoices:write")
    for _ in range(ATTEMPTS):
        draft = get_document(ports, invoice_id)
        if draft.status != "draft":
            raise ConflictError(f"invoice {draft.number or draft.id} is {draft.status}, not a draft",
                                code="not_a_draft")
        customer = get_customer(ports, draft.customer_id)
        entity = get_entity(ports, draft.billing_entity_id)
        today = ports.clock.now().date()
        draft.issue_date, draft.due_date = today, today + timedelta(days=customer.net_terms_days)
        draft.seller, draft.buyer, draft.branding = seller_snapshot(entity), buyer_snapshot(customer), entity.branding
        draft.notes = [n for n in draft.notes if not tax_note(n)]
        apply_tax(ports.tax, entity, customer, draft)
        expected = draft.version
        try:
            finalize_document(ports, actor, draft, entity, [], expected_version=expected)
        except ConflictError:
            continue  # another document of the series was numbered meanwhile
        draft.version = expected + 1
        return draft
    raise ConflictError("the invoice series kept changing; retry", code="concurrent_modification")


def tax_note(note: str) -> bool:
    """Wording the tax step writes onto a draft: written again whenever its tax is computed again."""
    return note.startswith(("Exchange rate:", "For information only", "No sales tax", "Reverse charge"))


def delete_draft(ports: Ports, actor: Actor, invoice_id: str) -> None:
    """A draft has no number yet, so it may go; a finalized document never does."""
    actor.require("invoices:write")
    draft = get_document(ports, invoice_id)
    if draft.status != "draft":
        raise ConflictError(f"invoice {draft.number} is finalized: correct it with a credit note",
                            code="finalized_documents_are_kept")
    ports.repo.store.transact([Delete(f"INV#{draft.id}", "A", expected_version=draft.version)],
                              [ports.audit(actor, "invoice.draft_deleted", "invoice", draft.id, before=draft)])


# status changes ---------------------------------------------------------------------------
def void_invoice(ports: Ports, actor: Actor, invoice_id: str, body: StatusChange) -> Invoice:
    """Void a finalized invoice nobody paid or credited; its number stays used and visible."""
    actor.require("invoices:write")
    invoice = get_document(ports, invoice_id)
    if invoice.status not in ("finalized", "uncollectible"):
        raise ConflictError(f"a {invoice.status} invoice cannot be voided", code="invalid_status")
    if invoice.amount_paid or invoice.credits:
        raise ConflictError("payments or credit notes are recorded against this invoice: credit it instead",
                            code="invalid_status")
    if invoice.balance_applied or invoice.balance_credited:
        raise ConflictError("this invoice moved the customer's credit balance: credit it instead",
                            code="invalid_status")
    return _move(ports, actor, invoice, "void", body.reason, amount_remaining=ZERO)


def mark_uncollectible(ports: Ports, actor: Actor, invoice_id: str, body: StatusChange) -> Invoice:
    actor.require("invoices:write")
    invoice = get_document(ports, invoice_id)
    if invoice.status != "finalized":
        raise ConflictError(f"a {invoice.status} invoice cannot become uncollectible", code="invalid_status")
    return _move(ports, actor, invoice, "uncollectible", body.reason)


def _move(ports: Ports, actor: Actor, invoice: Invoice, status: str, reason: str | None, **changes) -> Invoice:
    before = invoice.model_copy(deep=True)
    invoice.status = status
    invoice.status_history.append({"status": status, "at": ports.clock.now().isoformat(), "by": actor.name,
                                   "reason": reason})
    for name, value in changes.items():
        setattr(invoice, name, value)
    _save(ports, invoice, [ports.audit(actor, f"invoice.{status}", "invoice", invoice.id, before, invoice)],
          events=[ports.event(actor, f"invoice.{'voided' if status == 'void' else status}",
                              {"invoice": as_updated(invoice)})])
    return invoice


def _save(ports: Ports, invoice: Invoice, audit: list, also: list | None = None, events: list[dict] = ()) -> None:
    expected = invoice.version
    try:
        ports.repo.store.transact([ports.repo.invoice_put(invoice, expected), *(also or [])], audit, events)
    except ConflictError:
        raise ConflictError(f"invoice {invoice.number} changed meanwhile; read it again and retry",
                            code="concurrent_modification") from None
    invoice.version = expected + 1


# payments -----------------------------------------------------------------------------------
def record_payment(ports: Ports, actor: Actor, body: PaymentCreate, request_key: str | None = None) -> dict:
    """A payment received outside the platform (transfer, check): it settles the invoice's remainder.

    Recorded once: a retry of the request (same `request_key`, the Idempotency-Key) or the same payment
    entered again (same invoice, reference, amount, day and method) returns the payment already recorded.
    Its key items are written in the payment's transaction, so this holds under concurrency too."""
    actor.require("invoices:write")
    keys = _payment_keys(actor, body, request_key, (body.received_on or ports.clock.now().date()).isoformat())
    recorded = _recorded_payment(ports, keys)
    if recorded is not None:
        return recorded
    invoice = get_document(ports, body.invoice_id, param="invoice_id")
    if invoice.status not in ("finalized", "uncollectible"):
        raise ConflictError(f"a {invoice.status} invoice takes no payment", param="invoice_id", code="invalid_status")
    if round_money(body.amount, invoice.currency) != body.amount:
        raise ValidationError(f"{invoice.currency} amounts have at most the currency's decimals", param="amount")
    remaining = invoice.left_to_pay()
    if body.amount > remaining:
        raise ValidationError(f"the invoice has {remaining} {invoice.currency} left to pay", param="amount")
    payment = {"id": new_id("pay"), "invoice_id": invoice.id, "amount": format(body.amount, "f"),
               "currency": invoice.currency, "received_on": (body.received_on or ports.clock.now().date()).isoformat(),
               "method": body.method, "reference": body.reference, "recorded_by": actor.name,
               "created_at": ports.clock.now().isoformat()}
    before = invoice.model_copy(deep=True)
    invoice.amount_paid += body.amount
    invoice.amount_remaining = remaining - body.amount
    if invoice.amount_remaining == 0:
        invoice.status = "paid"
        invoice.status_history.append({"status": "paid", "at": ports.clock.now().isoformat(), "by": actor.name,
                                       "reason": f"payment {payment['id']}"})
    record = Item(f"PAY#{payment['id']}", "A", "payment", payment, 1,
                  {"gsi1": (f"INV#{invoice.id}", f"PAY#{payment['id']}")})
    try:
        _save(ports, invoice, [ports.audit(actor, "payment.recorded", "invoice", invoice.id, before, invoice)],
              [Put(record), *(Put(Item(key, "A", "payment_key", {"payment_id": payment["id"]})) for key in keys)],
              [ports.event(actor, "payment.succeeded", {"payment": payment, "invoice_id": invoice.id})])
    except ConflictError:
        recorded = _recorded_payment(ports, keys)  # the same payment, recorded meanwhile by a concurrent copy
        if recorded is None:
            raise
        return recorded
    return payment


def _payment_keys(actor: Actor, body: PaymentCreate, request_key: str | None, received_on: str) -> list[str]:
    """What makes a payment the same one: the request's Idempotency-Key (per caller), and the payment
    itself when it has a reference (invoice, reference, amount, day received, method)."""
    keys = []
    if request_key:
        keys.append("request#" + hashlib.sha256(f"{actor.name}|{request_key}".encode()).hexdigest())
    if body.reference:
        same = f"{body.invoice_id}|{body.reference}|{format(body.amount, 'f')}|{received_on}|{body.method}"
        keys.append("payment#" + hashlib.sha256(same.encode()).hexdigest())
    return [f"PAYKEY#{key}" for key in keys]


def _recorded_payment(ports: Ports, keys: list[str]) -> dict | None:
    for key in keys:
        item = ports.repo.store.get(key, "A")
        if item is not None:
            payment = ports.repo.store.get(f"PAY#{item.data['payment_id']}", "A")
            return payment.data if payment else None
    return None


# credit notes -------------------------------------------------------------------------------
def create_credit_note(ports: Ports, actor: Actor, body: CreditNoteCreate,
                       rebill: Callable[[Invoice], tuple[Invoice, list]] | None = None) -> Invoice:
    """A credit note against a finalized invoice, numbered in its own series and finalized at once.

    Each credited line names the invoice line and a net amount up to what is left uncredited on
    it; the lines reducing it (discounts) are credited in proportion, and the tax per rate is taken
    from the invoice's (shared.billing.credits): credits add up to the invoice exactly. The
    invoice records the credit (amount_credited, amount_remaining) in the same transaction.
    `rebill(invoice)` gives a draft to issue in the invoice's place and what to write with it
    (services/regrouping.py), in that same transaction.
    """
    actor.require("invoices:write")
    for _ in range(ATTEMPTS):
        invoice = get_document(ports, body.invoice_id, param="invoice_id")
        if invoice.status not in ("finalized", "paid", "uncollectible"):
            raise ConflictError(f"a {invoice.status} invoice cannot be credited", param="invoice_id",
                                code="invalid_status")
        credited = _credited_by_line(invoice)
        wanted = credit_by_line(invoice.lines, credited, _credit_request(invoice, body, credited), invoice.currency)
        check_credit_note_limits(ports, invoice, wanted)  # periods credited since for unused time
        customer = get_customer(ports, invoice.customer_id)
        entity = get_entity(ports, invoice.billing_entity_id)
        lines = [invoice.lines[i].model_copy(update={
            "kind": "credit", "amount": -amount, "quantity": Decimal(1), "unit_price": -amount,
            "credited_line": i,
            "description": CREDIT_LINE.format(description=invoice.lines[i].description)})
            for i, amount in sorted(wanted.items())]
        today = ports.clock.now().date()
        note = Invoice(id=new_id("cn"), kind="credit_note", status="draft", credit_note_of=invoice.id,
                       reason=body.reason, customer_id=invoice.customer_id, billing_entity_id=entity.id,
                       currency=invoice.currency, language=invoice.language, issue_date=today, due_date=today,
                       lines=lines, notes=[CREDIT_NOTE_NOTE.format(number=invoice.number, date=invoice.issue_date,
                                                                   reason=body.reason)],
                       seller=invoice.seller, buyer=invoice.buyer,
                       custom_fields=dict(invoice.custom_fields),  # the buyer's PO and project, as invoiced
                       branding=invoice.branding, related=[corrects(invoice)],
                       created_at=ports.clock.now(), **totals(lines, ZERO, invoice.currency))
        completes = all(credited.get(i, ZERO) + wanted.get(i, ZERO) == line.amount
                        for i, line in enumerate(invoice.lines))
        apply_tax(ports.tax, entity, customer, note,
                  CreditedTax(invoice, _earlier_credit_tax(ports, invoice), completes))
        before = invoice.model_copy(deep=True)
        credit_total = -note.total
        remaining = invoice.left_to_pay()
        if credit_total > invoice.total - invoice.amount_credited:
            raise ValidationError(f"the credit ({credit_total}) exceeds what is left to credit on invoice "
                                  f"{invoice.number}", param="lines")
        invoice.amount_credited += credit_total
        invoice.amount_remaining = max(remaining - credit_total, ZERO)
        to_balance = max(credit_total - remaining, ZERO)  # already paid (or covered by the balance): owed back
        invoice.credits.append({"credit_note_id": note.id, "total": format(credit_total, "f"),
                                "lines": {str(i): format(a, "f") for i, a in sorted(wanted.items())}})
        if invoice.amount_remaining == 0 and invoice.status == "finalized":
            invoice.status = "paid"
            invoice.status_history.append({"status": "paid", "at": ports.clock.now().isoformat(),
                                           "by": actor.name, "reason": f"credited by {note.id}"})
        also = []
        if rebill is not None:
            replacement, also = rebill(invoice)
            invoice.replaced_by.append(replacement.id)
        update = ports.repo.invoice_put(invoice, invoice.version)
        credited_audit = Put(audit_item(ports.audit(actor, "invoice.credited", "invoice", invoice.id, before, invoice)))
        try:
            finalize_document(ports, actor, note, entity, [update, credited_audit, *also],
                              {"credit_note_of": invoice.id, "reason": body.reason}, to_balance=to_balance)
        except ConflictError:
            continue
        return note
    raise ConflictError("the invoice or the credit-note series kept changing; retry", code="concurrent_modification")


def corrects(invoice: Invoice) -> DocumentLink:
    return DocumentLink(relation="corrects", id=invoice.id, number=invoice.number, issue_date=invoice.issue_date)


def _credited_by_line(invoice: Invoice) -> dict[int, Decimal]:
    """What earlier credit notes took per invoice line, signed as the line (negative on a discount)."""
    credited: dict[int, Decimal] = {}
    for credit in invoice.credits:
        for index, amount in credit["lines"].items():
            credited[int(index)] = credited.get(int(index), ZERO) + Decimal(amount)
    return credited


def _earlier_credit_tax(ports: Ports, invoice: Invoice) -> tuple[TaxLine, ...]:
    """The tax lines of the credit notes issued against the invoice so far."""
    earlier: list[TaxLine] = []
    for credit in invoice.credits:
        earlier += get_document(ports, credit["credit_note_id"], "credit_note").tax_lines
    return tuple(earlier)


def _credit_request(invoice: Invoice, body: CreditNoteCreate, credited: dict[int, Decimal]) -> dict[int, Decimal]:
    """The positive lines credited and by how much; the lines reducing them follow (credit_by_line)."""
    if body.lines is None:  # the whole invoice: whatever is left on each line
        wanted = {i: line.amount - credited.get(i, ZERO) for i, line in enumerate(invoice.lines) if line.amount > 0}
        wanted = {i: a for i, a in wanted.items() if a > 0}
        if not wanted:
            raise ConflictError(f"invoice {invoice.number} has nothing left to credit", code="fully_credited")
        return wanted
    wanted: dict[int, Decimal] = {}
    for index, line in enumerate(body.lines):
        target = line.line
        if target is None:
            if len(invoice.lines) != 1:
                raise ValidationError("name the invoice line credited (its index)", param=f"lines[{index}].line")
            target = 0
        if target >= len(invoice.lines):
            raise ValidationError(f"invoice {invoice.number} has {len(invoice.lines)} lines",
                                  param=f"lines[{index}].line")
        if invoice.lines[target].amount <= 0:
            raise ValidationError(f"line {target} reduces the others (a discount): it is credited in proportion "
                                  f"with the lines it reduces", param=f"lines[{index}].line")
        if round_money(line.amount, invoice.currency) != line.amount:
            raise ValidationError(f"{invoice.currency} amounts have at most the currency's decimals",
                                  param=f"lines[{index}].amount")
        wanted[target] = wanted.get(target, ZERO) + line.amount
        left = invoice.lines[target].amount - credited.get(target, ZERO)
        if wanted[target] > left:
            raise ValidationError(f"line {target} has {left} {invoice.currency} left to credit",
                                  param=f"lines[{index}].amount")
    return wanted


# the hash chain -----------------------------------------------------------------------------
def verify_chain(ports: Ports, entity_ref: str, kind: str = "invoice") -> dict:
    """Recompute every document's hash in number order; name the first broken link."""
    entity = get_entity(ports, entity_ref, param="billing_entity")
    checked, previous, expected_sequence = 0, None, 1
    for document in ports.repo.series(entity.id, kind):
        problem = None
        if document.sequence != expected_sequence:
            problem = f"sequence {expected_sequence} is missing (found {document.sequence})"
        elif document.previous_hash != previous:
            problem = "its previous_hash is not the hash of the document before it"
        elif content_hash(document) != document.content_hash:
            problem = "its content does not match its hash (changed after finalization)"
        if problem:
            return {"billing_entity": entity.code, "series": kind, "checked": checked, "ok": False,
                    "first_broken": {"number": document.number, "id": document.id, "problem": problem}}
        checked += 1
        previous, expected_sequence = document.content_hash, expected_sequence + 1
    head, _ = ports.repo.store.counter(f"SEQ#{entity.id}#{kind}")
    if head != checked:
        return {"billing_entity": entity.code, "series": kind, "checked": checked, "ok": False,
                "first_broken": {"number": None, "id": None,
                                 "problem": f"the counter is at {head} but {checked} documents were found"}}
    return {"billing_entity": entity.code, "series": kind, "checked": checked, "ok": True, "first_broken": None}
