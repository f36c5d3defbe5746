"""The money-integrity invariants, checked after every step of a stateful property test on moto.

A hypothesis `RuleBasedStateMachine` drives the service layer the way the platform does (the API's use
cases, the bill run's steps, the revenue rule's handler) and interleaves contract changes, usage (duplicate,
late, racing a bill run), bill runs (repeated, concurrent, retried, catch-up), credit notes, voids, payments,
the credit balance and injected failures (a publish that fails once, a DynamoDB transaction conflict). After
every step it reads the stored records back and checks:

- money: per customer and currency, invoiced - credited - paid + credit balance = what is left to pay
  (the issue's "balance" is what the customer owes on account: minus the credit balance kept for it);
  no credit for a period exceeds what was net billed for it; every document's total = lines + tax;
- usage: every accepted event is billed exactly once;
- events: every finalized document is announced (`invoice.finalized`); with an outbox (`OUTBOX#` items),
  every committed change has exactly one outbox entry;
- revenue: the schedules of each invoice recognize, in the end, what is net invoiced (0 once voided);
- numbering: every series is gapless, unique, hash-chained, and its issue dates never go back.

Budget: the `ledger-ci` profile (below, derandomized) is what CI runs; `HYPOTHESIS_PROFILE=ledger-soak` runs a long soak
locally, `ledger-dev` a quick look. The minimal sequences it found are kept as plain tests at the end.
"""

from __future__ import annotations

import os
import types
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, Phase, assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, precondition, rule

from shared.billing.errors import BillingError, ConflictError, RetryableError
from shared.billing.invoicing import content_hash
from shared.billing.models import Invoice
from shared.services import bill_runs, contract_actions, invoice_lifecycle, revenue, subscriptions, usage
from shared.services.billing import invoice_account
from shared.services.catalog import create_coupon, create_customer, create_entity, create_metric, create_plan
from shared.services.context import SYSTEM, Actor
from shared.services.contract_calendar import run_day
from shared.services.requests.catalog import BillingEntityCreate, CouponCreate, CustomerCreate, MetricCreate, PlanCreate
from shared.services.requests.contracts import (
    PauseRequest,
    PlanChangeRequest,
    RegretRequest,
    ResumeRequest,
    SubscriptionCreate,
    TerminateRequest,
)
from shared.services.requests.invoices import CreditNoteCreate, ManualInvoiceCreate, PaymentCreate, StatusChange
from tests.unit.moto_ports import moto_world

# CI explores the same 15 sequences every run (derandomized: a red run is the code's doing, and reproducible);
# the soak explores new ones each time and is where new sequences are found.
settings.register_profile("ledger-ci", max_examples=15, stateful_step_count=20, deadline=None, print_blob=True,
                          derandomize=True, suppress_health_check=list(HealthCheck))
settings.register_profile("ledger-soak", max_examples=1500, stateful_step_count=60, deadline=None,
                          print_blob=True, derandomize=False, suppress_health_check=list(HealthCheck))
settings.register_profile("ledger-dev", max_examples=10, stateful_step_count=20, deadline=None, print_blob=True,
                          suppress_health_check=list(HealthCheck))
settings.register_profile("ledger-explore", max_examples=25, stateful_step_count=25, deadline=None,
                          phases=[Phase.generate], suppress_health_check=list(HealthCheck))  # find, do not shrink
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "")
LEDGER_SETTINGS = settings.get_profile(PROFILE if PROFILE.startswith("ledger-") else "ledger-ci")

START = datetime(2025, 1, 29, 9, 0, tzinfo=UTC)  # close to a month end: anchors on the 29th-31st
RUN_ACTOR = Actor("system:bill-run", "admin")
REVENUE_ACTOR = Actor("system:revenue", "admin")
CENT = Decimal("0.01")
LIVE = ("finalized", "paid", "uncollectible")  # finalized documents that count (not draft, not void)


class InjectedPublishFailure(RuntimeError):
    """EventBridge refused the PutEvents call (injected)."""


class FlakyPublisher:
    """The bus: records what it accepted; refuses the next PutEvents once when told."""

    def __init__(self):
        self.events: list[dict] = []
        self.fail_next = False

    def put(self, events: list[dict]) -> list[int]:
        if self.fail_next:
            self.fail_next = False
            raise InjectedPublishFailure("PutEvents failed (injected)")
        self.events += events
        return []


class FlakyTransactions:
    """Wraps the store's `transact`: the n-th next transaction is cancelled by a conflict with another
    transaction (injected before anything is written, as DynamoDB does)."""

    def __init__(self, store):
        self.store, self.inner, self.countdown = store, store.transact, 0
        store.transact = self

    def __call__(self, operations, audit=(), events=()):
        if self.countdown:
            self.countdown -= 1
            if self.countdown == 0:
                # what DynamoStore.transact raises for TransactionCanceledException [TransactionConflict]
                raise RetryableError("transaction cancelled: ['TransactionConflict'] (injected)")
        return self.inner(operations, audit, events)


def retried(call, attempts: int = 3):
    """What the platform's callers do with a retryable failure: the API client on a 409/5xx, Step Functions
    on a failed task, EventBridge on a failed target. Business refusals are the caller's answer: None."""
    for attempt in range(attempts):
        try:
            return call()
        except (RetryableError, InjectedPublishFailure):
            continue
        except ConflictError as error:
            if error.code == "concurrent_modification" and attempt < attempts - 1:
                continue
            return None
        except BillingError:
            return None
    raise AssertionError("the operation kept failing after the platform's retries")


def lambda_context() -> types.SimpleNamespace:
    return types.SimpleNamespace(function_name="revenue_schedules", memory_limit_in_mb=256,
                                 invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:revenue",
                                 aws_request_id="test")


def money(value) -> Decimal:
    return Decimal(value).quantize(CENT, ROUND_HALF_UP)


class Ledger:
    """One world on moto, the catalog, and the platform's plumbing around the services (bill run steps,
    event delivery to the revenue rule). Rules of the machine and the regression tests both use it."""

    def __init__(self):
        self._world = moto_world()
        self.world = self._world.__enter__()
        self.ports = self.world.ports
        self.clock = self.world.clock
        self.clock.at = START
        self.bus = FlakyPublisher()
        self.ports.publisher = self.bus
        self.conflicts = FlakyTransactions(self.ports.repo.store)
        self.finance = revenue.Finance(revenue.RevenueRepository(self.ports.repo.store),
                                       self.ports.documents, [])
        self._documents = None
        self.delivered = 0  # events of the bus already delivered to the revenue rule
        self.runs: list[tuple[datetime, date, str]] = []  # bill runs: when, as_of, id
        self.eu = create_entity(self.ports, SYSTEM, BillingEntityCreate(
            code="eu", name="Billing EU GmbH", country="DE", tax_registrations={"DE": "DE123456789"},
            currency="EUR", invoice_prefix="EU")).id
        create_metric(self.ports, SYSTEM, MetricCreate(code="calls", name="API calls", aggregation="count"))
        for currency in ("USD", "EUR"):
            suffix = currency.lower()
            usage_charge = {"code": "calls-fee", "name": "API calls", "type": "usage", "model": "per_unit",
                            "price": "0.10", "metric_code": "calls", "timing": "in_arrears"}
            create_plan(self.ports, SYSTEM, PlanCreate(code=f"basic-{suffix}", name="Basic", currency=currency,
                                                       charges=[{"code": "basic-fee", "name": "Basic",
                                                                 "price": "30.00"}, usage_charge],
                                                       rules={"regret_days": 14}))
            create_plan(self.ports, SYSTEM, PlanCreate(code=f"pro-{suffix}", name="Pro", currency=currency,
                                                       charges=[{"code": "pro-fee", "name": "Pro",
                                                                 "price": "45.55"}, usage_charge]))
            create_plan(self.ports, SYSTEM, PlanCreate(code=f"seats-{suffix}", name="Seats", currency=currency,
                                                       charges=[{"code": "seat-fee", "name": "Seat",
                                                                 "price": "7.33", "model": "per_unit"}]))
            create_coupon(self.ports, SYSTEM, CouponCreate(code=f"once-{suffix}", name="Welcome",
                                                           percent_off=Decimal(15), duration="once"))
            create_coupon(self.ports, SYSTEM, CouponCreate(code=f"twice-{suffix}", name="Two months",
                                                           amount_off=Decimal("5.00"), currency=currency,
                                                           duration="repeating", duration_in_cycles=2))
            create_coupon(self.ports, SYSTEM, CouponCreate(code=f"forever-{suffix}", name="Partner",
                                                           percent_off=Decimal("33.3"), duration="forever"))
        self.deliver()

    def close(self) -> None:
        self._world.__exit__(None, None, None)

    # time ---------------------------------------------------------------------------------------------
    def today(self) -> date:
        return self.clock.now().date()

    def advance(self, days: int) -> None:
        """The clock moves on; the contract calendar runs for each day (activations, renewals, ends)."""
        for _ in range(days):
            self.clock.at = self.clock.at + timedelta(days=1)
            retried(lambda: run_day(self.ports, SYSTEM, self.today(), []))
        self.deliver()

    # catalog --------------------------------------------------------------------------------------------
    def customer(self, currency: str = "USD", name: str = "Acme") -> str:
        if currency == "USD":
            body = CustomerCreate(name=name, email="ap@example.com", country="US", region="US-OR", currency="USD")
        else:
            body = CustomerCreate(name=name, email="ap@example.com", country="DE", currency="EUR",
                                  billing_entity="eu")
        customer = retried(lambda: create_customer(self.ports, SYSTEM, body))
        assert customer is not None, "the customer could not be created"
        self.deliver()
        return customer.id

    def currency_of(self, customer_id: str) -> str:
        return self.ports.repo.get_customer(customer_id).currency

    def subscribe(self, customer_id: str, plan: str, start: date, coupon: str | None = None, **terms):
        suffix = self.currency_of(customer_id).lower()
        body = SubscriptionCreate(customer_id=customer_id, plan_code=f"{plan}-{suffix}", start_date=start,
                                  coupons=[f"{coupon}-{suffix}"] if coupon else [], **terms)
        sub = retried(lambda: subscriptions.create_subscription(self.ports, SYSTEM, body))
        self.deliver()
        return sub

    # the bill run (statemachines/bill_run.asl.json) --------------------------------------------------
    def bill_run(self, as_of: date | None = None, run_id: str | None = None, retry_step: bool = False,
                 race: bool = False) -> list[Invoice]:
        as_of = as_of or self.today()
        payload = {"as_of": as_of.isoformat(), **({"bill_run_id": run_id} if run_id else {})}
        listed = retried(lambda: bill_runs.list_due(self.ports, RUN_ACTOR, payload))
        assert listed is not None, "the bill run could not list the accounts due"
        self.runs.append((self.clock.now(), as_of, listed["bill_run_id"]))
        results, issued = [], []
        for account in listed["accounts"]:
            invoice = self._invoice_step(account, race)
            if retry_step:  # Step Functions runs the task again (its first answer was lost)
                again = self._invoice_step(account, False)
                first, second = invoice and invoice.id, again and again.id
                assert second == first, f"a retried bill-run step answered {second}, its first attempt {first}"
            if invoice is None:
                results.append({**account, "status": "nothing_due"})
                continue
            issued.append(invoice)
            results.append({**account, "status": "invoiced", "invoice_id": invoice.id})
        retried(lambda: bill_runs.complete(self.ports, RUN_ACTOR, {"bill_run_id": listed["bill_run_id"],
                                                                    "results": results}))
        self.deliver()
        return issued

    def _invoice_step(self, account: dict, race: bool) -> Invoice | None:
        def step():
            return invoice_account(self.ports, RUN_ACTOR, account["customer_id"],
                                   date.fromisoformat(account["as_of"]), account["bill_run_id"],
                                   subscription_id=account.get("subscription_id"))
        if not race:
            return retried(step)
        repo, reading = self.ports.repo, self.ports.repo.usage_records
        raced = []

        def usage_records(sub_id, metric_code, start, end, received_until=None):
            records = list(reading(sub_id, metric_code, start, end, received_until))
            if not raced and start < self.today():  # usage of the period being rated arrives once it is read
                raced.append(sub_id)
                stamp = datetime.combine(max(start, end - timedelta(days=1)), datetime.min.time(), UTC)
                self.ingest(sub_id, [f"race-{sub_id}-{self.clock.now():%Y%m%d%H%M%S}"],
                            stamp + timedelta(hours=3))
            return iter(records)

        repo.usage_records = usage_records
        try:
            return retried(step)
        finally:
            del repo.usage_records

    # usage ----------------------------------------------------------------------------------------------
    def ingest(self, sub_id: str, transaction_ids: list[str], at: datetime):
        events = [{"transaction_id": t, "subscription_id": sub_id, "metric_code": "calls",
                   "timestamp": at.isoformat()} for t in transaction_ids]
        self._documents = None
        return retried(lambda: usage.ingest(self.ports, SYSTEM, events))

    # documents ------------------------------------------------------------------------------------------
    def manual(self, customer_id: str, *prices: str) -> Invoice | None:
        body = ManualInvoiceCreate(customer_id=customer_id, lines=[
            {"description": f"Work {i}", "unit_price": p} for i, p in enumerate(prices)])
        draft = retried(lambda: invoice_lifecycle.create_draft(self.ports, SYSTEM, body))
        invoice = draft and retried(lambda: invoice_lifecycle.finalize_draft(self.ports, SYSTEM, draft.id))
        self.deliver()
        return invoice

    def credit(self, invoice_id: str, lines: list[dict] | None = None) -> Invoice | None:
        body = CreditNoteCreate(invoice_id=invoice_id, reason="correction", lines=lines)
        note = retried(lambda: invoice_lifecycle.create_credit_note(self.ports, SYSTEM, body))
        self.deliver()
        return note

    def void(self, invoice_id: str) -> Invoice | None:
        voided = retried(lambda: invoice_lifecycle.void_invoice(self.ports, SYSTEM, invoice_id,
                                                                 StatusChange(reason="wrong")))
        self.deliver()
        return voided

    def pay(self, invoice_id: str, amount: Decimal):
        paid = retried(lambda: invoice_lifecycle.record_payment(self.ports, SYSTEM,
                                                                 PaymentCreate(invoice_id=invoice_id, amount=amount)))
        self.deliver()
        return paid

    # events: the outbox publisher puts what was committed on the bus (Lambda retries a failed batch from
    # its checkpoint); EventBridge delivers what the bus accepted to the revenue rule ----------------------
    def deliver(self) -> None:
        from functions.revenue_schedules.handler import handler

        self._documents = None  # something was written: read the documents again
        for _ in range(3):
            try:
                if not self.world.publish_outbox():
                    break
            except InjectedPublishFailure:
                continue

        while self.delivered < len(self.bus.events):
            envelope = self.bus.events[self.delivered]
            self.delivered += 1
            event = {"version": "0", "id": envelope["id"], "detail-type": envelope["type"], "source": "billing",
                     "account": "123456789012", "time": envelope["occurred_at"], "region": "us-east-1",
                     "resources": [], "detail": envelope}
            retried(lambda e=event: handler(e, lambda_context(), ports=self.ports, finance=self.finance))

    # stored records ---------------------------------------------------------------------------------
    def scan(self, **conditions) -> list[dict]:
        client, items, kwargs = self.ports.repo.store.client, [], {"TableName": "billing", **conditions}
        while True:
            page = client.scan(**kwargs)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def documents(self) -> list[Invoice]:
        if self._documents is None:
            self._documents = self._read_documents()
        return self._documents

    def _read_documents(self) -> list[Invoice]:
        from shared.adapters.dynamodb import Item

        ids = [Item.from_dynamo(raw).pk.removeprefix("INV#") for raw in self.scan(
            FilterExpression="#t = :t", ExpressionAttributeNames={"#t": "type"},
            ExpressionAttributeValues={":t": {"S": "invoice"}})]
        return sorted(self.ports.repo.get_invoices(ids), key=lambda d: d.id)  # lines beside the item put back

    def customers(self) -> list:
        customers, _ = self.ports.repo.list_customers(limit=1000, after=None)
        return customers

    def subscriptions(self) -> list:
        subs, _ = self.ports.repo.list_subscriptions(limit=10_000, after=None)
        return subs

    # the invariants ---------------------------------------------------------------------------------
    def check_money(self) -> None:
        documents = self.documents()
        by_id = {d.id: d for d in documents}
        for customer in self.customers():
            mine = [d for d in documents if d.customer_id == customer.id and d.status != "draft"]
            for currency in {d.currency for d in mine} | set(customer.credit_balance):
                invoices = [d for d in mine if d.kind == "invoice" and d.currency == currency]
                notes = [d for d in mine if d.kind == "credit_note" and d.currency == currency]
                live = [d for d in invoices if d.status in LIVE]
                invoiced = sum((d.total for d in live), Decimal(0))
                credited = sum((-n.total for n in notes), Decimal(0))
                paid = sum((self.payments(d.id) for d in invoices), Decimal(0))
                balance = customer.credit_balance.get(currency, Decimal(0))
                outstanding = sum((d.amount_remaining or 0 for d in live), Decimal(0))
                assert invoiced - credited - paid + balance == outstanding, (
                    f"customer {customer.id} {currency}: invoiced {invoiced} - credited {credited} - paid {paid} "
                    f"+ credit balance {balance} != outstanding {outstanding}")
                assert balance >= 0, f"customer {customer.id}: negative credit balance {balance} {currency}"
                for d in live:
                    assert 0 <= (d.amount_remaining or 0) <= max(d.total, Decimal(0)), (
                        f"{d.number}: amount remaining {d.amount_remaining} outside [0, {d.total}]")
        for d in documents:
            assert d.subtotal == sum((line.amount for line in d.lines), Decimal(0)), f"{d.id}: subtotal != lines"
            assert d.total == d.subtotal + d.tax_total, f"{d.id}: total != subtotal + tax"
            if d.tax_lines:
                assert d.tax_total == sum((t.amount for t in d.tax_lines), Decimal(0)), f"{d.id}: tax != tax lines"
            for line in d.lines:
                assert line.amount == money(line.amount), f"{d.id}: {line.description} not rounded to the cent"
            if d.kind == "credit_note" and d.status != "draft":
                credited = by_id[d.credit_note_of]
                assert credited.status != "void", f"credit note {d.number} credits voided {credited.number}"
        self.check_credits_within_net(documents)

    def payments(self, invoice_id: str) -> Decimal:
        items, _ = self.ports.repo.store.query(f"INV#{invoice_id}", index="gsi1", begins_with="PAY#")
        recorded = sum((Decimal(i.data["amount"]) for i in items), Decimal(0))
        invoice = self.ports.repo.get_invoice(invoice_id)
        assert recorded == invoice.amount_paid, (
            f"{invoice.number}: payments recorded {recorded} != amount paid {invoice.amount_paid}")
        return recorded

    def check_credits_within_net(self, documents: list[Invoice]) -> None:
        """No credit for a period exceeds what is net billed for it: per subscription (its charges with their
        coupons' discount lines, which name the coupon as their charge), on each
        day, the charges billed for that day less every credit for it (prorations, discounts, credit notes)
        are never below zero. Voided invoices bill nothing."""
        daily: dict[tuple, dict[date, Decimal]] = {}
        for d in documents:
            if d.status == "draft" or d.status == "void":
                continue
            for line in d.lines:
                if not line.subscription_id or not line.period_start or not line.period_end:
                    continue
                if line.kind in ("usage", "late_usage"):
                    continue
                days = (line.period_end - line.period_start).days
                if days <= 0:
                    continue
                key = (line.subscription_id, "charges and their discounts")
                per_day = line.amount / days
                slot = daily.setdefault(key, {})
                for n in range(days):
                    day = line.period_start + timedelta(days=n)
                    slot[day] = slot.get(day, Decimal(0)) + per_day
        for (sub_id, charge), days in daily.items():
            worst = min(days.values())
            assert worst > Decimal("-0.05"), (  # a few tenths of a cent of rounding spread over the days
                f"subscription {sub_id} {charge}: credited {-worst:.4f} a day beyond what was net billed "
                f"on {min(days, key=days.get)}")

    def check_usage(self) -> None:
        """Every accepted event is billed exactly once: per subscription and usage period (the period its
        usage line named), the units billed on usage and late-usage lines plus those still waiting on a
        late-usage marker equal the events stored for it; and once a bill run has passed that invoiced the
        customer (or the contract ended), nothing is still waiting."""
        documents = [d for d in self.documents() if d.kind == "invoice" and d.status != "draft"]
        billed: dict[str, list[tuple[date, date, Decimal]]] = {}
        for d in documents:
            for line in d.lines:
                if line.kind in ("usage", "late_usage") and line.metric_code == "calls":
                    billed.setdefault(line.subscription_id, []).append((line.period_start, line.period_end,
                                                                        line.quantity))
        for sub in self.subscriptions():
            events = [(stamp.date(), txid) for stamp, txid, _ in self.ports.repo.usage_records(
                sub.id, "calls", date(2000, 1, 1), date(2100, 1, 1))]
            waiting = self.ports.repo.late_markers(sub.id)
            waiting_days = [date.fromisoformat(m.data["date"]) for m in waiting]
            lines = billed.get(sub.id, [])
            periods = sorted({(s, e) for s, e, _ in lines})
            for start, end in periods:
                accepted = sum(1 for day, _ in events if start <= day < end)
                on_invoices = sum((q for s, e, q in lines if (s, e) == (start, end)), Decimal(0))
                pending = sum(1 for day in waiting_days if start <= day < end)
                assert on_invoices + pending == accepted, (
                    f"subscription {sub.id} usage [{start}, {end}): {accepted} events accepted, {on_invoices} "
                    f"billed, {pending} waiting as late usage")
            covered = [(s, e) for s, e in periods]
            billed_until = sub.usage_billed_until
            for day, txid in events:
                if billed_until and day < billed_until and not any(s <= day < e for s, e in covered):
                    assert day in waiting_days, (
                        f"subscription {sub.id}: event {txid} of {day} is before the usage billed until "
                        f"{billed_until} but on no invoice and not waiting as late usage")
            for marker in waiting:
                arrived = self.ports.repo.store.get(f"USE#{sub.id}#{marker.data['metric_code']}",
                                                    marker.sk.split("#", 2)[2])
                received = datetime.fromisoformat(arrived.data["received_at"])
                for when, as_of, run_id in self.runs:
                    if when <= received:
                        continue
                    ended = sub.service_end is not None and sub.service_end <= as_of
                    invoiced = any(d.bill_run_id == run_id and d.customer_id == sub.customer_id for d in documents)
                    assert not (ended or invoiced), (
                        f"subscription {sub.id}: late usage of {marker.data['date']} received {received:%Y-%m-%d} "
                        f"was not billed by bill run {run_id} (as of {as_of}, "
                        f"{'the contract had ended' if ended else 'which invoiced the customer'})")

    def check_announced(self) -> None:
        """Every finalized document was committed with its `invoice.finalized` (the outbox) and, once the
        publisher has caught up, put on the bus."""
        committed = {e["data"].get("invoice_id") for e in self.world.outbox() if e["type"] == "invoice.finalized"}
        published = {e["data"].get("invoice_id") for e in self.bus.events if e["type"] == "invoice.finalized"}
        assert committed <= published, f"committed but never published: {sorted(committed - published)}"
        announced = committed
        for d in self.documents():
            if d.status != "draft" and d.number:
                assert d.id in announced, f"{d.kind} {d.number} ({d.id}) was finalized but never announced"

    def outbox(self) -> list[dict]:
        """Every outbox entry committed so far, as the stream carries it (the envelopes)."""
        return self.world.outbox()

    def check_outbox(self, entries: list[dict]) -> None:
        """Every committed change that publishes has exactly one outbox entry: the audit trail says what was
        committed (one audit event per write); the outbox must hold one event per such audit event."""
        expected: dict[tuple[str, str], int] = {}
        for raw in self.scan(FilterExpression="#t = :t", ExpressionAttributeNames={"#t": "type"},
                             ExpressionAttributeValues={":t": {"S": "audit_event"}}):
            from shared.adapters.dynamodb import Item

            audit = Item.from_dynamo(raw).data
            event = OUTBOX_EVENT_OF_AUDIT.get(audit["action"])
            if event:
                key = (event, audit["object_id"])
                expected[key] = expected.get(key, 0) + 1
        found: dict[tuple[str, str], int] = {}
        for entry in entries:
            envelope = entry.get("event", entry.get("envelope", entry))
            data = envelope.get("data", {})
            obj = (data.get("invoice_id") or (data.get("invoice") or {}).get("id")
                   or (data.get("subscription") or {}).get("id"))
            key = (envelope.get("type"), obj)
            found[key] = found.get(key, 0) + 1
        for key, count in expected.items():
            assert found.get(key, 0) == count, f"{key}: {count} committed changes, {found.get(key, 0)} outbox entries"

    def check_revenue(self) -> None:
        documents = self.documents()
        notes: dict[str, list[Invoice]] = {}
        for d in documents:
            if d.kind == "credit_note" and d.status != "draft":
                notes.setdefault(d.credit_note_of, []).append(d)
        for d in documents:
            if d.kind != "invoice" or d.status == "draft":
                continue
            schedules = [s.schedule for s in self.finance.revenue.invoice_schedules(d.id)]
            if not self.finance.revenue.is_processed(d.id):
                continue  # never announced: check_announced names it
            net = Decimal(0) if d.status == "void" else d.subtotal + sum((n.subtotal for n in notes.get(d.id, [])),
                                                                         Decimal(0))
            recognized_and_deferred = sum((s.scheduled + s.unscheduled for s in schedules), Decimal(0))
            assert recognized_and_deferred == net, (
                f"invoice {d.number} ({d.status}): revenue recognized + deferred {recognized_and_deferred} != "
                f"net invoiced {net}")
            for s in schedules:
                if s.prepaid_units is None:
                    assert s.scheduled == s.net, (
                        f"{d.number} line {s.line_index}: scheduled {s.scheduled} != net {s.net}")

    def check_numbering(self) -> None:
        for entity in {d.billing_entity_id for d in self.documents()}:
            for kind in ("invoice", "credit_note"):
                chain = invoice_lifecycle.verify_chain(self.ports, entity, kind)
                assert chain["ok"], f"{entity} {kind} series: {chain['first_broken']}"
                series = list(self.ports.repo.series(entity, kind))
                numbers = [d.number for d in series]
                assert len(numbers) == len(set(numbers)), f"{entity} {kind}: duplicate numbers {numbers}"
                for earlier, later in zip(series, series[1:], strict=False):
                    assert earlier.issue_date <= later.issue_date, (
                        f"{entity} {kind}: {later.number} is dated {later.issue_date}, before {earlier.number} "
                        f"of {earlier.issue_date}")
                    assert content_hash(later) == later.content_hash


OUTBOX_EVENT_OF_AUDIT = {
    "invoice.finalized": "invoice.finalized",
    "credit_note.finalized": "invoice.finalized",
    "invoice.void": "invoice.voided",
    "payment.recorded": "payment.succeeded",
}


class LedgerMachine(RuleBasedStateMachine):
    customers = Bundle("customers")
    subscriptions = Bundle("subscriptions")
    invoices = Bundle("invoices")

    def __init__(self):
        super().__init__()
        self.ledger = Ledger()
        self.steps: list[str] = []

    def teardown(self):
        self.ledger.close()

    @initialize(target=customers)
    def first_customer(self):
        return self.ledger.customer("USD")

    # customers and contracts ------------------------------------------------------------------------
    @precondition(lambda self: len(self.ledger.customers()) < 3)
    @rule(target=customers, currency=st.sampled_from(["USD", "EUR"]))
    def new_customer(self, currency):
        return self.ledger.customer(currency)

    @rule(target=subscriptions, customer=customers, plan=st.sampled_from(["basic", "pro", "seats"]),
          back=st.integers(0, 40), coupon=st.sampled_from([None, "once", "twice", "forever"]),
          quantity=st.integers(1, 3), term=st.sampled_from([None, 1, 3]))
    def subscribe(self, customer, plan, back, coupon, quantity, term):
        start = self.ledger.today() - timedelta(days=back)
        terms = {"quantity": Decimal(quantity)} if plan == "seats" else {}
        if term:
            terms["term_months"] = term
        sub = self.ledger.subscribe(customer, plan, start, coupon, **terms)
        return multiple(sub.id) if sub else multiple()

    @rule(sub=subscriptions, plan=st.sampled_from(["basic", "pro", "seats"]), quantity=st.integers(1, 4),
          timing=st.sampled_from(["immediately", "renewal"]))
    def change(self, sub, plan, quantity, timing):
        current = self.ledger.ports.repo.get_subscription(sub)
        body = PlanChangeRequest(plan_code=f"{plan}-{current.plan_code.split('-')[1]}", timing=timing,
                                 quantity=Decimal(quantity) if plan == "seats" else None)
        retried(lambda: contract_actions.change_plan(self.ledger.ports, SYSTEM, sub, body))
        self.ledger.deliver()

    @rule(sub=subscriptions, days=st.sampled_from([None, 5, 20]))
    def pause(self, sub, days):
        body = PauseRequest(end=self.ledger.today() + timedelta(days=days) if days else None)
        retried(lambda: contract_actions.pause(self.ledger.ports, SYSTEM, sub, body))
        self.ledger.deliver()

    @rule(sub=subscriptions)
    def resume(self, sub):
        retried(lambda: contract_actions.resume(self.ledger.ports, SYSTEM, sub, ResumeRequest()))
        self.ledger.deliver()

    @rule(sub=subscriptions, effective=st.sampled_from(["immediately", "end_of_period"]),
          refund=st.sampled_from([None, "none", "prorated"]))
    def terminate(self, sub, effective, refund):
        body = TerminateRequest(effective=effective, refund=refund)
        retried(lambda: subscriptions.terminate_subscription(self.ledger.ports, SYSTEM, sub, body))
        self.ledger.deliver()

    @rule(sub=subscriptions)
    def regret(self, sub):
        retried(lambda: contract_actions.regret(self.ledger.ports, SYSTEM, sub, RegretRequest(reason="regret")))
        self.ledger.deliver()

    # usage ----------------------------------------------------------------------------------------------
    @rule(sub=subscriptions, count=st.integers(1, 4), back_days=st.integers(0, 45), duplicate=st.booleans())
    def usage(self, sub, count, back_days, duplicate):
        now = self.ledger.clock.now()
        at = now - timedelta(days=back_days, hours=1)
        ids = [f"tx-{sub}-{now:%Y%m%d%H%M%S}-{back_days}-{i}" for i in range(count)]
        self.ledger.ingest(sub, ids + ids[:1] if duplicate else ids, at)
        if duplicate:  # sent again in a later batch: a duplicate, nothing changes
            self.ledger.ingest(sub, ids[:1], at)

    # bill runs ------------------------------------------------------------------------------------------
    @rule(target=invoices, scheduled=st.booleans(), retry_step=st.booleans(), race=st.booleans(),
          back=st.sampled_from([0, 0, 0, 3, 10]))
    def bill_run(self, scheduled, retry_step, race, back):
        as_of = self.ledger.today() - timedelta(days=back)  # back > 0: a catch-up run for a past day
        run_id = None if scheduled else f"br_api_{len(self.ledger.runs)}"
        issued = self.ledger.bill_run(as_of, run_id, retry_step=retry_step, race=race)
        return multiple(*(i.id for i in issued))

    @rule(target=invoices)
    def concurrent_bill_runs(self):
        """Two runs for the same day list the same accounts; each invoices every account; one invoice each."""
        ledger = self.ledger
        ids = [f"br_concurrent_{len(ledger.runs)}_{side}" for side in "ab"]
        first, second = (retried(lambda run_id=run_id: bill_runs.list_due(ledger.ports, RUN_ACTOR, {
            "as_of": ledger.today().isoformat(), "bill_run_id": run_id})) for run_id in ids)
        issued = []
        for a, b in zip(first["accounts"], second["accounts"], strict=False):
            for account in (a, b):
                invoice = ledger._invoice_step(account, False)
                if invoice:
                    issued.append(invoice)
        ledger.runs += [(ledger.clock.now(), ledger.today(), run_id) for run_id in ids]
        ledger.deliver()
        accounts = [(i.customer_id, tuple(sorted(i.subscription_ids))) for i in issued]
        assert len(accounts) == len(set(accounts)), f"two concurrent runs both invoiced {accounts}"
        return multiple(*(i.id for i in issued))

    # documents --------------------------------------------------------------------------------------------
    @rule(target=invoices, customer=customers, cents=st.integers(-9000, 20000).filter(bool))
    def manual_invoice(self, customer, cents):
        """A one-off invoice; a negative one puts money on the customer's credit balance for the next ones."""
        invoice = self.ledger.manual(customer, str(Decimal(cents) / 100))
        return multiple(invoice.id) if invoice else multiple()

    @rule(invoice=invoices)
    def full_credit_note(self, invoice):
        before = self.ledger.ports.repo.get_invoice(invoice)
        note = self.ledger.credit(invoice)
        if note is None and before.status in LIVE and not before.credits and before.total > 0 \
                and not self.credited_since(before):
            raise AssertionError(f"a full credit note on {before.number} (total {before.total}, lines "
                                 f"{[(ln.kind, ln.amount) for ln in before.lines]}) was refused")

    def credited_since(self, invoice: Invoice) -> bool:
        """Whether a later document credited unused time (a pause, a refund, a regret) of a period this invoice
        billed: then a full credit note would credit it twice, and the platform refuses it (defect 1's rule)."""
        billed = [(ln.subscription_id, ln.period_start, ln.period_end) for ln in invoice.lines
                  if ln.kind in ("recurring", "one_time") and ln.subscription_id]
        return any(ln.amount < 0 and ln.kind not in ("discount", "usage", "late_usage") and ln.period_start
                   and any(ln.subscription_id == sub and ln.period_start < end and start < ln.period_end
                           for sub, start, end in billed)
                   for d in self.ledger.documents() if d.id != invoice.id and d.status != "draft" for ln in d.lines)

    @rule(invoice=invoices, share=st.integers(1, 100))
    def partial_credit_note(self, invoice, share):
        document = self.ledger.ports.repo.get_invoice(invoice)
        credited: dict[int, Decimal] = {}
        for credit in document.credits:
            for index, amount in credit["lines"].items():
                credited[int(index)] = credited.get(int(index), Decimal(0)) + Decimal(amount)
        open_lines = [(i, line.amount - credited.get(i, Decimal(0))) for i, line in enumerate(document.lines)
                      if line.amount - credited.get(i, Decimal(0)) > 0]
        assume(open_lines)
        index, left = open_lines[share % len(open_lines)]
        amount = max(CENT, money(left * share / 100))
        self.ledger.credit(invoice, [{"line": index, "amount": str(amount)}])

    @rule(invoice=invoices)
    def void(self, invoice):
        self.ledger.void(invoice)

    @rule(invoice=invoices, share=st.integers(1, 100))
    def pay(self, invoice, share):
        document = self.ledger.ports.repo.get_invoice(invoice)
        left = document.left_to_pay()
        assume(left > 0)
        self.ledger.pay(invoice, max(CENT, money(left * share / 100)))

    # injected failures and time --------------------------------------------------------------------------
    @rule()
    def publish_fails_once(self):
        self.ledger.bus.fail_next = True

    @rule(nth=st.integers(1, 3))
    def transaction_conflict(self, nth):
        self.ledger.conflicts.countdown = nth

    @rule(days=st.integers(3, 31))
    def advance_clock(self, days):
        self.ledger.advance(days)

    # the invariants --------------------------------------------------------------------------------------
    @invariant()
    def money_adds_up(self):
        self.ledger.check_money()

    @invariant()
    def usage_billed_once(self):
        self.ledger.check_usage()

    @invariant()
    def finalized_documents_announced(self):
        self.ledger.check_announced()
        self.ledger.check_outbox(self.ledger.outbox())

    @invariant()
    def revenue_matches_net_invoiced(self):
        self.ledger.check_revenue()

    @invariant()
    def numbering_gapless(self):
        self.ledger.check_numbering()


LedgerMachine.TestCase.settings = LEDGER_SETTINGS
TestLedgerInvariants = LedgerMachine.TestCase


# ---------------------------------------------------------------------------------------------------------
# What the machine found, kept as plain tests: the shortest sequence of operations, then the invariant.


@pytest.fixture
def ledger():
    book = Ledger()
    yield book
    book.close()


def month_later(ledger: Ledger, days: int = 31) -> None:
    ledger.advance(days)


def test_usage_arriving_while_the_bill_run_rates_is_billed(ledger):
    acme = ledger.customer()
    ledger.subscribe(acme, "basic", ledger.today())
    ledger.bill_run()
    month_later(ledger)
    ledger.bill_run(race=True)
    ledger.check_usage()


def test_late_usage_of_an_ended_contract_is_billed_by_the_next_run(ledger):
    acme = ledger.customer()
    sub = ledger.subscribe(acme, "basic", ledger.today())
    ledger.bill_run()
    month_later(ledger)
    ledger.bill_run()
    retried(lambda: subscriptions.terminate_subscription(ledger.ports, SYSTEM, sub.id, TerminateRequest(
        effective="immediately")))
    ledger.bill_run()
    result = ledger.ingest(sub.id, ["late-1"], START + timedelta(days=5))
    assert (result.accepted, result.late) == (1, 1)
    ledger.advance(3)
    ledger.bill_run()
    ledger.check_usage()


def test_a_retried_bill_run_step_gets_back_its_invoice(ledger):
    acme = ledger.customer()
    for _ in range(20):
        ledger.manual(acme, "1.00")
    ledger.subscribe(acme, "basic", ledger.today())
    ledger.bill_run(retry_step=True)


def test_a_failed_publish_does_not_lose_the_announcement_of_an_invoice(ledger):
    acme = ledger.customer()
    ledger.bus.fail_next = True
    ledger.manual(acme, "100.00")
    ledger.check_announced()


def test_a_voided_invoice_recognizes_no_revenue(ledger):
    acme = ledger.customer()
    invoice = ledger.manual(acme, "100.00")
    assert ledger.void(invoice.id) is not None
    ledger.check_revenue()


def test_a_full_credit_note_is_accepted_on_an_invoice_with_a_coupon(ledger):
    acme = ledger.customer()
    ledger.subscribe(acme, "basic", ledger.today(), "once")
    (invoice,) = ledger.bill_run()
    assert any(line.kind == "discount" for line in invoice.lines)
    assert ledger.credit(invoice.id) is not None
    ledger.check_money()


def test_a_catch_up_run_never_dates_an_invoice_before_the_previous_number(ledger):
    acme = ledger.customer()
    ledger.manual(acme, "10.00")
    ledger.subscribe(acme, "basic", ledger.today() - timedelta(days=10))
    ledger.bill_run(as_of=ledger.today() - timedelta(days=10))
    ledger.check_numbering()


def test_a_customer_whose_transaction_was_cancelled_is_retried_not_refused(ledger):
    """Found by the machine: a cancelled transaction came back as "a customer with external_id 'None'
    exists" (409, not retryable); it is a concurrent modification, and the retry creates the customer."""
    ledger.customer()  # the default billing entity exists
    ledger.ports.repo.store.transact = _conflicting_once(ledger.ports.repo.store.transact)
    with pytest.raises(ConflictError) as refused:
        create_customer(ledger.ports, SYSTEM, CustomerCreate(name="Acme", email="ap@example.com", country="US",
                                                             region="US-OR", currency="USD"))
    assert refused.value.code == "concurrent_modification" and "external_id" not in str(refused.value)
    assert ledger.customer(name="Globex")  # and the client's retry creates it


def _conflicting_once(transact):
    calls = []

    def conflicting(operations, audit=(), events=()):
        if not calls:
            calls.append(1)
            raise ConflictError("the object changed or already exists; read it again and retry",
                                code="concurrent_modification")
        return transact(operations, audit, events)
    return conflicting


def test_outbox_entries_exist_for_committed_changes(ledger):
    """The outbox invariant on a short sequence: every committed change that publishes has exactly one entry."""
    acme = ledger.customer()
    invoice = ledger.manual(acme, "100.00")
    ledger.pay(invoice.id, Decimal("40.00"))
    ledger.credit(invoice.id, [{"line": 0, "amount": "10.00"}])
    entries = ledger.outbox()
    assert {e["type"] for e in entries} >= {"invoice.finalized", "payment.succeeded"}
    ledger.check_outbox(entries)


def test_a_coupon_line_states_the_service_it_discounts_after_a_plan_change(ledger):
    """Found by the machine: a forever coupon on a cycle cut short by a plan change stated the whole cycle
    (to 28 Feb) while the charge it discounted stopped at the change (12 Feb): the discount stood against
    days nothing was billed for."""
    acme = ledger.customer()
    ledger.advance(14)
    sub = ledger.subscribe(acme, "basic", ledger.today() - timedelta(days=13), "forever", quantity=Decimal(2),
                           term_months=1)
    retried(lambda: contract_actions.change_plan(ledger.ports, SYSTEM, sub.id, PlanChangeRequest(
        plan_code="seats-usd", timing="immediately", quantity=Decimal(1))))
    ledger.bill_run()
    (discount,) = [ln for d in ledger.documents() for ln in d.lines if ln.kind == "discount"]
    (charge,) = [ln for d in ledger.documents() for ln in d.lines
                 if ln.subscription_id == sub.id and ln.kind == "recurring"]
    assert (discount.period_start, discount.period_end) == (charge.period_start, charge.period_end)
    ledger.check_money()
