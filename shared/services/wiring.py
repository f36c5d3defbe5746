"""Build the ports from settings: the one place that picks the concrete adapters."""

from __future__ import annotations

from functools import lru_cache

from shared.adapters.aws import EventBridgePublisher, LambdaPreviews, S3Documents, SesMailer, StepFunctionsWorkflows
from shared.adapters.clock import clock_from
from shared.adapters.dynamodb import DynamoStore
from shared.adapters.repository import Repository
from shared.adapters.settings import Settings, settings
from shared.services.context import Ports
from shared.services.taxes import TaxSetup


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
        previews=LambdaPreviews(config.preview_function_name),
        settings=config,
        tax=tax_setup(),
    )


def tax_setup() -> TaxSetup:
    """Tax engines from their credentials in the environment, ECB rates from S3 or the packaged snapshot."""
    import os

    from shared.adapters.fx_rates import EcbRates, FirstAvailable, PackagedSnapshot, S3ObjectSource
    from shared.adapters.tax_providers import AVATAX_SANDBOX_URL, STRIPE_API_URL, AvalaraTaxProvider, StripeTaxProvider
    from shared.billing.errors import NonRetryableError

    def avalara():
        if not os.environ.get("AVALARA_ACCOUNT_ID"):
            raise NonRetryableError("Avalara is not configured: set AVALARA_ACCOUNT_ID and AVALARA_LICENSE_KEY",
                                    code="tax_provider_unavailable")
        return AvalaraTaxProvider(
            account_id=os.environ["AVALARA_ACCOUNT_ID"], license_key=os.environ.get("AVALARA_LICENSE_KEY", ""),
            company_code=os.environ.get("AVALARA_COMPANY_CODE", "DEFAULT"),
            base_url=os.environ.get("AVALARA_BASE_URL", AVATAX_SANDBOX_URL))

    def stripe_tax():
        if not os.environ.get("STRIPE_TAX_API_KEY"):
            raise NonRetryableError("Stripe Tax is not configured: set STRIPE_TAX_API_KEY",
                                    code="tax_provider_unavailable")
        return StripeTaxProvider(api_key=os.environ["STRIPE_TAX_API_KEY"],
                                 base_url=os.environ.get("STRIPE_API_BASE_URL", STRIPE_API_URL))

    engines = {"avalara": avalara, "stripe_tax": stripe_tax}  # built per invoice: credentials read then
    bucket = os.environ.get("EXPORTS_BUCKET")  # the daily ECB fetch keeps its copy there (fx_rates_fetch)
    source = FirstAvailable(S3ObjectSource(bucket), PackagedSnapshot()) if bucket else PackagedSnapshot()
    return TaxSetup(engines=engines, rates=EcbRates(source, ttl_seconds=3600))


def idempotency_table(config: Settings | None = None) -> str:
    """The table Powertools keeps the API's idempotency records in (`IDEMPOTENCY_TABLE`)."""
    return (config or settings()).idempotency_table


def finance_recipients() -> list[str]:
    """Who hears of Finance's contract events (CRE and Finance addresses from the environment)."""
    from shared.adapters.revenue_repository import finance_settings

    return finance_settings().recipients


@lru_cache(maxsize=1)
def sqs_retries():
    """Backoff for SQS-triggered consumers: keeps a failed message invisible for a while."""
    from shared.adapters.aws import SqsRetries

    return SqsRetries()


@lru_cache(maxsize=1)
def default_ports() -> Ports:
    """The ports of this Lambda container, built once at the first invocation."""
    return build_ports()


def usage_files(config: Settings | None = None) -> S3Documents:
    """The bulk usage bucket (`USAGE_BUCKET`): dropped files are read from it, reports written to it."""
    config = config or settings()
    return S3Documents(config.usage_bucket)


@lru_cache(maxsize=1)
def default_usage_files() -> S3Documents:
    """`usage_files()` of this Lambda container, built once."""
    return usage_files()
