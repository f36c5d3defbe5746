"""Request body of an API key."""

from __future__ import annotations

from pydantic import Field

from shared.billing.models import Model, Role
from shared.services.requests.common import CODE


class ApiKeyCreate(Model):
    name: str = Field(pattern=CODE)
    role: Role
