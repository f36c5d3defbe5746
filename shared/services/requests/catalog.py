"""Request bodies of the catalog: billing entities, customers, plans, metrics, coupons and their updates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal
from zoneinfo import available_timezones

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
    Timing,
)
from shared.billing.money import round_money
from shared.services.requests.common import CODE, _Validated


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
