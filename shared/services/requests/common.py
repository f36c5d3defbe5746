"""Shared field rules of the request models: codes, ISO country/region/currency, error field paths."""

from __future__ import annotations

import re

import pycountry
from pydantic import ValidationInfo, field_validator

from shared.billing.models import Model
from shared.billing.money import check_currency

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
