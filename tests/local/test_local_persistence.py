"""`--data DIR`: tables, objects, run-time schedules and the clock survive a restart."""

from __future__ import annotations

import os

import pytest
import requests

from tests.local.conftest import start_runtime

ITEM = {"pk": {"S": "CUS#1"}, "sk": {"S": "PROFILE"}, "logo": {"B": b"\x89PNG"},
        "tags": {"SS": ["a", "b"]}, "nested": {"M": {"B": {"S": "a key named B"},
                                                      "bytes": {"BS": [b"\x00", b"\x01"]}}},
        "lines": {"L": [{"N": "1.5"}, {"NULL": True}]}}


def test_state_survives_a_restart(tmp_path):
    before = os.environ.get("AWS_ENDPOINT_URL")
    first = start_runtime(data_dir=tmp_path, clock="2025-04-01T00:00:00Z", port=None)
    try:
        ddb, s3 = first.clients("dynamodb"), first.clients("s3")
        ddb.put_item(TableName=first.env["BILLING_TABLE"], Item=ITEM)
        s3.put_object(Bucket=first.env["DOCUMENTS_BUCKET"], Key="invoices/INV-1.pdf",
                      Body=b"%PDF-1.7", ContentType="application/pdf")
        first.clients("scheduler").create_schedule(
            Name="terminate-sub_1", ScheduleExpression="at(2025-06-01T00:00:00)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": "arn:aws:lambda:us-east-1:123456789012:function:x",
                    "RoleArn": "arn:aws:iam::123456789012:role/x", "Input": "{}"})
        first.advance_clock("2025-04-03T00:00:00Z")
        endpoint = first.endpoint
    finally:
        first.stop()
    assert {p.name for p in (tmp_path / "state").iterdir()} >= {"dynamodb", "s3", "local.json"}
    with pytest.raises(requests.ConnectionError):
        requests.get(endpoint, timeout=2)
    assert os.environ.get("AWS_ENDPOINT_URL") == before

    second = start_runtime(data_dir=tmp_path, port=None)
    try:
        ddb, s3 = second.clients("dynamodb"), second.clients("s3")
        item = ddb.get_item(TableName=second.env["BILLING_TABLE"],
                            Key={"pk": ITEM["pk"], "sk": ITEM["sk"]})["Item"]
        assert item == ITEM
        obj = s3.get_object(Bucket=second.env["DOCUMENTS_BUCKET"], Key="invoices/INV-1.pdf")
        assert obj["Body"].read() == b"%PDF-1.7" and obj["ContentType"] == "application/pdf"
        schedule = second.clients("scheduler").get_schedule(Name="terminate-sub_1")
        assert schedule["ScheduleExpression"] == "at(2025-06-01T00:00:00)"
        assert second.clock_now().isoformat() == "2025-04-03T00:00:00+00:00"
    finally:
        second.stop(snapshot=False)
