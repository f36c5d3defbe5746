"""The REST API: authenticate, make POSTs idempotent, route to the service layer."""

from __future__ import annotations

import json
from functools import lru_cache

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from functions.api.routers import (
    api_keys,
    attachments,
    billing,
    customers,
    deliveries,
    documents,
    entities,
    plans,
    revenue,
    subscriptions,
    usage,
    webhooks,
)
from shared.billing.errors import BillingError, ConflictError
from shared.services.auth import authenticate
from shared.services.requests.common import first_error_field
from shared.services.wiring import default_ports, idempotency_table

logger, tracer, metrics = Logger(), Tracer(), Metrics()
app = APIGatewayRestResolver(enable_validation=True)
for module in (entities, customers, plans, subscriptions, usage, documents, billing, deliveries, api_keys,
               webhooks, revenue, attachments):
    app.include_router(module.router)


def error_body(type_: str, code: str, message: str, param: str | None) -> str:
    return json.dumps({"error": {"type": type_, "code": code, "message": message, "param": param}})


def error_response(status: int, type_: str, code: str, message: str, param: str | None = None) -> Response:
    return Response(status_code=status, content_type="application/json", body=error_body(type_, code, message, param))


@app.exception_handler(BillingError)
def billing_error(error: BillingError) -> Response:
    return error_response(error.status, error.type, error.code, error.message, error.param)


@app.exception_handler(RequestValidationError)
def validation_error(error: RequestValidationError) -> Response:
    first = error.errors()[0]
    where = first.get("loc", ())
    param = first_error_field(tuple(where))
    status = 400 if first.get("type") == "json_invalid" else 422
    message = first.get("msg", "invalid request").removeprefix("Value error, ")
    return error_response(status, "invalid_request_error", "validation_failed",
                          f"{param}: {message}" if param else message, param or None)


@app.not_found
def not_found(_error) -> Response:
    return error_response(404, "invalid_request_error", "route_not_found",
                          f"no route {app.current_event.http_method} {app.current_event.path}")


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response:
    logger.exception("unhandled error")
    return error_response(500, "api_error", "internal_error", "an internal error occurred; it was logged")


class _NotStored(Exception):
    """A failed response: returned to the caller but not remembered for the key."""

    def __init__(self, response: Response):
        self.response = response


def idempotent_posts(app: APIGatewayRestResolver, next_middleware):
    """`Idempotency-Key`: a repeat with the same body returns the first result; another body is a 409."""
    event = app.current_event
    key = next((v for k, v in (event.headers or {}).items() if k.lower() == "idempotency-key"), None)
    if event.http_method != "POST" or not key:
        return next_middleware(app)
    try:
        body = json.loads(event.body) if event.body else None
    except json.JSONDecodeError:
        body = event.body

    @idempotent_function(data_keyword_argument="request", config=_idempotency_config(),
                         persistence_store=_persistence())
    def once(request: dict) -> dict:
        response = next_middleware(app)
        if response.status_code >= 400:
            raise _NotStored(response)
        payload = response.body
        return {"status_code": response.status_code, "content_type": response.headers.get("Content-Type"),
                "body": payload if isinstance(payload, str) else json.dumps(payload)}

    try:
        stored = once(request={"key": f"{app.context['actor'].name}|{event.path}|{key}", "body": body})
    except _NotStored as failure:
        return failure.response
    except IdempotencyValidationError:
        raise ConflictError("this Idempotency-Key was used with a different request body",
                            param="Idempotency-Key", code="idempotency_key_reused") from None
    except IdempotencyAlreadyInProgressError:
        raise ConflictError("a request with this Idempotency-Key is still in progress",
                            param="Idempotency-Key", code="idempotency_in_progress") from None
    return Response(status_code=stored["status_code"], content_type=stored["content_type"],
                    body=stored["body"])


@lru_cache(maxsize=1)
def _idempotency_config() -> IdempotencyConfig:
    return IdempotencyConfig(event_key_jmespath="key", payload_validation_jmespath="body",
                             expires_after_seconds=24 * 3600)


@lru_cache(maxsize=1)
def _persistence() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(table_name=idempotency_table())


app.use(middlewares=[idempotent_posts])


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context) -> dict:
    """Refuse what is not ours to parse before any route validates the body."""
    _idempotency_config().register_lambda_context(context)
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "")
    if event.get("body") and not content_type.lower().startswith("application/json"):
        return gateway_error(415, "invalid_request_error", "unsupported_media_type",
                             f"send the body as JSON with 'Content-Type: application/json' (got '{content_type}')",
                             "Content-Type")
    try:
        actor = authenticate(default_ports(), headers.get("authorization"),
                             (event.get("requestContext") or {}).get("requestId"))
    except BillingError as error:
        return gateway_error(error.status, error.type, error.code, error.message, error.param)
    logger.append_keys(actor=actor.name)
    app.append_context(ports=default_ports(), actor=actor)
    return app.resolve(event, context)


def gateway_error(status: int, type_: str, code: str, message: str, param: str | None) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": error_body(type_, code, message, param), "isBase64Encoded": False}
