from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.routers.common import Page, actor, ports
from shared.services import webhooks
from shared.services.webhooks import WebhookEndpoint, WebhookEndpointCreate

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
