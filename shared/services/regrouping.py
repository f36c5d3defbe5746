"""Invoice consolidation and splitting (seed 001 §1.2), with parent/child links kept.

- Merge: drafts of one customer become one draft listing every line; the originals (drafts,
  so never numbered) are removed in the same transaction, and the new draft names them
  (`related`: merged_from). A custom field the drafts share stays on the invoice; one they
  disagree on (project, PO) moves onto each of their lines, so every component stays visible.
- Split: a draft becomes several, by a line attribute (project, PO, subscription), by
  percentage (every line divided; each child's amounts add up to the parent's to the cent)
  or by explicit line lists. Each child names its parent (`related`: split_from).
- Re-bill: a finalized invoice is never edited; it is credited in full by a credit note and a
  draft copy is written in the same transaction (`related`: rebill_of; the invoice lists it in
  `replaced_by`). The draft can then be merged, split or changed, and finalized.

Tax is computed again for every new draft, as for any draft; finalizing numbers it.
"""

from __future__ import annotations

from decimal import Decimal

from shared.adapters.dynamodb import Delete, Put, audit_item
from shared.billing.errors import ConflictError, ValidationError
from shared.billing.invoicing import totals
from shared.billing.models import DocumentLink, Invoice, InvoiceLine
from shared.billing.money import ZERO, round_money
from shared.services.catalog import get_customer, get_entity
from shared.services.context import Actor, Ports
from shared.services.ids import new_id
from shared.services.invoice_lifecycle import create_credit_note, get_document, tax_note
from shared.services.requests.invoices import CreditNoteCreate, InvoiceMerge, InvoiceSplit, RebillRequest
from shared.services.taxes import apply_tax

LINE_FIELDS = ("subscription_id", "external_id", "charge_code", "gl_code", "metric_code")  # also split keys
HUNDRED = Decimal(100)


def merge_drafts(ports: Ports, actor: Actor, body: InvoiceMerge) -> Invoice:
    """One draft with the lines of `invoice_ids`, in that order; the originals are removed."""
    actor.require("invoices:write")
    if len(set(body.invoice_ids)) != len(body.invoice_ids):
        raise ValidationError("an invoice is named twice", param="invoice_ids")
    drafts = [_draft(ports, invoice_id, f"invoice_ids[{i}]") for i, invoice_id in enumerate(body.invoice_ids)]
    first = drafts[0]
    for i, draft in enumerate(drafts[1:], start=1):
        for name in ("customer_id", "billing_entity_id", "currency"):
            if getattr(draft, name) != getattr(first, name):
                raise ValidationError(f"{draft.id} has another {name} ({getattr(draft, name)}) than {first.id} "
                                      f"({getattr(first, name)}): only one customer's drafts merge",
                                      param=f"invoice_ids[{i}]")
    shared_fields = {name: value for name, value in first.custom_fields.items()
                     if all(d.custom_fields.get(name) == value for d in drafts)}
    lines = []
    for draft in drafts:  # a field the drafts disagree on goes onto each of their lines (e.g. project)
        own = {k: v for k, v in draft.custom_fields.items() if k not in shared_fields}
        lines += [line.model_copy(deep=True, update={"attributes": {**own, **line.attributes}})
                  for line in draft.lines]
    notes = list(dict.fromkeys(n for draft in drafts for n in _notes(draft)))
    links = [DocumentLink(relation="merged_from", id=draft.id) for draft in drafts]
    merged = _new_draft(ports, first, lines, shared_fields, notes, links)
    ports.repo.store_lines(merged)
    operations = [Put(ports.repo.invoice_item(merged))]
    operations += [Delete(f"INV#{draft.id}", "A", expected_version=draft.version) for draft in drafts]
    audit = [ports.audit(actor, "invoice.draft_merged", "invoice", draft.id, before=draft,
                         after={"merged_into": merged.id}) for draft in drafts]
    audit.append(ports.audit(actor, "invoice.draft_created", "invoice", merged.id, after=merged))
    _write(ports, operations, audit)
    return merged


def split_draft(ports: Ports, actor: Actor, invoice_id: str, body: InvoiceSplit) -> list[Invoice]:
    """Drafts that together bill exactly what the draft billed; the draft is removed."""
    actor.require("invoices:write")
    chosen = [name for name in ("by", "percentages", "lines") if getattr(body, name) is not None]
    if len(chosen) != 1:
        raise ValidationError("give exactly one of by, percentages or lines", param="by")
    parent = _draft(ports, invoice_id, "id")
    link = DocumentLink(relation="split_from", id=parent.id, number=parent.number, issue_date=parent.issue_date)
    if body.by:
        children = [_new_draft(ports, parent, lines, {**parent.custom_fields, **({body.by: value} if value else {})},
                               _notes(parent), [link])
                    for value, lines in _by_attribute(parent, body.by).items()]
    elif body.percentages:
        children = [_new_draft(ports, parent, lines, parent.custom_fields, _notes(parent),
                               [link.model_copy(update={"share": _percent_text(share)})])
                    for share, lines in zip(body.percentages, _by_percentage(parent, body.percentages), strict=True)]
    else:
        children = [_new_draft(ports, parent, lines, parent.custom_fields, _notes(parent), [link])
                    for lines in _by_index(parent, body.lines)]
    for child in children:
        ports.repo.store_lines(child)
    operations = [Put(ports.repo.invoice_item(child)) for child in children]
    operations.append(Delete(f"INV#{parent.id}", "A", expected_version=parent.version))
    audit = [ports.audit(actor, "invoice.draft_split", "invoice", parent.id, before=parent,
                         after={"split_into": [c.id for c in children]})]
    audit += [ports.audit(actor, "invoice.draft_created", "invoice", c.id, after=c) for c in children]
    _write(ports, operations, audit)
    return children


def rebill(ports: Ports, actor: Actor, invoice_id: str, body: RebillRequest) -> tuple[Invoice, Invoice]:
    """Credit a finalized invoice in full and open a draft copy in its place: (credit note, draft)."""
    actor.require("invoices:write")
    invoice = get_document(ports, invoice_id)
    if invoice.amount_paid or invoice.amount_credited:
        raise ConflictError(f"invoice {invoice.number} has payments or credits: correct it with a credit note "
                            "for what is wrong", code="invalid_status")

    def replacement(current: Invoice) -> tuple[Invoice, list]:
        link = DocumentLink(relation="rebill_of", id=current.id, number=current.number,
                            issue_date=current.issue_date)
        lines = [line.model_copy(deep=True) for line in current.lines]
        draft = _new_draft(ports, current, lines, current.custom_fields, _notes(current), [link])
        ports.repo.store_lines(draft)
        return draft, [Put(ports.repo.invoice_item(draft)), Put(audit_item(ports.audit(
            actor, "invoice.draft_created", "invoice", draft.id, after=draft)))]

    drafts: list[Invoice] = []

    def remember(current: Invoice) -> tuple[Invoice, list]:
        draft, operations = replacement(current)
        drafts.append(draft)
        return draft, operations

    note = create_credit_note(ports, actor, CreditNoteCreate(invoice_id=invoice.id, reason=body.reason),
                              rebill=remember)
    return note, drafts[-1]


# how a split divides the lines --------------------------------------------------------------
def _by_attribute(parent: Invoice, name: str) -> dict[str, list[InvoiceLine]]:
    groups: dict[str, list[InvoiceLine]] = {}
    for line in parent.lines:
        value = line.attributes.get(name) or (getattr(line, name) if name in LINE_FIELDS else None) or ""
        groups.setdefault(value, []).append(line.model_copy(deep=True))
    if len(groups) < 2:
        raise ValidationError(f"every line has the same {name} ({next(iter(groups)) or 'none'}): nothing to split",
                              param="by")
    return groups


def _by_percentage(parent: Invoice, shares: list[Decimal]) -> list[list[InvoiceLine]]:
    if sum(shares) != HUNDRED:
        raise ValidationError(f"the percentages add up to {sum(shares)}, not 100", param="percentages")
    children: list[list[InvoiceLine]] = [[] for _ in shares]
    for line in parent.lines:
        left = line.amount
        for index, share in enumerate(shares):
            last = index == len(shares) - 1
            amount = left if last else round_money(line.amount * share / HUNDRED, line.currency)
            left -= amount
            rule = f"{_percent_text(share)}% of {line.quantity.normalize():f} × {line.unit_price:f} = {line.amount:f}"
            children[index].append(line.model_copy(deep=True, update={
                "quantity": Decimal(1), "unit_price": amount, "amount": amount,
                "details": [*line.details, rule]}))
    return children


def _by_index(parent: Invoice, groups: list[list[int]]) -> list[list[InvoiceLine]]:
    seen: set[int] = set()
    for g, group in enumerate(groups):
        if not group:
            raise ValidationError("a child needs at least one line", param=f"lines[{g}]")
        for i, index in enumerate(group):
            if index >= len(parent.lines):
                raise ValidationError(f"the draft has {len(parent.lines)} lines", param=f"lines[{g}][{i}]")
            if index in seen:
                raise ValidationError(f"line {index} is in two children", param=f"lines[{g}][{i}]")
            seen.add(index)
    if missing := sorted(set(range(len(parent.lines))) - seen):
        raise ValidationError(f"lines {missing} are in no child: every line goes somewhere", param="lines")
    return [[parent.lines[i].model_copy(deep=True) for i in group] for group in groups]


# shared steps -------------------------------------------------------------------------------
def _draft(ports: Ports, invoice_id: str, param: str) -> Invoice:
    draft = get_document(ports, invoice_id, param=param)
    if draft.status != "draft":
        raise ConflictError(f"invoice {draft.number} is finalized: re-bill it (POST /v1/invoices/{draft.id}/rebill) "
                            "to merge or split it", param=param, code="not_a_draft")
    return draft


def _new_draft(ports: Ports, source: Invoice, lines: list[InvoiceLine], custom_fields: dict[str, str],
               notes: list[str], related: list[DocumentLink]) -> Invoice:
    customer = get_customer(ports, source.customer_id)
    entity = get_entity(ports, source.billing_entity_id)
    today = ports.clock.now().date()
    draft = Invoice(id=new_id("inv"), status="draft", customer_id=source.customer_id,
                    billing_entity_id=source.billing_entity_id, currency=source.currency, language=source.language,
                    issue_date=today, due_date=today + (source.due_date - source.issue_date), lines=lines,
                    notes=notes, custom_fields=dict(custom_fields), seller=source.seller, buyer=source.buyer,
                    branding=source.branding, related=related, created_at=ports.clock.now(),
                    **totals(lines, ZERO, source.currency))
    apply_tax(ports.tax, entity, customer, draft)
    return draft


def _notes(invoice: Invoice) -> list[str]:
    """Its notes but the tax wording: computed again for each new draft."""
    return [note for note in invoice.notes if not tax_note(note)]


def _percent_text(share: Decimal) -> str:
    return f"{share.normalize():f}"


def _write(ports: Ports, operations: list, audit: list) -> None:
    try:
        ports.repo.store.transact(operations, audit)
    except ConflictError:
        raise ConflictError("a draft changed or was removed meanwhile; read them again and retry",
                            code="concurrent_modification") from None
