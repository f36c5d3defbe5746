"""Invoice one billing account: rate what is due, assemble, finalize with a gapless number."""

from __future__ import annotations

from datetime import date, timedelta

from shared.adapters.dynamodb import CounterAdvance, Put
from shared.billing.errors import ConflictError, NonRetryableError, RetryableError
from shared.billing.invoicing import content_hash, rate_item, totals
from shared.billing.models import BillingEntity, Customer, Invoice, PartySnapshot
from shared.billing.money import ZERO
from shared.billing.schedule import BillingItem, due_items, next_bill_date
from shared.services.catalog import get_customer, get_entity
from shared.services.context import Actor, Ports
from shared.services.ids import new_id

FINALIZE_ATTEMPTS = 5


def seller_snapshot(entity: BillingEntity) -> PartySnapshot:
    return PartySnapshot(name=entity.name, email=entity.email, address_lines=entity.address_lines,
                         country=entity.country, region=entity.region,
                         tax_id=entity.tax_registrations.get(entity.country))


def buyer_snapshot(customer: Customer) -> PartySnapshot:
    return PartySnapshot(name=customer.name, email=customer.email, address_lines=customer.address_lines,
                         country=customer.country, region=customer.region, tax_id=customer.tax_id)


def invoice_account(ports: Ports, actor: Actor, customer_id: str, as_of: date,
                    bill_run_id: str | None = None) -> Invoice | None:
    """Issue the customer's invoice for everything due on or before `as_of`, or None.

    Safe to repeat: what is due is "proposed minus already billed", and the billed items are
    written in the same transaction as the invoice, so a second run (or a concurrent one)
    finds nothing left. A retried step gets back the invoice its first attempt issued.
    """
    for _ in range(FINALIZE_ATTEMPTS):
        try:
            invoice = _invoice_once(ports, actor, customer_id, as_of, bill_run_id)
        except ConflictError:
            continue  # a contract changed or another run billed it meanwhile: recompute
        if invoice is None and bill_run_id:
            return _issued_in_run(ports, customer_id, bill_run_id)
        return invoice
    raise RetryableError(f"customer {customer_id}: invoice kept conflicting with concurrent changes")


def _issued_in_run(ports: Ports, customer_id: str, bill_run_id: str) -> Invoice | None:
    invoices, _ = ports.repo.list_invoices(limit=20, after=None, customer_id=customer_id)
    for invoice in invoices:
        if invoice.bill_run_id == bill_run_id and invoice.delivery_status != "sent":
            return invoice
    return None


def _invoice_once(ports: Ports, actor: Actor, customer_id: str, as_of: date,
                  bill_run_id: str | None) -> Invoice | None:
    customer = get_customer(ports, customer_id, param="customer_id")
    entity = get_entity(ports, customer.billing_entity, param="billing_entity")
    subs = ports.repo.customer_subscriptions(customer.id)
    plans = ports.repo.get_plans({s.plan_code for s in subs})
    lines, items, changed = [], [], []
    for sub in subs:
        plan = plans.get(sub.plan_code)
        if plan is None:
            raise NonRetryableError(f"subscription {sub.id} names missing plan '{sub.plan_code}'")
        billed = ports.repo.billed_keys(sub.id)
        due: list[BillingItem] = due_items(sub, plan, as_of, billed)
        lines += [rate_item(item, sub, plan) for item in due]
        items += due
        following = next_bill_date(sub, plan, billed | {item.key for item in due})
        if following != sub.next_bill_date:
            sub.next_bill_date = following
            changed.append(sub)
    if not items:
        _refresh_due_index(ports, changed)
        return None
    currencies = {line.currency for line in lines}
    if currencies != {customer.currency}:
        raise NonRetryableError(
            f"customer {customer.id} is billed in {customer.currency} but has charges in {sorted(currencies)}")
    now = ports.clock.now()
    invoice = Invoice(
        id=new_id("inv"),
        status="finalized",
        customer_id=customer.id,
        billing_entity_id=entity.id,
        bill_run_id=bill_run_id,
        currency=customer.currency,
        language=customer.language,
        issue_date=as_of,
        due_date=as_of + timedelta(days=customer.net_terms_days),
        lines=lines,
        seller=seller_snapshot(entity),
        buyer=buyer_snapshot(customer),
        created_at=now,
        finalized_at=now,
        **totals(lines, ZERO, customer.currency),
    )
    series = f"SEQ#{entity.id}#invoice"
    sequence, previous_hash = ports.repo.store.counter(series)
    invoice.number = f"{entity.invoice_prefix}-{sequence + 1:06d}"
    invoice.previous_hash = previous_hash or None
    invoice.content_hash = content_hash(invoice)
    operations = [
        Put(ports.repo.invoice_item(invoice)),
        CounterAdvance(series, sequence, invoice.content_hash),
        *(Put(ports.repo.billed_item(item, invoice.id)) for item in items),
    ]
    for sub in changed:
        operations.append(Put(ports.repo.subscription_item(sub), sub.version))
        sub.version += 1
    audit = ports.audit(actor, "invoice.finalized", "invoice", invoice.id, after={
        "number": invoice.number, "total": str(invoice.total), "currency": invoice.currency,
        "subscriptions": invoice.subscription_ids, "bill_run_id": bill_run_id})
    ports.repo.store.transact(operations, [audit])
    return invoice


def _refresh_due_index(ports: Ports, subs) -> None:
    """Move subscriptions with nothing due off today's due list (derived data, no audit)."""
    for sub in subs:
        try:
            ports.repo.store.transact([Put(ports.repo.subscription_item(sub), sub.version)])
        except ConflictError:
            pass  # changed meanwhile; its writer recomputed the date
