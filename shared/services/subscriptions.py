"""Contracts: create, read, terminate."""

from __future__ import annotations

from datetime import date, timedelta

from shared.adapters.dynamodb import Put
from shared.billing.errors import ConflictError, NotFoundError, ValidationError
from shared.billing.models import (
    Charge,
    ContractCharge,
    Coupon,
    CouponRedemption,
    Plan,
    PlanChange,
    Subscription,
    Termination,
)
from shared.billing.money import round_money
from shared.billing.periods import (
    MONTHS_IN,
    add_months,
    billing_periods,
    cycle_defaults,
    period_containing,
    validate_cycle,
)
from shared.billing.schedule import cycle_of, next_bill_date, scheduled_items
from shared.services.billing import plans_for
from shared.services.catalog import get_coupon, get_customer, get_plan
from shared.services.context import Actor, Ports, as_updated
from shared.services.ids import new_id
from shared.services.requests.contracts import CouponRedeem, PlanMigration, SubscriptionCreate, TerminateRequest


def create_subscription(ports: Ports, actor: Actor, body: SubscriptionCreate) -> Subscription:
    actor.require("contracts:write")
    customer = get_customer(ports, body.customer_id, param="customer_id")
    plan = get_plan(ports, body.plan_code, param="plan_code")
    if plan.currency != customer.currency:
        raise ValidationError(
            f"plan '{plan.code}' is priced in {plan.currency} but the customer is billed in "
            f"{customer.currency}", param="plan_code")
    check_price_overrides(plan, body.price_overrides)
    check_charge_codes(plan, {code: code for code in CONTRACT_FEE_CODES if getattr(body, code)}, "")
    if customer.country == "BR":  # seed 000: invoices for Brazil carry the Portuguese description
        for index, charge in enumerate(plan.charges):
            if "pt-BR" not in charge.translations and "pt" not in charge.translations:
                raise ValidationError(
                    f"plan '{plan.code}' charge '{charge.code}' needs a Portuguese name for a Brazilian customer: "
                    f"set charges[{index}].translations.pt-BR", param="plan_code")
    if body.external_id and ports.repo.resolve_alias("subscription", body.external_id):
        raise ConflictError(f"a subscription with external_id '{body.external_id}' exists",
                            param="external_id")
    start = body.start_date or ports.clock.now().date()
    if body.end_date and body.end_date <= start:
        raise ValidationError("end_date must be after start_date (it is the first day without service)",
                              param="end_date")
    end = body.end_date or (add_months(start, body.term_months) if body.term_months else None)
    trial_end = _trial_end(ports, body, plan, customer.id, start)
    anchor = trial_end or start  # a trial converts on its end: the paid cycles start there (Stripe, Chargebee)
    validate_cycle({c.billing_period for c in plan.charges if c.type != "one_time"}, body.billing_alignment,
                   body.billing_day, body.billing_month, body.billing_weekday,
                   default_month=cycle_defaults(body.billing_alignment, anchor)[1])
    billing_day, billing_month, billing_weekday = cycle_defaults(
        body.billing_alignment, anchor, body.billing_day, body.billing_month, body.billing_weekday)
    alignment = body.billing_alignment
    parent = _parent(ports, body, plan, customer.id, start)
    if parent is not None:  # an add-on follows its base subscription's cycle and ends with it
        billing_day, alignment = parent.billing_day, parent.billing_alignment
        billing_month, billing_weekday = parent.billing_month, parent.billing_weekday
        if parent.service_end is not None and (end is None or end > parent.service_end):
            end = parent.service_end
    sub = Subscription(
        id=new_id("sub"),
        customer_id=customer.id,
        plan_code=plan.code,
        plan_version=plan.plan_version,
        parent_id=parent.id if parent else None,
        external_id=body.external_id,
        start_date=start,
        end_date=end,
        price_overrides=body.price_overrides,
        quantity=body.quantity,
        billing_alignment=alignment,
        billing_day=billing_day,
        auto_renew=body.auto_renew,
        billing_month=billing_month,
        billing_weekday=billing_weekday,
        trial_end=trial_end,
        term_months=body.term_months,
        early_termination_fee=body.early_termination_fee,
        created_at=ports.clock.now(),
    )
    if body.setup_fee:  # seed 000 §6.3: a one-time setup fee added at activation
        sub.contract_charges.append(ContractCharge(
            charge=Charge(code="setup_fee", name="Setup fee", type="one_time", price=body.setup_fee),
            start=start, end=start + timedelta(days=1), reason="activation"))
    if body.termination_month:
        last = termination_in_month(sub, plan, body.termination_month, start, "termination_month")
        sub.termination = Termination(
            effective="month", service_end=last,
            requested_at=ports.clock.now(), requested_by=actor.name, reason="scheduled at activation (UC05)")
    sub.next_bill_date = next_bill_date(sub, {plan.plan_version: plan}, ())
    redeemed = [_redeem(ports, sub, plan, code, start, f"coupons[{i}]") for i, code in enumerate(body.coupons)]
    data = {"subscription": sub.model_dump(mode="json")}
    events = [ports.event(actor, "subscription.created", data)]
    if start <= ports.clock.now().date():
        events.append(ports.event(actor, "subscription.activated", data))
    try:
        ports.repo.create_subscription(
            sub, ports.audit(actor, "subscription.created", "subscription", sub.id, after=sub),
            [Put(ports.repo.coupon_item(c), c.version - 1) for c in redeemed], events)
    except ConflictError:
        if redeemed:
            raise ConflictError("the subscription's external_id exists or a coupon was redeemed meanwhile; retry",
                                param="coupons") from None
        raise ConflictError(f"a subscription with external_id '{body.external_id}' exists",
                            param="external_id") from None
    return sub


CONTRACT_FEE_CODES = ("setup_fee", "early_termination_fee")  # the codes of the fees a contract adds itself


def check_charge_codes(plan: Plan, contract_codes: dict[str, str], param: str) -> None:
    """Refuse a contract charge billed under the code of one of its plan's charges: both would bill the same
    item (one key per subscription, charge and period) and the invoice could never be written.
    `contract_codes`: code -> the field that brings it (e.g. "setup_fee")."""
    for charge in plan.charges:
        if charge.code in contract_codes:
            field = contract_codes[charge.code]
            raise ValidationError(
                f"plan '{plan.code}' (version {plan.plan_version}) has a charge '{charge.code}' and the contract "
                f"adds its own '{charge.code}' ({field}): one of them must be renamed",
                param=param or field, code="charge_code_clash")


def contract_charge_codes(sub: Subscription) -> dict[str, str]:
    """The codes a subscription bills besides its plan's: its contract charges and its fees to come."""
    codes = {extra.charge.code: f"contract_charges[{i}].charge.code" for i, extra in enumerate(sub.contract_charges)}
    if sub.early_termination_fee:
        codes.setdefault("early_termination_fee", "early_termination_fee")
    return codes


def check_price_overrides(plan: Plan, overrides: dict) -> None:
    """A contract price replaces a charge's single price, in the plan's currency's decimals."""
    charge_codes = {c.code for c in plan.charges}
    for code, price in overrides.items():
        if code not in charge_codes:
            raise ValidationError(f"plan '{plan.code}' has no charge '{code}'", param=f"price_overrides.{code}")
        charge = plan.charge(code)
        if charge.tiers or charge.model in ("tiered", "volume", "percentage"):
            raise ValidationError(f"charge '{code}' is priced by its tiers or rate; a single price cannot override it",
                                  param=f"price_overrides.{code}")
        if charge.segments:
            raise ValidationError(f"charge '{code}' has price segments; override them with a new plan version",
                                  param=f"price_overrides.{code}")
        if round_money(price, plan.currency) != price:
            raise ValidationError(f"{price} has more decimals than {plan.currency} allows",
                                  param=f"price_overrides.{code}")


def _trial_end(ports: Ports, body: SubscriptionCreate, plan: Plan, customer_id: str, start: date) -> date | None:
    """The plan's trial (V5-364), unless declined or, under rules.trial_once_per_customer, already used."""
    if not plan.trial_days or not body.trial:
        return None
    if plan.rules.trial_once_per_customer and any(
            s.trial_end for s in ports.repo.customer_subscriptions(customer_id)):
        return None
    return start + timedelta(days=plan.trial_days)


def termination_in_month(sub: Subscription, plan: Plan, month: str, today: date, param: str) -> date:
    """UC05: the contract's period boundary in `month` (YYYY-MM), i.e. the first day without service.
    Annual plans stop at a renewal (seed 000 §6.7): a month without a boundary is refused."""
    year, number = (int(part) for part in month.split("-"))
    recurring = [c for c in plan.charges if c.type == "recurring"]
    if not recurring:
        raise ValidationError(f"plan '{plan.code}' has no recurring charge to end", param=param)
    longest = max(recurring, key=lambda c: MONTHS_IN.get(c.billing_period, 0))
    until = add_months(date(year, number, 1), 1)
    boundaries = [p.end for p in billing_periods(sub.start_date, longest.billing_period, sub.billing_day,
                                                 until=until, **cycle_of(sub))
                  if (p.end.year, p.end.month) == (year, number) and p.end > today]
    if not boundaries:
        raise ValidationError(
            f"the contract's {longest.billing_period} periods have no boundary after {today} in {month}: "
            f"it can end only at a period end (seed 000 §6.7: annual plans stop at the next renewal)", param=param)
    return boundaries[0]


def _parent(ports: Ports, body: SubscriptionCreate, plan: Plan, customer_id: str, start: date) -> Subscription | None:
    """The base subscription of an add-on, checked: same customer, live at the add-on's start."""
    if plan.kind == "add_on" and not body.parent_subscription_id:
        raise ValidationError(f"plan '{plan.code}' is an add-on: name the base subscription",
                              param="parent_subscription_id")
    if not body.parent_subscription_id:
        return None
    if plan.kind != "add_on":
        raise ValidationError(f"plan '{plan.code}' is not an add-on plan", param="parent_subscription_id")
    parent = get_subscription(ports, body.parent_subscription_id, param="parent_subscription_id")
    if parent.customer_id != customer_id:
        raise ValidationError("the base subscription belongs to another customer", param="parent_subscription_id")
    if parent.parent_id:
        raise ValidationError("an add-on cannot carry add-ons", param="parent_subscription_id")
    if start < parent.start_date or (parent.service_end is not None and start >= parent.service_end):
        raise ValidationError(f"the base subscription's service is [{parent.start_date}, "
                              f"{parent.service_end or 'open'}): the add-on must start inside it", param="start_date")
    return parent


def _redeem(ports: Ports, sub: Subscription, plan: Plan, code: str, on: date, param: str) -> Coupon:
    """Attach a coupon's terms to `sub` and count the redemption (written with the subscription)."""
    coupon = get_coupon(ports, code, param=param)
    if coupon.redeem_by and on > coupon.redeem_by:
        raise ConflictError(f"coupon '{code}' could be redeemed until {coupon.redeem_by}", param=param,
                            code="coupon_expired")
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        raise ConflictError(f"coupon '{code}' reached its {coupon.max_redemptions} redemptions", param=param,
                            code="coupon_exhausted")
    if coupon.amount_off is not None and coupon.currency != plan.currency:
        raise ValidationError(f"coupon '{code}' is in {coupon.currency}, the plan in {plan.currency}", param=param)
    if any(r.code == code for r in sub.coupons):
        raise ConflictError(f"coupon '{code}' is already on this subscription", param=param, code="coupon_applied")
    missing = set(coupon.applies_to) - {c.code for c in plan.charges}
    if missing:
        raise ValidationError(f"coupon '{code}' applies to charges {sorted(missing)} this plan lacks", param=param)
    sub.coupons.append(CouponRedemption(
        code=coupon.code, name=coupon.name, percent_off=coupon.percent_off, amount_off=coupon.amount_off,
        duration=coupon.duration, duration_in_cycles=coupon.duration_in_cycles, applies_to=coupon.applies_to,
        redeemed_on=on))
    coupon.times_redeemed += 1
    coupon.version += 1
    return coupon


def _live(ports: Ports, actor: Actor, sub_id: str) -> tuple[Subscription, date]:
    """A subscription a contract change may apply to (not terminated), and today."""
    actor.require("contracts:write")
    sub = get_subscription(ports, sub_id)
    today = ports.clock.now().date()
    if sub.status_on(today) == "terminated":
        raise ConflictError(f"subscription {sub.id} is terminated", code="already_terminated")
    return sub, today


def redeem_coupon(ports: Ports, actor: Actor, sub_id: str, body: CouponRedeem) -> Subscription:
    """Apply a coupon from today's billing cycle on (or from the start of a future subscription)."""
    sub, today = _live(ports, actor, sub_id)
    plan = plans_for(ports, [sub])[sub.plan_code][sub.plan_version_on(today)]
    before = sub.model_copy(deep=True)
    coupon = _redeem(ports, sub, plan, body.code, max(today, sub.start_date), "code")
    expected = sub.version
    sub.version += 1
    try:
        ports.repo.store.transact(
            [Put(ports.repo.subscription_item(sub), expected), Put(ports.repo.coupon_item(coupon), coupon.version - 1)],
            [ports.audit(actor, "subscription.coupon_redeemed", "subscription", sub.id, before, sub)],
            [ports.event(actor, "subscription.updated", {"subscription": sub.model_dump(mode="json")})])
    except ConflictError:
        sub.version = expected
        raise ConflictError("the subscription or the coupon changed meanwhile; retry", param="code") from None
    return sub


def migrate_plan_version(ports: Ports, actor: Actor, sub_id: str, body: PlanMigration) -> Subscription:
    """Move a grandfathered subscription to another version of its plan from a period start on."""
    sub, today = _live(ports, actor, sub_id)
    versions = {p.plan_version: p for p in ports.repo.plan_versions(sub.plan_code)}
    target = body.plan_version or max(versions)
    if target not in versions:
        raise NotFoundError(f"plan '{sub.plan_code}' has no version {target}", param="plan_version")
    plans = plans_for(ports, [sub])[sub.plan_code]
    effective = body.effective or current_period_end(sub, plans[sub.plan_version_on(today)], today)
    if effective < today:
        raise ValidationError(f"effective {effective} is in the past (today is {today})", param="effective")
    starts = {item.period.start for stream in scheduled_items(sub, plans) for item in _until_date(stream, effective)}
    if effective not in starts and effective != sub.start_date:
        raise ValidationError(f"{effective} is not the first day of a billing period of this subscription",
                              param="effective")
    if sub.plan_version_on(effective) == target:
        raise ConflictError(f"the subscription is on version {target} from {effective} already",
                            param="plan_version", code="no_change")
    check_charge_codes(versions[target], contract_charge_codes(sub), "plan_version")
    charge_codes = {c.code for c in versions[target].charges}
    for code in sub.price_overrides:
        if code not in charge_codes:
            raise ValidationError(f"version {target} has no charge '{code}' that the contract overrides",
                                  param="plan_version")
    before = sub.model_copy(deep=True)
    sub.plan_changes = [c for c in sub.plan_changes if c.effective < effective]
    sub.plan_changes.append(PlanChange(effective=effective, plan_version=target, requested_by=actor.name))
    plans[target] = versions[target]
    sub.next_bill_date = next_bill_date(sub, plans, ports.repo.billed_keys(sub.id))
    ports.repo.update_subscription(sub, ports.audit(actor, "subscription.plan_version_changed", "subscription",
                                                    sub.id, before, sub),
                                   [ports.event(actor, "subscription.updated", {"subscription": as_updated(sub)})])
    return sub


def _until_date(items, end: date):
    for item in items:
        if item.period.start > end:
            return
        yield item


def get_subscription(ports: Ports, sub_id: str, param: str = "id") -> Subscription:
    if not sub_id.startswith("sub_"):
        sub_id = ports.repo.resolve_alias("subscription", sub_id) or sub_id
    sub = ports.repo.get_subscription(sub_id)
    if sub is None:
        raise NotFoundError(f"no subscription '{sub_id}'", param=param)
    return sub


STATES = ("pending", "trialing", "active", "paused", "pending_termination", "terminated")


def list_subscriptions(ports: Ports, limit: int, after: str | None, customer_id: str | None = None,
                       status: list[str] | None = None, include_churned: bool = False):
    """A page of subscriptions; terminated ones only when asked for (V5-3287)."""
    if customer_id:
        customer_id = get_customer(ports, customer_id, param="customer_id").id  # an external id works too
    for state in status or ():
        if state not in STATES:
            raise ValidationError(f"unknown status '{state}': one of {', '.join(STATES)}", param="status")
    wanted = set(status) if status else set(STATES) - ({"terminated"} if not include_churned else set())
    if wanted == set(STATES):
        return ports.repo.list_subscriptions(limit, after, customer_id)
    today = ports.clock.now().date()
    page: list[Subscription] = []
    while len(page) < limit:  # filter page by page, keeping the cursor exact
        subs, more = ports.repo.list_subscriptions(limit, after, customer_id)
        for sub in subs:
            after = sub.id
            if sub.status_on(today) in wanted:
                page.append(sub)
                if len(page) == limit:
                    return page, more or sub is not subs[-1]
        if not more:
            return page, False
    return page, True


def current_period_end(sub: Subscription, plan: Plan, today: date) -> date:
    """End of the billing period in force today: the latest across the plan's recurring charges, or
    its usage charges on a plan with usage only."""
    if today < sub.start_date:
        return sub.start_date
    cycled = [c for c in plan.charges if c.type == "recurring"] or [c for c in plan.charges if c.type == "usage"]
    ends = [period_containing(sub.start_date, charge.billing_period, sub.billing_day, today, **cycle_of(sub)).end
            for charge in cycled]
    return max(ends) if ends else today


def terminate_subscription(ports: Ports, actor: Actor, sub_id: str, body: TerminateRequest) -> Subscription:
    """Seed 000 UC02: the current period is the last one billed; the next invoice omits the line.

    `immediately` ends the service today, `end_of_period` at the end of the current period,
    `on_date` at `date` (the first day without service). No refund is made for a period
    already billed in advance (the seed's non-refundable policy).
    """
    actor.require("contracts:write")
    sub = get_subscription(ports, sub_id)
    plan = get_plan(ports, sub.plan_code, param="plan_code")
    today = ports.clock.now().date()
    if sub.status_on(today) == "terminated":
        raise ConflictError(f"subscription {sub.id} is already terminated", code="already_terminated")
    refund = body.refund or plan.refund_policy
    if body.refund == "prorated" and plan.refund_policy == "none":
        raise ConflictError(f"plan '{plan.code}' states no refunds (refund_policy 'none', seed 000 §6.3)",
                            param="refund", code="no_refund_policy")
    if body.effective == "month":
        if body.month is None:
            raise ValidationError("month is required when effective is 'month'", param="month")
        service_end = termination_in_month(sub, plan, body.month, today, "month")
    elif body.effective == "immediately":
        service_end = max(today, sub.start_date)
    elif body.effective == "end_of_period":
        service_end = current_period_end(sub, plan, today)
    else:
        if body.date is None:
            raise ValidationError("date is required when effective is 'on_date'", param="date")
        if body.date < today:
            raise ValidationError(f"date {body.date} is in the past (today is {today})", param="date")
        service_end = max(body.date, sub.start_date)
    if sub.service_end is not None and sub.service_end <= service_end:
        raise ConflictError(f"subscription {sub.id} already ends on {sub.service_end}",
                            param="effective", code="already_ending")
    before = sub.model_copy(deep=True)
    sub.termination = Termination(effective=body.effective, service_end=service_end,
                                  requested_at=ports.clock.now(), requested_by=actor.name,
                                  reason=body.reason, refund=refund)
    if refund == "prorated":
        sub.recheck_from = min(sub.recheck_from or service_end, service_end)
    if sub.early_termination_fee and sub.end_date and service_end < sub.end_date:  # seed 003: resiliation fee
        day = max(sub.start_date, min(today, service_end - timedelta(days=1)))
        sub.contract_charges.append(ContractCharge(
            charge=Charge(code="early_termination_fee", name="Early termination fee", type="one_time",
                          price=sub.early_termination_fee),
            start=day, end=day + timedelta(days=1), reason=f"ends {service_end}, before the term's {sub.end_date}"))
    sub.next_bill_date = next_bill_date(sub, plans_for(ports, [sub])[sub.plan_code], ports.repo.billed_keys(sub.id))
    if sub.recheck_from is not None and (sub.next_bill_date is None or sub.next_bill_date > today):
        sub.next_bill_date = today  # the credit goes on the next invoice
    ended = service_end <= today
    action = "subscription.terminated" if ended else "subscription.termination_scheduled"
    changes = [(sub, before)] + _end_add_ons(ports, actor, sub, body, service_end)
    operations, audits, events = [], [], []
    for changed, previous in changes:
        operations.append(ports.repo.subscription_put(changed))
        audits.append(ports.audit(actor, action, "subscription", changed.id, previous, changed))
        events.append(ports.event(actor, action, {"subscription": as_updated(changed)}))
    ports.repo.store.transact(operations, audits, events)  # the base and its add-ons end together or not at all
    for changed, _ in changes:
        changed.version += 1
    if any(MONTHS_IN.get(c.billing_period, 0) >= 12 for c in plan.charges if c.type == "recurring"):
        _confirm_to_ops(ports, sub, today)
    return sub


def _confirm_to_ops(ports: Ports, sub: Subscription, today: date) -> None:
    """UC04 step 3: Ops receives a confirmation that the annual contract will not renew."""
    from shared.adapters.revenue_repository import finance_settings

    ops = finance_settings().ops
    if not ops or ports.mailer is None:
        return
    customer = get_customer(ports, sub.customer_id)
    termination = sub.termination
    last_day = termination.service_end - timedelta(days=1)
    text = "\n".join([
        f"Contract {sub.external_id or '(no contract ID)'} (subscription {sub.id}, plan {sub.plan_code}) of "
        f"{customer.name} is terminated.",
        "",
        f"Last day of service: {last_day.isoformat()}; its next renewal, {termination.service_end.isoformat()}, "
        "is not billed.",
        f"Requested by {termination.requested_by} on {today.isoformat()}"
        + (f": {termination.reason}" if termination.reason else "") + ".",
        f"Refund: {termination.refund} (the plan's policy).",
    ])
    ports.mailer.send(to=ops, subject=f"Confirmed: annual contract {sub.external_id or sub.id} ends "
                                        f"{termination.service_end.isoformat()}", text=text,
                      tags={"subscription_id": sub.id, "notice": "termination_confirmed"})


def _end_add_ons(ports: Ports, actor: Actor, sub: Subscription, body: TerminateRequest,
                 service_end: date) -> list[tuple[Subscription, Subscription]]:
    changed = []
    for add_on in ports.repo.customer_subscriptions(sub.customer_id):
        if add_on.parent_id != sub.id or (add_on.service_end is not None and add_on.service_end <= service_end):
            continue
        before = add_on.model_copy(deep=True)
        add_on.termination = Termination(effective=body.effective, service_end=max(service_end, add_on.start_date),
                                         requested_at=ports.clock.now(), requested_by=actor.name,
                                         reason=f"base subscription {sub.external_id or sub.id} ends")
        add_on.next_bill_date = next_bill_date(add_on, plans_for(ports, [add_on])[add_on.plan_code],
                                               ports.repo.billed_keys(add_on.id))
        changed.append((add_on, before))
    return changed
