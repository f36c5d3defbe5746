"""The daily contract calendar (schedule DailyContractCalendar, 01:00 UTC, before the bill run):
activations, scheduled terminations (UC05: CRE and Finance are e-mailed), auto-renewals, resumed
pauses, trial-end and upcoming-bill notices. Safe to re-run: each notice is done once."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict

from shared.services import contract_calendar
from shared.services.bill_runs import parse_as_of
from shared.services.context import Actor
from shared.services.wiring import default_ports, finance_recipients

logger, tracer, metrics = Logger(), Tracer(), Metrics()
ACTOR_NAME = "system:contract-calendar"


class ScheduledDay(BaseModel):
    model_config = ConfigDict(extra="ignore")

    as_of: str


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context, ports=None) -> dict:
    today = parse_as_of(ScheduledDay.model_validate(event).as_of)
    actor = Actor(ACTOR_NAME, "admin", correlation_id=getattr(context, "aws_request_id", None))
    done = contract_calendar.run_day(ports or default_ports(), actor, today, finance_recipients())
    for kind, ids in done.items():
        metrics.add_metric(name=f"Contracts{kind.title().replace('_', '')}", unit=MetricUnit.Count, value=len(ids))
    logger.info("contract calendar", extra={"day": today.isoformat(), "done": done})
    return {"day": today.isoformat(), "done": done}
