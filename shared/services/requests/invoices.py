"""Request bodies of invoices: credit notes, manual invoices, status changes, payments, attachments,
merge, split and rebill."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from shared.billing.models import Amount, Model


class CreditLineInput(Model):
    line: int | None = Field(default=None, ge=0, description="index of the invoice line credited")
    amount: Amount = Field(gt=0, description="net amount credited on that line (tax is added)")
    description: str | None = Field(default=None, max_length=500)


class CreditNoteCreate(Model):
    invoice_id: str
    reason: str = Field(min_length=1, max_length=500)
    lines: list[CreditLineInput] | None = Field(default=None, max_length=200,
                                                description="omit to credit the whole invoice")


ATTRIBUTE_NAME = r"^[a-z][a-z0-9_]{0,39}$"


class ManualLineInput(Model):
    description: str = Field(min_length=1, max_length=500)
    quantity: Amount = Field(default=Decimal("1"), gt=0)
    unit_price: Amount
    tax_code: str | None = Field(default=None, max_length=32)
    gl_code: str | None = Field(default=None, max_length=32)
    period_start: dt.date | None = None
    period_end: dt.date | None = Field(default=None, description="exclusive")
    attributes: dict[Annotated[str, Field(pattern=ATTRIBUTE_NAME)], Annotated[str, Field(max_length=100)]] = Field(
        default_factory=dict, max_length=10, description="e.g. {\"project\": \"alpha\"}: printed, and what a split "
                                                         "by attribute groups by")


class ManualInvoiceCreate(Model):
    customer_id: str
    lines: list[ManualLineInput] = Field(min_length=1, max_length=200)
    custom_fields: dict[str, str] = Field(default_factory=dict, max_length=20, description="e.g. po_number")
    notes: list[str] = Field(default_factory=list, max_length=10)


class StatusChange(Model):
    reason: str = Field(min_length=1, max_length=500)


class PaymentCreate(Model):
    invoice_id: str
    amount: Amount = Field(gt=0)
    received_on: dt.date | None = Field(default=None, description="default: today on the platform clock")
    method: Literal["bank_transfer", "check", "card", "other"] = "bank_transfer"
    reference: str | None = Field(default=None, max_length=200)


class AttachmentCreate(Model):
    filename: str = Field(min_length=1, max_length=200, description="e.g. timesheet-2025-03.pdf")
    content_type: str = Field(description="application/pdf, image/png, image/jpeg, text/csv, text/plain or xlsx")
    content_base64: str = Field(min_length=1, description="the file, base64 (at most 5 MB decoded)")


class InvoiceMerge(Model):
    invoice_ids: list[str] = Field(min_length=2, max_length=20, description="drafts of one customer, in line order")


class InvoiceSplit(Model):
    """Exactly one of: `by` (a line attribute, or subscription_id / external_id / charge_code),
    `percentages` (each line divided, e.g. [50, 50]), `lines` (line indexes per child)."""

    by: str | None = Field(default=None, pattern=ATTRIBUTE_NAME)
    percentages: list[Annotated[Amount, Field(gt=0, lt=100)]] | None = Field(default=None, min_length=2, max_length=10)
    lines: list[list[Annotated[int, Field(ge=0)]]] | None = Field(default=None, min_length=2, max_length=20)


class RebillRequest(Model):
    reason: str = Field(min_length=1, max_length=500)
