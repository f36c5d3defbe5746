"""Invoice one billing account: rate what is due, assemble, finalize with a gapless number."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from shared.adapters.dynamodb import CounterAdvance, Delete, Item, Put, Update
from shared.billing.errors import ConflictError, NonRetryableError, RetryableError
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
from shared.billing.rating import UsageReader, cap_usage_charges, late_usage_lines, rate_subscription, recheck_lines
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

    Safe to repeat: what is due is "proposed minus already billed", and the billed items are
    written in the same transaction as the invoice, so a second run (or a concurrent one)
    finds nothing left. A retried step gets back the invoice its first attempt issued.
    """
    for _ in range(FINALIZE_ATTEMPTS):
        try:
            invoice = _invoice_once(ports, actor, customer_id, as_of, bill_run_id, ahead, subscription_id)
        except ConflictError:
            continue  # a contract changed or another run billed it meanwhile: recompute
        if invoice is None and bill_run_id:
            return _issued_in_run(ports, customer_id, bill_run_id, subscription_id)
        return invoice
    raise RetryableError(f"customer {customer_id}: invoice kept conflicting with concurrent changes")


def _invoice_once(ports: Ports, actor: Actor, customer_id: str, as_of: date, bill_run_id: str | None,
                  ahead: dict[str, date] | None = None, subscription_id: str | None = None) -> Invoice | None:
    customer = get_customer(ports, customer_id, param="customer_id")
    subs = [s for s in ports.repo.customer_subscriptions(customer.id) if subscription_id in (None, s.id)]
    draft = draft_invoice(ports, customer, subs, as_of, ahead=ahead)
    if not draft.lines:
        if draft.late_consumed:
            ports.repo.store.transact([Delete(m.pk, m.sk, must_exist=True) for m in draft.late_consumed])
        _refresh_due_index(ports, draft.changed)
        return None
    invoice = assemble_invoice(ports, draft, as_of, bill_run_id)
    _finalize(ports, actor, invoice, draft)
    return invoice


def assemble_invoice(ports: Ports, draft: Draft, as_of: date, bill_run_id: str | None = None) -> Invoice:
    customer, entity = draft.customer, draft.entity
    currencies = {line.currency for line in draft.lines}
    if currencies - {customer.currency}:
        raise NonRetryableError(
            f"customer {customer.id} is billed in {customer.currency} but has charges in {sorted(currencies)}")
    now = ports.clock.now()
    invoice = Invoice(
        id=new_id("inv"),
        status="draft",
        customer_id=customer.id,
        billing_entity_id=entity.id,
        bill_run_id=bill_run_id,
        currency=customer.currency,
        language=customer.language,
        issue_date=as_of,
        due_date=as_of + timedelta(days=customer.net_terms_days),
        lines=draft.lines,
        seller=seller_snapshot(entity),
        buyer=buyer_snapshot(customer),
        branding=entity.branding,
        created_at=now,
        **totals(draft.lines, ZERO, customer.currency),
    )
    apply_tax(ports.tax, entity, customer, invoice)
    return invoice


def _finalize(ports: Ports, actor: Actor, invoice: Invoice, draft: Draft) -> None:
    """Number, hash and write the invoice with everything it bills, in one transaction."""
    operations = []
    for marker in draft.markers:
        marker.data["invoice_id"] = marker.data["invoice_id"] or invoice.id
        operations.append(Put(marker, 1 if marker.data["invoice_id"] != invoice.id else None))
    operations += [Delete(m.pk, m.sk, must_exist=True) for m in draft.late_consumed]
    operations += draft.usage_fences
    for sub in draft.changed:
        operations.append(ports.repo.subscription_put(sub))
    finalize_document(ports, actor, invoice, draft.entity, operations,
                      {"subscriptions": invoice.subscription_ids, "bill_run_id": invoice.bill_run_id})
    for sub in draft.changed:
        sub.version += 1


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
    ports.repo.store.transact([ports.repo.invoice_put(document, expected_version),
                               CounterAdvance(counter, sequence, document.content_hash), *customer_put, *operations],
                              [audit])


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
    invoices, _ = ports.repo.list_invoices(limit=20, after=None, customer_id=customer_id)
    for invoice in invoices:
        if (invoice.bill_run_id == bill_run_id and invoice.delivery_status != "sent"
                and subscription_id in (None, *invoice.subscription_ids)):
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
                                                        _fixed_state(item, rated.lines)))
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
            for key, value in update.items():
                setattr(sub, key, value)
            draft.changed.append(sub)
    limit = customer.usage_charge_limit if customer.usage_charge_limit is not None else entity.usage_charge_limit
    draft.lines += cap_usage_charges(draft.lines, limit)
    return draft


def _fixed_state(item: BillingItem, lines: list[InvoiceLine]) -> dict | None:
    """What a recurring or one-time item billed: its period and each window's amount."""
    billed = [ln for ln in lines if ln.item_key == item.key and ln.kind in ("recurring", "one_time")]
    if not billed or item.interim:
        return None
    return {"period": [item.period.start.isoformat(), item.period.end.isoformat()],
            "windows": [[ln.period_start.isoformat(), ln.period_end.isoformat(), str(ln.amount)] for ln in billed]}


def _recheck(ports: Ports, sub: Subscription, plans: dict[int, Plan], billed: dict[str, dict],
             language: str | None) -> tuple[list[InvoiceLine], list[Item]]:
    """Credits and charges for billed periods the contract changed since (pause, trial, regret, refund, change)."""
    view = credit_view(sub)
    lines, markers = [], []
    for key, data in sorted(billed.items()):
        fixed = data.get("fixed")
        if not fixed or date.fromisoformat(fixed["period"][1]) <= sub.recheck_from:
            continue
        period = Period(*(date.fromisoformat(d) for d in fixed["period"]))
        item = find_item(view, plans, key) or BillingItem(sub.id, key.split("#")[1], period, period, period.start)
        was = [(Period(date.fromisoformat(s), date.fromisoformat(e)), Decimal(a)) for s, e, a in fixed["windows"]]
        new_lines, state = recheck_lines(view, plans, item, was, language)
        if not new_lines:
            continue
        lines += new_lines
        markers.append(ports.repo.billed_item(key, data["invoice_id"], data.get("usage"), {
            "period": fixed["period"],
            "windows": [[w.start.isoformat(), w.end.isoformat(), str(a)] for w, a in state]}))
    return lines, markers


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
