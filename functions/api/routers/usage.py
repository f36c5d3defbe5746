from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel

from functions.api.routers.common import Limit, Page, StartingAfter, actor, ports
from shared.billing.models import Invoice, UsageEvent
from shared.services import preview, usage
from shared.services.requests.previews import InvoicePreviewRequest
from shared.services.requests.usage import UsageBatch

router = APIGatewayRouter()


class RejectedEvent(BaseModel):
    index: int
    param: str
    message: str


class DifferingDuplicate(BaseModel):
    index: int
    transaction_id: str
    message: str


class IngestResponse(BaseModel):
    accepted: int
    duplicates: int
    late: int
    rejected: list[RejectedEvent]
    differing_duplicates: list[DifferingDuplicate] = []


@router.post("/v1/usage-events", tags=["usage"])
def ingest(body: UsageBatch) -> IngestResponse:
    """Up to 1,000 events; each stored once per subscription (or customer) and `transaction_id`: the first
    event sent wins, later ones count as `duplicates`, and those with other content are also listed in
    `differing_duplicates`. Rejected events name their index and field."""
    return IngestResponse(**usage.ingest(ports(router), actor(router), body.events).as_dict())


@router.get("/v1/usage-events", tags=["usage"])
def list_events(
    subscription_id: Annotated[str, Query()],
    metric_code: Annotated[str, Query()],
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Page[UsageEvent]:
    data, more = usage.list_events(ports(router), subscription_id, metric_code, limit, starting_after)
    return Page(data=data, has_more=more)


@router.post("/v1/invoices/preview", tags=["invoices"])
def preview_invoice(body: InvoicePreviewRequest) -> Invoice:
    """The invoice a bill run would issue, or a quote for an inline plan; nothing is stored."""
    return preview.preview_invoice(ports(router), actor(router), body)


@router.get("/v1/invoices/<invoice_id>/usage-check", tags=["invoices"])
def usage_check(invoice_id: str) -> dict:
    """DS-009: every usage line's quantity equals the aggregate of its usage records."""
    return usage.check_invoice_usage(ports(router), invoice_id)
