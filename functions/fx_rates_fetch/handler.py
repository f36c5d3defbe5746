"""Daily: copy ECB's reference-rate history to the exports bucket, where invoicing reads it."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from shared.services import taxes
from shared.services.wiring import default_ports

logger, tracer, metrics = Logger(), Tracer(), Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context, ports=None) -> dict:
    result = taxes.fetch_exchange_rates(ports or default_ports())
    metrics.add_metric(name="ExchangeRatesFetched", unit=MetricUnit.Count, value=1 if result["stored"] else 0)
    logger.info("ECB reference rates", extra=result)
    return result
