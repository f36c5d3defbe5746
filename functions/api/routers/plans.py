from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.routers.common import Limit, Page, StartingAfter, actor, ports
from shared.billing.models import Plan
from shared.services import catalog
from shared.services.schemas import PlanCreate

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
