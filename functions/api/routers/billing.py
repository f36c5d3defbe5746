from datetime import date
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.routers.common import Limit, Page, StartingAfter, actor, ports
from shared.billing.errors import ValidationError
from shared.billing.models import AuditEvent, BillRun, Invoice
from shared.services import bill_runs, invoices, taxes
from shared.services.requests.bill_runs import BillRunCreate

router = APIGatewayRouter()


@router.post("/v1/bill-runs", tags=["bill runs"], responses={202: {"description": "started"}})
def start_bill_run(body: BillRunCreate) -> Response[BillRun]:
    run = bill_runs.start_bill_run(ports(router), actor(router), body)
    return Response(status_code=202, body=run, content_type="application/json")


@router.get("/v1/bill-runs", tags=["bill runs"])
def list_bill_runs(limit: Limit = 20, starting_after: StartingAfter = None) -> Page[BillRun]:
    data, more = ports(router).repo.list_bill_runs(limit, starting_after)
    return Page(data=data, has_more=more)


@router.get("/v1/bill-runs/<bill_run_id>", tags=["bill runs"])
def get_bill_run(bill_run_id: str) -> BillRun:
    return bill_runs.get_bill_run(ports(router), bill_run_id)


@router.get("/v1/invoices", tags=["invoices"])
def list_invoices(
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    customer_id: Annotated[str | None, Query()] = None,
    subscription_id: Annotated[str | None, Query()] = None,
    status: Annotated[Literal["draft", "finalized", "paid", "void", "uncollectible"] | None, Query()] = None,
) -> Page[Invoice]:
    data, more = invoices.list_invoices(ports(router), limit, starting_after, customer_id,
                                        subscription_id, status)
    return Page(data=data, has_more=more)


@router.get("/v1/credit-notes", tags=["credit notes"])
def list_credit_notes(
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    customer_id: Annotated[str | None, Query()] = None,
    subscription_id: Annotated[str | None, Query()] = None,
    status: Annotated[Literal["finalized", "paid", "void", "uncollectible"] | None, Query()] = None,
    invoice_id: Annotated[str | None, Query(description="the credit notes of this invoice")] = None,
) -> Page[Invoice]:
    """Credit notes, as the invoices list (same filters and pagination), or those of one invoice."""
    actor(router).require("read")
    data, more = invoices.list_invoices(ports(router), limit, starting_after, customer_id, subscription_id,
                                        status, kind="credit_note", credit_note_of=invoice_id)
    return Page(data=data, has_more=more)


@router.get("/v1/invoices/<invoice_id>", tags=["invoices"])
def get_invoice(invoice_id: str) -> Invoice:
    return invoices.get_invoice(ports(router), invoice_id)


@router.get("/v1/invoices/<invoice_id>/pdf", tags=["invoices"],
            responses={200: {"description": "the PDF", "content": {"application/pdf": {}}}})
def get_invoice_pdf(invoice_id: str):
    invoice, pdf = invoices.read_pdf(ports(router), invoice_id)
    return Response(status_code=200, body=pdf, content_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{invoice.number}.pdf"'})


@router.get("/v1/credit-notes/<credit_note_id>/pdf", tags=["credit notes"],
            responses={200: {"description": "the PDF", "content": {"application/pdf": {}}}})
def get_credit_note_pdf(credit_note_id: str):
    note, pdf = invoices.read_pdf(ports(router), credit_note_id, kind="credit_note")
    return Response(status_code=200, body=pdf, content_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{note.number}.pdf"'})


@router.get("/v1/invoices/<invoice_id>/preview", tags=["invoices"],
            responses={200: {"description": "the draft as a PDF (not a document of record)",
                             "content": {"application/pdf": {}}}})
def preview_invoice_pdf(invoice_id: str,
                        document: Annotated[Literal["preview", "proforma"], Query()] = "preview"):
    """A draft as its customer would see it: watermarked `preview`, or a `proforma`. Nothing is stored."""
    draft, pdf = invoices.request_preview(ports(router), actor(router), invoice_id, document)
    return Response(status_code=200, body=pdf, content_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{document}-{draft.id}.pdf"'})


@router.get("/v1/audit-events", tags=["audit"])
def list_audit_events(
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    object_id: Annotated[str | None, Query()] = None,
    actor_name: Annotated[str | None, Query(alias="actor")] = None,
    action: Annotated[str | None, Query()] = None,
) -> Page[AuditEvent]:
    """Append-only, newest first."""
    data, more = ports(router).repo.list_audit(limit, starting_after, object_id, actor_name, action)
    return Page(data=data, has_more=more)


@router.get("/v1/tax-report", tags=["invoices"],
            responses={200: {"description": "CSV", "content": {"text/csv": {}}}})
def get_tax_report(
    start: Annotated[str, Query(description="first day reported (YYYY-MM-DD)")],
    end: Annotated[str, Query(description="first day not reported (YYYY-MM-DD)")],
    billing_entity: Annotated[str | None, Query(description="id or code; default all")] = None,
):
    """Per jurisdiction, tax, category and rate: what a VAT/GST return needs (columns in the CSV header)."""
    from shared.services.catalog import get_entity

    days = {}
    for name, value in (("start", start), ("end", end)):
        try:
            days[name] = date.fromisoformat(value)
        except ValueError:
            raise ValidationError(f"'{value}' is not a date (YYYY-MM-DD)", param=name) from None
    entity_id = get_entity(ports(router), billing_entity, param="billing_entity").id if billing_entity else None
    body = taxes.tax_report_csv(ports(router), actor(router), days["start"], days["end"], entity_id)
    return Response(status_code=200, body=body, content_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="tax-report-{start}-{end}.csv"'})
