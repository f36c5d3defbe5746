"""Request bodies of subscriptions: creating one and every contract action on it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from shared.billing.models import Amount, BillingPeriod, Model
from shared.services.requests.common import CODE


class CouponRedeem(Model):
    code: str = Field(pattern=CODE)


class PlanMigration(Model):
    plan_version: int | None = Field(default=None, ge=1, description="default: the plan's current version")
    effective: dt.date | None = Field(
        default=None, description="the first day of a billing period; default: the next period start")


class SubscriptionCreate(Model):
    customer_id: str
    plan_code: str
    external_id: str | None = Field(default=None, pattern=CODE, description="the contract ID")
    start_date: dt.date | None = Field(default=None, description="default: today on the platform clock")
    end_date: dt.date | None = Field(default=None, description="exclusive: the first day without service")
    price_overrides: dict[str, Amount] = Field(default_factory=dict)
    quantity: Amount = Field(default=Decimal("1"), gt=0)
    billing_alignment: Literal["anniversary", "calendar"] = "anniversary"
    billing_day: int | None = Field(default=None, ge=1, le=31)
    auto_renew: bool = True
    coupons: list[str] = Field(default_factory=list, max_length=5, description="coupon codes to redeem")
    parent_subscription_id: str | None = Field(
        default=None, description="for an add-on plan: the base subscription (id or contract ID); the add-on "
                                  "follows its billing cycle and ends with it")
    billing_month: int | None = Field(default=None, ge=1, le=12, description="cycles of a year or more")
    billing_weekday: int | None = Field(default=None, ge=1, le=7, description="weekly cycles: 1 = Monday")
    term_months: int | None = Field(default=None, ge=1, le=120,
                                    description="the committed term; end_date defaults to start + term")
    setup_fee: Amount | None = Field(default=None, ge=0, description="one-time fee billed at activation")
    early_termination_fee: Amount | None = Field(default=None, ge=0,
                                                 description="charged when the contract ends before its end_date")
    termination_month: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                                          description="UC05: end the contract at its period boundary in this month")
    trial: bool = Field(default=True, description="false: no trial even if the plan has one")

    @field_validator("end_date")
    @classmethod
    def _after_start(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("start_date")
        if value and start and value <= start:
            raise ValueError("end_date must be after start_date (it is the first day without service)")
        return value

    @field_validator("price_overrides")
    @classmethod
    def _not_negative(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for code, price in value.items():
            if price < 0:
                raise ValueError(f"price_overrides.{code} cannot be negative")
        return value


class TerminateRequest(Model):
    effective: Literal["immediately", "end_of_period", "on_date", "month"] = "end_of_period"
    date: dt.date | None = Field(default=None, description="with on_date: the first day without service")
    month: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                              description="with month (UC05): the contract ends at its period boundary in it")
    refund: Literal["none", "prorated"] | None = None
    reason: str | None = Field(default=None, max_length=500)

    @field_validator("date", mode="after")
    @classmethod
    def _date_with_on_date(cls, value, info: ValidationInfo):
        if value is not None and info.data.get("effective") != "on_date":
            raise ValueError("date is only allowed when effective is 'on_date'")
        return value

    @field_validator("month", mode="after")
    @classmethod
    def _month_with_month(cls, value, info: ValidationInfo):
        if value is not None and info.data.get("effective") != "month":
            raise ValueError("month is only allowed when effective is 'month'")
        return value


class PauseRequest(Model):
    start: dt.date | None = Field(default=None, description="default: today")
    end: dt.date | None = Field(default=None, description="exclusive: the first day billed again; default: "
                                                          "until resumed")
    reason: str | None = Field(default=None, max_length=500)


class ResumeRequest(Model):
    on: dt.date | None = Field(default=None, description="the first day billed again; default: today")


class TrialExtension(Model):
    trial_end: dt.date = Field(description="the new end of the trial (exclusive: the first paid day)")


class RegretRequest(Model):
    reason: str | None = Field(default=None, max_length=500)


class PlanChangeRequest(Model):
    plan_code: str | None = Field(default=None, description="default: the current plan")
    quantity: Amount | None = Field(default=None, gt=0)
    price_overrides: dict[str, Amount] | None = None
    timing: Literal["immediately", "renewal", "on_date"] = "immediately"
    date: dt.date | None = Field(default=None, description="with on_date: the first day on the new terms")
    proration: Literal["prorate", "none"] = Field(
        default="prorate", description="prorate: credit the unused time billed and charge the new terms by day")


class TermsChange(Model):
    auto_renew: bool | None = None
    renew_months: int | None = Field(default=None, ge=1, le=120, description="renew: move the end by this")
    end_date: dt.date | None = Field(default=None, description="extend the term to this end (exclusive)")


class BillingDayChange(Model):
    billing_day: int | None = Field(default=None, ge=1, le=31, description="month-based cycles")
    billing_month: int | None = Field(default=None, ge=1, le=12)
    billing_weekday: int | None = Field(default=None, ge=1, le=7)


class BillAhead(Model):
    cycles: int = Field(ge=1, le=36, description="how many upcoming billing cycles to invoice now")


class OwnershipTransfer(Model):
    customer_id: str
    on: dt.date | None = Field(default=None, description="the first day billed to the new owner; default: today")


class ContractChargeAdd(Model):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    price: Amount = Field(ge=0)
    type: Literal["recurring", "one_time"] = "recurring"
    billing_period: BillingPeriod = "month"
    start: dt.date | None = Field(default=None, description="default: today (the event that adds it)")
    end: dt.date | None = Field(default=None, description="exclusive; default: until removed")
    gl_code: str | None = None
    reason: str | None = Field(default=None, max_length=500)


class ContractChargeRemove(Model):
    on: dt.date | None = Field(default=None, description="the first day not charged (the event that removes "
                                                         "it); default: today")
