from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.routers.common import Limit, Page, StartingAfter, actor, ports
from shared.billing.models import Invoice, Subscription
from shared.services import contract_actions, preview, subscriptions, usage
from shared.services.requests.contracts import (
    BillAhead,
    BillingDayChange,
    ContractChargeAdd,
    ContractChargeRemove,
    CouponRedeem,
    OwnershipTransfer,
    PauseRequest,
    PlanChangeRequest,
    PlanMigration,
    RegretRequest,
    ResumeRequest,
    SubscriptionCreate,
    TerminateRequest,
    TermsChange,
    TrialExtension,
)

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
    status: Annotated[str | None, Query(description="comma-separated: pending, trialing, active, paused, "
                                                      "pending_termination, terminated")] = None,
    include_churned: Annotated[bool, Query(description="also list terminated subscriptions (V5-3287)")] = False,
) -> Page[SubscriptionView]:
    """Churned (terminated) subscriptions are hidden unless asked for, by `include_churned` or `status`."""
    data, more = subscriptions.list_subscriptions(ports(router), limit, starting_after, customer_id,
                                                  status.split(",") if status else None, include_churned)
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


@router.post("/v1/subscriptions/<subscription_id>/pause", tags=["subscriptions"])
def pause(subscription_id: str, body: PauseRequest) -> SubscriptionView:
    """Pause invoicing from `start` (default today) to `end` under the plan's pause rules; days already
    billed in advance are credited on the next invoice."""
    return view(contract_actions.pause(ports(router), actor(router), subscription_id, body))


@router.post("/v1/subscriptions/<subscription_id>/resume", tags=["subscriptions"])
def resume(subscription_id: str, body: ResumeRequest) -> SubscriptionView:
    return view(contract_actions.resume(ports(router), actor(router), subscription_id, body))


@router.post("/v1/subscriptions/<subscription_id>/trial", tags=["subscriptions"])
def extend_trial(subscription_id: str, body: TrialExtension) -> SubscriptionView:
    """Extend a running trial (V5-3854)."""
    return view(contract_actions.extend_trial(ports(router), actor(router), subscription_id, body))


@router.post("/v1/subscriptions/<subscription_id>/regret", tags=["subscriptions"])
def regret(subscription_id: str, body: RegretRequest) -> SubscriptionView:
    """Within the plan's regret window: the subscription is undone and everything billed credited (V5-2713)."""
    return view(contract_actions.regret(ports(router), actor(router), subscription_id, body))


@router.post("/v1/subscriptions/<subscription_id>/change", tags=["subscriptions"])
def change_plan(subscription_id: str, body: PlanChangeRequest) -> SubscriptionView:
    """Upgrade, downgrade or change the quantity; returns the subscription that continues the contract."""
    return view(contract_actions.change_plan(ports(router), actor(router), subscription_id, body))


@router.post("/v1/subscriptions/<subscription_id>/transfer", tags=["subscriptions"])
def transfer(subscription_id: str, body: OwnershipTransfer) -> SubscriptionView:
    """Change of ownership (V5-371); returns the new owner's subscription."""
    return view(contract_actions.transfer(ports(router), actor(router), subscription_id, body))


@router.post("/v1/subscriptions/<subscription_id>/billing-day", tags=["subscriptions"])
def change_billing_day(subscription_id: str, body: BillingDayChange) -> SubscriptionView:
    """From the end of the current period (V5-3687); returns the subscription that continues the contract."""
    return view(contract_actions.change_billing_day(ports(router), actor(router), subscription_id, body))


@router.post("/v1/subscriptions/<subscription_id>/terms", tags=["subscriptions"])
def change_terms(subscription_id: str, body: TermsChange) -> SubscriptionView:
    """Auto-renew opt in/out, renew by months, extend the term (V5-361)."""
    return view(contract_actions.change_terms(ports(router), actor(router), subscription_id, body))


@router.post("/v1/subscriptions/<subscription_id>/bill-ahead", tags=["subscriptions"])
def bill_ahead(subscription_id: str, body: BillAhead) -> Invoice:
    """Invoice the next `cycles` billing cycles now (V5-3110)."""
    return contract_actions.bill_ahead(ports(router), actor(router), subscription_id, body)


@router.post("/v1/subscriptions/<subscription_id>/charges", tags=["subscriptions"])
def add_charge(subscription_id: str, body: ContractChargeAdd) -> SubscriptionView:
    """A charge one event adds to this contract (V5-2811)."""
    return view(contract_actions.add_charge(ports(router), actor(router), subscription_id, body))


@router.post("/v1/subscriptions/<subscription_id>/charges/<code>/remove", tags=["subscriptions"])
def remove_charge(subscription_id: str, code: str, body: ContractChargeRemove) -> SubscriptionView:
    """The event that removes a contract charge."""
    return view(contract_actions.remove_charge(ports(router), actor(router), subscription_id, code, body))


@router.get("/v1/subscriptions/<subscription_id>/actions", tags=["subscriptions"])
def actions(subscription_id: str) -> list[dict]:
    """Who did what and when, refused actions with their reason (V5-3161), across the contract's chain."""
    actor(router).require("read")
    return contract_actions.history(ports(router), subscription_id)


@router.get("/v1/subscriptions/<subscription_id>/upcoming", tags=["subscriptions"])
def upcoming(subscription_id: str,
             periods: Annotated[int, Query(ge=1, le=24, description="how many periods ahead")] = 3) -> list[Invoice]:
    """The invoices of the next `periods` billing periods, as the bill run would issue them today (nothing stored)."""
    actor(router).require("read")
    return preview.upcoming(ports(router), subscription_id, periods)
