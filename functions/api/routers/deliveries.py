"""An invoice's email delivery log, and resending it."""

import os

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.routers.common import Page, actor, ports
from shared.services import delivery
from shared.services.delivery import DeliveryLogEntry, ResendRequest

router = APIGatewayRouter()


@router.get("/v1/invoices/<invoice_id>/deliveries", tags=["invoices"])
def list_invoice_deliveries(invoice_id: str) -> Page[DeliveryLogEntry]:
    """Oldest first: `sent` when SES accepted a message, then what SES reported for it
    (`delivered`, `bounced`, `complained`, `rejected`)."""
    return Page(data=delivery.list_deliveries(ports(router), invoice_id), has_more=False)


@router.post("/v1/invoices/<invoice_id>/resend", tags=["invoices"], responses={201: {"description": "sent"}})
def resend_invoice(invoice_id: str, body: ResendRequest | None = None) -> Response[DeliveryLogEntry]:
    """Email the invoice PDF again, to `to` only or to the customer's To/CC/BCC; logged as `sent`."""
    compose = delivery.email_composer(os.environ.get("PAY_URL_TEMPLATE"))
    entry = delivery.resend(ports(router), actor(router), invoice_id, compose, body.to if body else None)
    return Response(status_code=201, content_type="application/json", body=entry)
