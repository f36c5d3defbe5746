"""The contract calendar: what happens to contracts on a day by itself (issue 4).

Run daily (`contract_calendar` function, 01:00 UTC, before the 02:00 bill run). For the day:
- a subscription starting that day (created before it, V5-3838) is activated: `subscription.activated`;
- a subscription whose service ends that day (a scheduled termination, UC05; an end date; a regret)
  is deactivated: `subscription.terminated`, and a termination scheduled in advance is e-mailed to
  CRE and Finance (UC05 step 2);
- a fixed term that ends tomorrow (or ended on a missed day) with auto-renew on is renewed by its term,
  counted from the start (`subscription.renewed`), and billing continues;
- a pause that ends that day: `subscription.resumed` (billing follows from the dates);
- a trial that ends in `TRIAL_NOTICE_DAYS`: `subscription.trial_will_end` and an e-mail to the customer;
- a bill due in the entity's `upcoming_bill_notice_days`: an e-mail to the customer with what the
  bill run will issue (V5-4247), in the customer's language.
Every notice is done once: a marker per subscription, kind and day is written with its audit entry
(conditional), so a re-run or a retried invocation changes nothing. Webhook endpoints receive the
events like every platform event (V5-1598: service activated / deactivated).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from babel.dates import format_date
from babel.numbers import format_currency

from shared.adapters.dynamodb import Item, Put
from shared.billing.errors import BillingError, ConflictError
from shared.billing.models import Customer, Subscription
from shared.billing.periods import renewed_end
from shared.billing.schedule import next_bill_date
from shared.documents.labels import babel_locale
from shared.services.billing import plans_for
from shared.services.catalog import get_customer, get_entity
from shared.services.context import Actor, Ports, as_updated
from shared.services.delivery import recipients
from shared.services.notification_texts import text_for
from shared.services.reconciliation import all_subscriptions

TRIAL_NOTICE_DAYS = 3
CATCH_UP_DAYS = 7  # a missed day (an outage) is caught up within a week, still once


def run_day(ports: Ports, actor: Actor, today: date, staff: list[str]) -> dict[str, list[str]]:
    """Everything due on `today`; returns the subscription ids per kind of notice done."""
    done: dict[str, list[str]] = defaultdict(list)
    for sub in all_subscriptions(ports):
        for kind in _notices(ports, actor, sub, today, staff):
            done[kind].append(sub.id)
    return dict(done)


def _notices(ports: Ports, actor: Actor, sub: Subscription, today: date, staff: list[str]) -> list[str]:
    done = []
    recent = [today - timedelta(days=n) for n in range(CATCH_UP_DAYS)]
    if (sub.auto_renew and sub.term_months and sub.end_date and sub.termination is None
            and sub.end_date <= today + timedelta(days=1) and _renew(ports, actor, sub, today)):
        done.append("renewed")  # before the end is acted on: a missed day renews, it does not terminate
    if sub.start_date in recent and sub.created_at.date() < sub.start_date and _once(
            ports, actor, sub, "activated", sub.start_date):
        done.append("activated")
    end = sub.service_end
    if end is not None and end in recent and end > sub.start_date and _once(ports, actor, sub, "terminated", end):
        done.append("terminated")
        termination = sub.termination
        if termination and termination.requested_at.date() < end and termination.effective not in (
                "change", "transfer"):
            _tell_staff(ports, sub, staff)
    for pause in sub.pauses:
        if pause.end in recent and _once(ports, actor, sub, "resumed", pause.end):
            done.append("resumed")
    if sub.trial_end is not None and sub.trial_end - timedelta(days=TRIAL_NOTICE_DAYS) in recent \
            and sub.trial_end > today and _once(ports, actor, sub, "trial_will_end", sub.trial_end):
        _tell_customer(ports, sub, "trial_will_end", {"date": sub.trial_end - timedelta(days=1)})
        done.append("trial_will_end")
    if sub.next_bill_date is not None and sub.status_on(today) != "terminated" and _upcoming(ports, actor, sub, today):
        done.append("upcoming_bill")
    return done


def _once(ports: Ports, actor: Actor, sub: Subscription, kind: str, day: date, announce: bool = True) -> bool:
    """Write the marker of this notice with its audit entry and (`announce`) its event `subscription.<kind>`;
    False when it was done already."""
    marker = Item(f"SUB#{sub.id}", f"NOTICE#{kind}#{day.isoformat()}", "notice",
                  {"subscription_id": sub.id, "kind": kind, "date": day.isoformat()})
    events = [ports.event(actor, f"subscription.{kind}", {"subscription": sub.model_dump(mode="json")})] \
        if announce else []
    try:
        ports.repo.store.transact([Put(marker)], [ports.audit(actor, f"subscription.{kind}", "subscription", sub.id,
                                                             after={"date": day.isoformat()})], events)
    except ConflictError:
        return False
    return True


def _renew(ports: Ports, actor: Actor, sub: Subscription, today: date) -> bool:
    """Renew the term ending tomorrow, and every term whose end has passed (a missed day): terms count
    from the start (start + every term's months, clamped: Jan 31 -> Feb 28 -> Mar 31), and the next bill
    date follows the new end so that billing goes on."""
    before = sub.model_copy(deep=True)
    while sub.end_date <= today + timedelta(days=1):
        sub.end_date = renewed_end(sub.start_date, sub.end_date, sub.term_months)
    sub.next_bill_date = next_bill_date(sub, plans_for(ports, [sub])[sub.plan_code], ports.repo.billed_keys(sub.id))
    try:
        ports.repo.update_subscription(sub, ports.audit(actor, "subscription.renewed", "subscription", sub.id,
                                                        before, sub),
                                       [ports.event(actor, "subscription.renewed", {"subscription": as_updated(sub)})])
    except ConflictError:
        sub.end_date, sub.next_bill_date = before.end_date, before.next_bill_date
        return False  # renewed (or changed) meanwhile: the next run sees it
    return True


def _upcoming(ports: Ports, actor: Actor, sub: Subscription, today: date) -> bool:
    customer = get_customer(ports, sub.customer_id)
    entity = get_entity(ports, customer.billing_entity)
    days = entity.upcoming_bill_notice_days
    if not days or sub.next_bill_date != today + timedelta(days=days):
        return False
    if not _once(ports, actor, sub, "upcoming_bill", sub.next_bill_date, announce=False):
        return False
    from shared.services.preview import upcoming

    try:
        bills = upcoming(ports, sub.id, 1)
    except BillingError:
        bills = []
    if not bills:
        return True
    bill = bills[0]
    locale = babel_locale(customer.language)
    _tell_customer(ports, sub, "upcoming_bill", {
        "date": sub.next_bill_date,
        "amount": format_currency(bill.total, bill.currency, locale=locale, decimal_quantization=False)},
        customer)
    return True


def _tell_customer(ports: Ports, sub: Subscription, kind: str, values: dict, customer: Customer | None = None) -> None:
    if ports.mailer is None:
        return
    customer = customer or get_customer(ports, sub.customer_id)
    locale = babel_locale(customer.language)
    shown = {k: format_date(v, format="long", locale=locale) if isinstance(v, date) else v
             for k, v in values.items()}
    subject, body = text_for(kind, customer.language, contract=sub.external_id or sub.id, **shown)
    to, cc, bcc = recipients(customer)
    ports.mailer.send(to=to, cc=cc, bcc=bcc, subject=subject, text=body,
                      tags={"subscription_id": sub.id, "notice": kind})


def _tell_staff(ports: Ports, sub: Subscription, staff: list[str]) -> None:
    """UC05: the scheduled termination was executed; CRE and Finance hear of it."""
    if not staff or ports.mailer is None:
        return
    customer = get_customer(ports, sub.customer_id)
    termination = sub.termination
    last_day = termination.service_end - timedelta(days=1)
    lines = [
        f"Contract {sub.external_id or '(no contract ID)'} (subscription {sub.id}) has ended as scheduled.",
        "",
        f"Customer: {customer.name} ({customer.external_id or customer.id})",
        f"Plan: {sub.plan_code} (version {sub.plan_version_on(sub.start_date)})",
        f"Last day of service: {last_day.isoformat()}",
        f"Scheduled by {termination.requested_by} on {termination.requested_at.date().isoformat()}"
        + (f": {termination.reason}" if termination.reason else ""),
        "",
        "Nothing is billed for it after that day (seed 000 UC05).",
    ]
    ports.mailer.send(to=staff, subject=f"Contract {sub.external_id or sub.id} terminated on {termination.service_end}",
                      text="\n".join(lines), tags={"subscription_id": sub.id, "notice": "terminated"})
