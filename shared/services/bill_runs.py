"""Bill runs: start one, list what is due, record how it ended."""

from __future__ import annotations

from datetime import date, datetime

from shared.billing.errors import ConflictError, NotFoundError, ValidationError
from shared.billing.models import BillRun
from shared.services.context import Actor, Ports
from shared.services.ids import new_id
from shared.services.requests.bill_runs import BillRunCreate


def parse_as_of(value: str) -> date:
    """A date, or the timestamp a schedule fired at (taken in UTC)."""
    try:
        if "T" in value:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"'{value}' is not a date or timestamp", param="as_of") from None


def start_bill_run(ports: Ports, actor: Actor, body: BillRunCreate, trigger: str = "api") -> BillRun:
    actor.require("billing:run")
    today = ports.clock.now().date()
    as_of = body.as_of or today
    if as_of > today:
        raise ValidationError(f"as_of {as_of} is in the future (today is {today})", param="as_of")
    run = BillRun(id=new_id("br"), as_of=as_of, trigger=trigger, status="pending",
                  created_at=ports.clock.now(), created_by=actor.name)
    ports.repo.save_bill_run(run, [ports.audit(actor, "bill_run.created", "bill_run", run.id, after=run)],
                             new=True)
    ports.workflows.start_bill_run(run.id, {"bill_run_id": run.id, "as_of": as_of.isoformat(),
                                            "trigger": trigger})
    return run


def get_bill_run(ports: Ports, run_id: str) -> BillRun:
    run = ports.repo.get_bill_run(run_id)
    if run is None:
        raise NotFoundError(f"no bill run '{run_id}'", param="id")
    return run


def list_due(ports: Ports, actor: Actor, payload: dict) -> dict:
    """First state of the bill run: the accounts with something due on `as_of`.

    A scheduled run has no record yet: its id is derived from the date, so the schedule
    firing twice for one day shares one record (and billing twice is impossible anyway).
    """
    as_of = parse_as_of(str(payload["as_of"]))
    run_id = payload.get("bill_run_id") or f"br_sched_{as_of:%Y%m%d}"
    run = ports.repo.get_bill_run(run_id)
    if run is None:
        run = BillRun(id=run_id, as_of=as_of, trigger=payload.get("trigger", "schedule"),
                      status="pending", created_at=ports.clock.now(), created_by=actor.name)
        try:
            ports.repo.save_bill_run(
                run, [ports.audit(actor, "bill_run.created", "bill_run", run.id, after=run)], new=True)
        except ConflictError:
            run = get_bill_run(ports, run_id)
    accounts = [{**account, "bill_run_id": run.id, "as_of": as_of.isoformat()}
                for account in billing_accounts(ports, ports.repo.due_customers(as_of))]
    run.status, run.accounts = "running", len(accounts)
    ports.repo.save_bill_run(run)
    return {"bill_run_id": run.id, "as_of": as_of.isoformat(), "accounts": accounts}


def billing_accounts(ports: Ports, due: dict[str, list[str]]) -> list[dict]:
    """One account per invoice to issue: the customer (all its subscriptions on one invoice, the
    default), or each due subscription of a customer whose `invoice_grouping` is "subscription"."""
    customers = ports.repo.get_customers(set(due))
    accounts = []
    for customer_id, subscription_ids in due.items():
        customer = customers.get(customer_id)
        if customer is not None and customer.invoice_grouping == "subscription":
            accounts += [{"customer_id": customer_id, "subscription_id": s} for s in subscription_ids]
        else:
            accounts.append({"customer_id": customer_id})
    return accounts


def complete(ports: Ports, actor: Actor, payload: dict) -> dict:
    """Last state: count what each account did and close the run."""
    run = get_bill_run(ports, payload["bill_run_id"])
    results = payload.get("results") or []
    run.invoice_ids = [r["invoice_id"] for r in results if r.get("status") == "invoiced"]
    run.invoices = len(run.invoice_ids)
    run.nothing_due = sum(1 for r in results if r.get("status") == "nothing_due")
    run.failures = [{"customer_id": r.get("customer_id"), "error": r.get("error"),
                     "cause": str(r.get("cause", ""))[:500]}
                    for r in results if r.get("status") == "failed"]
    run.failed = len(run.failures)
    run.accounts = len(results)
    run.status = "completed_with_failures" if run.failed else "succeeded"
    run.completed_at = ports.clock.now()
    summary = run.model_dump(mode="json", include={"id", "as_of", "status", "accounts", "invoices",
                                                    "nothing_due", "failed", "failures"})
    ports.repo.save_bill_run(run, [ports.audit(actor, "bill_run.completed", "bill_run", run.id, after={
        "invoices": run.invoices, "failed": run.failed, "nothing_due": run.nothing_due})],
        events=[ports.event(actor, "bill_run.completed", {"bill_run": summary})])
    return summary
