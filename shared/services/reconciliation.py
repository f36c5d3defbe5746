"""Seed 000 §7: alert if a configured contract fails to appear on invoices or accounting exports.

- `check_bill_run(ports, as_of)`: after a bill run for `as_of`, every contract live that day (status
  active or pending termination) with an item due on or before it has been invoiced, and each item
  due that very day is on the invoice that billed it as a line of the contract (a $0 line counts);
  and no late usage due by then (of any contract, ended ones too) is left uninvoiced.
- `check_export(ports, entity, month, recognized_csv)`: every contract of the entity's customers that
  was live during the month and has an item billed by the month's end whose service overlaps the
  month has a row in the month's recognized revenue file (exports.py writes 0.00 rows for contracts
  in service with nothing recognized, so a $0 contract counts).
- `notify(ports, recipients, subject_of, findings)`: one email to CRE and Finance naming each missing
  contract (contract ID, subscription, customer, why), through the mailer port.

Each finding: `subscription_id`, `external_id`, `customer_id`, `reason`, `detail`. The handlers publish
their count as the CloudWatch metric `MissingContracts` (alarmed in the monitoring construct).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import suppress
from datetime import date, timedelta

from shared.adapters.dynamodb import Item, Put
from shared.billing.errors import ConflictError
from shared.billing.models import BillingEntity, Invoice, Subscription
from shared.billing.periods import Period
from shared.billing.revrec import month_bounds
from shared.billing.schedule import due_items, scheduled_items
from shared.services.billing import plans_for
from shared.services.context import Ports

LIVE = ("active", "pending_termination", "paused", "trialing")  # due items decide what must be billed


def all_subscriptions(ports: Ports) -> Iterator[Subscription]:
    cursor = None
    while True:
        page, more = ports.repo.list_subscriptions(100, cursor)
        yield from page
        if not more or not page:
            return
        cursor = page[-1].id


def _finding(sub: Subscription, reason: str, detail: str) -> dict:
    return {"subscription_id": sub.id, "external_id": sub.external_id, "customer_id": sub.customer_id,
            "reason": reason, "detail": detail}


def check_bill_run(ports: Ports, as_of: date) -> list[dict]:
    live = [s for s in all_subscriptions(ports) if s.status_on(as_of) in LIVE]
    plans = plans_for(ports, live) if live else {}
    invoices: dict[str, Invoice | None] = {}
    findings = []
    for sub in live:
        sub_plans = plans[sub.plan_code]
        billed = ports.repo.billed(sub.id)
        unbilled = due_items(sub, sub_plans, as_of, billed)
        if unbilled:
            findings.append(_finding(sub, "not_invoiced", "; ".join(
                f"{i.charge_code} for {i.service.start} to {i.service.end} was due on {i.bill_date}"
                for i in unbilled)))
            continue
        today = [i for stream in scheduled_items(sub, sub_plans) for i in _due_by(stream, as_of)
                 if i.bill_date == as_of]
        for invoice_id in sorted({billed[i.key]["invoice_id"] for i in today}):
            if invoice_id not in invoices:
                invoices[invoice_id] = ports.repo.get_invoice(invoice_id)
            invoice = invoices[invoice_id]
            if invoice is None or sub.id not in invoice.subscription_ids:
                findings.append(_finding(sub, "not_on_invoice",
                                         f"billed on {as_of} by invoice {invoice_id} without a line of the contract"))
    return findings + _late_usage_not_invoiced(ports, as_of)


def _late_usage_not_invoiced(ports: Ports, as_of: date) -> list[dict]:
    """Late usage due on or before `as_of` that no invoice has billed (also of contracts that have ended)."""
    markers: dict[str, list] = {}
    for marker in ports.repo.late_usage_due(as_of):
        markers.setdefault(marker.pk.removeprefix("SUB#"), []).append(marker)
    subs = ports.repo.get_subscriptions(set(markers))
    return [_finding(subs[sub_id], "late_usage_not_invoiced", "; ".join(
        f"{m.data['metric_code']} used on {m.data['date']}, late since {m.data['due']}" for m in found))
        for sub_id, found in sorted(markers.items()) if sub_id in subs]


def _due_by(stream, day: date):
    for item in stream:
        if item.bill_date > day:
            return
        yield item


def check_export(ports: Ports, entity: BillingEntity, month: str, recognized_csv: str) -> list[dict]:
    first, following = month_bounds(month)
    in_month = Period(first, following)
    listed = {row["subscription_id"] for row in csv.DictReader(io.StringIO(recognized_csv))}
    live = [s for s in all_subscriptions(ports)
            if s.start_date < following and (s.service_end is None or s.service_end > first)]
    customers = ports.repo.get_customers({s.customer_id for s in live})
    live = [s for s in live if s.customer_id in customers and customers[s.customer_id].billing_entity == entity.id]
    plans = plans_for(ports, live) if live else {}
    last_day = following - timedelta(days=1)
    findings = []
    for sub in live:
        if sub.id in listed:
            continue
        billed = ports.repo.billed(sub.id)
        served = [i for stream in scheduled_items(sub, plans[sub.plan_code]) for i in _due_by(stream, last_day)
                  if i.key in billed and i.service.intersect(in_month)]
        if served:
            findings.append(_finding(sub, "not_in_export", f"billed for {month} ({served[0].charge_code} from "
                                                           f"{served[0].service.start}) but no row in the export"))
    return findings


def notify(ports: Ports, recipients: list[str], subject: str, findings: list[dict]) -> str | None:
    """Email the findings to CRE and Finance; None when there is nothing to report or nobody to tell."""
    if not findings or not recipients or ports.mailer is None:
        return None
    lines = [subject, "", "Contracts missing:"]
    for f in findings:
        lines.append(f"- contract {f['external_id'] or '(no contract ID)'} (subscription {f['subscription_id']}, "
                     f"customer {f['customer_id']}): {f['reason'].replace('_', ' ')}: {f['detail']}")
    lines += ["", "Seed 000 §7 monitoring: every configured contract appears on its invoice and in the exports."]
    return ports.mailer.send(to=recipients, subject=subject, text="\n".join(lines))


def after_bill_run(ports: Ports, recipients: list[str], as_of: date, bill_run_id: str | None = None) -> list[dict]:
    """`check_bill_run`, and the email when a contract is missing: once per bill run (its
    `bill_run.completed` may arrive twice: the outbox and EventBridge deliver at least once)."""
    findings = check_bill_run(ports, as_of)
    run = f" {bill_run_id}" if bill_run_id else ""
    if bill_run_id and ports.repo.store.get(f"BR#{bill_run_id}", "RECONCILED"):
        return findings
    notify(ports, recipients, f"Billing reconciliation: {len(findings)} contract(s) missing from the bill run{run} "
                              f"of {as_of}", findings)
    if bill_run_id:
        with suppress(ConflictError):  # a concurrent copy of the event marked it first
            ports.repo.store.transact([Put(Item(f"BR#{bill_run_id}", "RECONCILED", "bill_run_reconciled",
                                                {"findings": len(findings)}))])
    return findings
