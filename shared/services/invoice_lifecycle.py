"""An invoice's life after the bill run: one-off drafts, finalization, payments, void, uncollectible,
credit notes (the only correction of a finalized document) and the verification of the hash chain.

Status moves: draft -> finalized -> paid | void | uncollectible; uncollectible -> paid | void.
A finalized document's content never changes (its hash covers it); what changes (status, its
history, payments, credits) is kept beside the content and left out of the hash.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from shared.adapters.dynamodb import Delete, Item, Put, audit_item
from shared.billing.errors import ConflictError, NotFoundError, ValidationError
from shared.billing.invoicing import CREDIT_LINE, CREDIT_NOTE_NOTE, content_hash, totals
from shared.billing.models import DocumentLink, Invoice, InvoiceLine
from shared.billing.money import ZERO, round_money
from shared.services.billing import buyer_snapshot, finalize_document, seller_snapshot
from shared.services.catalog import get_customer, get_entity
from shared.services.context import Actor, Ports
from shared.services.ids import new_id
from shared.services.schemas import CreditNoteCreate, ManualInvoiceCreate, PaymentCreate, StatusChange
from shared.services.taxes import apply_tax

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
        publish_finalized(ports, actor, draft)
        return draft
    raise ConflictError("the invoice series kept changing; retry", code="concurrent_modification")


def publish_finalized(ports: Ports, actor: Actor, document: Invoice) -> None:
    """`invoice.finalized` for a document finalized outside a bill run (`origin` "api"): its PDF and
    e-mail (rule DocumentIssue) and its revenue schedules (rule RevenueEvents) follow from it. The
    bill run publishes its own, with `origin` "bill_run", after it has rendered and sent the invoice."""
    data = {"invoice_id": document.id, "customer_id": document.customer_id, "bill_run_id": None, "origin": "api"}
    if document.credit_note_of:
        data["credit_note_of"] = document.credit_note_of
    ports.publish(actor, "invoice.finalized", data)


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
    _save(ports, invoice, [ports.audit(actor, f"invoice.{status}", "invoice", invoice.id, before, invoice)])
    ports.publish(actor, f"invoice.{'voided' if status == 'void' else status}",
                  {"invoice": invoice.model_dump(mode="json")})
    return invoice


def _save(ports: Ports, invoice: Invoice, audit: list, also: list | None = None) -> None:
    expected = invoice.version
    try:
        ports.repo.store.transact([ports.repo.invoice_put(invoice, expected), *(also or [])], audit)
    except ConflictError:
        raise ConflictError(f"invoice {invoice.number} changed meanwhile; read it again and retry",
                            code="concurrent_modification") from None
    invoice.version = expected + 1


# payments -----------------------------------------------------------------------------------
def record_payment(ports: Ports, actor: Actor, body: PaymentCreate) -> dict:
    """A payment received outside the platform (transfer, check): it settles the invoice's remainder."""
    actor.require("invoices:write")
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
    _save(ports, invoice, [ports.audit(actor, "payment.recorded", "invoice", invoice.id, before, invoice)],
          [Put(record)])
    ports.publish(actor, "payment.succeeded", {"payment": payment, "invoice_id": invoice.id})
    return payment


# credit notes -------------------------------------------------------------------------------
def create_credit_note(ports: Ports, actor: Actor, body: CreditNoteCreate,
                       rebill: Callable[[Invoice], tuple[Invoice, list]] | None = None) -> Invoice:
    """A credit note against a finalized invoice, numbered in its own series and finalized at once.

    Each credited line names the invoice line and a net amount up to what is left uncredited on
    it; tax is computed with the invoice's date, so the credit carries the invoice's rates. The
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
        wanted = _credit_request(invoice, body, credited)
        customer = get_customer(ports, invoice.customer_id)
        entity = get_entity(ports, invoice.billing_entity_id)
        lines = [invoice.lines[i].model_copy(update={
            "kind": "credit", "amount": -amount, "quantity": Decimal(1), "unit_price": -amount,
            "credited_line": i,
            "description": CREDIT_LINE.format(description=invoice.lines[i].description)})
            for i, amount in wanted.items()]
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
        apply_tax(ports.tax, entity, customer, note, tax_date=invoice.issue_date)
        note.exchange_rate = invoice.exchange_rate  # the rate the invoice was booked at
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
                                "lines": {str(i): format(a, "f") for i, a in wanted.items()}})
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
        # the revenue schedules of the credited invoice follow the same event as any finalized document
        publish_finalized(ports, actor, note)
        return note
    raise ConflictError("the invoice or the credit-note series kept changing; retry", code="concurrent_modification")


def corrects(invoice: Invoice) -> DocumentLink:
    return DocumentLink(relation="corrects", id=invoice.id, number=invoice.number, issue_date=invoice.issue_date)


def _credited_by_line(invoice: Invoice) -> dict[int, Decimal]:
    credited: dict[int, Decimal] = {}
    for credit in invoice.credits:
        for index, amount in credit["lines"].items():
            credited[int(index)] = credited.get(int(index), ZERO) + Decimal(amount)
    return credited


def _credit_request(invoice: Invoice, body: CreditNoteCreate, credited: dict[int, Decimal]) -> dict[int, Decimal]:
    if body.lines is None:  # the whole invoice: whatever is left on each line
        wanted = {i: line.amount - credited.get(i, ZERO) for i, line in enumerate(invoice.lines)}
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
