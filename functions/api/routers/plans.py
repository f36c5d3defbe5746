from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.routers.common import Limit, Page, StartingAfter, actor, ports
from shared.billing.models import Coupon, Metric, Plan
from shared.services import catalog
from shared.services.requests.catalog import CouponCreate, MetricCreate, PlanBody, PlanCreate

router = APIGatewayRouter()


@router.post("/v1/plans", tags=["plans"], responses={201: {"description": "created"}})
def create_plan(body: PlanCreate) -> Response[Plan]:
    plan = catalog.create_plan(ports(router), actor(router), body)
    return Response(status_code=201, body=plan, content_type="application/json")


@router.get("/v1/plans", tags=["plans"])
def list_plans(limit: Limit = 20, starting_after: StartingAfter = None) -> Page[Plan]:
    data, more = ports(router).repo.list_plans(limit, starting_after)
    return Page(data=data, has_more=more)


@router.get("/v1/plans/<code>", tags=["plans"])
def get_plan(code: str) -> Plan:
    return catalog.get_plan(ports(router), code)


@router.post("/v1/plans/<code>/versions", tags=["plans"], responses={201: {"description": "created"}})
def add_plan_version(code: str, body: PlanBody) -> Response[Plan]:
    """A price change: the new version becomes current; existing subscriptions keep theirs."""
    plan = catalog.add_plan_version(ports(router), actor(router), code, body)
    return Response(status_code=201, body=plan, content_type="application/json")


@router.get("/v1/plans/<code>/versions", tags=["plans"])
def list_plan_versions(code: str) -> Page[Plan]:
    """Every version, legacy ones included (`status`)."""
    return Page(data=catalog.plan_versions(ports(router), code), has_more=False)


@router.post("/v1/metrics", tags=["plans"], responses={201: {"description": "created"}})
def create_metric(body: MetricCreate) -> Response[Metric]:
    metric = catalog.create_metric(ports(router), actor(router), body)
    return Response(status_code=201, body=metric, content_type="application/json")


@router.get("/v1/metrics", tags=["plans"])
def list_metrics(limit: Limit = 20, starting_after: StartingAfter = None) -> Page[Metric]:
    data, more = ports(router).repo.list_metrics(limit, starting_after)
    return Page(data=data, has_more=more)


@router.get("/v1/metrics/<code>", tags=["plans"])
def get_metric(code: str) -> Metric:
    return catalog.get_metric(ports(router), code)


@router.post("/v1/coupons", tags=["plans"], responses={201: {"description": "created"}})
def create_coupon(body: CouponCreate) -> Response[Coupon]:
    coupon = catalog.create_coupon(ports(router), actor(router), body)
    return Response(status_code=201, body=coupon, content_type="application/json")


@router.get("/v1/coupons", tags=["plans"])
def list_coupons(limit: Limit = 20, starting_after: StartingAfter = None) -> Page[Coupon]:
    data, more = ports(router).repo.list_coupons(limit, starting_after)
    return Page(data=data, has_more=more)


@router.get("/v1/coupons/<code>", tags=["plans"])
def get_coupon(code: str) -> Coupon:
    return catalog.get_coupon(ports(router), code)
