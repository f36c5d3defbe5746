from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.routers.common import Limit, Page, StartingAfter, actor, ports
from shared.billing.models import BillingEntity
from shared.services import catalog
from shared.services.requests.catalog import BillingEntityCreate, BillingEntityUpdate, LogoUpload

router = APIGatewayRouter()


@router.post("/v1/billing-entities", tags=["billing entities"], responses={201: {"description": "created"}})
def create_entity(body: BillingEntityCreate) -> Response[BillingEntity]:
    entity = catalog.create_entity(ports(router), actor(router), body)
    return Response(status_code=201, body=entity, content_type="application/json")


@router.get("/v1/billing-entities", tags=["billing entities"])
def list_entities(limit: Limit = 20, starting_after: StartingAfter = None) -> Page[BillingEntity]:
    catalog.default_entity(ports(router))
    data, more = ports(router).repo.list_entities(limit, starting_after)
    return Page(data=data, has_more=more)


@router.get("/v1/billing-entities/<entity_id>", tags=["billing entities"])
def get_entity(entity_id: str) -> BillingEntity:
    return catalog.get_entity(ports(router), entity_id)


@router.patch("/v1/billing-entities/<entity_id>", tags=["billing entities"])
def update_entity(entity_id: str, body: BillingEntityUpdate) -> BillingEntity:
    """Name, address, e-mail, notice days, accent colour: for documents issued from now on."""
    return catalog.update_entity(ports(router), actor(router), entity_id, body)


@router.put("/v1/billing-entities/<entity_id>/logo", tags=["billing entities"])
def set_entity_logo(entity_id: str, body: LogoUpload) -> BillingEntity:
    """PNG, JPEG or SVG up to 512 KB, printed on documents issued from now on."""
    return catalog.set_entity_logo(ports(router), actor(router), entity_id, body)
