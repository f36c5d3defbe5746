"""Build the ports from settings: the one place that picks the concrete adapters."""

from __future__ import annotations

from functools import lru_cache

from shared.adapters.aws import EventBridgePublisher, S3Documents, SesMailer, StepFunctionsWorkflows
from shared.adapters.clock import clock_from
from shared.adapters.dynamodb import DynamoStore
from shared.adapters.repository import Repository
from shared.adapters.settings import Settings, settings
from shared.services.context import Ports


def build_ports(config: Settings | None = None) -> Ports:
    """Fresh ports for `config` (default: the environment)."""
    config = config or settings()
    return Ports(
        repo=Repository(DynamoStore(config.billing_table, config.counters_table)),
        clock=clock_from(config.clock_file),
        publisher=EventBridgePublisher(config.event_bus_name),
        workflows=StepFunctionsWorkflows(config.bill_run_state_machine_arn),
        documents=S3Documents(config.documents_bucket),
        mailer=SesMailer(config.mail_from),
        settings=config,
    )


@lru_cache(maxsize=1)
def default_ports() -> Ports:
    """The ports of this Lambda container, built once at the first invocation."""
    return build_ports()
