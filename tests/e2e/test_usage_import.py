"""Seed 004 bulk mode over the local platform: a file dropped in UsageImportBucket with plain boto3
(S3 notification -> usage_import, asynchronously) is counted by the API like posted events, and
its report lands in results/<key>.json."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

CSV = """transaction_id,external_subscription_id,metric_code,timestamp,properties.quantity,properties.zone
imp-1,IMP-2025-001,api_calls,2025-03-01T01:00:00Z,1500,
imp-2,IMP-2025-001,api_calls,2025-03-01T02:00:00Z,700,
imp-3,IMP-2025-001,voice_minutes,2025-03-01T03:00:00Z,40,intl
imp-4,IMP-2025-001,api_calls,2025-03-01T05:00:00+01:00,abc,
imp-5,IMP-2025-001,api_calls,2025-03-01T06:00:00Z,300,
"""


@pytest.fixture(scope="module")
def s3(platform):
    """A client of the platform's AWS endpoint, as any uploader would make it."""
    return boto3.client("s3", endpoint_url=platform.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def bucket(platform) -> str:
    return platform.env["USAGE_BUCKET"]


@pytest.fixture(scope="module")
def contract(api):
    api.ok(api.post("/metrics", {"code": "api_calls", "name": "API calls", "aggregation": "sum", "field": "quantity"}))
    api.ok(api.post("/metrics", {"code": "voice_minutes", "name": "Voice minutes", "aggregation": "sum",
                                 "field": "quantity", "group_by": "zone"}))
    api.ok(api.post("/plans", {"code": "imp", "name": "Imported usage", "currency": "USD", "charges": [
        {"code": "platform", "name": "Platform", "price": "100.00", "includes": {"api_calls": "1000"}},
        {"code": "calls", "name": "API calls", "type": "usage", "model": "per_unit", "metric_code": "api_calls",
         "timing": "in_arrears", "price": "0.01"},
        {"code": "voice", "name": "Voice", "type": "usage", "model": "per_unit", "metric_code": "voice_minutes",
         "timing": "in_arrears", "price_table": {"domestic": "0.02", "intl": "0.10"}}]}))
    api.ok(api.post("/customers", {"name": "Importer Ltd", "email": "ap@importer.example", "external_id": "IMPORTER",
                                   "country": "US", "region": "US-NY", "currency": "USD"}))
    return api.ok(api.post("/subscriptions", {"customer_id": "IMPORTER", "plan_code": "imp",
                                              "external_id": "IMP-2025-001", "start_date": "2025-03-01"}))


def report_of(s3, bucket: str, key: str) -> dict:
    """The report of `key`, once usage_import has written it."""
    def report():
        try:
            return json.loads(s3.get_object(Bucket=bucket, Key=f"results/{key}.json")["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    return wait_for(report, what=f"the report for {key}")


def drop(s3, bucket: str, key: str, body: str) -> dict:
    s3.delete_object(Bucket=bucket, Key=f"results/{key}.json")  # so a new report can be told apart
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return report_of(s3, bucket, key)


def calls_row(api, sub_id: str) -> dict:
    rows = api.ok(api.get(f"/subscriptions/{sub_id}/allowances"))["data"]
    return next(r for r in rows if r["charge_code"] == "calls")


def test_a_dropped_csv_is_counted_like_posted_events(platform, api, s3, bucket, contract):
    platform.advance_clock("2025-03-01T12:00:00Z")  # one daily bill run, none of it usage
    report = drop(s3, bucket, "incoming/2025-03/importer.csv", CSV)
    assert (report["accepted"], report["duplicates"], report["late"], report["rejected_count"]) == (4, 0, 0, 1)
    assert [(r["row"], r["param"]) for r in report["rejected"]] == [(5, "rows[5].properties.quantity")]
    row = calls_row(api, contract["id"])
    assert (row["included"], row["used"], row["remaining"]) == ("1000", "2500", "0")  # 1500 + 700 + 300
    page = api.ok(api.get("/usage-events", subscription_id=contract["id"], metric_code="voice_minutes"))
    assert [(e["transaction_id"], e["properties"]) for e in page["data"]] == [
        ("imp-3", {"quantity": "40", "zone": "intl"})]


def test_the_same_file_dropped_again_is_all_duplicates(api, s3, bucket, contract):
    report = drop(s3, bucket, "incoming/2025-03/importer-again.csv", CSV)
    assert (report["accepted"], report["duplicates"], report["rejected_count"]) == (0, 4, 1)
    assert calls_row(api, contract["id"])["used"] == "2500"


def test_json_lines_go_the_same_way(api, s3, bucket, contract):
    lines = [{"transaction_id": "imp-j1", "subscription_id": contract["id"], "metric_code": "api_calls",
              "timestamp": "2025-03-01T08:00:00Z", "properties": {"quantity": 12.5}},
             {"transaction_id": "imp-2", "external_subscription_id": "IMP-2025-001", "metric_code": "api_calls",
              "timestamp": "2025-03-01T02:00:00Z", "properties": {"quantity": "700"}}]
    report = drop(s3, bucket, "incoming/2025-03/importer.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    assert (report["format"], report["accepted"], report["duplicates"]) == ("jsonl", 1, 1)
    assert calls_row(api, contract["id"])["used"] == "2512.5"


def test_a_file_with_a_bad_header_gets_a_report_naming_the_column(s3, bucket):
    report = drop(s3, bucket, "incoming/2025-03/broken.csv", "id,subscription,metric\n1,2,3\n")
    assert report["error"]["param"] == "header[0]" and "unknown column 'id'" in report["error"]["message"]
    assert report["accepted"] == 0


def test_files_outside_incoming_or_of_other_types_are_left_alone(s3, bucket):
    s3.put_object(Bucket=bucket, Key="elsewhere/usage.csv", Body=CSV.encode())
    s3.put_object(Bucket=bucket, Key="incoming/notes.txt", Body=b"not usage")
    report_of(s3, bucket, "incoming/2025-03/importer.csv")  # the earlier reports are still there
    # a file dropped after them is reported: the two before it have had their notifications by then
    assert drop(s3, bucket, "incoming/2025-03/after-the-ignored.csv", CSV)["duplicates"] == 4
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="results/")["Contents"]
    assert not [o["Key"] for o in listed if "elsewhere" in o["Key"] or "notes" in o["Key"]]
