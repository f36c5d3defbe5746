"""Request body of an invoice preview: a stored subscription or an inline quote."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import EmailStr, Field, model_validator
from pydantic_core import PydanticCustomError

from shared.billing.models import Amount, Model
from shared.services.requests.catalog import MetricCreate, PlanCreate
from shared.services.requests.common import _Validated


class PreviewCustomer(_Validated):
    name: str = "Preview customer"
    email: EmailStr = "preview@example.com"
    country: str
    region: str | None = None
    customer_type: Literal["business", "individual"] = "business"
    tax_id: str | None = Field(default=None, max_length=32)
    tax_exempt: bool = False
    currency: str
    language: str = "en"
    net_terms_days: int = Field(default=30, ge=0, le=365)


class PreviewEntity(_Validated):
    name: str = "Preview seller"
    country: str
    region: str | None = None
    tax_registrations: dict[str, str] = Field(default_factory=dict)
    currency: str | None = None
    tax_providers: dict[str, Literal["rules", "avalara", "stripe_tax", "not_collected"]] = Field(
        default_factory=dict)
    japan_consumption_tax: bool = True


class PreviewSubscription(Model):
    start_date: dt.date
    end_date: dt.date | None = None
    price_overrides: dict[str, Amount] = Field(default_factory=dict)
    quantity: Amount = Field(default=Decimal("1"), gt=0)
    billing_alignment: Literal["anniversary", "calendar"] = "anniversary"
    billing_day: int | None = Field(default=None, ge=1, le=31)


class InvoicePreviewRequest(Model):
    """A stored `subscription_id`, or an inline quote: `customer`, `plan`, `subscription`, `usage`."""

    subscription_id: str | None = None
    customer_id: str | None = Field(default=None, description="a stored customer instead of `customer`")
    customer: PreviewCustomer | None = None
    billing_entity: PreviewEntity | str | None = Field(default=None, description="inline, or a stored id or code")
    metrics: list[MetricCreate] = Field(default_factory=list, max_length=50)
    plan: PlanCreate | None = None
    subscription: PreviewSubscription | None = None
    usage: list[dict] = Field(default_factory=list, max_length=10_000, description="each as UsageEventInput")
    period_start: dt.date | None = Field(default=None, description="the invoice of the period starting then")
    as_of: dt.date | None = Field(default=None, description="what a bill run on this day would issue")

    @model_validator(mode="after")
    def _stored_or_inline(self):
        if self.subscription_id is not None:
            if self.plan or self.subscription or self.usage or self.customer or self.customer_id:
                raise PydanticCustomError("preview", "give a subscription_id or an inline quote, not both")
        else:
            if self.plan is None or self.subscription is None:
                raise PydanticCustomError("preview", "an inline preview needs plan and subscription")
            if (self.customer is None) == (self.customer_id is None):
                raise PydanticCustomError("preview", "give exactly one of customer and customer_id")
        if self.period_start and self.as_of:
            raise PydanticCustomError("preview", "give period_start or as_of, not both")
        return self
