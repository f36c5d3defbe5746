"""`--data DIR`: the platform's state survives a restart.

On stop: the clock and the local API key, every DynamoDB table of the stack (items as
DynamoDB-JSON lines), every object of its buckets, and the schedules created at run time
(e.g. scheduled terminations) go to DIR/state, keyed by the resources' logical ids. On
start, after the deploy, they come back (the clock and key unless others are named).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from datetime import datetime
from pathlib import Path

from .clock import LocalClock, format_instant, parse_instant
from .deploy import Deployment

TABLE, BUCKET, SCHEDULE = "AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::Scheduler::Schedule"
SCHEDULE_FIELDS = ("Description", "EndDate", "FlexibleTimeWindow", "GroupName", "KmsKeyArn",
                   "Name", "ScheduleExpression", "ScheduleExpressionTimezone", "StartDate",
                   "State", "Target", "ActionAfterCompletion")


def snapshot(clients, deployment: Deployment, data_dir: Path, clock: LocalClock,
             api_key: str) -> dict[str, int]:
    tmp, final = data_dir / "state.tmp", data_dir / "state"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "local.json").write_text(json.dumps({"clock": format_instant(clock.now()),
                                                "api_key": api_key}))
    counts = {"items": 0, "objects": 0, "schedules": 0}
    for table in deployment.of_type(TABLE):
        path = tmp / "dynamodb" / f"{table.logical_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as out:
            for page in clients("dynamodb").get_paginator("scan").paginate(
                    TableName=table.physical_id):
                for item in page["Items"]:
                    out.write(json.dumps(_encode(item)) + "\n")
                    counts["items"] += 1
    s3 = clients("s3")
    for bucket in deployment.of_type(BUCKET):
        folder, index = tmp / "s3" / bucket.logical_id, {}
        folder.mkdir(parents=True, exist_ok=True)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket.physical_id):
            for entry in page.get("Contents", []):
                obj = s3.get_object(Bucket=bucket.physical_id, Key=entry["Key"])
                name = hashlib.sha256(entry["Key"].encode()).hexdigest()
                (folder / name).write_bytes(obj["Body"].read())
                index[entry["Key"]] = {"file": name, "content_type": obj.get("ContentType"),
                                       "metadata": obj.get("Metadata", {})}
                counts["objects"] += 1
        (folder / "index.json").write_text(json.dumps(index, indent=1))
    schedules = _runtime_schedules(clients("scheduler"), deployment)
    (tmp / "schedules.json").write_text(json.dumps(schedules, indent=1, default=str))
    counts["schedules"] = len(schedules)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return counts


def saved(data_dir: Path) -> tuple[datetime | None, str | None]:
    """The clock and the API key the last run stopped with."""
    path = data_dir / "state" / "local.json"
    if not path.exists():
        return None, None
    local = json.loads(path.read_text())
    return parse_instant(local["clock"]), local["api_key"]


def restore(clients, deployment: Deployment, data_dir: Path) -> dict[str, int]:
    state = data_dir / "state"
    counts = {"items": 0, "objects": 0, "schedules": 0}
    if not state.exists():
        return counts
    ddb, s3 = clients("dynamodb"), clients("s3")
    for table in deployment.of_type(TABLE):
        path = state / "dynamodb" / f"{table.logical_id}.jsonl"
        items = [_decode(json.loads(line)) for line in path.open()] if path.exists() else []
        for start in range(0, len(items), 25):
            requests = {table.physical_id: [{"PutRequest": {"Item": item}}
                                            for item in items[start:start + 25]]}
            while requests:
                requests = ddb.batch_write_item(RequestItems=requests).get("UnprocessedItems")
        counts["items"] += len(items)
    for bucket in deployment.of_type(BUCKET):
        folder = state / "s3" / bucket.logical_id
        index = json.loads((folder / "index.json").read_text()) if folder.exists() else {}
        for key, entry in index.items():
            extra = {"ContentType": entry["content_type"]} if entry["content_type"] else {}
            s3.put_object(Bucket=bucket.physical_id, Key=key, Metadata=entry["metadata"],
                          Body=(folder / entry["file"]).read_bytes(), **extra)
            counts["objects"] += 1
    scheduler = clients("scheduler")
    for schedule in json.loads((state / "schedules.json").read_text()):
        groups = {g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]}
        if schedule.get("GroupName", "default") not in groups:
            scheduler.create_schedule_group(Name=schedule["GroupName"])
        scheduler.create_schedule(**schedule)
        counts["schedules"] += 1
    return counts


def _runtime_schedules(scheduler, deployment: Deployment) -> list[dict]:
    """Schedules the template does not declare: created by the platform while it ran."""
    declared = {r.physical_id for r in deployment.of_type(SCHEDULE)}
    found = []
    for page in scheduler.get_paginator("list_schedules").paginate():
        for summary in page["Schedules"]:
            if summary["Name"] in declared:
                continue
            full = scheduler.get_schedule(Name=summary["Name"], GroupName=summary["GroupName"])
            found.append({k: full[k] for k in SCHEDULE_FIELDS if full.get(k) is not None})
    return found


def _encode(value):
    """DynamoDB JSON with binary values in base64 (as the AWS CLI writes them)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(item: dict) -> dict:
    return {name: _decode_value(value) for name, value in item.items()}


def _decode_value(value: dict) -> dict:
    (kind, inner), = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(b) for b in inner]}
    if kind == "M":
        return {"M": _decode(inner)}
    if kind == "L":
        return {"L": [_decode_value(v) for v in inner]}
    return value
