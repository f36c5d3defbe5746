"""One-off invoices, status changes, payments, credit notes, e-invoices and the hash chain."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel

from functions.api.routers.common import actor, ports
from shared.billing.invoicing import lines_csv
from shared.billing.models import Invoice
from shared.documents.ubl import invoice_to_ubl
from shared.services import invoice_lifecycle as lifecycle
from shared.services import regrouping
from shared.services.requests.invoices import (
    CreditNoteCreate,
    InvoiceMerge,
    InvoiceSplit,
    ManualInvoiceCreate,
    PaymentCreate,
    RebillRequest,
    StatusChange,
)

router = APIGatewayRouter()
XML = "application/xml"


class SplitResult(BaseModel):
    data: list[Invoice]


class Rebilled(BaseModel):
    credit_note: Invoice
    draft: Invoice


class Payment(BaseModel):
    id: str
    invoice_id: str
    amount: str
    currency: str
    received_on: str
    method: str
    reference: str | None = None
    recorded_by: str
    created_at: str


@router.post("/v1/invoices", tags=["invoices"], responses={201: {"description": "draft created"}})
def create_invoice(body: ManualInvoiceCreate) -> Response[Invoice]:
    """A one-off invoice with manual lines, as a draft: no number until it is finalized."""
    draft = lifecycle.create_draft(ports(router), actor(router), body)
    return Response(status_code=201, body=draft, content_type="application/json")


@router.post("/v1/invoices/<invoice_id>/finalize", tags=["invoices"])
def finalize_invoice(invoice_id: str) -> Invoice:
    return lifecycle.finalize_draft(ports(router), actor(router), invoice_id)


@router.delete("/v1/invoices/<invoice_id>", tags=["invoices"])
def delete_draft(invoice_id: str) -> dict:
    """Drafts only: a finalized invoice is never deleted."""
    lifecycle.delete_draft(ports(router), actor(router), invoice_id)
    return {"id": invoice_id, "deleted": True}


@router.post("/v1/invoices/merge", tags=["invoices"], responses={201: {"description": "merged draft"}})
def merge_drafts(body: InvoiceMerge) -> Response[Invoice]:
    """One customer's drafts as one draft (lines in the order given); the originals are removed and named
    in the new draft's `related`."""
    merged = regrouping.merge_drafts(ports(router), actor(router), body)
    return Response(status_code=201, body=merged, content_type="application/json")


@router.post("/v1/invoices/<invoice_id>/split", tags=["invoices"], responses={201: {"description": "child drafts"}})
def split_draft(invoice_id: str, body: InvoiceSplit) -> Response[SplitResult]:
    """A draft as several: by a line attribute, by percentage or by line lists; each child names its parent."""
    children = regrouping.split_draft(ports(router), actor(router), invoice_id, body)
    return Response(status_code=201, body=SplitResult(data=children), content_type="application/json")


@router.post("/v1/invoices/<invoice_id>/rebill", tags=["invoices"], responses={201: {"description": "re-billed"}})
def rebill_invoice(invoice_id: str, body: RebillRequest) -> Response[Rebilled]:
    """Credit a finalized invoice in full and open a draft copy in its place, in one step."""
    note, draft = regrouping.rebill(ports(router), actor(router), invoice_id, body)
    return Response(status_code=201, body=Rebilled(credit_note=note, draft=draft), content_type="application/json")


@router.post("/v1/invoices/<invoice_id>/void", tags=["invoices"])
def void_invoice(invoice_id: str, body: StatusChange) -> Invoice:
    return lifecycle.void_invoice(ports(router), actor(router), invoice_id, body)


@router.post("/v1/invoices/<invoice_id>/mark-uncollectible", tags=["invoices"])
def mark_uncollectible(invoice_id: str, body: StatusChange) -> Invoice:
    return lifecycle.mark_uncollectible(ports(router), actor(router), invoice_id, body)


@router.post("/v1/payments", tags=["payments"], responses={201: {"description": "recorded"}})
def record_payment(body: PaymentCreate) -> Response[Payment]:
    """A payment received outside the platform, against an invoice."""
    headers = router.current_event.headers or {}
    key = next((v for k, v in headers.items() if k.lower() == "idempotency-key"), None)
    payment = lifecycle.record_payment(ports(router), actor(router), body, request_key=key)
    return Response(status_code=201, body=Payment(**payment), content_type="application/json")


@router.post("/v1/credit-notes", tags=["credit notes"], responses={201: {"description": "finalized"}})
def create_credit_note(body: CreditNoteCreate) -> Response[Invoice]:
    """Credit lines of a finalized invoice (or all of it): numbered in the credit-note series."""
    note = lifecycle.create_credit_note(ports(router), actor(router), body)
    return Response(status_code=201, body=note, content_type="application/json")


@router.get("/v1/credit-notes/<credit_note_id>", tags=["credit notes"])
def get_credit_note(credit_note_id: str) -> Invoice:
    actor(router).require("read")
    return lifecycle.get_document(ports(router), credit_note_id, kind="credit_note")


@router.get("/v1/invoices/<invoice_id>/ubl", tags=["invoices"],
            responses={200: {"description": "UBL 2.1 (Peppol BIS 3.0)", "content": {XML: {}}}})
def invoice_ubl(invoice_id: str):
    actor(router).require("read")
    invoice = lifecycle.get_document(ports(router), invoice_id)
    return _xml(invoice_to_ubl(invoice), invoice.number)


@router.get("/v1/credit-notes/<credit_note_id>/ubl", tags=["credit notes"],
            responses={200: {"description": "UBL 2.1 CreditNote", "content": {XML: {}}}})
def credit_note_ubl(credit_note_id: str):
    actor(router).require("read")
    note = lifecycle.get_document(ports(router), credit_note_id, kind="credit_note")
    original = lifecycle.get_document(ports(router), note.credit_note_of)
    return _xml(invoice_to_ubl(note, credit_note_of=original), note.number)


def _xml(body: bytes, number: str | None) -> Response:
    return Response(status_code=200, body=body.decode(), content_type=XML,
                    headers={"Content-Disposition": f'inline; filename="{number}.xml"'})


@router.get("/v1/billing-entities/<entity_id>/chain-verification", tags=["billing entities"])
def verify_chain(entity_id: str,
                 series: Annotated[Literal["invoice", "credit_note"], Query()] = "invoice") -> dict:
    """Recompute each document's hash in number order and name the first broken link."""
    actor(router).require("read")
    return lifecycle.verify_chain(ports(router), entity_id, series)


@router.get("/v1/invoices/<invoice_id>/lines.csv", tags=["invoices"],
            responses={200: {"description": "the lines as CSV", "content": {"text/csv": {}}}})
def invoice_lines_csv(invoice_id: str):
    actor(router).require("read")
    document = ports(router).repo.get_invoice(invoice_id)
    if document is None:
        from shared.billing.errors import NotFoundError

        raise NotFoundError(f"no invoice or credit note '{invoice_id}'", param="id")
    return Response(status_code=200, body=lines_csv(document), content_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{document.number or document.id}.csv"'})
