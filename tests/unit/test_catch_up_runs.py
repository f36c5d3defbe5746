"""Invoices are numbered in the order of their issue dates (issue 14): a bill run for a day already past
(a catch-up) issues its invoices today, for the service periods of that past day, after the others."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from lxml import etree

from shared.documents.ubl import invoice_to_ubl
from shared.services.billing import invoice_account
from shared.services.context import SYSTEM
from tests.unit.moto_ports import moto_world
from tests.unit.test_contract_life import at, bill, customer, plan, subscribe

NS = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
      "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}


@pytest.fixture
def world():
    with moto_world() as world:
        yield world


def test_a_run_for_a_past_day_issues_today_for_the_past_service_period_numbered_after_the_others(world):
    plan(world, "ms", "100.00")
    recent, late = customer(world, "Recent"), customer(world, "Late")
    at(world, "2017-03-01")
    subscribe(world, late, "ms", "2017-03-01")
    subscribe(world, recent, "ms", "2025-05-01")
    first = bill(world, recent, "2025-05-02")
    assert first.issue_date == date(2025, 5, 2)

    catch_up = invoice_account(world.ports, SYSTEM, late, date(2017, 3, 31))  # the clock says 2025-05-02
    assert catch_up.sequence == first.sequence + 1
    assert (catch_up.issue_date, catch_up.due_date) == (date(2025, 5, 2), date(2025, 5, 2) + (
        first.due_date - first.issue_date))
    periods = {(line.period_start, line.period_end) for line in catch_up.lines}
    assert periods == {(date(2017, 3, 1), date(2017, 4, 1))} and catch_up.total == Decimal("100.00")
    ubl = etree.fromstring(invoice_to_ubl(catch_up, seller_endpoint="0088:5790000435968",
                                        buyer_endpoint="0088:5790000435975"))
    assert ubl.findtext("cbc:IssueDate", namespaces=NS) == "2025-05-02"
    assert (ubl.findtext("cac:InvoicePeriod/cbc:StartDate", namespaces=NS),
            ubl.findtext("cac:InvoicePeriod/cbc:EndDate", namespaces=NS)) == ("2017-03-01", "2017-03-31")


def test_a_run_that_ran_late_issues_on_the_day_it_ran(world):
    plan(world, "ms", "100.00")
    acme = customer(world)
    subscribe(world, acme, "ms", "2025-04-01")
    at(world, "2025-04-10")
    assert invoice_account(world.ports, SYSTEM, acme, date(2025, 4, 1)).issue_date == date(2025, 4, 10)
