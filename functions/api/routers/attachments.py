"""Files that go with an invoice or credit note."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.routers.common import actor, ports
from shared.billing.models import Attachment
from shared.services import attachments
from shared.services.requests.invoices import AttachmentCreate

router = APIGatewayRouter()


@router.post("/v1/invoices/<invoice_id>/attachments", tags=["invoices"], responses={201: {"description": "added"}})
def add_attachment(invoice_id: str, body: AttachmentCreate) -> Response[Attachment]:
    """Attach a file (PDF, image, CSV, text, xlsx; at most 5 MB, 10 per document); it goes with the e-mail."""
    added = attachments.add_attachment(ports(router), actor(router), invoice_id, body)
    return Response(status_code=201, body=added, content_type="application/json")


@router.get("/v1/invoices/<invoice_id>/attachments/<attachment_id>", tags=["invoices"],
            responses={200: {"description": "the file", "content": {"application/octet-stream": {}}}})
def get_attachment(invoice_id: str, attachment_id: str):
    actor(router).require("read")
    attachment, content = attachments.read_attachment(ports(router), invoice_id, attachment_id)
    return Response(status_code=200, body=content, content_type=attachment.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{attachment.filename}"'})
