"""What happens to a contract after it starts (issue 4): pause and resume, trials, regret, plan and
quantity changes, renewal terms, billing day, billing ahead, change of ownership, contract charges.

Billing follows from the contract alone: an action changes the subscription's dates and terms, and
sets `recheck_from` when periods already billed may now be billed differently. The next bill run
re-checks those periods and puts the credits and charges on the customer's next invoice
(`rating.recheck_lines`). Every action is audited with the change; a refused action is audited too,
with the rule that refused it (V5-3161), and comes back as a 409/422 naming the rule.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta
from decimal import Decimal

from shared.adapters.dynamodb import Put
from shared.adapters.repository import alias_item
from shared.billing.errors import BillingError, ConflictError, ValidationError
from shared.billing.models import Charge, ContractCharge, Pause, Plan, Subscription, Termination
from shared.billing.periods import monthly_equivalent, months_after, validate_cycle
from shared.billing.schedule import next_bill_date, scheduled_items
from shared.services.billing import invoice_account, plans_for
from shared.services.catalog import get_customer, get_plan
from shared.services.context import Actor, Ports, as_updated
from shared.services.ids import new_id
from shared.services.requests.contracts import (
    BillAhead,
    BillingDayChange,
    ContractChargeAdd,
    ContractChargeRemove,
    OwnershipTransfer,
    PauseRequest,
    PlanChangeRequest,
    RegretRequest,
    ResumeRequest,
    TermsChange,
    TrialExtension,
)
from shared.services.subscriptions import (
    CONTRACT_FEE_CODES,
    check_charge_codes,
    check_price_overrides,
    contract_charge_codes,
    current_period_end,
    get_subscription,
)


def recorded(action: str):
    """Audit a refused action with its reason (V5-3161), then let the error through."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(ports: Ports, actor: Actor, sub_id: str, *args):
            try:
                return fn(ports, actor, sub_id, *args)
            except (ValidationError, ConflictError) as error:
                _refused(ports, actor, sub_id, action, error, args)
                raise
        return run
    return wrap


def _refused(ports: Ports, actor: Actor, sub_id: str, action: str, error: BillingError, args) -> None:
    try:
        sub = get_subscription(ports, sub_id)
    except BillingError:
        return  # no such subscription: nothing to attach the refusal to
    request = args[0].model_dump(mode="json") if args and hasattr(args[0], "model_dump") else None
    ports.repo.store.transact([], [ports.audit(actor, f"{action}.rejected", "subscription", sub.id, after={
        "reason": error.message, "rule": error.code, "param": error.param, "request": request})])


def _live(ports: Ports, actor: Actor, sub_id: str) -> tuple[Subscription, Subscription, date]:
    actor.require("contracts:write")
    sub = get_subscription(ports, sub_id)
    today = ports.clock.now().date()
    if sub.status_on(today) == "terminated":
        raise ConflictError(f"subscription {sub.id} has ended", code="already_terminated")
    return sub, sub.model_copy(deep=True), today


def _plans(ports: Ports, sub: Subscription) -> dict[int, Plan]:
    return plans_for(ports, [sub])[sub.plan_code]


def _save(ports: Ports, actor: Actor, sub: Subscription, before: Subscription, action: str,
          recheck_from: date | None = None, event: str | None = None) -> Subscription:
    """Write the changed contract (versioned), its audit entry and its event."""
    today = ports.clock.now().date()
    if recheck_from is not None:
        sub.recheck_from = min(sub.recheck_from or recheck_from, recheck_from)
    sub.next_bill_date = next_bill_date(sub, _plans(ports, sub), ports.repo.billed_keys(sub.id))
    if sub.recheck_from is not None and (sub.next_bill_date is None or sub.next_bill_date > today):
        sub.next_bill_date = today  # the next bill run settles the re-check
    try:
        ports.repo.update_subscription(sub, ports.audit(actor, action, "subscription", sub.id, before, sub),
                                       [ports.event(actor, event or action, {"subscription": as_updated(sub)})])
    except ConflictError:
        raise ConflictError(f"subscription {sub.id} changed meanwhile; read it again and retry",
                            code="concurrent_change") from None
    return sub


# pause and resume (seed 000 §6.7, V5-2779, V5-1838) ---------------------------------------------

@recorded("subscription.pause")
def pause(ports: Ports, actor: Actor, sub_id: str, body: PauseRequest) -> Subscription:
    """Invoicing pauses over [start, end); days already billed in advance are credited."""
    sub, before, today = _live(ports, actor, sub_id)
    rules = _plans(ports, sub)[sub.plan_version_on(today)].rules
    start = body.start or max(today, sub.start_date)
    if start < today:
        raise ValidationError(f"a pause cannot start in the past (today is {today})", param="start")
    if start < sub.start_date or (sub.service_end is not None and start >= sub.service_end):
        raise ConflictError(f"{start} is outside the service ({sub.start_date} to {sub.service_end or 'open'})",
                            param="start", code="outside_service")
    end = body.end
    if end is None and rules.pause_max_days is not None:
        end = start + timedelta(days=rules.pause_max_days)
    if end is not None and end <= start:
        raise ValidationError("end must be after start (it is the first day billed again)", param="end")
    days = (end - start).days if end is not None else None
    if days is not None and days < rules.pause_min_days:
        raise ConflictError(f"a pause lasts at least {rules.pause_min_days} days (plan rules.pause_min_days)",
                            param="end", code="pause_too_short")
    if rules.pause_max_days is not None and (days is None or days > rules.pause_max_days):
        raise ConflictError(f"a pause lasts at most {rules.pause_max_days} days (plan rules.pause_max_days)",
                            param="end", code="pause_too_long")
    for other in sub.pauses:
        if other.start < (end or date.max) and start < (other.end or date.max):
            raise ConflictError(f"the subscription is already paused from {other.start} to {other.end or 'resumed'}",
                                param="start", code="already_paused")
    year_ago = start - timedelta(days=365)
    recent = [p for p in sub.pauses if p.start > year_ago]
    if rules.pause_max_times_per_year is not None and len(recent) >= rules.pause_max_times_per_year:
        raise ConflictError(f"the plan allows {rules.pause_max_times_per_year} pauses in 12 months "
                            f"(rules.pause_max_times_per_year); {len(recent)} since {year_ago}",
                            param="start", code="pause_limit")
    if rules.pause_max_days_per_year is not None:
        used = sum(((p.end or start) - p.start).days for p in recent)
        if days is None or used + days > rules.pause_max_days_per_year:
            raise ConflictError(f"the plan allows {rules.pause_max_days_per_year} paused days in 12 months "
                                f"(rules.pause_max_days_per_year); {used} used since {year_ago}",
                                param="end", code="pause_days_limit")
    sub.pauses.append(Pause(start=start, end=end, requested_at=ports.clock.now(), requested_by=actor.name,
                            reason=body.reason))
    return _save(ports, actor, sub, before, "subscription.paused", recheck_from=start)


@recorded("subscription.resume")
def resume(ports: Ports, actor: Actor, sub_id: str, body: ResumeRequest) -> Subscription:
    """End the current (or cancel the coming) pause on `on`; what is due from then is billed."""
    sub, before, today = _live(ports, actor, sub_id)
    on = body.on or today
    if on < today:
        raise ValidationError(f"a resume cannot be backdated (today is {today})", param="on")
    open_pauses = [p for p in sub.pauses if (p.end or date.max) > today]
    if not open_pauses:
        raise ConflictError("the subscription has no current or coming pause", code="not_paused")
    pause = min(open_pauses, key=lambda p: p.start)
    if pause.start >= on:
        sub.pauses.remove(pause)
    else:
        pause.end = on
    return _save(ports, actor, sub, before, "subscription.resumed", recheck_from=min(on, pause.start))


# trials (V5-364, V5-2729, V5-3854) ------------------------------------------------------------

@recorded("subscription.trial_extend")
def extend_trial(ports: Ports, actor: Actor, sub_id: str, body: TrialExtension) -> Subscription:
    sub, before, today = _live(ports, actor, sub_id)
    if sub.trial_end is None or sub.trial_end <= today:
        raise ConflictError("the subscription is not in a trial", param="trial_end", code="not_trialing")
    if body.trial_end <= sub.trial_end:
        raise ValidationError(f"the trial already ends on {sub.trial_end}: extend it past that", param="trial_end")
    if sub.service_end is not None and body.trial_end > sub.service_end:
        raise ValidationError(f"the service ends on {sub.service_end}", param="trial_end")
    previous, sub.trial_end = sub.trial_end, body.trial_end
    return _save(ports, actor, sub, before, "subscription.trial_extended", recheck_from=previous)


# regret (V5-2713) and terminations with a refund ---------------------------------------------

@recorded("subscription.regret")
def regret(ports: Ports, actor: Actor, sub_id: str, body: RegretRequest) -> Subscription:
    """Undo a subscription within the plan's regret window: it never started, everything billed is credited."""
    sub, before, today = _live(ports, actor, sub_id)
    rules = _plans(ports, sub)[sub.plan_version].rules
    if rules.regret_days == 0:
        raise ConflictError(f"plan '{sub.plan_code}' does not allow regret (rules.regret_days is 0); terminate it",
                            code="regret_not_allowed")
    deadline = sub.created_at.date() + timedelta(days=rules.regret_days)
    if today >= deadline:
        raise ConflictError(f"the regret window of {rules.regret_days} days ended on {deadline - timedelta(days=1)}; "
                            "terminate it instead", code="regret_window_over")
    sub.termination = Termination(effective="regret", service_end=sub.start_date, requested_at=ports.clock.now(),
                                  requested_by=actor.name, reason=body.reason, refund="full")
    return _save(ports, actor, sub, before, "subscription.regretted", recheck_from=sub.start_date)


# plan and quantity changes (V5-2717), ownership (V5-371), billing day (V5-3687) ------------------

def monthly_fee(plan: Plan, quantity: Decimal, overrides: dict[str, Decimal]) -> Decimal:
    """The recurring fee per month (V5-2717 classifies a change by it)."""
    total = Decimal(0)
    for charge in plan.charges:
        if charge.type != "recurring":
            continue
        price = overrides.get(charge.code, charge.price)
        units = Decimal(1) if charge.model == "flat_fee" else quantity
        total += monthly_equivalent(price * units, charge.billing_period)
    return total


@recorded("subscription.change")
def change_plan(ports: Ports, actor: Actor, sub_id: str, body: PlanChangeRequest) -> Subscription:
    """Upgrade, downgrade or quantity change: the contract continues as a new subscription (same contract ID)
    from the change date. Immediately with proration, the unused time billed on the old terms is credited
    and the rest of the period is charged on the new terms, by day; at renewal nothing is prorated.
    `on_date` may lie in the past: seed 002's retrospective amendment (periods billed since are re-billed)."""
    sub, before, today = _live(ports, actor, sub_id)
    plans = _plans(ports, sub)
    old_plan = plans[sub.plan_version_on(today)]
    plan = get_plan(ports, body.plan_code, param="plan_code") if body.plan_code else old_plan
    if plan.currency != old_plan.currency:
        raise ValidationError(f"plan '{plan.code}' is in {plan.currency}, the contract in {old_plan.currency}",
                              param="plan_code")
    if plan.kind != old_plan.kind:
        raise ValidationError(f"plan '{plan.code}' is a {plan.kind} plan, this contract a {old_plan.kind}",
                              param="plan_code")
    quantity = body.quantity if body.quantity is not None else sub.quantity
    overrides = body.price_overrides if body.price_overrides is not None else (
        sub.price_overrides if plan.code == sub.plan_code else {})
    check_price_overrides(plan, overrides)
    if plan.code == sub.plan_code and quantity == sub.quantity and overrides == sub.price_overrides:
        raise ConflictError("nothing changes: same plan, quantity and prices", code="no_change")
    if body.timing == "immediately":
        on = max(today, sub.start_date)
    elif body.timing == "renewal":
        on = current_period_end(sub, old_plan, today)
    else:
        if body.date is None:
            raise ValidationError("date is required when timing is 'on_date'", param="date")
        on = body.date
    if on < sub.start_date or (on < today and body.timing != "on_date"):
        raise ValidationError(f"{on} is before the start", param="date")
    if sub.service_end is not None and on >= sub.service_end:
        raise ConflictError(f"the contract ends on {sub.service_end}, before the change", code="already_ending")
    old_fee, new_fee = monthly_fee(old_plan, sub.quantity, sub.price_overrides), monthly_fee(plan, quantity, overrides)
    if plan.code == sub.plan_code and overrides == sub.price_overrides and not any(
            c.model != "flat_fee" for c in plan.charges if c.type != "usage"):
        raise ConflictError(f"plan '{plan.code}' has only flat fees: the quantity changes nothing billed",
                            param="quantity", code="no_change")
    kind = "upgrade" if new_fee > old_fee else "downgrade" if new_fee < old_fee else "change"
    successor = _successor(ports, sub, on, plan=plan, quantity=quantity, overrides=overrides)
    check_charge_codes(plan, contract_charge_codes(successor), "plan_code")
    refund = "prorated" if body.proration == "prorate" else "none"
    return _continue(ports, actor, sub, before, successor, on, "change", refund, f"subscription.{kind}d"
                     if kind != "change" else "subscription.changed",
                     {"classification": kind, "monthly_fee_before": str(old_fee), "monthly_fee_after": str(new_fee)})


@recorded("subscription.transfer")
def transfer(ports: Ports, actor: Actor, sub_id: str, body: OwnershipTransfer) -> Subscription:
    """V5-371: the contract moves to another customer on `on`; each is billed for its own days."""
    sub, before, today = _live(ports, actor, sub_id)
    on = body.on or max(today, sub.start_date)
    if on < today or on < sub.start_date:
        raise ValidationError(f"{on} is in the past or before the start", param="on")
    if sub.service_end is not None and on >= sub.service_end:
        raise ConflictError(f"the contract ends on {sub.service_end}", param="on", code="already_ending")
    owner = get_customer(ports, body.customer_id, param="customer_id")
    current = get_customer(ports, sub.customer_id)
    if owner.id == current.id:
        raise ConflictError("the subscription already belongs to this customer", param="customer_id",
                            code="no_change")
    if owner.currency != current.currency:
        raise ValidationError(f"the new owner is billed in {owner.currency}, the contract in {current.currency}",
                              param="customer_id")
    successor = _successor(ports, sub, on, customer_id=owner.id)
    return _continue(ports, actor, sub, before, successor, on, "transfer", "prorated", "subscription.transferred",
                     {"from_customer": current.id, "to_customer": owner.id})


@recorded("subscription.billing_day")
def change_billing_day(ports: Ports, actor: Actor, sub_id: str, body: BillingDayChange) -> Subscription:
    """V5-3687: the new billing day applies from the end of the current period; the days until the new day
    form a stub period billed by day. The plan may forbid it (rules.billing_day_change)."""
    sub, before, today = _live(ports, actor, sub_id)
    plan = _plans(ports, sub)[sub.plan_version_on(today)]
    if plan.rules.billing_day_change == "never":
        raise ConflictError(f"plan '{plan.code}' does not allow changing the billing day "
                            "(rules.billing_day_change)", param="billing_day", code="billing_day_locked")
    if sub.parent_id:
        raise ConflictError("an add-on follows its base subscription's billing day", param="billing_day",
                            code="add_on_cycle")
    validate_cycle({c.billing_period for c in plan.charges if c.type != "one_time"}, "calendar",
                   body.billing_day, body.billing_month, body.billing_weekday, default_month=sub.billing_month)
    if (body.billing_day, body.billing_month, body.billing_weekday) == (
            sub.billing_day, sub.billing_month, sub.billing_weekday):
        raise ConflictError("the billing day is already that", param="billing_day", code="no_change")
    if any(p.end is None or p.end > today for p in sub.pauses) or (sub.trial_end and sub.trial_end > today):
        raise ConflictError("the billing day cannot change while a pause or trial is running or coming",
                            param="billing_day", code="billing_day_locked")
    on = current_period_end(sub, plan, today)
    if sub.service_end is not None and on >= sub.service_end:
        raise ConflictError(f"the contract ends on {sub.service_end}", param="billing_day", code="already_ending")
    successor = _successor(ports, sub, on, billing_day=body.billing_day or sub.billing_day,
                           billing_month=body.billing_month or sub.billing_month,
                           billing_weekday=body.billing_weekday or sub.billing_weekday, billing_alignment="calendar")
    return _continue(ports, actor, sub, before, successor, on, "change", "none", "subscription.billing_day_changed",
                     {"billing_day": successor.billing_day, "from": on.isoformat()})


def _successor(ports: Ports, sub: Subscription, on: date, plan: Plan | None = None, quantity: Decimal | None = None,
               overrides: dict | None = None, **changes) -> Subscription:
    """The subscription that continues `sub` from `on` (same contract ID, cycle and open terms)."""
    running = [c.model_copy(update={"start": max(c.start, on)}) for c in sub.contract_charges
               if c.charge.type == "recurring" and (c.end is None or c.end > on)]
    return sub.model_copy(deep=True, update={
        "id": new_id("sub"), "start_date": on, "replaces": sub.id, "replaced_by": None,
        "termination": sub.termination if sub.termination and sub.termination.service_end > on else None,
        "plan_code": plan.code if plan else sub.plan_code,
        "plan_version": plan.plan_version if plan else sub.plan_version_on(on),
        "quantity": quantity if quantity is not None else sub.quantity,
        "price_overrides": overrides if overrides is not None else sub.price_overrides,
        "plan_changes": [] if plan else [c for c in sub.plan_changes if c.effective > on],
        "coupons": [], "trial_end": sub.trial_end if sub.trial_end and sub.trial_end > on else None,
        "pauses": [p for p in sub.pauses if (p.end or date.max) > on and p.start >= on],
        "contract_charges": running, "usage_billed_until": None, "recheck_from": None, "next_bill_date": None,
        "created_at": ports.clock.now(), "version": 1, **changes})


def _continue(ports: Ports, actor: Actor, sub: Subscription, before: Subscription, successor: Subscription,
              on: date, effective: str, refund: str, action: str, detail: dict) -> Subscription:
    """End `sub` on `on` and start its successor, in one transaction with the contract ID moved over."""
    sub.termination = Termination(effective=effective, service_end=on, requested_at=ports.clock.now(),
                                  requested_by=actor.name, reason=f"continued by {successor.id}", refund=refund)
    sub.replaced_by = successor.id
    sub.contract_charges = [c.model_copy(update={"end": on}) if c.charge.type == "recurring" and (
        c.end is None or c.end > on) else c for c in sub.contract_charges]
    sub.recheck_from = min(sub.recheck_from or on, on)
    sub.next_bill_date = next_bill_date(sub, _plans(ports, sub), ports.repo.billed_keys(sub.id))
    today = ports.clock.now().date()
    if sub.next_bill_date is None or sub.next_bill_date > today:
        sub.next_bill_date = today
    successor.next_bill_date = next_bill_date(successor, _plans(ports, successor), ())
    operations = [ports.repo.subscription_put(sub), Put(ports.repo.subscription_item(successor))]
    add_ons = _live_add_ons(ports, sub, today)
    if add_ons and successor.customer_id != sub.customer_id:
        raise ConflictError(f"subscription {sub.id} carries add-ons {[a.id for a in add_ons]}: end them first",
                            code="has_add_ons")
    for add_on in add_ons:  # add-ons follow the subscription that continues their base
        add_on.parent_id = successor.id
        operations.append(ports.repo.subscription_put(add_on))
        add_on.version += 1
    if sub.external_id:
        operations.append(Put(alias_item("subscription", sub.external_id, successor.id), 1))
    audits = [ports.audit(actor, action, "subscription", sub.id, before, {**sub.model_dump(mode="json"), **detail}),
              ports.audit(actor, "subscription.created", "subscription", successor.id, None,
                          {**successor.model_dump(mode="json"), **detail})]
    event = ports.event(actor, action, {"subscription": as_updated(sub), "successor": successor.model_dump(mode="json"),
                                        **detail})
    try:
        ports.repo.store.transact(operations, audits, [event])
    except ConflictError:
        raise ConflictError(f"subscription {sub.id} changed meanwhile; read it again and retry",
                            code="concurrent_change") from None
    sub.version += 1
    return successor


def _live_add_ons(ports: Ports, sub: Subscription, today: date) -> list[Subscription]:
    return [a for a in ports.repo.customer_subscriptions(sub.customer_id)
            if a.parent_id == sub.id and a.status_on(today) != "terminated"]


# renewal terms (V5-361) -------------------------------------------------------------------------

@recorded("subscription.terms")
def change_terms(ports: Ports, actor: Actor, sub_id: str, body: TermsChange) -> Subscription:
    """Opt in/out of auto-renewal, renew by a number of months, or extend the term to a date."""
    sub, before, today = _live(ports, actor, sub_id)
    if body.auto_renew is None and body.renew_months is None and body.end_date is None:
        raise ValidationError("say what changes: auto_renew, renew_months or end_date", param="auto_renew")
    if body.renew_months is not None and body.end_date is not None:
        raise ValidationError("renew_months and end_date cannot both be given", param="end_date")
    if sub.termination is not None and (body.renew_months or body.end_date):
        raise ConflictError(f"the contract is terminated from {sub.termination.service_end}; it cannot be renewed",
                            param="end_date", code="terminated")
    if body.auto_renew is not None:
        sub.auto_renew = body.auto_renew
    if body.renew_months is not None:
        if sub.end_date is None:
            raise ConflictError("the contract has no end date to renew from", param="renew_months", code="open_ended")
        sub.end_date = months_after(sub.start_date, sub.end_date, body.renew_months)  # from the start: no drift
    if body.end_date is not None:
        if sub.end_date is None:
            raise ConflictError("the contract has no end date to extend", param="end_date", code="open_ended")
        if body.end_date <= sub.end_date:
            raise ValidationError(f"the term already ends on {sub.end_date}: extend it past that", param="end_date")
        sub.end_date = body.end_date
    action = "subscription.renewed" if body.renew_months or body.end_date else "subscription.terms_changed"
    return _save(ports, actor, sub, before, action)


# billing ahead (V5-3110) -----------------------------------------------------------------------

@recorded("subscription.bill_ahead")
def bill_ahead(ports: Ports, actor: Actor, sub_id: str, body: BillAhead):
    """Invoice now the next `cycles` billing cycles of the subscription's recurring charges (with anything
    already due); later changes to those cycles are credited or charged by the re-check."""
    actor.require("invoices:write")
    sub, _, today = _live(ports, actor, sub_id)
    plans = _plans(ports, sub)
    starts = sorted({item.period.start for stream in scheduled_items(sub, plans)
                     for item in _first(stream, lambda i: i.period.start > today, body.cycles)})
    if not starts:
        raise ConflictError("nothing is left to bill on this contract", code="nothing_to_bill")
    until = starts[min(body.cycles, len(starts)) - 1]
    invoice = invoice_account(ports, actor, sub.customer_id, today, ahead={sub.id: until})
    if invoice is None:
        raise ConflictError(f"the cycles up to {until} are billed already", code="nothing_to_bill")
    return invoice


def _first(items, after, count: int):
    taken = 0
    for item in items:
        if after(item):
            yield item
            taken += 1
            if taken >= count:
                return


# contract charges (V5-2811) ----------------------------------------------------------------------

@recorded("subscription.charge_add")
def add_charge(ports: Ports, actor: Actor, sub_id: str, body: ContractChargeAdd) -> Subscription:
    """An event adds a charge to this contract from `start` (recurring on the contract's cycle, or once)."""
    sub, before, today = _live(ports, actor, sub_id)
    plans = _plans(ports, sub)  # every version the contract bills on: a billed item has one charge per code
    if any(c.code == body.code for plan in plans.values() for c in plan.charges) or any(
            c.charge.code == body.code and (c.end is None or c.end > today) for c in sub.contract_charges):
        raise ConflictError(f"charge '{body.code}' is already on this contract", param="code", code="duplicate_charge")
    if body.code in CONTRACT_FEE_CODES:
        raise ValidationError(f"'{body.code}' is the code of a fee the contract adds itself: choose another code",
                              param="code", code="charge_code_clash")
    start = body.start or max(today, sub.start_date)
    if start < today:
        raise ValidationError(f"a charge cannot be added in the past (today is {today})", param="start")
    if body.end is not None and body.end <= start:
        raise ValidationError("end must be after start", param="end")
    charge = Charge(code=body.code, name=body.name, type=body.type, billing_period=body.billing_period,
                    price=body.price, gl_code=body.gl_code)
    sub.contract_charges.append(ContractCharge(charge=charge, start=start, end=body.end, reason=body.reason))
    return _save(ports, actor, sub, before, "subscription.charge_added")


@recorded("subscription.charge_remove")
def remove_charge(ports: Ports, actor: Actor, sub_id: str, code: str, body: ContractChargeRemove) -> Subscription:
    """An event removes a contract charge from `on`; days already billed past it are credited."""
    sub, before, today = _live(ports, actor, sub_id)
    on = body.on or today
    if on < today:
        raise ValidationError(f"a charge cannot be removed in the past (today is {today})", param="on")
    running = [c for c in sub.contract_charges if c.charge.code == code and (c.end is None or c.end > on)]
    if not running:
        raise ConflictError(f"no charge '{code}' runs on this contract on {on}", param="code", code="no_charge")
    for extra in running:
        extra.end = max(on, extra.start)
    return _save(ports, actor, sub, before, "subscription.charge_removed", recheck_from=on)


# history (V5-3161) -------------------------------------------------------------------------------

def history(ports: Ports, sub_id: str, limit: int = 100) -> list[dict]:
    """Who did what and when on this contract, across the subscriptions that continue one another,
    refused actions included with their reason."""
    sub = get_subscription(ports, sub_id)
    chain, seen = [sub.id], {sub.id}
    previous = sub.replaces
    while previous and previous not in seen:
        chain.append(previous)
        seen.add(previous)
        earlier = ports.repo.get_subscription(previous)
        previous = earlier.replaces if earlier else None
    entries = []
    for member in chain:
        events, _ = ports.repo.list_audit(limit, None, object_id=member)
        for event in events:
            after = event.after or {}
            entries.append({"at": event.occurred_at.isoformat(), "actor": event.actor, "role": event.role,
                            "action": event.action, "subscription_id": member,
                            "outcome": "rejected" if event.action.endswith(".rejected") else "done",
                            "reason": after.get("reason") if event.action.endswith(".rejected") else None,
                            "rule": after.get("rule") if event.action.endswith(".rejected") else None})
    return sorted(entries, key=lambda e: e["at"], reverse=True)[:limit]
