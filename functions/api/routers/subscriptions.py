from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.routers.common import Limit, Page, StartingAfter, actor, ports
from shared.billing.models import Subscription
from shared.services import subscriptions, usage
from shared.services.schemas import CouponRedeem, PlanMigration, SubscriptionCreate, TerminateRequest

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


@router.post("/v1/subscriptions/<subscription_id>/coupons", tags=["subscriptions"])
def redeem_coupon(subscription_id: str, body: CouponRedeem) -> SubscriptionView:
    return view(subscriptions.redeem_coupon(ports(router), actor(router), subscription_id, body))


@router.post("/v1/subscriptions/<subscription_id>/migrate", tags=["subscriptions"])
def migrate(subscription_id: str, body: PlanMigration) -> SubscriptionView:
    """Move a grandfathered subscription to another version of its plan from a period start."""
    return view(subscriptions.migrate_plan_version(ports(router), actor(router), subscription_id, body))


@router.get("/v1/subscriptions/<subscription_id>/allowances", tags=["usage"])
def allowances(subscription_id: str, on: Annotated[str | None, Query(description="a date; default today")] = None
               ) -> dict:
    """Per usage charge of the current period: included, used and remaining (seed 004 V5-2760)."""
    from datetime import date

    from shared.billing.errors import ValidationError
    try:
        day = date.fromisoformat(on) if on else None
    except ValueError:
        raise ValidationError(f"'{on}' is not a date (YYYY-MM-DD)", param="on") from None
    return usage.allowances(ports(router), subscription_id, day)
