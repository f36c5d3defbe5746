"""S3 ObjectCreated under incoming/ (.csv, .jsonl) in UsageImportBucket: import the file's usage
events and write its report to results/<key>.json (shared/services/usage_import.py)."""

from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event

from shared.billing.errors import NotFoundError
from shared.services import usage_import
from shared.services.context import Actor
from shared.services.wiring import default_ports, default_usage_files

logger, tracer, metrics = Logger(), Tracer(), Metrics()
ACTOR_NAME = "system:usage-import"
ACTOR_ROLE = "cre"  # the narrowest role that may write usage


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context, ports=None, files=None) -> dict:
    ports, files = ports or default_ports(), files or default_usage_files()
    if "Records" not in event:  # e.g. s3:TestEvent
        logger.info("not an S3 event record batch; nothing to import", extra={"event": event})
        return {"reports": []}
    reports = []
    for record in S3Event(event).records:
        bucket, key = record.s3.bucket.name, unquote_plus(record.s3.get_object.key)
        if not record.event_name.startswith("ObjectCreated") or key.startswith(usage_import.RESULTS_PREFIX):
            continue
        if bucket != files.bucket:
            raise ValueError(f"event for bucket {bucket}; this function imports from {files.bucket} (USAGE_BUCKET)")
        try:
            body = files.get(key)
        except NotFoundError:
            logger.warning("the file was deleted before it could be imported", extra={"key": key})
            continue
        actor = Actor(ACTOR_NAME, ACTOR_ROLE, correlation_id=context.aws_request_id)
        report = usage_import.import_usage_file(ports, actor, key, body, files=files)
        _record_metrics(report)
        logger.info("usage file imported", extra={k: v for k, v in report.items() if k != "rejected"})
        reports.append({k: report[k] for k in ("key", "report_key", "rows", "accepted", "duplicates", "late",
                                                "rejected_count", "error")})
    return {"reports": reports}


def _record_metrics(report: dict) -> None:
    for name, value in (("UsageImportAccepted", report["accepted"]), ("UsageImportDuplicates", report["duplicates"]),
                        ("UsageImportLate", report["late"]), ("UsageImportRejected", report["rejected_count"]),
                        ("UsageImportUnreadableFiles", int(report["error"] is not None))):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
