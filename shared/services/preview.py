"""Invoice previews and quotes: the invoice a bill run would issue, stored nowhere."""

from __future__ import annotations

from datetime import date

from pydantic import ValidationError as PydanticValidationError

from shared.billing.errors import ConflictError, NonRetryableError, ValidationError
from shared.billing.metering import event_value
from shared.billing.models import BillingEntity, Customer, Invoice, Metric, Plan, Subscription
from shared.billing.periods import Period
from shared.billing.rating import UsageRecord, rate_subscription
from shared.billing.schedule import due_items, scheduled_items
from shared.services.billing import Draft, assemble_invoice, draft_invoice, period_items, plans_for
from shared.services.catalog import _check_metrics, get_customer, get_entity
from shared.services.context import Actor, Ports
from shared.services.requests.common import first_error_field
from shared.services.requests.previews import InvoicePreviewRequest
from shared.services.requests.usage import UsageEventInput
from shared.services.subscriptions import get_subscription

PREVIEW_ID = "preview"


def preview_invoice(ports: Ports, actor: Actor, body: InvoicePreviewRequest) -> Invoice:
    actor.require("read")
    if body.subscription_id:
        return _stored(ports, body)
    return _inline(ports, body)


def _stored(ports: Ports, body: InvoicePreviewRequest) -> Invoice:
    sub = get_subscription(ports, body.subscription_id, param="subscription_id")
    customer = get_customer(ports, sub.customer_id)
    as_of = body.as_of or sub.next_bill_date or ports.clock.now().date()
    draft = draft_invoice(ports, customer, [sub], body.period_start or as_of, period_start=body.period_start)
    return _preview(ports, draft, body.period_start or as_of)


def upcoming(ports: Ports, sub_id: str, periods: int) -> list[Invoice]:
    """The invoices of the subscription's next `periods` billing periods as the bill run would issue them
    with today's contract (scheduled changes included); nothing is stored."""
    sub = get_subscription(ports, sub_id)
    customer = get_customer(ports, sub.customer_id)
    today = ports.clock.now().date()
    plans = plans_for(ports, [sub])[sub.plan_code]
    billed = ports.repo.billed_keys(sub.id)
    bill_dates: dict[date, date] = {}  # period start -> the day the bill run bills it (a trial's end, ...)
    for stream in scheduled_items(sub, plans):
        taken = 0
        for item in stream:
            if item.key in billed or item.service.end <= today:
                continue
            bill_dates[item.period.start] = min(bill_dates.get(item.period.start, item.bill_date), item.bill_date)
            taken += 1
            if taken >= periods:
                break
    invoices = []
    for start in sorted(bill_dates)[:periods]:
        draft = draft_invoice(ports, customer, [sub], start, period_start=start)
        if draft.lines:
            invoices.append(_preview(ports, draft, bill_dates[start]))
    return invoices


def _inline(ports: Ports, body: InvoicePreviewRequest) -> Invoice:
    now = ports.clock.now()
    customer = (get_customer(ports, body.customer_id, param="customer_id") if body.customer_id else
                Customer(id=PREVIEW_ID, billing_entity=PREVIEW_ID, created_at=now, **body.customer.model_dump()))
    entity = _entity(ports, body, customer, now)
    plan_body = body.plan
    if plan_body.currency != customer.currency:
        raise ValidationError(f"the plan is priced in {plan_body.currency} but the customer is billed in "
                              f"{customer.currency}", param="plan.currency")
    metrics = {m.code: Metric(created_at=now, **m.model_dump()) for m in body.metrics}
    _check_inline_metrics(ports, body, metrics)
    plan = Plan(created_at=now, **plan_body.model_dump())
    terms = body.subscription
    if terms.end_date and terms.end_date <= terms.start_date:
        raise ValidationError("end_date must be after start_date", param="subscription.end_date")
    sub = Subscription(
        id=f"sub_{PREVIEW_ID}", customer_id=customer.id, plan_code=plan.code, start_date=terms.start_date,
        end_date=terms.end_date, price_overrides=terms.price_overrides, quantity=terms.quantity,
        billing_alignment=terms.billing_alignment,
        billing_day=terms.billing_day or (terms.start_date.day if terms.billing_alignment == "anniversary" else 1),
        created_at=now)
    records = _usage(body, sub, plan, metrics)
    plans = {plan.plan_version: plan}
    if body.as_of:
        day, items = body.as_of, due_items(sub, plans, body.as_of, ())
    else:
        day = body.period_start or sub.start_date
        items = period_items(sub, plans, day, ())

    def reader(metric_code: str, window: Period):
        return [(t, x, p) for (m, t, x, p) in records
                if m == metric_code and window.start <= t.date() < window.end]

    rated = rate_subscription(sub, plans, metrics, items, reader, language=customer.language)
    return _preview(ports, Draft(customer, entity, lines=rated.lines), day)


def _entity(ports: Ports, body: InvoicePreviewRequest, customer: Customer, now) -> BillingEntity:
    if isinstance(body.billing_entity, str):
        return get_entity(ports, body.billing_entity, param="billing_entity")
    if body.billing_entity is None:
        return get_entity(ports, customer.billing_entity) if body.customer_id else _default(ports)
    data = body.billing_entity.model_dump()
    data["currency"] = data["currency"] or customer.currency
    return BillingEntity(id=PREVIEW_ID, code=PREVIEW_ID, invoice_prefix="PREVIEW", created_at=now, **data)


def _default(ports: Ports) -> BillingEntity:
    from shared.services.catalog import default_entity

    return default_entity(ports)


def _check_inline_metrics(ports: Ports, body: InvoicePreviewRequest, metrics: dict[str, Metric]) -> None:
    """Inline metrics first; anything else the plan names must be stored."""
    stored_needed = body.plan.model_copy(deep=True)
    for charge in stored_needed.charges:
        if charge.metric_code in metrics:
            charge.metric_code = None
        charge.includes = {k: v for k, v in charge.includes.items() if k not in metrics}
    stored_needed.usage_discounts = [d for d in stored_needed.usage_discounts if d.metric_code not in metrics]
    try:
        _check_metrics(ports, stored_needed)
    except ValidationError as error:
        raise ValidationError(error.message.replace("create it with POST /v1/metrics", "give it in `metrics`"),
                              param=f"plan.{error.param}") from None
    wanted = {c.metric_code for c in body.plan.charges if c.metric_code} | {
        d.metric_code for d in body.plan.usage_discounts}
    stored = ports.repo.get_metrics(wanted - set(metrics))
    metrics.update(stored)


def _usage(body: InvoicePreviewRequest, sub: Subscription, plan: Plan,
           metrics: dict[str, Metric]) -> list[tuple[str, UsageRecord]]:
    codes = {c.metric_code for c in plan.charges if c.metric_code} | {d.metric_code for d in plan.usage_discounts}
    seen, records = set(), []
    for index, raw in enumerate(body.usage):
        try:
            fields = {k: v for k, v in raw.items() if k not in ("subscription_id", "external_subscription_id")}
            event = UsageEventInput.model_validate({**fields, "subscription_id": sub.id})
        except PydanticValidationError as error:
            field = first_error_field(error.errors()[0]["loc"])
            raise ValidationError(error.errors()[0]["msg"], param=f"usage[{index}].{field}") from None
        if event.metric_code not in codes:
            raise ValidationError(f"the plan bills no metric '{event.metric_code}'",
                                  param=f"usage[{index}].metric_code")
        if event.transaction_id in seen:
            continue  # the same transaction counts once, as in ingestion
        seen.add(event.transaction_id)
        properties = {k: str(v) for k, v in event.properties.items()}
        event_value(metrics[event.metric_code], properties, param=f"usage[{index}].properties")
        records.append((event.metric_code, event.timestamp, event.transaction_id, properties))
    return sorted(records, key=lambda r: (r[1], r[2]))


def _preview(ports: Ports, draft: Draft, day: date) -> Invoice:
    try:
        invoice = assemble_invoice(ports, draft, day)
    except NonRetryableError as error:  # e.g. no tax engine for the buyer's jurisdiction
        raise ConflictError(error.message, param="billing_entity", code=error.code or "cannot_invoice") from None
    invoice.id = PREVIEW_ID
    return invoice
