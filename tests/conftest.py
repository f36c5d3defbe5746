import os
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

# The stack gives every function these; handlers build their Powertools objects at import, and a
# test may import a handler before the local runtime has set them for the process.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "billing")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Billing")

from shared.billing.models import Invoice, InvoiceLine, PartySnapshot


@pytest.fixture
def invoice_factory():
    def make(**fields) -> Invoice:
        lines = [
            InvoiceLine(description="Managed Service", charge_code="ms-fee", quantity=Decimal(1),
                        unit_price=Decimal("1250.00"), amount=Decimal("1250.00"), currency="USD",
                        period_start=date(2025, 3, 1), period_end=date(2025, 4, 1), subscription_id="sub_1",
                        external_id="MS-2025-001", gl_code="7005"),
            InvoiceLine(description="Enterprise Support", charge_code="esp-fee", quantity=Decimal(1),
                        unit_price=Decimal("0.00"), amount=Decimal("0.00"), currency="USD",
                        period_start=date(2025, 3, 1), period_end=date(2025, 4, 1), subscription_id="sub_2",
                        external_id="ESP-2025-007", gl_code="7010"),
        ]
        base = dict(id="inv_1", number="INV-000001", status="finalized", customer_id="cus_1",
                    billing_entity_id="ent_1", currency="USD", issue_date=date(2025, 3, 1),
                    due_date=date(2025, 3, 31), lines=lines, subtotal=Decimal("1250.00"),
                    tax_total=Decimal("0.00"), total=Decimal("1250.00"), amount_due=Decimal("1250.00"),
                    seller=PartySnapshot(name="Seller Inc.", country="US"),
                    buyer=PartySnapshot(name="Acme IoT", country="US", region="US-CA"),
                    created_at=datetime(2025, 3, 1, tzinfo=UTC))
        return Invoice(**(base | fields))

    return make
