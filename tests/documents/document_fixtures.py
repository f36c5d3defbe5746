"""Invoices to render (imported by the tests by this unique module name, not as `conftest`).

`make_invoice`: a listing ($0) line and a prorated line, no tax; `make_taxed_invoice`: one
line and a 20% VAT line; `make_long_invoice`: N monthly lines; `make_reverse_charge_credit_note`:
a French seller's credit note to a German business, with the platform's tax wording.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from shared.billing.invoicing import CREDIT_NOTE_NOTE
from shared.billing.models import Invoice, InvoiceLine, PartySnapshot, TaxLine
from shared.billing.tax import CUSTOMER_VAT_NOTE, EU_REVERSE_CHARGE_NOTE, SUPPLIER_VAT_NOTE

HASH = "3f2a9c0b7d1e4f6a8b9c0d1e2f3a4b5c6d7e8f90123456789abcdef012345678"


def make_invoice(**changes) -> Invoice:
    """A finalized USD invoice from a US seller to a Brazilian buyer, no tax."""
    fields = dict(
        id="inv_01JQ0000000000000000000000",
        number="SORUS-2025-000123",
        status="finalized",
        customer_id="cus_01",
        billing_entity_id="be_us",
        currency="USD",
        language="en",
        issue_date=date(2025, 4, 1),
        due_date=date(2025, 5, 1),
        lines=[
            InvoiceLine(
                description="Enterprise Support Program — partner listing",
                charge_code="esp_listing",
                quantity=Decimal("1"),
                unit_price=Decimal("0.00"),
                amount=Decimal("0.00"),
                currency="USD",
                period_start=date(2025, 3, 1),
                period_end=date(2025, 4, 1),
                subscription_id="sub_listing",
                external_id="CT-ESP-0042",
                gl_code="7010",
            ),
            InvoiceLine(
                description="Managed Service",
                charge_code="ms_fee",
                quantity=Decimal("1"),
                unit_price=Decimal("1250.00"),
                amount=Decimal("685.48"),
                currency="USD",
                period_start=date(2025, 3, 15),
                period_end=date(2025, 4, 1),
                subscription_id="sub_ms",
                external_id="CT-MS-0007",
                gl_code="7005",
                proration="prorated by day: 17/31 days of 2025-03-01 to 2025-04-01",
            ),
        ],
        subtotal=Decimal("685.48"),
        tax_total=Decimal("0.00"),
        total=Decimal("685.48"),
        amount_due=Decimal("685.48"),
        notes=["Payment by wire transfer to account 000123456, routing 026009593."],
        seller=PartySnapshot(
            name="Soracom US, Inc.",
            email="billing@soracom.example",
            address_lines=["100 Market Street, Suite 300", "San Francisco, CA 94105"],
            country="US",
            region="US-CA",
            tax_id="EIN 12-3456789",
        ),
        buyer=PartySnapshot(
            name="Conecta Telemetria Ltda.",
            email="financeiro@conecta.example",
            address_lines=["Av. Paulista, 1000", "São Paulo - SP, 01310-100"],
            country="BR",
            region="SP",
            tax_id="CNPJ 12.345.678/0001-90",
        ),
        template_version="invoice_v1",
        content_hash=HASH,
        created_at=datetime(2025, 4, 1, 6, 0, tzinfo=UTC),
        finalized_at=datetime(2025, 4, 1, 6, 0, 5, tzinfo=UTC),
    )
    fields.update(changes)
    return Invoice(**fields)


def make_taxed_invoice(**changes) -> Invoice:
    """A GBP invoice from a UK entity to a UK buyer, with 20% VAT."""
    fields = dict(
        number="SORUK-2025-000045",
        currency="GBP",
        billing_entity_id="be_uk",
        lines=[
            InvoiceLine(
                description="Managed Service",
                charge_code="ms_fee",
                quantity=Decimal("1"),
                unit_price=Decimal("2000.00"),
                amount=Decimal("2000.00"),
                currency="GBP",
                period_start=date(2025, 3, 1),
                period_end=date(2025, 4, 1),
                subscription_id="sub_uk",
                external_id="CT-MS-0101",
                gl_code="7005",
            ),
        ],
        tax_lines=[
            TaxLine(
                name="VAT",
                jurisdiction="GB",
                rate=Decimal("0.20"),
                taxable_amount=Decimal("2000.00"),
                amount=Decimal("400.00"),
            )
        ],
        subtotal=Decimal("2000.00"),
        tax_total=Decimal("400.00"),
        total=Decimal("2400.00"),
        amount_due=Decimal("2400.00"),
        notes=[],
        seller=PartySnapshot(
            name="Soracom UK Ltd",
            address_lines=["1 Finsbury Avenue", "London EC2M 2PF"],
            country="GB",
            tax_id="GB123456789",
        ),
        buyer=PartySnapshot(
            name="Northwind Logistics plc",
            address_lines=["22 Deansgate", "Manchester M3 1RH"],
            country="GB",
            tax_id="GB987654321",
        ),
    )
    fields.update(changes)
    return make_invoice(**fields)


REVERSE_CHARGE_NOTES = [EU_REVERSE_CHARGE_NOTE, SUPPLIER_VAT_NOTE.format(number="FR40303265045"),
                        CUSTOMER_VAT_NOTE.format(number="DE136695976")]  # what the rules write for FR -> DE B2B


def make_reverse_charge_credit_note(**changes) -> Invoice:
    seller = PartySnapshot(name="Connectivité France SAS", address_lines=["10 rue de la Paix", "75002 Paris"],
                           country="FR", tax_id="FR40303265045")
    buyer = PartySnapshot(name="Muster GmbH", address_lines=["Hauptstr. 1", "10115 Berlin"], country="DE",
                          tax_id="DE136695976")
    base = make_invoice(template_version="invoice_v3", language="de", seller=seller, buyer=buyer)
    notes = [CREDIT_NOTE_NOTE.format(number="FR-000001", date=date(2025, 3, 1), reason="SLA-Gutschrift"),
             *REVERSE_CHARGE_NOTES, "Bitte verrechnen Sie die Gutschrift mit Ihrer nächsten Zahlung."]
    lines = [base.lines[1].model_copy(update={
        "kind": "credit", "amount": -Decimal("100.00"), "unit_price": -Decimal("100.00"), "quantity": Decimal(1),
        "credited_line": 1, "currency": "EUR", "description": "Credit: Managed Service"})]
    fields = dict(kind="credit_note", number="FRCN-000001", lines=lines, notes=notes, currency="EUR",
                  tax_lines=[TaxLine(name="VAT", jurisdiction="FR", rate=Decimal("0"), category="AE",
                                     taxable_amount=-Decimal("100.00"), amount=Decimal("0.00"),
                                     exemption_reason="Reverse charge")],
                  subtotal=-Decimal("100.00"), total=-Decimal("100.00"), amount_due=-Decimal("100.00"))
    fields.update(changes)
    return base.model_copy(update=fields)


def make_long_invoice(lines: int = 20, **changes) -> Invoice:
    """An invoice with `lines` monthly lines (for paging and timing)."""
    base = make_invoice()
    items = []
    for i in range(lines):
        items.append(
            InvoiceLine(
                description=f"Managed Service — site {i + 1:02d}",
                charge_code="ms_fee",
                quantity=Decimal("1"),
                unit_price=Decimal("1250.00"),
                amount=Decimal("1250.00"),
                currency="USD",
                period_start=date(2025, 3, 1),
                period_end=date(2025, 4, 1),
                subscription_id=f"sub_{i:02d}",
                external_id=f"CT-MS-{i:04d}",
                gl_code="7005",
            )
        )
    total = Decimal("1250.00") * lines
    fields = dict(lines=items, subtotal=total, total=total, amount_due=total)
    fields.update(changes)
    return base.model_copy(update=fields)
