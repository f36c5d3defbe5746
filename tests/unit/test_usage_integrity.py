"""Every accepted usage event is billed exactly once (issue: money integrity 2, 3, 10, 12), through the
services on moto: usage sent while a bill run rates, transaction ids per subscription, concurrent sends,
late usage of a contract that has ended, and the per-customer usage limit under concurrency."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.local import dynamodb as local_dynamodb
from shared.services import billing, reconciliation, usage
from shared.services.catalog import create_customer, create_metric, create_plan
from shared.services.context import SYSTEM
from shared.services.requests.catalog import CustomerCreate, MetricCreate, PlanCreate
from shared.services.requests.contracts import SubscriptionCreate
from shared.services.subscriptions import create_subscription
from tests.unit.moto_ports import moto_world

PRICE = Decimal("1.00")


@pytest.fixture
def world():
    with moto_world() as world:
        _catalog(world)
        yield world


def _catalog(world) -> None:
    create_metric(world.ports, SYSTEM, MetricCreate(code="calls", name="Calls", aggregation="sum", field="quantity"))
    create_plan(world.ports, SYSTEM, PlanCreate(code="metered", name="Metered", currency="USD", charges=[
        {"code": "calls", "name": "Calls", "type": "usage", "model": "per_unit", "price": str(PRICE),
         "metric_code": "calls", "timing": "in_arrears"}]))


def at(world, day: str, hour: int = 12) -> None:
    world.clock.at = datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def customer(world, name: str, **fields) -> str:
    return create_customer(world.ports, SYSTEM, CustomerCreate(
        name=name, email=f"{name.lower()}@example.com", country="US", region="US-OR", currency="USD", **fields)).id


def subscribe(world, customer_id: str, start: str = "2025-01-01", **terms) -> str:
    return create_subscription(world.ports, SYSTEM, SubscriptionCreate(
        customer_id=customer_id, plan_code="metered", start_date=date.fromisoformat(start), **terms)).id


def event(sub_id: str, tx: str, when: str, quantity: int | str) -> dict:
    return {"transaction_id": tx, "subscription_id": sub_id, "metric_code": "calls",
            "timestamp": f"{when}T10:00:00Z", "properties": {"quantity": str(quantity)}}


def send(world, *events: dict) -> dict:
    return usage.ingest(world.ports, SYSTEM, list(events)).as_dict()


def bill(world, customer_id: str, day: str):
    at(world, day, hour=2)
    return billing.invoice_account(world.ports, SYSTEM, customer_id, date.fromisoformat(day))


def billed(world, customer_ids) -> dict[tuple[str, date], Decimal]:
    """Usage quantity on every invoice (usage and late-usage lines), by subscription and usage period."""
    totals: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for customer_id in customer_ids:
        invoices, _ = world.ports.repo.list_invoices(limit=100, after=None, customer_id=customer_id)
        for invoice in invoices:
            for line in invoice.lines:
                if line.kind in ("usage", "late_usage"):
                    totals[(line.subscription_id, line.period_start)] += line.quantity
    return {k: v for k, v in totals.items() if v}


# -- 2: usage that arrives while a bill run is rating ------------------------------------------------

def test_usage_written_between_the_bill_runs_read_and_its_commit_is_on_that_invoice(world, monkeypatch):
    acme = customer(world, "Acme")
    sub = subscribe(world, acme)
    at(world, "2025-01-20")
    assert send(world, event(sub, "a", "2025-01-10", 5))["accepted"] == 1
    assemble = billing.assemble_invoice
    injected = []

    def usage_arrives_meanwhile(*args, **kwargs):  # after the run read the usage, before it commits
        if not injected:
            injected.append(send(world, event(sub, "b", "2025-01-31", 7)))
        return assemble(*args, **kwargs)

    monkeypatch.setattr(billing, "assemble_invoice", usage_arrives_meanwhile)
    invoice = bill(world, acme, "2025-02-01")
    assert (injected[0]["accepted"], injected[0]["late"]) == (1, 0)  # on time: its period was not invoiced yet
    assert [(ln.kind, ln.quantity) for ln in invoice.lines] == [("usage", Decimal(12))]  # recomputed with it
    assert bill(world, acme, "2025-02-02") is None  # and nothing is left to bill twice
    assert billed(world, [acme]) == {(sub, date(2025, 1, 1)): Decimal(12)}


def test_usage_read_before_the_bill_run_commits_and_written_after_is_late_and_billed_next(world, monkeypatch):
    acme = customer(world, "Acme")
    sub = subscribe(world, acme)
    at(world, "2025-01-20")
    send(world, event(sub, "a", "2025-01-10", 5))
    plans_for = usage.plans_for
    run = []

    def bill_run_commits_meanwhile(*args, **kwargs):  # ingestion has read the subscription, not written yet
        if not run:
            run.append(billing.invoice_account(world.ports, SYSTEM, acme, date(2025, 2, 1)))
        return plans_for(*args, **kwargs)

    monkeypatch.setattr(usage, "plans_for", bill_run_commits_meanwhile)
    at(world, "2025-02-01", hour=2)
    result = send(world, event(sub, "b", "2025-01-31", 7))
    assert (result["accepted"], result["late"]) == (1, 1)
    assert [(ln.kind, ln.quantity) for ln in run[0].lines] == [("usage", Decimal(5))]
    monkeypatch.setattr(usage, "plans_for", plans_for)
    march = bill(world, acme, "2025-03-01")
    assert sorted((ln.kind, ln.quantity) for ln in march.lines) == [("late_usage", Decimal(7)), ("usage", Decimal(0))]
    assert billed(world, [acme]) == {(sub, date(2025, 1, 1)): Decimal(12)}


# -- 10: transaction ids per subscription, first write wins ---------------------------------------------

def test_two_customers_both_sending_transaction_id_1_are_both_accepted_and_billed(world):
    acme, globex = customer(world, "Acme"), customer(world, "Globex")
    first, second = subscribe(world, acme), subscribe(world, globex)
    at(world, "2025-01-20")
    assert send(world, event(first, "1", "2025-01-05", 3))["accepted"] == 1
    assert send(world, event(second, "1", "2025-01-06", 4))["accepted"] == 1
    assert send(world, event(second, "1", "2025-01-06", 4))["duplicates"] == 1  # a retry of the same event
    bill(world, acme, "2025-02-01")
    bill(world, globex, "2025-02-01")
    assert billed(world, [acme, globex]) == {(first, date(2025, 1, 1)): Decimal(3),
                                             (second, date(2025, 1, 1)): Decimal(4)}


def test_a_resent_id_with_other_content_is_a_duplicate_naming_the_id_and_the_first_stands(world):
    acme = customer(world, "Acme")
    sub = subscribe(world, acme)
    at(world, "2025-01-20")
    send(world, event(sub, "tx-9", "2025-01-05", 3))
    again = send(world, event(sub, "ok", "2025-01-05", 1), event(sub, "tx-9", "2025-01-05", 30))
    assert (again["accepted"], again["duplicates"]) == (1, 1)
    assert [(d["index"], d["transaction_id"]) for d in again["differing_duplicates"]] == [(1, "tx-9")]
    assert [(ln.kind, ln.quantity) for ln in bill(world, acme, "2025-02-01").lines] == [("usage", Decimal(4))]


def _in_two_threads(world, monkeypatch, first: list[dict], second: list[dict]) -> list[dict]:
    """Both batches checked against the stored state before either writes (moto serialized like the
    local runtime: one request at a time)."""
    local_dynamodb.apply()
    barrier = threading.Barrier(2, timeout=30)
    is_late = usage._is_late
    waited = set()

    def both_checked(*args):  # called after the duplicate and limit checks, before the write
        if threading.get_ident() not in waited:
            waited.add(threading.get_ident())
            barrier.wait()
        return is_late(*args)

    monkeypatch.setattr(usage, "_is_late", both_checked)
    results: list = [None, None]

    def run(position, events):
        results[position] = send(world, *events)

    threads = [threading.Thread(target=run, args=(i, e)) for i, e in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_concurrent_sends_of_one_id_with_different_content_accept_one_and_report_the_other(world, monkeypatch):
    acme = customer(world, "Acme")
    sub = subscribe(world, acme)
    at(world, "2025-01-20")
    results = _in_two_threads(world, monkeypatch, [event(sub, "7", "2025-01-05", 3)],
                              [event(sub, "7", "2025-01-05", 40)])
    assert sorted((r["accepted"], r["duplicates"]) for r in results) == [(0, 1), (1, 0)]
    loser = next(r for r in results if r["duplicates"])
    assert [d["transaction_id"] for d in loser["differing_duplicates"]] == ["7"]
    winner = 3 if results[0]["accepted"] else 40
    monkeypatch.undo()
    assert [(ln.kind, ln.quantity) for ln in bill(world, acme, "2025-02-01").lines] == [("usage", Decimal(winner))]


def test_a_large_batch_is_written_in_transactions_and_one_that_conflicts_is_written_event_by_event(
        world, monkeypatch):
    acme = customer(world, "Acme")
    sub = subscribe(world, acme)
    at(world, "2025-01-20")
    send(world, event(sub, "e-77", "2025-01-05", 1))
    claims = world.ports.repo.usage_claims
    monkeypatch.setattr(world.ports.repo, "usage_claims", lambda keys: {})  # as if e-77 arrived after the check
    transactions = []
    transact = world.ports.repo.store.transact
    monkeypatch.setattr(world.ports.repo.store, "transact", lambda ops, *a: (transactions.append(len(ops)),
                                                                               transact(ops, *a))[1])
    result = send(world, *(event(sub, f"e-{n}", "2025-01-05", 1) for n in range(150)))
    monkeypatch.setattr(world.ports.repo, "usage_claims", claims)
    assert (result["accepted"], result["duplicates"], result["differing_duplicates"]) == (149, 1, [])
    assert max(transactions) <= 100 and len(transactions) < 150  # chunks, then one event at a time
    assert [(ln.kind, ln.quantity) for ln in bill(world, acme, "2025-02-01").lines] == [("usage", Decimal(150))]


# -- 12: the usage limit is one atomic counter ---------------------------------------------------------

def test_two_concurrent_batches_cannot_both_pass_the_usage_limit(world, monkeypatch):
    acme = customer(world, "Acme", usage_limits={"calls": "10"})
    sub = subscribe(world, acme)
    at(world, "2025-01-20")
    results = _in_two_threads(world, monkeypatch, [event(sub, "x", "2025-01-05", 6)],
                              [event(sub, "y", "2025-01-06", 6)])
    assert sorted(r["accepted"] for r in results) == [0, 1]
    (rejected,) = [r["rejected"][0] for r in results if r["rejected"]]
    assert rejected["param"] == "events[0].properties.quantity" and "usage limit of 10" in rejected["message"]
    monkeypatch.undo()
    assert send(world, event(sub, "z", "2025-01-07", 4))["accepted"] == 1  # 6 + 4 = the limit exactly
    assert send(world, event(sub, "w", "2025-01-07", 1))["rejected"]
    assert [(ln.kind, ln.quantity) for ln in bill(world, acme, "2025-02-01").lines] == [("usage", Decimal(10))]


# -- 3: late usage of a contract that has ended ----------------------------------------------------------

def test_late_usage_of_an_ended_contract_is_invoiced_on_the_next_bill_run(world):
    acme = customer(world, "Acme")
    sub = subscribe(world, acme, end_date=date(2025, 2, 1))
    at(world, "2025-01-20")
    send(world, event(sub, "a", "2025-01-10", 5))
    assert [(ln.kind, ln.quantity) for ln in bill(world, acme, "2025-02-01").lines] == [("usage", Decimal(5))]
    assert world.ports.repo.get_subscription(sub).next_bill_date is None  # nothing left on the contract
    at(world, "2025-02-10")
    assert send(world, event(sub, "b", "2025-01-31", 2))["late"] == 1
    assert world.ports.repo.due_customers(date(2025, 2, 10)) == {acme: [sub]}
    findings = reconciliation.check_bill_run(world.ports, date(2025, 2, 10))
    assert [(f["subscription_id"], f["reason"]) for f in findings] == [(sub, "late_usage_not_invoiced")]
    invoice = bill(world, acme, "2025-02-11")
    assert [(ln.kind, ln.quantity, ln.period_start) for ln in invoice.lines] == [
        ("late_usage", Decimal(2), date(2025, 1, 1))]
    assert world.ports.repo.due_customers(date(2025, 12, 31)) == {}
    assert reconciliation.check_bill_run(world.ports, date(2025, 2, 11)) == []
    assert billed(world, [acme]) == {(sub, date(2025, 1, 1)): Decimal(7)}


# -- the invariant: sum billed = sum accepted, per subscription, metric and period ------------------------

DAYS = [date(2025, 1, d) for d in (1, 15, 31)] + [date(2025, 2, d) for d in (1, 14, 28)] + [date(2025, 3, 3)]
sends = st.tuples(st.integers(0, 1), st.sampled_from(["1", "2", "3", "4"]), st.sampled_from(DAYS),
                  st.integers(1, 9))
phases = st.lists(st.tuples(st.lists(sends, max_size=4), st.booleans(), st.one_of(st.none(), sends)),
                  min_size=1, max_size=3)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(phases=phases)
def test_every_accepted_event_is_billed_exactly_once(phases):
    """Bill runs on Feb 1, Mar 1 and Apr 1 (and a last one on May 1) with events sent before each, some of
    them late, resent or resent with other content, and some sent while a run is rating."""
    with moto_world() as world:
        _catalog(world)
        owners = [customer(world, "Acme"), customer(world, "Globex")]
        subs = [subscribe(world, owner) for owner in owners]
        accepted: dict[tuple[str, str], tuple[date, int]] = {}

        def send_all(items, today):
            for who, tx, day, quantity in items:
                if day >= today:  # sent at 10:00 that day: not yet
                    continue
                result = send(world, event(subs[who], tx, day.isoformat(), quantity))
                first = (subs[who], tx) not in accepted
                assert result["accepted"] == int(first) and result["duplicates"] == int(not first)
                accepted.setdefault((subs[who], tx), (day, quantity))

        run_days = [date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)]
        for (items, bill_now, meanwhile), run_day in zip(phases, run_days, strict=False):
            at(world, run_day.isoformat(), hour=1)
            send_all(items, run_day)
            if not bill_now:
                continue
            assemble = billing.assemble_invoice
            pending = [meanwhile] if meanwhile else []

            def rating(*args, _pending=pending, _day=run_day, _assemble=assemble, **kwargs):
                if _pending:
                    send_all([_pending.pop()], _day)
                return _assemble(*args, **kwargs)

            billing.assemble_invoice = rating
            try:
                for owner in owners:
                    bill(world, owner, run_day.isoformat())
            finally:
                billing.assemble_invoice = assemble
        for owner in owners:
            bill(world, owner, "2025-05-01")
        expected: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
        for (sub_id, _), (day, quantity) in accepted.items():
            expected[(sub_id, day.replace(day=1))] += quantity
        assert billed(world, owners) == dict(expected)
        assert world.ports.repo.late_usage_due(date(2025, 5, 1)) == []
