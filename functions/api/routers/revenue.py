"""Revenue schedules, Finance's exports, analytics (JSON or CSV) and seed 002 designs."""

from datetime import date, datetime
from typing import Annotated, Literal

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, Field

from functions.api.routers.common import Limit, Page, StartingAfter, actor, ports
from shared.billing.errors import ValidationError
from shared.billing.models import Amount
from shared.services import analytics, revenue
from shared.services.revenue import DesignCheckRequest, DesignImportRequest, StoredSchedule

router = APIGatewayRouter()
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
Month = Annotated[str, Query(pattern=MONTH, description="YYYY-MM")]
Format = Annotated[Literal["json", "csv"] | None, Query(description="csv, or send Accept: text/csv")]
CSV_RESPONSE = {200: {"description": "JSON, or CSV with ?format=csv / Accept: text/csv",
                      "content": {"text/csv": {}}}}


# --- revenue schedules -----------------------------------------------------------------------------------------


class ScheduleEntryView(BaseModel):
    period: str = Field(description="YYYY-MM")
    amount: Amount


class RevenueScheduleView(BaseModel):
    id: str
    invoice_id: str
    invoice_number: str | None
    line: int = Field(description="index of the line in the invoice's lines[]")
    component: str | None = Field(description="the bundle component this schedule is the share of")
    customer_id: str
    subscription_id: str | None
    external_id: str | None
    charge_code: str | None
    pob_identifier: str
    method: Literal["ratable", "point_in_time", "consumption"]
    convention: Literal["daily", "monthly"]
    gl_code: str | None
    currency: str
    amount: Amount = Field(description="the line's amount (the component's share for a bundle part)")
    billed_period: str
    service_start: date
    service_end: date = Field(description="exclusive")
    entries: list[ScheduleEntryView] = Field(description="recognized by month; they add up to amount - credited "
                                                         "(a prepayment: as it is consumed)")
    credits: list[ScheduleEntryView] = Field(description="billing reversed by credit notes and the void, by month")
    voided: str | None = Field(default=None, description="the month the invoice's void took effect in")
    prepaid_units: Amount | None
    consumed_units: Amount
    unscheduled: Amount = Field(description="a prepayment's part not consumed yet")


def schedule_view(stored: StoredSchedule) -> RevenueScheduleView:
    s = stored.schedule
    return RevenueScheduleView(
        id=stored.id, invoice_id=s.invoice_id, invoice_number=s.invoice_number, line=s.line_index,
        component=s.component, customer_id=s.customer_id, subscription_id=s.subscription_id,
        external_id=s.external_id, charge_code=s.charge_code, pob_identifier=s.pob_identifier, method=s.method,
        convention=s.convention, gl_code=s.gl_code, currency=s.currency, amount=s.amount,
        billed_period=s.billed_period, service_start=s.service_start, service_end=s.service_end,
        entries=[ScheduleEntryView(period=e.period, amount=e.amount) for e in s.entries],
        credits=[ScheduleEntryView(period=e.period, amount=e.amount) for e in s.credits], voided=s.voided,
        prepaid_units=s.prepaid_units, consumed_units=s.consumed_units, unscheduled=s.unscheduled)


@router.get("/v1/revenue-schedules", tags=["revenue"])
def list_revenue_schedules(
    subscription_id: Annotated[str | None, Query(description="id or contract ID")] = None,
    invoice_id: Annotated[str | None, Query()] = None,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Page[RevenueScheduleView]:
    """The schedules made when invoices finalized: one per invoice line (per component of a bundle)."""
    found = revenue.list_schedules(ports(router), revenue.finance_of(ports(router)),
                                   subscription_id=subscription_id, invoice_id=invoice_id)
    if starting_after:
        ids = [s.id for s in found]
        if starting_after not in ids:
            raise ValidationError(f"'{starting_after}' is not a schedule of this list", param="starting_after")
        found = found[ids.index(starting_after) + 1:]
    return Page(data=[schedule_view(s) for s in found[:limit]], has_more=len(found) > limit)


# --- exports ------------------------------------------------------------------------------------------------------


class ExportFile(BaseModel):
    name: str
    key: str = Field(description="S3 key in the exports bucket")
    sha256: str
    bytes: int
    rows: int


class MissingContract(BaseModel):
    subscription_id: str
    external_id: str | None
    customer_id: str
    reason: str
    detail: str


class ExportRecord(BaseModel):
    id: str
    billing_entity_id: str
    billing_entity_code: str
    month: str
    due_date: date = Field(description="the first business day of the next month in the entity's country")
    status: Literal["created", "rerun", "replaced"] = Field(
        description="rerun: every file was identical and none was written again")
    runs: int
    trigger: str
    generated_at: datetime
    first_generated_at: datetime
    files: list[ExportFile]
    written: list[str] = Field(description="files written by this run")
    missing_contracts: list[MissingContract]


class ExportRequest(BaseModel):
    month: str = Field(pattern=MONTH, description="a month that is over, YYYY-MM")
    billing_entity: str | None = Field(default=None, description="id or code; default: every entity")


@router.post("/v1/exports", tags=["exports"], responses={201: {"description": "written (or compared)"}})
def run_export(body: ExportRequest) -> Response[Page[ExportRecord]]:
    """Export (again) a month: files identical to what was written are not written twice."""
    records = revenue.export_on_demand(ports(router), revenue.finance_of(ports(router)), actor(router), body.month,
                                       body.billing_entity)
    Metrics().add_metric(name="MissingContracts", unit=MetricUnit.Count,
                         value=sum(len(r["missing_contracts"]) for r in records))
    page = Page[ExportRecord](data=[ExportRecord(**r) for r in records], has_more=False)
    return Response(status_code=201, body=page, content_type="application/json")


@router.get("/v1/exports", tags=["exports"])
def list_exports(
    month: Annotated[str | None, Query(pattern=MONTH, description="YYYY-MM")] = None,
    billing_entity: Annotated[str | None, Query(description="id or code")] = None,
) -> Page[ExportRecord]:
    records = revenue.list_exports(ports(router), revenue.finance_of(ports(router)), month, billing_entity)
    return Page(data=[ExportRecord(**r) for r in records], has_more=False)


@router.get("/v1/exports/<billing_entity>/<month>/<name>", tags=["exports"],
            responses={200: {"description": "the CSV file", "content": {"text/csv": {}}}})
def get_export_file(billing_entity: str, month: str, name: str):
    body = revenue.read_export_file(ports(router), revenue.finance_of(ports(router)), billing_entity, month, name)
    return Response(status_code=200, body=body.decode(), content_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{month}-{name}"'})


# --- analytics ----------------------------------------------------------------------------------------------------


def _wants_csv(format_: str | None) -> bool:
    if format_ is not None:
        return format_ == "csv"
    headers = {k.lower(): v for k, v in (router.current_event.headers or {}).items()}
    return "text/csv" in headers.get("accept", "")


def _report(report: dict, columns, format_: str | None, filename: str):
    if _wants_csv(format_):
        return Response(status_code=200, body=analytics.to_csv(columns, report["data"]), content_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})
    return Response(status_code=200, body=report, content_type="application/json")


@router.get("/v1/analytics/mrr", tags=["analytics"], responses=CSV_RESPONSE)
def get_mrr(month: Month, format: Format = None):  # noqa: A002 (the query parameter's name)
    """MRR and ARR at the month's end per customer and currency, with the month's movement (new,
    reactivation, expansion, contraction, churned); `totals` per currency in JSON."""
    return _report(analytics.mrr_report(ports(router), month), analytics.MRR_COLUMNS, format, f"mrr-{month}")


@router.get("/v1/analytics/ar-aging", tags=["analytics"], responses=CSV_RESPONSE)
def get_ar_aging(as_of: Annotated[str | None, Query(description="YYYY-MM-DD; default today")] = None,
                 format: Format = None):  # noqa: A002
    """Open receivables by days past due: current, 1-30, 31-60, 61-90, over 90, per currency."""
    report = analytics.aging_report(ports(router), analytics.parse_day(as_of, "as_of"))
    return _report(report, analytics.AGING_COLUMNS, format, f"ar-aging-{report['as_of']}")


@router.get("/v1/analytics/dso", tags=["analytics"], responses=CSV_RESPONSE)
def get_dso(month: Month, format: Format = None):  # noqa: A002
    """Days sales outstanding: receivables at the month's end / invoiced in the month x days."""
    return _report(analytics.dso_report(ports(router), month), analytics.DSO_COLUMNS, format, f"dso-{month}")


# --- designs ------------------------------------------------------------------------------------------------------


class Violation(BaseModel):
    rule: Literal["POB", "DS-006", "DS-008", "DS-009"]
    path: str = Field(description="JSON path of the offending element, e.g. $.rate_plans[0].charges[1].sellPrice")
    message: str


class DesignCheckResult(BaseModel):
    valid: bool
    violations: list[Violation]


@router.post("/v1/designs/check", tags=["designs"])
def check_design(body: DesignCheckRequest) -> DesignCheckResult:
    """Every violation of a seed 002 design: identifiers off the POB list (POB), recognition windows
    other than the charge's service window (DS-006), prices not in the ledger (DS-008, with `ledger`),
    usage quantities other than their records' sum (DS-009). Stores nothing."""
    violations = revenue.design_violations(body.design, body.ledger)
    return DesignCheckResult(valid=not violations, violations=[Violation(**v) for v in violations])


@router.post("/v1/designs/import", tags=["designs"], responses={201: {"description": "created"}})
def import_design(body: DesignImportRequest):
    """A clean design becomes a plan, its metrics and a subscription for the customer (usage records
    ingested); a design with violations is refused (422, `design_violations`) and creates nothing."""
    result = revenue.import_design(ports(router), actor(router), body)
    return Response(status_code=201, body=result, content_type="application/json")


@router.get("/v1/subscriptions/<subscription_id>/design", tags=["designs"])
def export_design(subscription_id: str) -> dict:
    """The subscription in seed 002's design shape (rate plans, charges, POB mapping), for architects."""
    return revenue.export_design(ports(router), actor(router), subscription_id)
