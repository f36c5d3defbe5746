"""The daily contract calendar on moto: each notice once, on its day, to the right people."""

from __future__ import annotations

import email
from datetime import date
from email import policy

import pytest

from shared.services import contract_calendar, subscriptions
from shared.services.catalog import create_customer, create_entity
from shared.services.context import SYSTEM
from shared.services.requests.catalog import BillingEntityCreate, CustomerCreate
from shared.services.requests.contracts import TerminateRequest
from tests.unit.moto_ports import moto_world
from tests.unit.test_contract_life import at, bill, customer, plan, subscribe

STAFF = ["cre@example.com", "finance@example.com"]


@pytest.fixture
def world():
    with moto_world() as world:
        yield world


def run(world, day: str) -> dict:
    at(world, day)
    return contract_calendar.run_day(world.ports, SYSTEM, date.fromisoformat(day), STAFF)


def mails(world) -> list[email.message.EmailMessage]:
    return [email.message_from_string(m.raw_data, policy=policy.default) for m in world.sent()]


def events(world, kind: str) -> list[dict]:
    return [e for e in world.outbox() if e["type"] == kind]


def test_a_future_subscription_is_activated_on_its_day_once(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    at(world, "2025-04-01")
    sub = subscribe(world, acme, "ms", "2025-04-10")
    assert run(world, "2025-04-09") == {}
    assert run(world, "2025-04-10") == {"activated": [sub.id]}
    assert run(world, "2025-04-10") == {} and run(world, "2025-04-11") == {}
    assert len(events(world, "subscription.activated")) == 1


def test_uc05_a_scheduled_termination_is_executed_on_its_day_and_cre_and_finance_are_told(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    at(world, "2025-04-01")
    sub = subscribe(world, acme, "ms", "2025-04-01", external_id="MS-9", termination_month="2025-06")
    assert run(world, "2025-05-31") == {}
    assert run(world, "2025-06-01") == {"terminated": [sub.id]}
    assert run(world, "2025-06-01") == {}  # once
    (event,) = events(world, "subscription.terminated")
    assert event["data"]["subscription"]["termination"]["service_end"] == "2025-06-01"
    (mail,) = [m for m in mails(world) if "MS-9" in m["Subject"]]
    assert sorted(a.strip() for a in mail["To"].split(",")) == STAFF
    body = mail.get_body(("plain",)).get_content()
    assert "Last day of service: 2025-05-31" in body and "Scheduled by system:billing on 2025-04-01" in body
    audit, _ = world.ports.repo.list_audit(10, None, object_id=sub.id)
    assert "subscription.terminated" in [a.action for a in audit]


def test_an_immediate_termination_is_not_mailed_to_staff_but_deactivates(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    at(world, "2025-04-01")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    at(world, "2025-04-05")
    subscriptions.terminate_subscription(world.ports, SYSTEM, sub.id, TerminateRequest(effective="immediately"))
    assert run(world, "2025-04-05") == {"terminated": [sub.id]}
    assert mails(world) == []


def test_uc04_terminating_an_annual_plan_confirms_to_ops(world):
    acme = customer(world)
    plan(world, "esp", "1200.00", period="annual")
    at(world, "2025-04-01")
    sub = subscribe(world, acme, "esp", "2025-04-01", external_id="ESP-9")
    at(world, "2025-05-10")
    subscriptions.terminate_subscription(world.ports, SYSTEM, sub.id, TerminateRequest(reason="budget"))
    (mail,) = mails(world)
    assert mail["To"] == "ops@example.com" and "ESP-9" in mail["Subject"]
    body = mail.get_body(("plain",)).get_content()
    assert "its next renewal, 2026-04-01, is not billed" in body and "budget" in body


def test_auto_renewal_moves_the_end_by_the_term_the_day_before(world):
    acme = customer(world)
    plan(world, "ms", "30.00")
    at(world, "2025-04-01")
    sub = subscribe(world, acme, "ms", "2025-04-01", term_months=12)
    assert sub.end_date == date(2026, 4, 1)
    assert run(world, "2026-03-31") == {"renewed": [sub.id]}
    assert subscriptions.get_subscription(world.ports, sub.id).end_date == date(2027, 4, 1)
    opted_out = subscribe(world, acme, "ms", "2025-04-01", term_months=12, auto_renew=False)
    run(world, "2026-03-31")
    assert run(world, "2026-04-01") == {"terminated": [opted_out.id]}


def test_the_trial_end_notice_goes_to_the_customer_in_their_language(world):
    create_customer(world.ports, SYSTEM, CustomerCreate(name="Loja", email="ap@loja.example", country="US",
                                                       region="US-OR", currency="USD", language="pt-BR"))
    plan(world, "saas", "30.00", trial_days=14)
    loja = world.ports.repo.list_customers(10, None)[0][0].id
    at(world, "2025-04-01")
    sub = subscribe(world, loja, "saas", "2025-04-01")
    assert run(world, "2025-04-12") == {"trial_will_end": [sub.id]}
    (mail,) = mails(world)
    assert mail["Subject"] == "Seu período de teste termina em 14 de abril de 2025"
    assert run(world, "2025-04-12") == {}


def test_the_upcoming_bill_notice_states_the_amount_the_run_will_bill(world):
    entity = create_entity(world.ports, SYSTEM, BillingEntityCreate(
        code="US1", name="Soracom US", country="US", region="US-CA", currency="USD", invoice_prefix="US",
        tax_providers={"US": "not_collected"}, upcoming_bill_notice_days=5))
    acme = create_customer(world.ports, SYSTEM, CustomerCreate(
        name="Acme", email="ap@acme.example", country="US", region="US-OR", currency="USD",
        billing_entity=entity.id)).id
    plan(world, "ms", "1250.00")
    sub = subscribe(world, acme, "ms", "2025-04-01")
    bill(world, acme, "2025-04-01")
    assert run(world, "2025-04-26") == {"upcoming_bill": [sub.id]}
    (mail,) = [m for m in mails(world) if m["To"] == "ap@acme.example" and "next bill" in m["Subject"]]
    assert mail["Subject"] == "Your next bill on May 1, 2025: $1,250.00"
    assert run(world, "2025-04-26") == {}
