"""Rating billing items into invoice lines and assembling an invoice's totals and hash."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from decimal import Decimal

from shared.billing.models import Invoice, InvoiceLine, Plan, Subscription
from shared.billing.money import ZERO, round_money
from shared.billing.schedule import BillingItem

HASHED_FIELDS_EXCLUDED = {"content_hash", "pdf_key", "delivery_status", "status", "version"}


def rate_item(item: BillingItem, subscription: Subscription, plan: Plan) -> InvoiceLine:
    """One invoice line for one billing item, rounded once at the currency's minor unit.

    Proration is by day: amount = price x quantity x billed days / days in the period,
    and the rule is written on the line.
    """
    charge = plan.charge(item.charge_code)
    unit_price = subscription.price_of(charge)
    quantity = Decimal(1) if charge.model == "flat_fee" else subscription.quantity
    full = unit_price * quantity
    proration = None
    if item.is_partial and charge.proration == "daily":
        days, of = item.service.days, item.period.days
        amount = round_money(full * days / of, plan.currency)
        last_day = item.period.end - timedelta(days=1)
        proration = f"prorated by day: {days}/{of} days of {item.period.start} to {last_day}"
    else:
        amount = round_money(full, plan.currency)
    return InvoiceLine(
        kind="one_time" if charge.type == "one_time" else "recurring",
        description=charge.name,
        charge_code=charge.code,
        quantity=quantity,
        unit_price=unit_price,
        amount=amount,
        currency=plan.currency,
        period_start=item.service.start,
        period_end=item.service.end,
        subscription_id=subscription.id,
        external_id=subscription.external_id,
        gl_code=charge.gl_code,
        tax_code=charge.tax_code,
        proration=proration,
        item_key=item.key,
    )


def totals(lines: list[InvoiceLine], tax_total: Decimal, currency: str) -> dict[str, Decimal]:
    """Totals from already rounded lines: nothing is rounded again here."""
    subtotal = sum((line.amount for line in lines), ZERO)
    total = subtotal + tax_total
    return {
        "subtotal": round_money(subtotal, currency),
        "tax_total": round_money(tax_total, currency),
        "total": round_money(total, currency),
        "amount_due": round_money(total, currency),
    }


def content_hash(invoice: Invoice) -> str:
    """SHA-256 of the invoice's canonical content, chained through `previous_hash`."""
    content = invoice.model_dump(mode="json", exclude=HASHED_FIELDS_EXCLUDED)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
