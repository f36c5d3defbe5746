"""Request body of a bill run."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from shared.billing.models import Model


class BillRunCreate(Model):
    as_of: dt.date | None = Field(default=None, description="default: today on the platform clock")
