from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel

from functions.api.routers.common import actor, ports
from shared.services import auth
from shared.services.requests.access import ApiKeyCreate

router = APIGatewayRouter()


class ApiKeyCreated(BaseModel):
    name: str
    role: str
    key: str  # shown once; only its hash is stored


@router.post("/v1/api-keys", tags=["access"], responses={201: {"description": "created"}})
def create_api_key(body: ApiKeyCreate) -> Response[ApiKeyCreated]:
    record, key = auth.create_api_key(ports(router), actor(router), body)
    return Response(status_code=201, body=ApiKeyCreated(name=record["name"], role=record["role"], key=key),
                    content_type="application/json")
