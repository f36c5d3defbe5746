"""The domain vocabulary (see README.md beside this file). Pure data, validated by pydantic.

Money fields are `Decimal` and serialize as strings; floats are refused at the edge.
Dates are `date`; every `*_end` / `end_date` is exclusive (the first day without service).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema


def _no_float(value: object) -> object:
    if isinstance(value, float | bool):
        raise ValueError("money and quantities are decimal strings such as \"1250.00\", not numbers")
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["1250.00"]}),
]

ChargeType = Literal["recurring", "one_time", "usage"]
ChargeModel = Literal["flat_fee", "per_unit"]
BillingPeriod = Literal["month", "quarter", "semi_annual", "annual"]
Timing = Literal["in_advance", "in_arrears"]
Role = Literal["admin", "cre", "finance"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class BillingEntity(Model):
    id: str
    code: str
    name: str
    country: str
    region: str | None = None
    tax_registrations: dict[str, str] = Field(default_factory=dict)
    currency: str
    invoice_prefix: str
    address_lines: list[str] = Field(default_factory=list)
    email: str | None = None
    created_at: datetime
    version: int = 1


class Customer(Model):
    id: str
    external_id: str | None = None
    name: str
    email: str
    cc_emails: list[str] = Field(default_factory=list)
    country: str
    region: str | None = None
    address_lines: list[str] = Field(default_factory=list)
    customer_type: Literal["business", "individual"] = "business"
    tax_id: str | None = None
    tax_exempt: bool = False
    currency: str
    language: str = "en"
    billing_entity: str
    timezone: str = "UTC"
    net_terms_days: int = 30
    created_at: datetime
    version: int = 1


class Charge(Model):
    code: str
    name: str
    type: ChargeType = "recurring"
    model: ChargeModel = "flat_fee"
    billing_period: BillingPeriod = "month"
    timing: Timing = "in_advance"
    price: Amount = Decimal("0")
    proration: Literal["daily", "none"] = "daily"
    gl_code: str | None = None
    tax_code: str | None = None
    description: str | None = None


class Plan(Model):
    code: str
    name: str
    currency: str
    description: str | None = None
    charges: list[Charge]
    refund_policy: Literal["none", "prorated"] = "none"
    created_at: datetime
    version: int = 1

    def charge(self, code: str) -> Charge:
        for charge in self.charges:
            if charge.code == code:
                return charge
        raise KeyError(code)


class Termination(Model):
    effective: Literal["immediately", "end_of_period", "on_date"]
    service_end: date  # exclusive
    requested_at: datetime
    requested_by: str
    reason: str | None = None


class Subscription(Model):
    id: str
    customer_id: str
    plan_code: str
    external_id: str | None = None
    start_date: date
    end_date: date | None = None  # exclusive
    price_overrides: dict[str, Amount] = Field(default_factory=dict)
    quantity: Amount = Decimal("1")
    billing_alignment: Literal["anniversary", "calendar"] = "anniversary"
    billing_day: int
    auto_renew: bool = True
    termination: Termination | None = None
    next_bill_date: date | None = None
    created_at: datetime
    version: int = 1

    @property
    def service_end(self) -> date | None:
        """Exclusive end of service: the earlier of the contract end and a termination."""
        ends = [d for d in (self.end_date, self.termination and self.termination.service_end) if d]
        return min(ends) if ends else None

    def status_on(self, today: date) -> str:
        if today < self.start_date:
            return "pending"
        end = self.service_end
        if end is not None and today >= end:
            return "terminated"
        if self.termination is not None:
            return "pending_termination"
        return "active"

    def price_of(self, charge: Charge) -> Decimal:
        return self.price_overrides.get(charge.code, charge.price)


class InvoiceLine(Model):
    kind: Literal["recurring", "one_time", "usage", "adjustment", "credit"] = "recurring"
    description: str
    charge_code: str | None = None
    quantity: Amount
    unit_price: Amount
    amount: Amount
    currency: str
    period_start: date | None = None
    period_end: date | None = None  # exclusive
    subscription_id: str | None = None
    external_id: str | None = None
    gl_code: str | None = None
    tax_code: str | None = None
    proration: str | None = None  # the rule, stated: "prorated by day: 17/31 days"
    item_key: str | None = None  # what this line bills, unique per subscription/charge/period


class TaxLine(Model):
    name: str
    jurisdiction: str
    rate: Amount
    taxable_amount: Amount
    amount: Amount


class PartySnapshot(Model):
    """Seller or buyer as printed on a finalized document (copied, so it never changes)."""

    name: str
    email: str | None = None
    address_lines: list[str] = Field(default_factory=list)
    country: str
    region: str | None = None
    tax_id: str | None = None


class Invoice(Model):
    id: str
    number: str | None = None
    status: Literal["draft", "finalized", "paid", "void", "uncollectible"]
    customer_id: str
    billing_entity_id: str
    bill_run_id: str | None = None
    currency: str
    language: str = "en"
    issue_date: date
    due_date: date
    lines: list[InvoiceLine]
    tax_lines: list[TaxLine] = Field(default_factory=list)
    subtotal: Amount
    tax_total: Amount
    total: Amount
    amount_due: Amount
    notes: list[str] = Field(default_factory=list)
    seller: PartySnapshot
    buyer: PartySnapshot
    template_version: str = "invoice_v1"
    content_hash: str | None = None
    previous_hash: str | None = None
    pdf_key: str | None = None
    delivery_status: str | None = None
    created_at: datetime
    finalized_at: datetime | None = None
    version: int = 1

    @property
    def subscription_ids(self) -> list[str]:
        return sorted({line.subscription_id for line in self.lines if line.subscription_id})


class BillRun(Model):
    id: str
    as_of: date
    trigger: Literal["api", "schedule", "cli"] = "api"
    status: Literal["pending", "running", "succeeded", "completed_with_failures", "failed"]
    accounts: int = 0
    invoices: int = 0
    nothing_due: int = 0
    failed: int = 0
    failures: list[dict] = Field(default_factory=list)
    invoice_ids: list[str] = Field(default_factory=list)
    created_at: datetime
    completed_at: datetime | None = None
    created_by: str | None = None
    version: int = 1


class AuditEvent(Model):
    id: str
    occurred_at: datetime
    actor: str
    role: str
    action: str
    object_type: str
    object_id: str
    before: dict | None = None
    after: dict | None = None
    correlation_id: str | None = None
