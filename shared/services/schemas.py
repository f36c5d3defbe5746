"""Request bodies: one set of pydantic models for the API, the CLI and the services.

Field-level rules live here; rules that need stored state (does the plan exist, does the
currency match) live in the services. Either way the error names the field.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Literal
from zoneinfo import available_timezones

import pycountry
from babel import Locale, UnknownLocaleError
from pydantic import EmailStr, Field, ValidationInfo, field_validator

from shared.billing.models import (
    Amount,
    BillingPeriod,
    ChargeModel,
    ChargeType,
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


class BillingEntityCreate(_Validated):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    country: str
    region: str | None = None
    tax_registrations: dict[str, str] = Field(default_factory=dict)
    currency: str
    invoice_prefix: str = Field(pattern=r"^[A-Z0-9][A-Z0-9\-]{0,15}$")
    address_lines: list[str] = Field(default_factory=list, max_length=6)
    email: EmailStr | None = None


class CustomerCreate(_Validated):
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    cc_emails: list[EmailStr] = Field(default_factory=list, max_length=10)
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


class ChargeInput(Model):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    type: ChargeType = "recurring"
    model: ChargeModel = "flat_fee"
    billing_period: BillingPeriod = "month"
    timing: Timing = "in_advance"
    price: Amount = Decimal("0")
    proration: Literal["daily", "none"] = "daily"
    gl_code: str | None = Field(default=None, max_length=32)
    tax_code: str | None = Field(default=None, max_length=32)
    description: str | None = None

    @field_validator("price")
    @classmethod
    def _not_negative(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise ValueError("a catalog price cannot be negative; use a credit note")
        return value

    @field_validator("type")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value == "usage":
            raise ValueError("usage charges need billable metrics, which this platform does not rate yet")
        return value


class PlanCreate(_Validated):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    currency: str
    description: str | None = None
    charges: list[ChargeInput] = Field(min_length=1, max_length=50)
    refund_policy: Literal["none", "prorated"] = "none"

    @field_validator("charges")
    @classmethod
    def _unique_and_priced_in_currency(cls, charges: list[ChargeInput], info: ValidationInfo):
        codes = [c.code for c in charges]
        if len(set(codes)) != len(codes):
            raise ValueError("charge codes must be unique within a plan")
        currency = info.data.get("currency")
        for charge in charges:
            if currency and round_money(charge.price, currency) != charge.price:
                raise ValueError(
                    f"charge '{charge.code}': price {charge.price} has more decimals than {currency} allows"
                )
        return charges


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
    effective: Literal["immediately", "end_of_period", "on_date"] = "end_of_period"
    date: dt.date | None = Field(default=None, description="with on_date: the first day without service")
    refund: Literal["none", "prorated"] | None = None
    reason: str | None = Field(default=None, max_length=500)

    @field_validator("date", mode="after")
    @classmethod
    def _date_with_on_date(cls, value, info: ValidationInfo):
        if value is not None and info.data.get("effective") != "on_date":
            raise ValueError("date is only allowed when effective is 'on_date'")
        return value


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
