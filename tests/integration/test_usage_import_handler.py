"""`usage_import` invoked through the local runtime's Lambda dispatch on its `events/s3` sample:
the sample CSV (events/s3/usage_2025-03.csv) is read from UsageImportBucket, ingested for real
(DynamoDB in moto) and its report written to results/<key>.json."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from shared.local.runtime import LocalRuntime

EVENTS = Path(__file__).resolve().parents[2] / "events"
KEY = "incoming/2025-03/acme usage.csv"  # the sample's key, URL-encoded there as acme+usage.csv


def sample(**replace: str) -> dict:
    text = (EVENTS / "s3" / "usage_file_created.json").read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    return json.loads(text)


@pytest.fixture(scope="module")
def runtime():
    rt = LocalRuntime(clock="2025-03-20T00:00:00Z", port=None, time_scale=0.01).start()
    try:
        yield rt
    finally:
        rt.stop()


@pytest.fixture(scope="module")
def bucket(runtime) -> str:
    """The bucket holds the sample file; its own notification is off, so only the test invokes."""
    from shared.services.catalog import create_customer, create_metric, create_plan
    from shared.services.context import Actor
    from shared.services.requests.catalog import CustomerCreate, MetricCreate, PlanCreate
    from shared.services.requests.contracts import SubscriptionCreate
    from shared.services.subscriptions import create_subscription
    from shared.services.wiring import build_ports

    ports, actor = build_ports(), Actor("test", "admin")
    create_metric(ports, actor, MetricCreate(code="api_calls", name="API calls", field="quantity"))
    create_plan(ports, actor, PlanCreate(code="api", name="API", currency="USD", charges=[
        {"code": "calls", "name": "API calls", "type": "usage", "model": "per_unit", "metric_code": "api_calls",
         "timing": "in_arrears", "price": "0.01"}]))
    customer = create_customer(ports, actor, CustomerCreate(name="Acme", email="ap@acme.example", country="US",
                                                            region="US-CA", currency="USD"))
    create_subscription(ports, actor, SubscriptionCreate(customer_id=customer.id, plan_code="api",
                                                         external_id="ACME-API-1", start_date=date(2025, 3, 1)))
    name = runtime.env["USAGE_BUCKET"]
    s3 = runtime.clients("s3")
    s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={})
    s3.put_object(Bucket=name, Key=KEY, Body=(EVENTS / "s3" / "usage_2025-03.csv").read_bytes())
    return name


def stored_report(runtime, bucket: str, key: str) -> dict:
    return json.loads(runtime.clients("s3").get_object(Bucket=bucket, Key=f"results/{key}.json")["Body"].read())


def test_the_sample_names_the_local_bucket(runtime, bucket):
    assert sample()["Records"][0]["s3"]["bucket"]["name"] == bucket


def test_the_sample_file_is_ingested_and_each_rejection_names_its_line(runtime, bucket):
    result = runtime.invoke("usage_import", sample())
    (summary,) = result["reports"]
    assert summary["report_key"] == f"results/{KEY}.json"
    report = stored_report(runtime, bucket, KEY)
    assert (report["rows"], report["accepted"], report["duplicates"], report["late"]) == (7, 2, 1, 0)
    # line 4 repeats line 2; line 7 is blank
    assert [(r["row"], r["param"]) for r in report["rejected"]] == [
        (5, "rows[5].timestamp"),  # no time zone
        (6, "rows[6]"),  # 3 fields, the header has 5
        (8, "rows[8].external_subscription_id"),  # no such contract
        (9, "rows[9].properties.quantity"),  # the metric sums quantity
    ]
    assert report["error"] is None and summary["accepted"] == 2


def test_the_same_file_again_changes_nothing(runtime, bucket):
    runtime.invoke("usage_import", sample())
    report = stored_report(runtime, bucket, KEY)
    assert (report["accepted"], report["duplicates"], report["rejected_count"]) == (0, 3, 4)


def test_a_file_of_another_type_gets_a_report_naming_the_problem(runtime, bucket):
    runtime.clients("s3").put_object(Bucket=bucket, Key="incoming/2025-03/usage.xlsx", Body=b"PK\x03\x04")
    runtime.invoke("usage_import", sample(**{"acme+usage.csv": "usage.xlsx"}))
    report = stored_report(runtime, bucket, "incoming/2025-03/usage.xlsx")
    assert report["error"] == {"param": "file",
                               "message": "unsupported file type 'usage.xlsx': drop .csv or .jsonl files"}
    assert report["accepted"] == 0
