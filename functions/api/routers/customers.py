from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.routers.common import Limit, Page, StartingAfter, actor, ports
from shared.billing.models import Customer
from shared.services import catalog
from shared.services.requests.catalog import CustomerCreate, CustomerUpdate

router = APIGatewayRouter()


@router.post("/v1/customers", tags=["customers"], responses={201: {"description": "created"}})
def create_customer(body: CustomerCreate) -> Response[Customer]:
    customer = catalog.create_customer(ports(router), actor(router), body)
    return Response(status_code=201, body=customer, content_type="application/json")


@router.get("/v1/customers", tags=["customers"])
def list_customers(limit: Limit = 20, starting_after: StartingAfter = None) -> Page[Customer]:
    data, more = ports(router).repo.list_customers(limit, starting_after)
    return Page(data=data, has_more=more)


@router.get("/v1/customers/<customer_id>", tags=["customers"])
def get_customer(customer_id: str) -> Customer:
    """By id (`cus_...`) or by the caller's `external_id`."""
    return catalog.get_customer(ports(router), customer_id)


@router.patch("/v1/customers/<customer_id>", tags=["customers"])
def update_customer(customer_id: str, body: CustomerUpdate) -> Customer:
    """Contacts, language, payment terms, invoice grouping, document format: for invoices from now on."""
    return catalog.update_customer(ports(router), actor(router), customer_id, body)
