"""Request bodies of usage: one event, or a batch of them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from shared.billing.models import Model
from shared.services.requests.common import CODE


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
