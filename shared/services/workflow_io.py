"""The contracts of the bill-run state machine's task states (validated at each edge)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _IO(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ListDueInput(_IO):
    as_of: str
    bill_run_id: str | None = None
    trigger: Literal["api", "schedule", "cli"] = "schedule"


class AccountTask(_IO):
    """One iteration of the per-account Map: what each step receives and passes on."""

    customer_id: str
    bill_run_id: str
    as_of: str
    subscription_id: str | None = None  # a customer invoiced per subscription: this one only
    invoice_id: str | None = None
    status: Literal["invoiced", "nothing_due"] | None = None
    finalized_at: str | None = None  # UTC, "...Z": the invoice.finalized event's time
    pdf_key: str | None = None
    delivery_status: str | None = None


class AccountResult(_IO):
    customer_id: str
    status: Literal["invoiced", "nothing_due", "failed"]
    invoice_id: str | None = None
    error: str | None = None
    cause: str | None = None


class CompleteInput(_IO):
    bill_run_id: str
    as_of: str
    results: list[AccountResult] = []
