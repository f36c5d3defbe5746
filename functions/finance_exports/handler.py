"""Finance's exports and reconciliation.

- The DailyFinanceExports schedule (`{"as_of": "<aws.scheduler.scheduled-time>", "trigger": "schedule"}`):
  export the previous month of every billing entity whose first business day has come.
- The rule BillRunCompleted (`bill_run.completed`): check that every live contract due that day is on
  its invoice.
Both publish `MissingContracts` (alarmed) and email CRE and Finance about what is missing.
"""

from typing import Literal

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict

from shared.services import reconciliation, revenue
from shared.services.bill_runs import parse_as_of
from shared.services.context import Actor
from shared.services.wiring import default_ports

logger, tracer, metrics = Logger(), Tracer(), Metrics()
ACTOR_NAME = "system:finance-exports"


class ScheduledRun(BaseModel):
    model_config = ConfigDict(extra="ignore")

    as_of: str
    trigger: Literal["schedule", "api", "cli"] = "schedule"


class CompletedRun(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    as_of: str


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context, ports=None, finance=None) -> dict:
    ports = ports or default_ports()
    finance = finance or revenue.finance_of(ports)
    if "detail-type" in event:
        envelope = revenue.BillingEvent.model_validate(event).detail
        if envelope.type != "bill_run.completed":
            logger.info("not an event this function handles", extra={"event_type": envelope.type})
            return {"ignored": envelope.type}
        run = CompletedRun.model_validate(envelope.data["bill_run"])
        logger.append_keys(bill_run_id=run.id)
        findings = reconciliation.after_bill_run(ports, finance.recipients, parse_as_of(run.as_of), run.id)
        metrics.add_metric(name="MissingContracts", unit=MetricUnit.Count, value=len(findings))
        if findings:
            logger.warning("contracts missing from the bill run", extra={"missing": findings})
        return {"bill_run_id": run.id, "as_of": run.as_of, "missing_contracts": findings}
    scheduled = ScheduledRun.model_validate(event)
    today = parse_as_of(scheduled.as_of)
    actor = Actor(ACTOR_NAME, "finance", correlation_id=getattr(context, "aws_request_id", None))
    records = revenue.run_due_exports(ports, finance, actor, today)
    missing = [finding for record in records for finding in record["missing_contracts"]]
    metrics.add_metric(name="ExportsWritten", unit=MetricUnit.Count, value=len(records))
    metrics.add_metric(name="MissingContracts", unit=MetricUnit.Count, value=len(missing))
    if missing:
        logger.warning("contracts missing from the exports", extra={"missing": missing})
    return {"as_of": today.isoformat(), "exports": [
        {k: r[k] for k in ("id", "billing_entity_code", "month", "status", "written")} for r in records],
        "missing_contracts": missing}
