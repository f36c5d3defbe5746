"""Revenue schedules as invoices finalize, terminations adjusting them, and Finance's monthly exports.

- `record_invoice`: the schedules of a finalized invoice (`revrec.schedules_for_invoice`, ratable by
  day unless told otherwise), stored once per invoice line and bundle component; a usage line drawn
  from a prepayment recognizes that prepayment; a credit note adjusts the schedules it credits
  (`revrec.adjust_schedule`: a cumulative catch-up in the credit note's month). A subscription already
  terminated when its invoice's event arrives gets its schedules terminated at once.
- `void_invoice`: the invoice was voided (`invoice.voided`): its schedules reverse what they recognized
  in the month of the void (`revrec.void_schedule`).
- Idempotent and order-free (at-least-once delivery, any order): every effect is keyed by its document
  (a "processed" marker per invoice or credit note, a "void applied" marker per invoice, written in the
  transaction that changes the schedules), so a redelivery, under the same or another event id, changes
  nothing; a void or a credit note whose invoice was not processed yet processes it first.
- `terminate`: a subscription's service ends (`subscription.terminated` / `.termination_scheduled`):
  its schedules recognize what is left by the month service ends (`revrec.terminate_schedule`).
- `export_month`: the month's five CSV files (shared/billing/exports.py, column schemas there) to
  `exports/<entity code>/<YYYY-MM>/` in the Finance bucket. A re-run compares each file with what was
  written: identical files are not written again (the bucket is versioned: no duplicate versions);
  a changed file is replaced and the record says which, with its previous hash. Every run is an
  audit event (`export.created`, `export.rerun`, `export.replaced`).
- `run_due_exports`: the daily schedule's entry point: for each billing entity whose previous month
  is due (first business day in the entity's country and region) and not exported yet, export it.

Closed months: once a month is exported, schedules made or adjusted later put nothing into it or
before it (revrec's `first_open_month`: what would fall there is recognized in the first open month),
so a re-run of an exported month gives the same files unless invoices of that month changed.

The register and the journal list the documents `record_invoice` processed (indexed by billing entity
and issue date); a document whose event never arrived is missing from them and from the revenue files,
which the export's reconciliation reports. Exports read every schedule of the entity: fine for
thousands of contracts, to be bounded by closing balances beyond that.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.revenue_repository import (
    RevenueRepository,
    StoredSchedule,
    exports_store,
    finance_settings,
)
from shared.billing.design import CommercialTerm, Design, ImportedDesign, check_design, design_to_billing, slug
from shared.billing.errors import ConflictError, NotFoundError, RetryableError, ValidationError
from shared.billing.exports import (
    GlAccounts,
    annual_prepay_subscription_ids,
    deferred_rollforward_csv,
    export_due_date,
    gl_journal_csv,
    invoice_register_csv,
    previous_month,
    recognized_revenue_csv,
)
from shared.billing.models import BillingEntity, Charge, Invoice, InvoiceLine
from shared.billing.periods import add_months
from shared.billing.revrec import (
    Convention,
    RevenueSchedule,
    apply_credit_note,
    apply_drawdowns,
    check_month,
    is_credit_note,
    month_bounds,
    month_of,
    schedules_for_invoice,
    terminate_schedule,
    void_schedule,
    voided_on,
)
from shared.services.billing import plans_for
from shared.services.catalog import create_metric, create_plan, get_customer, get_entity
from shared.services.context import Actor, Documents, Ports
from shared.services.invoices import get_invoice
from shared.services.reconciliation import check_export, notify
from shared.services.requests.catalog import MetricCreate, PlanCreate
from shared.services.requests.common import CODE
from shared.services.requests.contracts import SubscriptionCreate
from shared.services.subscriptions import create_subscription, get_subscription
from shared.services.usage import ingest

ATTEMPTS = 5
CSV = "text/csv; charset=utf-8"
# The balance-sheet side of the GL journal; revenue goes to each line's GL code (7005, 7010, ...).
GL_ACCOUNTS = GlAccounts(receivables="1200", deferred_revenue="2400", tax_payable="2200", suspense="7999")
RECOGNIZED, ANNUAL_PREPAY = "recognized_revenue.csv", "recognized_revenue_annual_prepay.csv"
ROLLFORWARD, JOURNAL, REGISTER = "deferred_revenue_rollforward.csv", "gl_journal.csv", "invoice_register.csv"
EXPORT_FILES = (RECOGNIZED, ANNUAL_PREPAY, ROLLFORWARD, JOURNAL, REGISTER)


class Envelope(BaseModel):
    """The platform's event envelope (events/README.md)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    type: str
    version: str
    occurred_at: datetime
    correlation_id: str | None = None
    actor: str | None = None
    data: dict


class BillingEvent(EventBridgeModel):
    """An EventBridge event of the billing bus, as a rule delivers it to a Lambda target."""

    detail: Envelope


@dataclass
class Finance:
    """What Finance's use cases need beyond `Ports`: schedule storage, the exports bucket, recipients."""

    revenue: RevenueRepository
    exports: Documents
    recipients: list[str] = field(default_factory=list)


def finance_of(ports: Ports) -> Finance:
    """Finance's ports next to `ports`, from the environment (`EXPORTS_BUCKET`, `CRE_EMAIL`, `FINANCE_EMAIL`)."""
    settings = finance_settings()
    return Finance(RevenueRepository(ports.repo.store), exports_store(settings), settings.recipients)


def first_open_month(finance: Finance, entity_id: str) -> str | None:
    last = finance.revenue.last_exported_month(entity_id)
    return month_of(add_months(month_bounds(last)[0], 1)) if last else None


# ---------------------------------------------------------------------------------------------- schedules


def charge_lookup(ports: Ports, invoice: Invoice) -> Callable[[InvoiceLine], Charge | None]:
    """The catalog charge each line bills: its subscription's plan version for the line's period."""
    subs = ports.repo.get_subscriptions(set(invoice.subscription_ids))
    plans = plans_for(ports, list(subs.values())) if subs else {}

    def charge_of(line: InvoiceLine) -> Charge | None:
        sub = subs.get(line.subscription_id or "")
        if sub is None:
            return None
        plan = plans[sub.plan_code][sub.plan_version_on(line.period_start or invoice.issue_date)]
        return next((c for c in plan.charges if c.code == line.charge_code), None)

    return charge_of


def _stored(schedules: Iterable[RevenueSchedule], entity_id: str) -> list[StoredSchedule]:
    """Number the components of each line in order (a line without components is component 0)."""
    stored, seen = [], {}
    for schedule in schedules:
        index = seen.get(schedule.line_index, 0)
        seen[schedule.line_index] = index + 1
        stored.append(StoredSchedule(schedule, index, entity_id))
    return stored


def record_invoice(ports: Ports, finance: Finance, actor: Actor, invoice_id: str,
                   convention: Convention | None = None) -> list[StoredSchedule]:
    """Store the schedules of a finalized invoice (or apply a credit note) once; return them.
    Ratable lines follow the billing entity's convention (by day, or by month) unless one is given.
    An invoice voided before its event was processed gets its schedules and their void at once."""
    for _ in range(ATTEMPTS):
        if finance.revenue.is_processed(invoice_id):
            return finance.revenue.invoice_schedules(invoice_id)
        invoice = get_invoice(ports, invoice_id)
        if invoice.status == "draft":
            raise ConflictError(f"invoice {invoice_id} is a draft: schedules are made at finalization",
                                param="invoice_id", code="invoice_not_finalized")
        try:
            if is_credit_note(invoice):
                return _apply_credit_note(ports, finance, actor, invoice)
            chosen = convention or ports.repo.get_entity(invoice.billing_entity_id).revenue_convention
            return _record(ports, finance, actor, invoice, chosen)
        except ConflictError:
            continue  # another delivery or a concurrent drawdown wrote meanwhile: read again
    raise RetryableError(f"invoice {invoice_id}: revenue schedules kept conflicting with concurrent writes")


def _open_from(finance: Finance, entity_id: str, day: date) -> date:
    """`day`, or the first day of the entity's first open month when `day` falls in an exported one."""
    open_month = first_open_month(finance, entity_id)
    return max(day, month_bounds(open_month)[0]) if open_month else day


def _record(ports: Ports, finance: Finance, actor: Actor, invoice: Invoice,
            convention: Convention) -> list[StoredSchedule]:
    entity_id = invoice.billing_entity_id
    charge_of = charge_lookup(ports, invoice)
    as_finalized = invoice.model_copy(update={"status": "finalized"}) if invoice.status == "void" else invoice
    made = schedules_for_invoice(as_finalized, charge_of, convention, first_open_month(finance, entity_id))
    made = _terminated(ports, finance, made, entity_id)
    voided = voided_on(invoice)
    also = []
    if voided is not None:  # voided before this event was processed: made and voided in one transaction
        effective = _open_from(finance, entity_id, voided)
        made = [void_schedule(s, effective) for s in made]
        also.append(finance.revenue.void_item(invoice.id, entity_id, voided, month_of(effective)))
    new = _stored(made, entity_id)
    changed = _drawdowns(finance, invoice, charge_of, new) if voided is None else []
    marker = finance.revenue.document_item(invoice.id, entity_id, invoice.issue_date, len(new), "invoice")
    audit = [ports.audit(actor, "revenue_schedules.created", "invoice", invoice.id, after={
        "schedules": len(new), "amount": str(sum((s.schedule.amount for s in new), 0)), "convention": convention,
        "prepayments_drawn": [s.id for s in changed]})]
    if voided is not None:
        audit.append(ports.audit(actor, "revenue_schedules.voided", "invoice", invoice.id, after={
            "schedules": [s.id for s in new], "void_date": voided.isoformat()}))
    finance.revenue.save(new, changed, marker, audit, also)
    return new


def _terminated(ports: Ports, finance: Finance, schedules: list[RevenueSchedule],
                entity_id: str) -> list[RevenueSchedule]:
    """Schedules of subscriptions whose termination was decided before their invoice's event was processed,
    terminated as the termination's event does (`terminate`), so the order of the events does not matter."""
    subs = ports.repo.get_subscriptions({s.subscription_id for s in schedules if s.subscription_id})
    ended = []
    for schedule in schedules:
        sub = subs.get(schedule.subscription_id or "")
        termination = sub.termination if sub else None
        if termination is not None:
            decided = _open_from(finance, entity_id, termination.requested_at.date())
            schedule = terminate_schedule(schedule, termination.service_end, decided,
                                          refunded=termination.refund != "none")
        ended.append(schedule)
    return ended


def void_invoice(ports: Ports, finance: Finance, actor: Actor, invoice_id: str) -> list[StoredSchedule]:
    """The invoice was voided: its schedules reverse, in the month of the void (or the first open month),
    what they recognized before it, and recognize nothing after. Once per invoice; an invoice whose
    `invoice.finalized` was not processed yet gets its schedules and their void in one transaction."""
    for _ in range(ATTEMPTS):
        invoice = get_invoice(ports, invoice_id)
        voided = voided_on(invoice)
        if voided is None:
            raise ConflictError(f"invoice {invoice_id} is {invoice.status}, not void", param="invoice_id",
                                code="invalid_status")
        if not finance.revenue.is_processed(invoice_id):
            return record_invoice(ports, finance, actor, invoice_id)
        stored = finance.revenue.invoice_schedules(invoice_id)
        if finance.revenue.is_voided(invoice_id):
            return stored
        effective = _open_from(finance, invoice.billing_entity_id, voided)
        for s in stored:
            s.schedule = void_schedule(s.schedule, effective)
        marker = finance.revenue.void_item(invoice.id, invoice.billing_entity_id, voided, month_of(effective))
        audit = ports.audit(actor, "revenue_schedules.voided", "invoice", invoice.id, after={
            "schedules": [s.id for s in stored], "void_date": voided.isoformat()})
        try:
            finance.revenue.save([], stored, None, [audit], [marker])
            return stored
        except ConflictError:
            continue  # a redelivery or a credit note wrote meanwhile: read again
    raise RetryableError(f"invoice {invoice_id}: the void kept conflicting with concurrent writes")


def _drawdowns(finance: Finance, invoice: Invoice, charge_of, new: list[StoredSchedule]) -> list[StoredSchedule]:
    """Recognize the prepayments this invoice's usage drew from; return the earlier schedules changed
    (the new ones are updated in place)."""
    drawing = {line.subscription_id for line in invoice.lines
               if line.kind == "usage" and (charge := charge_of(line)) is not None and charge.drawdown_from}
    if not drawing:
        return []
    earlier = [s for sub in sorted(drawing) for s in finance.revenue.subscription_schedules(sub)
               if s.schedule.prepaid_units is not None]
    everything = earlier + new
    updated = apply_drawdowns([s.schedule for s in everything], invoice, charge_of)
    changed = []
    for stored, schedule in zip(everything, updated, strict=True):
        if schedule != stored.schedule:
            stored.schedule = schedule
            if stored in earlier:
                changed.append(stored)
    return changed


def _apply_credit_note(ports: Ports, finance: Finance, actor: Actor, note: Invoice) -> list[StoredSchedule]:
    if note.credit_note_of:
        if not finance.revenue.is_processed(note.credit_note_of):  # its invoice's event is late: process it now
            record_invoice(ports, finance, actor, note.credit_note_of)
        stored = finance.revenue.invoice_schedules(note.credit_note_of)
    else:
        subs = sorted({line.subscription_id for line in note.lines if line.subscription_id})
        stored = [s for sub in subs for s in finance.revenue.subscription_schedules(sub)]
    open_month = first_open_month(finance, note.billing_entity_id)
    effective = note.model_copy(update={"issue_date": max(note.issue_date, month_bounds(open_month)[0])}) \
        if open_month else note
    updated = apply_credit_note([s.schedule for s in stored], effective)
    changed = []
    for s, schedule in zip(stored, updated, strict=True):
        if schedule != s.schedule:
            s.schedule = schedule
            changed.append(s)
    marker = finance.revenue.document_item(note.id, note.billing_entity_id, note.issue_date, 0, "credit_note")
    audit = ports.audit(actor, "revenue_schedules.credited", "invoice", note.id, after={
        "schedules": [s.id for s in changed], "credited": str(-note.subtotal)})
    finance.revenue.save([], changed, marker, [audit])
    return changed


def terminate(ports: Ports, finance: Finance, actor: Actor, subscription_id: str, service_end: date,
              effective: date, refunded: bool = False) -> list[StoredSchedule]:
    """Service of the subscription ends at `service_end` (exclusive), decided on `effective`: its
    schedules recognize what is left by the month service ends (`refunded`: a prorated refund credits
    the days after it, so they are left for its credit lines to reverse). Repeating it changes nothing."""
    open_months: dict[str, str | None] = {}
    for _ in range(ATTEMPTS):
        stored = finance.revenue.subscription_schedules(subscription_id)
        changed = []
        for s in stored:
            if s.entity_id not in open_months:
                open_months[s.entity_id] = first_open_month(finance, s.entity_id)
            open_month = open_months[s.entity_id]
            on = max(effective, month_bounds(open_month)[0]) if open_month else effective
            schedule = terminate_schedule(s.schedule, service_end, on, refunded)
            if schedule != s.schedule:
                s.schedule = schedule
                changed.append(s)
        if not changed:
            return []
        audit = ports.audit(actor, "revenue_schedules.terminated", "subscription", subscription_id, after={
            "service_end": service_end.isoformat(), "schedules": [s.id for s in changed]})
        try:
            finance.revenue.save([], changed, None, [audit])
            return changed
        except ConflictError:
            continue
    raise RetryableError(f"subscription {subscription_id}: schedules kept conflicting with concurrent writes")


def list_schedules(ports: Ports, finance: Finance, *, subscription_id: str | None = None,
                   invoice_id: str | None = None) -> list[StoredSchedule]:
    """A subscription's or an invoice's schedules (both: the invoice's lines of that subscription)."""
    if invoice_id:
        get_invoice(ports, invoice_id)
        found = finance.revenue.invoice_schedules(invoice_id)
        if subscription_id:
            found = [s for s in found if s.schedule.subscription_id == subscription_id]
        return found
    if subscription_id:
        sub = get_subscription(ports, subscription_id, param="subscription_id")  # a contract ID works too
        return finance.revenue.subscription_schedules(sub.id)
    raise ValidationError("name a subscription_id or an invoice_id", param="subscription_id")


# ---------------------------------------------------------------------------------------------- exports


def export_key(entity: BillingEntity, month: str, name: str) -> str:
    return f"exports/{entity.code}/{month}/{name}"


def due_date(month: str, entity: BillingEntity) -> date:
    """The month's export day for the entity: first business day of the next month in its country and
    region (the country alone when the holiday calendars do not know the region; weekends only when
    they do not know the country)."""
    for subdivision in ([entity.region] if entity.region else []) + [None]:
        try:
            return export_due_date(month, entity.country, subdivision)
        except ValidationError:
            continue
    day = month_bounds(month)[1]
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _invoices(ports: Ports, ids: Iterable[str]) -> list[Invoice]:
    return ports.repo.get_invoices(ids)


def build_files(ports: Ports, finance: Finance, entity: BillingEntity, month: str) -> dict[str, str]:
    """The month's five CSV files for the entity, by file name."""
    first, following = month_bounds(month)
    schedules = [s.schedule for s in finance.revenue.entity_schedules(entity.id)]
    invoices = _invoices(ports, finance.revenue.documents_issued(entity.id, first, following - timedelta(days=1)))
    subs = ports.repo.get_subscriptions({s.subscription_id for s in schedules if s.subscription_id})
    plans = ports.repo.get_plans({s.plan_code for s in subs.values()})
    annual = annual_prepay_subscription_ids(subs.values(), plans)
    return {
        RECOGNIZED: recognized_revenue_csv(schedules, month),
        ANNUAL_PREPAY: recognized_revenue_csv(schedules, month, annual),
        ROLLFORWARD: deferred_rollforward_csv(schedules, month),
        JOURNAL: gl_journal_csv(invoices, schedules, month, GL_ACCOUNTS),
        REGISTER: invoice_register_csv(invoices, month),
    }


def export_month(ports: Ports, finance: Finance, actor: Actor, entity: BillingEntity, month: str,
                 trigger: str = "api") -> dict:
    """Write the entity's files for `month` (a month that is over), record the run with the
    reconciliation's findings (`reconciliation.check_export`) and email them when there are some."""
    actor.require("billing:run")
    check_month(month)
    today = ports.clock.now().date()
    if month_bounds(month)[1] > today:
        raise ValidationError(f"{month} is not over yet (today is {today})", param="month")
    for _ in range(ATTEMPTS):
        previous = finance.revenue.get_export(entity.id, month)
        files = build_files(ports, finance, entity, month)
        before = {f["name"]: f for f in previous[0]["files"]} if previous else {}
        written, described = [], []
        for name in EXPORT_FILES:
            body = files[name].encode()
            digest = hashlib.sha256(body).hexdigest()
            key = export_key(entity, month, name)
            if before.get(name, {}).get("sha256") != digest:
                finance.exports.put(key, body, CSV)
                written.append(name)
            described.append({"name": name, "key": key, "sha256": digest, "bytes": len(body),
                              "rows": sum(1 for _ in csv.reader(io.StringIO(files[name]))) - 1})
        missing = check_export(ports, entity, month, files[RECOGNIZED])
        status = "created" if previous is None else "replaced" if written else "rerun"
        record = {
            "id": f"exp_{entity.code}_{month}", "billing_entity_id": entity.id, "billing_entity_code": entity.code,
            "month": month, "due_date": due_date(month, entity).isoformat(), "status": status,
            "runs": (previous[0]["runs"] + 1) if previous else 1, "trigger": trigger,
            "generated_at": ports.clock.now().isoformat().replace("+00:00", "Z"),
            "first_generated_at": previous[0]["first_generated_at"] if previous else
            ports.clock.now().isoformat().replace("+00:00", "Z"),
            "files": described, "written": written, "missing_contracts": missing,
        }
        audit = ports.audit(actor, f"export.{status}", "finance_export", record["id"],
                            before={"files": list(before.values())} if previous else None,
                            after={"files": described, "written": written, "missing_contracts": len(missing),
                                   "trigger": trigger})
        try:
            finance.revenue.save_export(record, previous[1] if previous else None, audit)
        except ConflictError:
            continue  # a concurrent run recorded first: compare with it
        notify(ports, finance.recipients, f"Billing reconciliation: {len(missing)} contract(s) missing from the "
                                          f"{entity.code} export of {month}", missing)
        return record
    raise RetryableError(f"export of {entity.code} {month} kept conflicting with concurrent runs")


def entities(ports: Ports) -> list[BillingEntity]:
    found, cursor = [], None
    while True:
        page, more = ports.repo.list_entities(100, cursor)
        found += page
        if not more or not page:
            return found
        cursor = page[-1].id


def export_on_demand(ports: Ports, finance: Finance, actor: Actor, month: str,
                     billing_entity: str | None = None) -> list[dict]:
    """`POST /v1/exports`: (re-)export a month for one entity (id or code) or for every entity."""
    actor.require("billing:run")
    check_month(month)
    chosen = [get_entity(ports, billing_entity, param="billing_entity")] if billing_entity else entities(ports)
    return [export_month(ports, finance, actor, entity, month, "api") for entity in chosen]


def run_due_exports(ports: Ports, finance: Finance, actor: Actor, today: date) -> list[dict]:
    """The daily schedule: export the previous month of each entity whose export day has come and
    that has no export yet (a missed day is caught up on the next run)."""
    month = previous_month(month_of(today))
    done, failed = [], []
    for entity in entities(ports):
        if due_date(month, entity) <= today and finance.revenue.get_export(entity.id, month) is None:
            try:
                done.append(export_month(ports, finance, actor, entity, month, "schedule"))
            except Exception as error:  # the other entities still export; the retry picks this one up
                failed.append(error)
    if failed:
        raise failed[0]
    return done


def list_exports(ports: Ports, finance: Finance, month: str | None = None,
                 billing_entity: str | None = None) -> list[dict]:
    if month is not None:
        check_month(month)
    entity_id = get_entity(ports, billing_entity, param="billing_entity").id if billing_entity else None
    return finance.revenue.list_exports(month, entity_id)


def read_export_file(ports: Ports, finance: Finance, entity_ref: str, month: str, name: str) -> bytes:
    entity = get_entity(ports, entity_ref, param="billing_entity")
    if name not in EXPORT_FILES:
        raise NotFoundError(f"no export file '{name}' ({', '.join(EXPORT_FILES)})", param="name")
    return finance.exports.get(export_key(entity, check_month(month), name))


# ---------------------------------------------------------------------------------------------- designs


class DesignCheckRequest(BaseModel):
    """Seed 002's output JSON and, optionally, the commercial terms ledger DS-008 checks prices against."""

    model_config = ConfigDict(extra="forbid")

    design: Design
    ledger: list[CommercialTerm] | None = Field(default=None, max_length=500)


class DesignImportRequest(DesignCheckRequest):
    customer_id: str = Field(description="the customer (id or external id) the subscription is for")
    plan_code: str | None = Field(default=None, pattern=CODE, description="default: from the subscription's name")
    external_id: str | None = Field(default=None, pattern=CODE, description="the contract ID")


def design_violations(design: Design, ledger: list[CommercialTerm] | None = None) -> list[dict]:
    """Every violation (seed 002: POB list, DS-006, DS-008 with a ledger, DS-009), in document order."""
    return [{"rule": v.rule, "path": v.path, "message": v.message} for v in check_design(design, ledger)]


def import_design(ports: Ports, actor: Actor, body: DesignImportRequest) -> dict:
    """Check the design, then create its metrics (or reuse identical ones), plan and subscription for the
    customer and ingest its usage records. A design with violations creates nothing."""
    actor.require("contracts:write")
    violations = design_violations(body.design, body.ledger)
    if violations:
        first = violations[0]
        raise ValidationError(f"the design has {len(violations)} violation(s); first: {first['rule']} "
                              f"{first['message']}", param="design" + first["path"].removeprefix("$"),
                              code="design_violations")
    customer = get_customer(ports, body.customer_id, param="customer_id")
    plan_code = body.plan_code or slug(body.design.subscription.name)[:64]
    if ports.repo.get_plan(plan_code):
        raise ConflictError(f"a plan with code '{plan_code}' exists; name another plan_code", param="plan_code")
    if body.external_id and ports.repo.resolve_alias("subscription", body.external_id):
        raise ConflictError(f"a subscription with external_id '{body.external_id}' exists", param="external_id")
    try:
        imported = design_to_billing(body.design, plan_code=plan_code, subscription_id="sub_design",
                                     customer_id=customer.id, created_at=ports.clock.now(),
                                     external_id=body.external_id)
    except ValidationError as error:
        raise ValidationError(error.message, param=f"design.{error.param}") from None
    imported = _api_metric_codes(imported)
    if imported.plan.currency != customer.currency:
        raise ValidationError(f"the design is in {imported.plan.currency}, the customer billed in "
                              f"{customer.currency}", param="design.subscription.currency")
    stored_metrics = ports.repo.get_metrics({m.code for m in imported.metrics})
    for metric in imported.metrics:
        existing = stored_metrics.get(metric.code)
        if existing and (existing.aggregation, existing.field, existing.filters, existing.group_by) != (
                metric.aggregation, metric.field, metric.filters, metric.group_by):
            raise ConflictError(f"metric '{metric.code}' exists and aggregates otherwise ({existing.aggregation} of "
                                f"{existing.field})", param="design.rate_plans")
    for metric in imported.metrics:
        if metric.code not in stored_metrics:
            create_metric(ports, actor, MetricCreate(code=metric.code, name=metric.name, aggregation=metric.aggregation,
                                                     field=metric.field))
    plan_body = imported.plan.model_dump(mode="json", include={"code", "name", "currency", "description", "charges"})
    plan = create_plan(ports, actor, PlanCreate.model_validate(plan_body))
    sub_in = imported.subscription
    sub = create_subscription(ports, actor, SubscriptionCreate(
        customer_id=customer.id, plan_code=plan.code, external_id=body.external_id, start_date=sub_in.start_date,
        end_date=sub_in.end_date, quantity=sub_in.quantity, billing_day=sub_in.billing_day,
        auto_renew=sub_in.auto_renew))
    raw = [{"transaction_id": f"{sub.id}-usage-{index}", "subscription_id": sub.id, "metric_code": event.metric_code,
            "timestamp": event.timestamp.isoformat().replace("+00:00", "Z"), "properties": event.properties}
           for index, event in enumerate(imported.usage_events)]
    usage = ingest(ports, actor, raw, param="design.usage").as_dict() if raw else None
    return {"plan": plan.model_dump(mode="json"), "subscription": sub.model_dump(mode="json"),
            "metrics": [m.code for m in imported.metrics], "usage": usage}


def _api_metric_codes(imported: ImportedDesign) -> ImportedDesign:
    """A design names usage by its UOM ("Overage Credit"); stored metric codes follow the API's code
    pattern, so each becomes its slug ("overage-credit") in the metrics, the charges and the usage."""
    codes = {m.code: m.code if re.match(CODE, m.code) else slug(m.code)[:64] for m in imported.metrics}
    if len(set(codes.values())) != len(codes):
        raise ValidationError(f"usage UOMs {sorted(codes)} do not make distinct metric codes",
                              param="design.rate_plans")
    plan = imported.plan.model_copy(update={"charges": [
        c.model_copy(update={"metric_code": codes.get(c.metric_code, c.metric_code)}) for c in imported.plan.charges]})
    return ImportedDesign(
        plan=plan, subscription=imported.subscription,
        metrics=[m.model_copy(update={"code": codes[m.code], "name": m.code}) for m in imported.metrics],
        usage_events=[e.model_copy(update={"metric_code": codes.get(e.metric_code, e.metric_code)})
                      for e in imported.usage_events])


def export_design(ports: Ports, actor: Actor, subscription_id: str) -> dict:
    """Seed 002's output shape for a stored subscription: what `POST /v1/designs/import` reads back."""
    import json

    from shared.billing.design import billing_to_design, dump_design
    from shared.services.billing import plans_for
    from shared.services.subscriptions import get_subscription

    actor.require("read")
    sub = get_subscription(ports, subscription_id, param="subscription_id")
    plan = plans_for(ports, [sub])[sub.plan_code][sub.plan_version_on(sub.start_date)]
    return json.loads(dump_design(billing_to_design(plan, sub)))
