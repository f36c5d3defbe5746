"""Configuration from the environment, validated once per cold start."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    billing_table: str = Field(alias="BILLING_TABLE")
    counters_table: str = Field(alias="COUNTERS_TABLE")
    idempotency_table: str | None = Field(default=None, alias="IDEMPOTENCY_TABLE")
    documents_bucket: str | None = Field(default=None, alias="DOCUMENTS_BUCKET")
    exports_bucket: str | None = Field(default=None, alias="EXPORTS_BUCKET")
    usage_bucket: str | None = Field(default=None, alias="USAGE_BUCKET")  # bulk usage files (usage_import)
    event_bus_name: str | None = Field(default=None, alias="EVENT_BUS_NAME")
    bill_run_state_machine_arn: str | None = Field(default=None, alias="BILL_RUN_STATE_MACHINE_ARN")
    preview_function_name: str | None = Field(default=None, alias="PREVIEW_FUNCTION_NAME")
    mail_from: str = Field(default="billing@example.com", alias="MAIL_FROM")
    clock_file: str | None = Field(default=None, alias="BILLING_CLOCK_FILE")
    local: bool = Field(default=False, alias="BILLING_LOCAL")


@lru_cache(maxsize=1)
def settings() -> Settings:
    import os

    return Settings.model_validate({k: v for k, v in os.environ.items() if v != ""})
