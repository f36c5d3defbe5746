"""Every write of an invoice moves its stored version, so two writers of one read cannot both land."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.billing.errors import ConflictError
from tests.unit.test_attachments import issued  # noqa: F401,F811  (the fixture)


def test_two_payments_read_at_the_same_version_cannot_both_land(issued):  # noqa: F811
    # each write moves the stored version: the second writer of a stale copy conflicts, no payment is lost
    from shared.services.invoice_lifecycle import _save

    world, invoice = issued
    first, second = (world.ports.repo.get_invoice(invoice.id) for _ in range(2))
    first.amount_paid = Decimal("10.00")
    _save(world.ports, first, [])
    second.amount_paid = Decimal("20.00")
    with pytest.raises(ConflictError):
        _save(world.ports, second, [])
    assert world.ports.repo.get_invoice(invoice.id).amount_paid == Decimal("10.00")
