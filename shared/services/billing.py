"""Invoice one billing account: rate what is due, assemble, finalize with a gapless number."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from shared.adapters.dynamodb import MAX_TRANSACTION_WRITES, CounterAdvance, Delete, Item, Put, Update
from shared.billing.errors import ConflictError, NonRetryableError, RetryableError, ValidationError
from shared.billing.invoicing import content_hash, document_number, totals
from shared.billing.models import (
    BillingEntity,
    Customer,
    Invoice,
    InvoiceLine,
    Metric,
    PartySnapshot,
    Plan,
    Subscription,
)
from shared.billing.money import ZERO
from shared.billing.periods import Period
from shared.billing.rating import (
    Rated,
    UsageReader,
    cap_usage_charges,
    item_credit_notes,
    late_usage_lines,
    rate_subscription,
    recheck_lines,
    still_billed,
)
from shared.billing.schedule import (
    BillingItem,
    credit_view,
    due_items,
    find_item,
    item_charge,
    next_bill_date,
    scheduled_items,
)
from shared.services.catalog import get_customer, get_entity
from shared.services.context import Actor, Ports
from shared.services.ids import new_id
from shared.services.taxes import apply_tax

FINALIZE_ATTEMPTS = 5
# the final transaction's own writes: document, counter, customer, slot, alias, pending, audit, events
FINAL_WRITES_RESERVED = 12


def seller_snapshot(entity: BillingEntity) -> PartySnapshot:
    return PartySnapshot(name=entity.name, email=entity.email, address_lines=entity.address_lines,
                         country=entity.country, region=entity.region,
                         tax_id=entity.tax_registrations.get(entity.country))


def buyer_snapshot(customer: Customer) -> PartySnapshot:
    return PartySnapshot(name=customer.name, email=customer.email, address_lines=customer.address_lines,
                         country=customer.country, region=customer.region, tax_id=customer.tax_id)


def invoice_account(ports: Ports, actor: Actor, customer_id: str, as_of: date,
                    bill_run_id: str | None = None, ahead: dict[str, date] | None = None,
                    subscription_id: str | None = None) -> Invoice | None:
    """Issue the customer's invoice for everything due on or before `as_of`, or None.

    One invoice covers all the customer's subscriptions; with `subscription_id` (a customer
    invoiced per subscription), that subscription's only.

    Safe to repeat: what is due is "proposed minus already billed", and every finalization of the
    customer advances its invoicing slot (optimistic lock), so a second run (or a concurrent one)
    conflicts and finds nothing left. A document being finalized (a saga, for invoices too big for
    one transaction) is completed by whoever finds it, never drafted twice. A retried step gets
    back the invoice its first attempt issued, looked up by (bill run, customer, scope).
    """
    for _ in range(FINALIZE_ATTEMPTS):
        try:
            slot = ports.repo.invoicing_slot(customer_id)
            pending = slot.data.get("pending")
            if pending:
                mine = bill_run_id is not None and pending["scope"] == subscription_id
                invoice = _complete(ports, actor, slot, bill_run_id if mine else None)
                if mine:
                    return invoice
                continue  # another scope's document: completed, now draft this one
            invoice = _invoice_once(ports, actor, slot, customer_id, as_of, bill_run_id, ahead, subscription_id)
        except ConflictError:
            continue  # a contract changed or another run billed it meanwhile: recompute
        if invoice is None and bill_run_id:
            return _issued_in_run(ports, customer_id, bill_run_id, subscription_id)
        return invoice
    raise RetryableError(f"customer {customer_id}: invoice kept conflicting with concurrent changes")


def _invoice_once(ports: Ports, actor: Actor, slot: Item, customer_id: str, as_of: date, bill_run_id: str | None,
                  ahead: dict[str, date] | None = None, subscription_id: str | None = None) -> Invoice | None:
    customer = get_customer(ports, customer_id, param="customer_id")
    subs = [s for s in ports.repo.customer_subscriptions(customer.id) if subscription_id in (None, s.id)]
    draft = draft_invoice(ports, customer, subs, as_of, ahead=ahead)
    if not draft.lines:
        for start in range(0, len(draft.late_consumed), MAX_TRANSACTION_WRITES):
            ports.repo.store.transact([Delete(m.pk, m.sk, must_exist=True)
                                       for m in draft.late_consumed[start:start + MAX_TRANSACTION_WRITES]])
        _refresh_due_index(ports, draft.changed)
        return None
    invoice = assemble_invoice(ports, draft, as_of, bill_run_id)
    return _finalize(ports, actor, invoice, draft, slot, subscription_id)


def assemble_invoice(ports: Ports, draft: Draft, as_of: date, bill_run_id: str | None = None) -> Invoice:
    customer, entity = draft.customer, draft.entity
    currencies = {line.currency for line in draft.lines}
    if currencies - {customer.currency}:
        raise NonRetryableError(
            f"customer {customer.id} is billed in {customer.currency} but has charges in {sorted(currencies)}")
    now = ports.clock.now()
    # Numbers follow issue dates: a run for a day already past (a catch-up) issues today, for the past
    # service periods its lines carry; a preview of a day to come is dated that day.
    issue_date = max(as_of, now.date())
    invoice = Invoice(
        id=new_id("inv"),
        status="draft",
        customer_id=customer.id,
        billing_entity_id=entity.id,
        bill_run_id=bill_run_id,
        currency=customer.currency,
        language=customer.language,
        issue_date=issue_date,
        due_date=issue_date + timedelta(days=customer.net_terms_days),
        lines=draft.lines,
        seller=seller_snapshot(entity),
        buyer=buyer_snapshot(customer),
        branding=entity.branding,
        created_at=now,
        **totals(draft.lines, ZERO, customer.currency),
    )
    apply_tax(ports.tax, entity, customer, invoice)
    return invoice


def _finalize(ports: Ports, actor: Actor, invoice: Invoice, draft: Draft, slot: Item,
              scope: str | None) -> Invoice:
    """Number, hash and write the invoice with everything it bills.

    When it all fits in one transaction (the usual case), it is one: the document, its number, the
    customer's balance, the billed items, the subscriptions and the customer's invoicing slot.
    Otherwise (many subscriptions, lines beyond one item) a saga that ends in the same single
    final transaction for the document (see `_complete`)."""
    for marker in draft.markers:
        marker.data["invoice_id"] = marker.data["invoice_id"] or invoice.id
    claims = len(draft.markers) + len(draft.late_consumed) + len(draft.changed) + len(draft.usage_fences)
    if claims + FINAL_WRITES_RESERVED <= MAX_TRANSACTION_WRITES and not ports.repo.line_items(invoice):
        operations = [Put(m, 1 if m.data["invoice_id"] != invoice.id else None) for m in draft.markers]
        operations += [Delete(m.pk, m.sk, must_exist=True) for m in draft.late_consumed]
        operations += draft.usage_fences
        operations += [ports.repo.subscription_put(sub) for sub in draft.changed]
        operations.append(ports.repo.slot_put(slot, None))
        if invoice.bill_run_id:
            operations.append(ports.repo.bill_run_mark(invoice.bill_run_id, invoice.customer_id, scope, invoice.id))
        finalize_document(ports, actor, invoice, draft.entity, operations,
                          {"subscriptions": invoice.subscription_ids, "bill_run_id": invoice.bill_run_id})
        for sub in draft.changed:
            sub.version += 1
        return invoice
    steps = [{"put": asdict(m)} for m in draft.markers]
    steps += [{"delete": [m.pk, m.sk]} for m in draft.late_consumed]
    steps += [{"subscription": sub.id, "version": sub.version, "recheck_read": draft.recheck_read.get(sub.id),
               "fields": sub.model_dump(mode="json", include=set(BILLING_FIELDS))} for sub in draft.changed]
    pending = {"invoice_id": invoice.id, "scope": scope}
    # usage rated on this draft: from here on, what arrives for its periods is late (billed as the difference
    # on a later invoice), and usage that arrived since the draft was read fails the close (recompute)
    for start in range(0, len(draft.usage_fences), MAX_TRANSACTION_WRITES):
        ports.repo.store.transact(draft.usage_fences[start:start + MAX_TRANSACTION_WRITES])
    # lines and claims are written first (inert); taking the slot makes them the customer's pending document
    try:
        ports.repo.store.transact([Put(ports.repo.store_pending(invoice, scope, steps)),
                                   ports.repo.slot_put(slot, pending)])
    except ConflictError:
        ports.repo.drop_invoice_steps(invoice.id, lines_too=True)  # never the customer's: leave nothing behind
        raise
    taken = Item(slot.pk, slot.sk, slot.type, {"pending": pending}, slot.version + 1)
    return _complete(ports, actor, taken, invoice.bill_run_id)


def _complete(ports: Ports, actor: Actor, slot: Item, bill_run_id: str | None) -> Invoice:
    """Complete the customer's pending document (its first attempt, a retry, or the next run):
    1. claim what it bills (billed items, late usage consumed): idempotent writes, safe because the
       customer's slot is taken, so nobody else invoices this customer meanwhile;
    2. one transaction: the document finalized (number, hash, balance, counter) and the slot marked so;
    3. the subscriptions' billing fields (next bill date, watermarks), each once (an INVOICED# marker);
    4. the slot released.
    A Lambda that dies anywhere leaves a state the next caller completes; nothing is billed twice."""
    pending = slot.data["pending"]
    invoice_id = pending["invoice_id"]
    if not pending.get("finalized"):
        stored = ports.repo.pending_invoice(invoice_id)
        if stored is None:
            raise ConflictError(f"invoice {invoice_id} was finalized meanwhile")  # by a concurrent caller
        invoice, steps = stored
        ports.repo.store.batch_put(Item(**step["put"]) for step in steps if "put" in step)
        for step in steps:
            if "delete" in step:
                ports.repo.store.delete_plain(*step["delete"])
        if bill_run_id:
            invoice.bill_run_id = bill_run_id  # issued in the run that completes it
        entity = get_entity(ports, invoice.billing_entity_id, param="billing_entity")
        done = {**pending, "finalized": True}
        operations = [ports.repo.pending_delete(invoice_id), ports.repo.slot_put(slot, done)]
        if invoice.bill_run_id:
            operations.append(ports.repo.bill_run_mark(invoice.bill_run_id, invoice.customer_id, pending["scope"],
                                                        invoice.id))
        finalize_document(ports, actor, invoice, entity, operations,
                          {"subscriptions": invoice.subscription_ids, "bill_run_id": invoice.bill_run_id})
        slot = Item(slot.pk, slot.sk, slot.type, {"pending": done}, slot.version + 1)
    for step in ports.repo.invoice_steps(invoice_id, flat=True):
        if "subscription" in step:
            _update_subscription(ports, invoice_id, step)
    ports.repo.drop_invoice_steps(invoice_id)
    try:
        ports.repo.store.transact([ports.repo.slot_put(slot, None)])
    except ConflictError:
        pass  # released by a concurrent caller completing the same document
    return ports.repo.get_invoice(invoice_id)


BILLING_FIELDS = ("next_bill_date", "prepaid_balance", "usage_billed_until", "recheck_from")


def _update_subscription(ports: Ports, invoice_id: str, step: dict) -> None:
    """Write what a finalized invoice changes on a subscription, once. A contract changed since the
    draft keeps what it changed: its recheck date, and a bill date recomputed from what is billed."""
    done = Item(f"SUB#{step['subscription']}", f"INVOICED#{invoice_id}", "invoicing_step", {"invoice_id": invoice_id})
    for _ in range(FINALIZE_ATTEMPTS):
        if ports.repo.store.get(done.pk, done.sk) is not None:
            return
        sub = ports.repo.get_subscription(step["subscription"])
        if sub is None:
            return
        updated = Subscription.model_validate({**sub.model_dump(mode="json"), **step["fields"]})
        updated.version = sub.version
        if sub.version != step["version"]:
            if sub.recheck_from != (step["recheck_read"] and date.fromisoformat(step["recheck_read"])):
                updated.recheck_from = sub.recheck_from
            if sub.usage_billed_until and (updated.usage_billed_until or date.min) < sub.usage_billed_until:
                updated.usage_billed_until = sub.usage_billed_until
            updated.next_bill_date = next_bill_date(updated, plans_for(ports, [updated])[updated.plan_code],
                                                    ports.repo.billed_keys(updated.id))
        try:
            ports.repo.store.transact([ports.repo.subscription_put(updated), Put(done)])
            return
        except ConflictError:
            continue  # changed meanwhile: read it again
    raise RetryableError(f"subscription {step['subscription']} kept changing while invoice {invoice_id} updated it")


def finalize_document(ports: Ports, actor: Actor, document: Invoice, entity: BillingEntity,
                      operations: list, audit_extra: dict | None = None, expected_version: int | None = None,
                      to_balance: Decimal = ZERO) -> None:
    """Give a draft invoice or credit note the next number of its series, hash it (chained to the
    previous document of the series) and write it with `operations`, all or nothing. Concurrent
    finalizations of one series conflict on the counter: one wins, the others retry (ConflictError).

    The customer's credit balance moves in the same transaction (`settle_with_balance`); `to_balance`:
    what a credit note gives back beyond what was left to pay on its invoice."""
    series = "credit_note" if document.kind == "credit_note" else "invoice"
    prefix = (entity.credit_note_prefix or f"{entity.invoice_prefix}-CN") if series == "credit_note" \
        else entity.invoice_prefix
    counter = f"SEQ#{entity.id}#{series}"
    sequence, previous_hash = ports.repo.store.counter(counter)
    document.status = "finalized"
    document.finalized_at = ports.clock.now()
    document.sequence = sequence + 1
    document.number = document_number(entity.number_format, prefix, sequence + 1)
    document.previous_hash = previous_hash or None
    document.amount_remaining = document.amount_due
    document.status_history = [{"status": "finalized", "at": document.finalized_at.isoformat(), "by": actor.name}]
    customer_put = settle_with_balance(ports, actor, document, to_balance)
    document.content_hash = content_hash(document)
    audit = ports.audit(actor, f"{document.kind}.finalized", document.kind, document.id, after={
        "number": document.number, "total": str(document.total), "currency": document.currency,
        **(audit_extra or {})})
    ports.repo.store_lines(document)  # lines beyond one item: beside it, before the transaction (idempotent)
    ports.repo.store.transact([ports.repo.invoice_put(document, expected_version),
                               CounterAdvance(counter, sequence, document.content_hash), *customer_put, *operations],
                              [audit], [finalized_event(ports, actor, document)])


def finalized_event(ports: Ports, actor: Actor, document: Invoice) -> dict:
    """`invoice.finalized`, committed with the finalization itself, so every finalized document is announced
    (before it is rendered or sent). `origin` "bill_run": the bill run renders and delivers it; "api" (credit
    notes, manually finalized invoices, re-bills, bills ahead): rule DocumentIssue does. Revenue schedules
    (rule RevenueEvents) and webhooks follow from it either way."""
    data = {"invoice_id": document.id, "customer_id": document.customer_id, "bill_run_id": document.bill_run_id,
            "origin": "bill_run" if document.bill_run_id else "api"}
    if document.credit_note_of:
        data["credit_note_of"] = document.credit_note_of
    return ports.event(actor, "invoice.finalized", data)


def settle_with_balance(ports: Ports, actor: Actor, document: Invoice, to_balance: Decimal = ZERO) -> list[Put]:
    """Move the customer's credit balance for a document being finalized; the customer's write, if any.

    - An invoice with a negative total (credits beyond its charges) shows its amount due as issued
      (negative) and puts it on the balance: nothing is left to settle on it.
    - An invoice with something to pay uses the balance first (`balance_applied`, BT-113 prepaid in
      the e-invoice); fully covered, it is paid at once.
    - A credit note puts `to_balance` on it.
    """
    currency = document.currency
    credited = to_balance
    applied = ZERO
    customer = ports.repo.get_customer(document.customer_id)
    balance = customer.credit_balance.get(currency, ZERO) if customer else ZERO
    if document.kind == "invoice" and document.total < 0:
        credited, document.amount_remaining = -document.amount_due, ZERO
    elif document.kind == "invoice" and balance > 0 and document.amount_due > 0:
        applied = min(balance, document.amount_due)
        document.amount_due -= applied
        document.amount_remaining = document.amount_due
        if document.amount_due == 0:
            document.status = "paid"
            document.status_history.append({"status": "paid", "at": document.finalized_at.isoformat(),
                                             "by": actor.name, "reason": "settled from the credit balance"})
    if not credited and not applied:
        return []
    if customer is None:
        raise NonRetryableError(f"customer {document.customer_id} is missing", param="customer_id")
    document.balance_applied = applied or None
    document.balance_credited = credited or None
    customer.credit_balance[currency] = balance - applied + credited
    return [ports.repo.customer_put(customer)]


def _issued_in_run(ports: Ports, customer_id: str, bill_run_id: str,
                   subscription_id: str | None = None) -> Invoice | None:
    """The invoice this run issued the customer, if not sent yet: by key, however many documents it has."""
    invoice = ports.repo.issued_in_run(bill_run_id, customer_id, subscription_id)
    if invoice is not None and invoice.delivery_status != "sent":
        return invoice
    return None


@dataclass
class Draft:
    """What one invoice would bill, and the bookkeeping that must be written with it."""

    customer: Customer
    entity: BillingEntity
    lines: list[InvoiceLine] = field(default_factory=list)
    markers: list[Item] = field(default_factory=list)  # billed items, coupon cycles, late-usage state
    late_consumed: list[Item] = field(default_factory=list)  # late-usage markers this invoice settles
    changed: list[Subscription] = field(default_factory=list)  # next bill date, balances, usage watermark
    recheck_read: dict[str, str | None] = field(default_factory=dict)  # changed subscription -> recheck_from as read
    usage_fences: list[Update] = field(default_factory=list)  # usage billed until: fails if usage arrived meanwhile


def plans_for(ports: Ports, subs: list[Subscription]) -> dict[str, dict[int, Plan]]:
    wanted = {(s.plan_code, v) for s in subs for v in [s.plan_version, *(c.plan_version for c in s.plan_changes)]}
    plans = ports.repo.get_plan_versions(wanted)
    for code, version in wanted:
        if version not in plans.get(code, {}):
            raise NonRetryableError(f"plan '{code}' version {version} is missing")
    return plans


def metrics_for(ports: Ports, plans: dict[str, dict[int, Plan]]) -> dict[str, Metric]:
    codes = {c.metric_code for versions in plans.values() for p in versions.values() for c in p.charges
             if c.metric_code}
    codes |= {d.metric_code for versions in plans.values() for p in versions.values() for d in p.usage_discounts}
    metrics = ports.repo.get_metrics(codes)
    if missing := codes - set(metrics):
        raise NonRetryableError(f"billable metrics {sorted(missing)} are missing")
    return metrics


def draft_invoice(ports: Ports, customer: Customer, subs: list[Subscription], as_of: date,
                  period_start: date | None = None, ahead: dict[str, date] | None = None) -> Draft:
    """Rate everything due for these subscriptions of one customer on `as_of` (reads only).

    With `period_start`, rate instead the items of the billing periods starting that day
    (a preview of "the invoice for that period"), whatever their bill date. `ahead` bills the
    recurring and one-time items of a subscription due up to its date now (V5-3110).
    """
    entity = get_entity(ports, customer.billing_entity, param="billing_entity")
    draft = Draft(customer, entity)
    plans = plans_for(ports, subs)
    metrics = metrics_for(ports, plans)
    for sub in subs:
        sub_plans = plans[sub.plan_code]
        fence = ports.repo.usage_fence(sub.id)  # before reading any usage: what arrives after it conflicts
        reader = _stored_usage(ports, sub)
        billed = ports.repo.billed(sub.id)
        due = (due_items(sub, sub_plans, as_of, billed) if period_start is None
               else period_items(sub, sub_plans, period_start, billed))
        if ahead and sub.id in ahead:
            keys = {item.key for item in due}
            due = sorted(due + [item for item in due_items(sub, sub_plans, ahead[sub.id], billed)
                                if item.key not in keys and item_charge(sub, sub_plans, item)[1].type != "usage"],
                         key=lambda i: (i.period.start, i.charge_code))
        rated = rate_subscription(sub, sub_plans, metrics, due, reader, billed, customer.language)
        draft.lines += rated.lines
        for item in due:
            draft.markers.append(ports.repo.billed_item(item.key, "", rated.usage_billed.get(item.key),
                                                        _fixed_state(item, rated)))
        if sub.recheck_from is not None and period_start is None:
            recheck, rechecked = _recheck(ports, sub, sub_plans, billed, customer.language)
            draft.lines += recheck
            draft.markers += rechecked
        draft.markers += [ports.repo.billed_item(key, "") for key in rated.extra_keys]
        late_lines, late_markers, consumed = _late_usage(ports, sub, sub_plans, metrics, billed, reader)
        draft.lines += late_lines
        draft.markers += late_markers
        draft.late_consumed += consumed
        following = next_bill_date(sub, sub_plans, set(billed) | {item.key for item in due})
        usage_due = [i.service.end for i in due if item_charge(sub, sub_plans, i)[1].type == "usage"]
        usage_until = max([sub.usage_billed_until or date.min] + usage_due)
        if (usage_due or late_markers) and usage_until != date.min:
            draft.usage_fences.append(ports.repo.usage_fence_close(sub.id, fence, usage_until))
        update = {"next_bill_date": following, "prepaid_balance": rated.balances,
                  "usage_billed_until": None if usage_until == date.min else usage_until,
                  "recheck_from": sub.recheck_from if period_start is not None else None}
        if any(getattr(sub, k) != v for k, v in update.items()):
            draft.recheck_read[sub.id] = sub.recheck_from and sub.recheck_from.isoformat()
            for key, value in update.items():
                setattr(sub, key, value)
            draft.changed.append(sub)
    limit = customer.usage_charge_limit if customer.usage_charge_limit is not None else entity.usage_charge_limit
    draft.lines += cap_usage_charges(draft.lines, limit)
    return draft


def _fixed_state(item: BillingItem, rated: Rated) -> dict | None:
    """What a recurring or one-time item billed: its period and what each window billed net of its
    share of the coupons (the most a later credit for those days gives back)."""
    billed = [i for i, ln in enumerate(rated.lines) if ln.item_key == item.key and ln.kind in ("recurring", "one_time")]
    if not billed or item.interim:
        return None
    return {"period": [item.period.start.isoformat(), item.period.end.isoformat()],
            "windows": [[rated.lines[i].period_start.isoformat(), rated.lines[i].period_end.isoformat(),
                         str(rated.kept(i))] for i in billed]}


def _recheck(ports: Ports, sub: Subscription, plans: dict[int, Plan], billed: dict[str, dict],
             language: str | None) -> tuple[list[InvoiceLine], list[Item]]:
    """Credits and charges for billed periods the contract changed since (pause, trial, regret, refund, change)."""
    view = credit_view(sub)
    lines, markers = [], []
    invoices: dict[str, Invoice | None] = {}
    for key, data in sorted(billed.items()):
        fixed = data.get("fixed")
        if not fixed or date.fromisoformat(fixed["period"][1]) <= sub.recheck_from:
            continue
        period = Period(*(date.fromisoformat(d) for d in fixed["period"]))
        item = find_item(view, plans, key) or BillingItem(sub.id, key.split("#")[1], period, period, period.start)
        was = [(Period(date.fromisoformat(s), date.fromisoformat(e)), Decimal(a)) for s, e, a in fixed["windows"]]
        noted = Decimal(fixed.get("credit_noted", "0"))
        if data["invoice_id"] not in invoices:
            invoices[data["invoice_id"]] = ports.repo.get_invoice(data["invoice_id"])
        if (invoice := invoices[data["invoice_id"]]) is not None:  # its credit notes and void count as credits
            was, noted = still_billed(was, invoice, key, noted)
        new_lines, state = recheck_lines(view, plans, item, was, language)
        if not new_lines:
            continue
        lines += new_lines
        markers.append(ports.repo.billed_item(key, data["invoice_id"], data.get("usage"), {
            "period": fixed["period"], "credit_noted": str(noted),
            "windows": [[w.start.isoformat(), w.end.isoformat(), str(a)] for w, a in state]}))
    return lines, markers


def check_credit_note_limits(ports: Ports, invoice: Invoice, wanted: dict[int, Decimal]) -> None:
    """A credit note may not credit a billed period beyond what is still net billed for it: once a re-check
    credited unused time on an item of `invoice` (a refund, a pause, a regret), its lines take at most what
    the item still stands billed for, less the credit notes on them not yet taken off by a re-check."""
    keys = {invoice.lines[i].item_key for i in wanted if invoice.lines[i].kind in ("recurring", "one_time")}
    for sub_id in sorted({key.split("#")[0] for key in keys if key}):
        for key, data in ports.repo.billed(sub_id).items():
            fixed = data.get("fixed")
            if key not in keys or data.get("invoice_id") != invoice.id or not fixed or "credit_noted" not in fixed:
                continue  # never re-checked: the invoice's own limits apply
            kept = sum((Decimal(w[2]) for w in fixed["windows"]), ZERO)
            left = max(kept - (item_credit_notes(invoice, key) - Decimal(fixed["credit_noted"])), ZERO)
            asked = sum((a for i, a in wanted.items() if invoice.lines[i].item_key == key), ZERO)
            if asked > left:
                line = min(i for i in wanted if invoice.lines[i].item_key == key)
                raise ValidationError(
                    f"line {line} ({invoice.lines[line].description}) has {left} {invoice.currency} left to credit: "
                    "its period was credited since for unused time", param="lines")


def period_items(sub: Subscription, plans: dict[int, Plan], period_start: date, billed) -> list[BillingItem]:
    """Items not yet billed of the periods that start on `period_start` (or whose service does)."""
    items = []
    for stream in scheduled_items(sub, plans):
        for item in stream:
            if item.period.start > period_start:
                break
            if period_start in (item.period.start, item.service.start) and item.key not in billed:
                items.append(item)
    return items


def _stored_usage(ports: Ports, sub: Subscription) -> UsageReader:
    return lambda metric_code, window: ports.repo.usage_records(sub.id, metric_code, window.start, window.end)


def _late_usage(ports: Ports, sub: Subscription, plans: dict[int, Plan], metrics: dict[str, Metric],
                billed: dict[str, dict], reader: UsageReader):
    """Lines for usage that arrived after its period was invoiced (seed: never silently dropped)."""
    markers = ports.repo.late_markers(sub.id)
    if not markers:
        return [], [], []
    late_days = {(m.data["metric_code"], date.fromisoformat(m.data["date"])) for m in markers}
    lines, updated = [], []
    for stream in scheduled_items(sub, plans):
        for item in stream:
            if item.key not in billed:
                break
            charge = item_charge(sub, plans, item)[1]
            if charge.type != "usage" or not any(m == charge.metric_code and item.service.contains(d)
                                                 for m, d in late_days):
                continue
            new_lines, state = late_usage_lines(sub, plans, metrics, item, billed[item.key].get("usage", []), reader)
            lines += new_lines
            updated.append(ports.repo.billed_item(item.key, billed[item.key]["invoice_id"], state))
    return lines, updated, markers


def _refresh_due_index(ports: Ports, subs) -> None:
    """Move subscriptions with nothing due off today's due list (derived data, no audit)."""
    for sub in subs:
        try:
            ports.repo.store.transact([ports.repo.subscription_put(sub)])
        except ConflictError:
            pass  # changed meanwhile; its writer recomputed the date
