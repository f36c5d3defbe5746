"""Invoked by the API (`GET /v1/invoices/{id}/preview`): a draft rendered as its customer would see
it, watermarked, or as a pro-forma. Nothing is stored. A refusal (404, 409, 422) is returned, not
raised, so the API answers it with its status, code and field."""

import base64

from aws_lambda_powertools import Logger, Tracer
from pydantic import BaseModel, ConfigDict

from shared.billing.errors import BillingError
from shared.documents.pdf import render_invoice_pdf
from shared.services import invoices
from shared.services.wiring import default_ports

logger, tracer = Logger(), Tracer()


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invoice_id: str
    mode: str = "preview"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict, context, ports=None) -> dict:
    request = PreviewRequest.model_validate(event)
    logger.append_keys(invoice_id=request.invoice_id, mode=request.mode)
    try:
        pdf = invoices.preview_pdf(ports or default_ports(), request.invoice_id, request.mode, render_invoice_pdf)
    except BillingError as error:
        return {"error": {**error.to_dict(), "status": error.status}}
    return {"pdf_base64": base64.b64encode(pdf).decode()}
