"""Request bodies: one set of pydantic models for the API, the CLI and the services.

Field-level rules live here; rules that need stored state (does the plan exist, does the
currency match) live in the services. Either way the error names the field.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import available_timezones

import pycountry
from babel import Locale, UnknownLocaleError
from pydantic import EmailStr, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from shared.billing.invoicing import number_format_problem
from shared.billing.models import (
    Aggregation,
    Amount,
    BillingPeriod,
    ChargeModel,
    ChargeType,
    ContractRules,
    Model,
    Role,
    Timing,
)
from shared.billing.money import check_currency, round_money

CODE = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


def check_country(code: str) -> str:
    if pycountry.countries.get(alpha_2=code) is None or code != code.upper():
        raise ValueError(f"'{code}' is not an ISO 3166-1 alpha-2 country code")
    return code


def check_region(region: str | None, country: str | None) -> str | None:
    if region is None:
        return None
    subdivision = pycountry.subdivisions.get(code=region)
    if subdivision is None:
        raise ValueError(f"'{region}' is not an ISO 3166-2 subdivision code (e.g. 'CA-BC')")
    if country and subdivision.country_code != country:
        raise ValueError(f"'{region}' is not a subdivision of {country}")
    return region


def _currency(value: str) -> str:
    check_currency(value)  # raises our ValidationError; re-raised as ValueError below
    return value


class _Validated(Model):
    @field_validator("currency", mode="after", check_fields=False)
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        from shared.billing.errors import ValidationError

        try:
            return _currency(value)
        except ValidationError as error:
            raise ValueError(error.message) from None

    @field_validator("country", mode="after", check_fields=False)
    @classmethod
    def _iso_country(cls, value: str) -> str:
        return check_country(value)

    @field_validator("region", mode="after", check_fields=False)
    @classmethod
    def _region_in_country(cls, value: str | None, info: ValidationInfo) -> str | None:
        return check_region(value, info.data.get("country"))


def _check_number_format(value: str) -> str:
    problem = number_format_problem(value)
    if problem:
        raise ValueError(problem)
    return value


ACCENT_COLOR = r"^#[0-9a-fA-F]{6}$"


class BrandingInput(Model):
    accent_color: str = Field(default="#1f4e79", pattern=ACCENT_COLOR,
                              description="#RRGGBB: the documents' title, rules and amount-due band")


class BillingEntityCreate(_Validated):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    country: str
    region: str | None = None
    tax_registrations: dict[str, str] = Field(default_factory=dict)
    currency: str
    invoice_prefix: str = Field(pattern=r"^[A-Z0-9][A-Z0-9\-]{0,15}$")
    credit_note_prefix: str | None = Field(default=None, pattern=r"^[A-Z0-9][A-Z0-9\-]{0,15}$",
                                           description="default: <invoice_prefix>-CN")
    number_format: str = Field(default="{prefix}-{number:06d}", max_length=40,
                               description="str.format with {prefix} and {number}, e.g. '{prefix}{number:08d}'")
    address_lines: list[str] = Field(default_factory=list, max_length=6)
    email: EmailStr | None = None
    revenue_convention: Literal["daily", "monthly"] = Field(
        default="daily", description="ratable revenue by day, or by month (half a month for a partial one)")
    tax_providers: dict[str, Literal["rules", "avalara", "stripe_tax", "not_collected"]] = Field(
        default_factory=dict, description="buyer jurisdiction ('US', 'US-CA') -> tax provider")
    japan_consumption_tax: bool = True
    usage_charge_limit: Amount | None = Field(default=None, ge=0, description="per customer and usage period")
    usage_limits: dict[str, Amount] = Field(default_factory=dict, description="metric -> quantity per period")
    upcoming_bill_notice_days: int | None = Field(default=None, ge=1, le=60,
                                                  description="e-mail customers this many days before a bill")
    branding: BrandingInput = Field(default_factory=BrandingInput,
                                    description="the logo is uploaded with PUT /v1/billing-entities/{id}/logo")

    @field_validator("number_format")
    @classmethod
    def _number_format(cls, value: str) -> str:
        return _check_number_format(value)


class CustomerCreate(_Validated):
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    cc_emails: list[EmailStr] = Field(default_factory=list, max_length=10)
    bcc_emails: list[EmailStr] = Field(default_factory=list, max_length=10)
    external_id: str | None = Field(default=None, pattern=CODE)
    country: str
    region: str | None = None
    address_lines: list[str] = Field(default_factory=list, max_length=6)
    customer_type: Literal["business", "individual"] = "business"
    tax_id: str | None = Field(default=None, max_length=32)
    tax_exempt: bool = False
    currency: str
    language: str = "en"
    billing_entity: str | None = Field(default=None, description="id or code; default entity if omitted")
    timezone: str = "UTC"
    net_terms_days: int = Field(default=30, ge=0, le=365)
    usage_charge_limit: Amount | None = Field(default=None, ge=0, description="overrides the entity's")
    usage_limits: dict[str, Amount] = Field(default_factory=dict, description="metric -> quantity per period")
    invoice_grouping: Literal["customer", "subscription"] = Field(
        default="customer", description="customer: one invoice per bill date across its subscriptions (default); "
                                        "subscription: one invoice per subscription")
    document_format: Literal["pdf", "facturx"] = Field(
        default="pdf", description="facturx: the PDF of record is a Factur-X (EN 16931) PDF/A-3 with its CII XML")

    @field_validator("language")
    @classmethod
    def _bcp47(cls, value: str) -> str:
        try:
            Locale.parse(value.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            raise ValueError(f"'{value}' is not a known BCP 47 language tag (e.g. 'en', 'pt-BR')") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError(f"'{value}' is not an IANA time zone (e.g. 'America/Toronto')")
        return value


class TierInput(Model):
    up_to: Amount | None = Field(default=None, description="inclusive upper bound; null: no limit")
    unit_price: Amount = Decimal("0")
    flat_price: Amount = Decimal("0")


class SegmentInput(Model):
    months: int | None = Field(default=None, ge=1, le=600, description="null: until the contract ends")
    price: Amount


class ComponentInput(Model):
    name: str = Field(min_length=1, max_length=200)
    standalone_price: Amount
    pob_identifier: str | None = None


class ChargeInput(Model):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    type: ChargeType = "recurring"
    model: ChargeModel = "flat_fee"
    billing_period: BillingPeriod = "month"
    timing: Timing = "in_advance"
    price: Amount = Decimal("0")
    proration: Literal["daily", "none"] = "daily"
    show_monthly: bool = Field(default=False, description="annual pre-pay (seed 000 §6.3): the months between "
                                                          "renewals show the service at 0 on the invoice")

    @field_validator("show_monthly")
    @classmethod
    def _longer_than_a_month(cls, value: bool, info: ValidationInfo) -> bool:
        from shared.billing.periods import MONTHS_IN

        if value and (info.data.get("type", "recurring") != "recurring"
                      or MONTHS_IN.get(info.data.get("billing_period", "month"), 0) <= 1):
            raise ValueError("show_monthly lists the months between renewals: it needs a recurring charge "
                             "billed over more than a month")
        return value
    gl_code: str | None = Field(default=None, max_length=32)
    tax_code: str | None = Field(default=None, max_length=32)
    description: str | None = None
    translations: dict[str, str] = Field(default_factory=dict, description="language (e.g. pt-BR) -> name",
                                         max_length=10)
    pob_identifier: str | None = Field(default=None, max_length=64)
    metric_code: str | None = Field(default=None, pattern=CODE)
    tiers: list[TierInput] = Field(default_factory=list, max_length=50)
    included_quantity: Amount | None = None
    package_size: Amount | None = None
    free_units: Amount = Decimal("0")
    percentage_rate: Amount | None = None
    fixed_fee_per_transaction: Amount = Decimal("0")
    free_events: int = Field(default=0, ge=0)
    per_transaction_min: Amount | None = None
    per_transaction_max: Amount | None = None
    rating_unit: Literal["second", "minute"] | None = None
    setup_fee: Amount = Decimal("0")
    price_table: dict[str, Amount] = Field(default_factory=dict)
    drawdown_from: str | None = Field(default=None, pattern=CODE)
    segments: list[SegmentInput] = Field(default_factory=list, max_length=24)
    includes: dict[str, Amount] = Field(default_factory=dict)
    components: list[ComponentInput] = Field(default_factory=list, max_length=20)
    prepaid_units: Amount | None = None

    @field_validator("price")
    @classmethod
    def _not_negative(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise ValueError("a catalog price cannot be negative; use a credit note")
        return value


class UsageDiscountInput(Model):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    metric_code: str = Field(pattern=CODE)
    threshold: Amount
    percent_off: Amount = Field(gt=0, le=100)
    applies_to: list[str] = Field(default_factory=list)


class CommitmentInput(Model):
    amount: Amount = Field(gt=0)
    name: str = "Minimum commitment true-up"
    gl_code: str | None = Field(default=None, max_length=32)
    tax_code: str | None = Field(default=None, max_length=32)


class PlanBody(_Validated):
    name: str = Field(min_length=1, max_length=200)
    currency: str
    description: str | None = None
    charges: list[ChargeInput] = Field(min_length=1, max_length=50)
    refund_policy: Literal["none", "prorated"] = "none"
    trial_days: int = Field(default=0, ge=0, le=730)
    rules: ContractRules = Field(default_factory=ContractRules)
    kind: Literal["base", "add_on"] = Field(default="base",
                                            description="add_on: subscribed on top of a base subscription")
    commitment: CommitmentInput | None = None
    usage_discounts: list[UsageDiscountInput] = Field(default_factory=list, max_length=20)

    @field_validator("charges")
    @classmethod
    def _unique_and_valid(cls, charges: list[ChargeInput], info: ValidationInfo):
        from shared.billing.errors import ValidationError
        from shared.billing.models import Charge
        from shared.billing.pricing import validate_charge

        codes = [c.code for c in charges]
        if len(set(codes)) != len(codes):
            raise ValueError("charge codes must be unique within a plan")
        currency = info.data.get("currency")
        for index, charge in enumerate(charges):
            if not currency:
                continue
            try:
                validate_charge(Charge(**charge.model_dump()), currency, param=f"charges[{index}]")
            except ValidationError as error:
                raise ValueError(f"{error.param}: {error.message}") from None
            if charge.drawdown_from and charge.drawdown_from not in codes:
                raise ValueError(f"charges[{index}].drawdown_from: no charge '{charge.drawdown_from}' in this plan")
        return charges

    @field_validator("usage_discounts")
    @classmethod
    def _discounts_name_charges(cls, discounts: list[UsageDiscountInput], info: ValidationInfo):
        codes = {c.code for c in info.data.get("charges") or []}
        for index, discount in enumerate(discounts):
            for code in discount.applies_to:
                if codes and code not in codes:
                    raise ValueError(f"usage_discounts[{index}].applies_to: no charge '{code}' in this plan")
        return discounts


class PlanCreate(PlanBody):
    code: str = Field(pattern=CODE)


class MetricCreate(Model):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    aggregation: Aggregation = "sum"
    field: str | None = Field(default=None, min_length=1, max_length=64)
    filters: dict[str, list[str]] = Field(default_factory=dict)
    group_by: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("field")
    @classmethod
    def _field_unless_count(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("aggregation", "sum") != "count":
            raise ValueError(f"aggregation '{info.data.get('aggregation')}' needs the event property to aggregate")
        return value


class CouponCreate(_Validated):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    percent_off: Amount | None = Field(default=None, gt=0, le=100)
    amount_off: Amount | None = Field(default=None, gt=0)
    currency: str | None = None
    duration: Literal["once", "repeating", "forever"] = "once"
    duration_in_cycles: int | None = Field(default=None, ge=1, le=120)
    max_redemptions: int | None = Field(default=None, ge=1)
    redeem_by: dt.date | None = None
    applies_to: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind_of_discount(self):
        if (self.percent_off is None) == (self.amount_off is None):
            raise PydanticCustomError("coupon", "give exactly one of percent_off and amount_off")
        if self.amount_off is not None:
            if not self.currency:
                raise PydanticCustomError("coupon", "amount_off needs a currency")
            if round_money(self.amount_off, self.currency) != self.amount_off:
                raise PydanticCustomError("coupon", f"amount_off has more decimals than {self.currency} allows")
        if (self.duration == "repeating") != (self.duration_in_cycles is not None):
            raise PydanticCustomError("coupon",
                                      "duration_in_cycles is required with duration 'repeating' and only then")
        return self


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


class BillRunCreate(Model):
    as_of: dt.date | None = Field(default=None, description="default: today on the platform clock")


class ApiKeyCreate(Model):
    name: str = Field(pattern=CODE)
    role: Role


def first_error_field(loc: tuple) -> str:
    """`('body', 'charges', 0, 'price')` -> `charges[0].price`."""
    parts: list[str] = []
    for part in loc:
        if part in ("body", "query", "path"):
            continue
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        else:
            parts.append(str(part))
    return re.sub(r"\.\[", "[", ".".join(parts))


class UsageEventInput(Model):
    transaction_id: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    subscription_id: str | None = None
    external_subscription_id: str | None = None
    customer_id: str | None = Field(default=None, description=(
        "instead of a subscription (seed 004 V5-2834): consumed from the customer's services' included usage, "
        "oldest and shortest one-time services first, termed services last; sum metrics only"))
    metric_code: str = Field(pattern=CODE)
    timestamp: dt.datetime = Field(description="UTC with Z (or an offset)")
    properties: dict[str, str | int | Decimal] = Field(default_factory=dict, max_length=50)

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp needs a time zone: UTC with Z, e.g. 2025-01-10T12:00:00Z")
        return value.astimezone(dt.UTC)

    @field_validator("properties", mode="before")
    @classmethod
    def _no_floats(cls, value):
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, float | bool):
                    raise ValueError(f"properties.{key}: send numbers as decimal strings such as \"12.5\"")
        return value

    @model_validator(mode="after")
    def _one_subscription(self):
        given = [x for x in (self.subscription_id, self.external_subscription_id, self.customer_id) if x is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "subscription", "give exactly one of subscription_id, external_subscription_id and customer_id")
        return self


class UsageBatch(Model):
    events: list[dict] = Field(min_length=1, max_length=1000, description="each as UsageEventInput")


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


class BillingEntityUpdate(Model):
    """What may change on an entity; issued documents keep the details they were issued with."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    address_lines: list[str] | None = Field(default=None, max_length=6)
    email: EmailStr | None = None
    upcoming_bill_notice_days: int | None = Field(default=None, ge=1, le=60)
    accent_color: str | None = Field(default=None, pattern=ACCENT_COLOR, description="#RRGGBB")


class LogoUpload(Model):
    content_type: Literal["image/png", "image/jpeg", "image/svg+xml"]
    content_base64: str = Field(min_length=1, description="the image, base64 (at most 512 KB decoded)")


class CustomerUpdate(Model):
    """What may change on a customer; currency, entity and country stay (they decide past invoices' tax)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None
    cc_emails: list[EmailStr] | None = Field(default=None, max_length=10)
    bcc_emails: list[EmailStr] | None = Field(default=None, max_length=10)
    address_lines: list[str] | None = Field(default=None, max_length=6)
    language: str | None = None
    net_terms_days: int | None = Field(default=None, ge=0, le=365)
    invoice_grouping: Literal["customer", "subscription"] | None = None
    document_format: Literal["pdf", "facturx"] | None = None


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
