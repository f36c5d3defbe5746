from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel

from functions.api.routers.common import Limit, Page, StartingAfter, actor, ports
from shared.services import webhooks
from shared.services.webhooks import WebhookDelivery, WebhookEndpoint, WebhookEndpointCreate, WebhookReplay

router = APIGatewayRouter()


class WebhookEndpointCreated(WebhookEndpoint):
    secret: str  # shown once: verify `Billing-Signature` with it


@router.post("/v1/webhook-endpoints", tags=["webhooks"], responses={201: {"description": "created"}})
def create_endpoint(body: WebhookEndpointCreate) -> Response[WebhookEndpointCreated]:
    endpoint, secret = webhooks.create_endpoint(ports(router), actor(router), body)
    return Response(status_code=201, content_type="application/json",
                    body=WebhookEndpointCreated(**endpoint.model_dump(), secret=secret))


@router.get("/v1/webhook-endpoints", tags=["webhooks"])
def list_endpoints() -> Page[WebhookEndpoint]:
    actor(router).require("keys:write")
    data = [WebhookEndpoint.model_validate(e) for e, _ in ports(router).repo.webhook_endpoints()]
    return Page(data=data, has_more=False)


class WebhookReplayResult(BaseModel):
    event_id: str
    deliveries: list[WebhookDelivery]


@router.get("/v1/webhook-endpoints/<endpoint_id>/deliveries", tags=["webhooks"])
def list_endpoint_deliveries(endpoint_id: str, limit: Limit = 20,
                             starting_after: StartingAfter = None) -> Page[WebhookDelivery]:
    """Every attempt to deliver an event to this endpoint, newest first."""
    data, more = webhooks.list_deliveries(ports(router), actor(router), endpoint_id, limit, starting_after)
    return Page(data=data, has_more=more)


@router.post("/v1/webhook-events/<event_id>/replay", tags=["webhooks"])
def replay_event(event_id: str, body: WebhookReplay | None = None) -> WebhookReplayResult:
    """Send a dispatched event again now, signed with a fresh timestamp (not retried)."""
    deliveries = webhooks.replay(ports(router), actor(router), event_id, body.endpoint_id if body else None)
    return WebhookReplayResult(event_id=event_id, deliveries=deliveries)
