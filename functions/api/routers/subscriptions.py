from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.routers.common import Limit, Page, StartingAfter, actor, ports
from shared.billing.models import Subscription
from shared.services import subscriptions
from shared.services.schemas import SubscriptionCreate, TerminateRequest

router = APIGatewayRouter()


class SubscriptionView(Subscription):
    status: str


def view(sub: Subscription) -> SubscriptionView:
    today = ports(router).clock.now().date()
    return SubscriptionView(**sub.model_dump(), status=sub.status_on(today))


@router.post("/v1/subscriptions", tags=["subscriptions"], responses={201: {"description": "created"}})
def create_subscription(body: SubscriptionCreate) -> Response[SubscriptionView]:
    sub = subscriptions.create_subscription(ports(router), actor(router), body)
    return Response(status_code=201, body=view(sub), content_type="application/json")


@router.get("/v1/subscriptions", tags=["subscriptions"])
def list_subscriptions(
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    customer_id: Annotated[str | None, Query()] = None,
) -> Page[SubscriptionView]:
    data, more = subscriptions.list_subscriptions(ports(router), limit, starting_after, customer_id)
    return Page(data=[view(s) for s in data], has_more=more)


@router.get("/v1/subscriptions/<subscription_id>", tags=["subscriptions"])
def get_subscription(subscription_id: str) -> SubscriptionView:
    """By id (`sub_...`) or by contract ID (`external_id`)."""
    return view(subscriptions.get_subscription(ports(router), subscription_id))


@router.post("/v1/subscriptions/<subscription_id>/terminate", tags=["subscriptions"])
def terminate(subscription_id: str, body: TerminateRequest) -> SubscriptionView:
    return view(subscriptions.terminate_subscription(ports(router), actor(router), subscription_id, body))
