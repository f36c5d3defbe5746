"""Advance the local clock, firing what EventBridge Scheduler would have fired meanwhile.

Firings run in time order (ties by schedule name). For each one the clock file is set to the
scheduled instant, the target's Input gets its context attributes, and the target is called;
a started Step Functions execution is awaited before the next firing, so bill runs happen
one after the other (Lambda targets are invoked synchronously for the same reason; AWS
invokes them asynchronously). Schedules a target creates or changes are seen by later
firings. Flexible time windows are ignored: everything fires at its scheduled instant.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError
from moto.scheduler.models import scheduler_backends

from .clock import LocalClock, format_instant, parse_instant
from .schedules import firings

SDK_SERVICES = {"sfn": "stepfunctions"}  # universal-target names that boto3 spells otherwise


class ClockError(ValueError):
    """Bad advance request (e.g. backwards): the HTTP adapter answers 422."""


def advance(clients, clock: LocalClock, to: datetime, account: str, region: str,
            stop: threading.Event | None = None) -> list[dict]:
    now = clock.now()
    if to < now:
        raise ClockError(f"the clock is at {format_instant(now)}; it never goes backwards")
    backend = scheduler_backends[account][region]
    done: set[tuple[str, datetime]] = set()
    fired: list[dict] = []
    after, due, seen = now, [], None
    while True:
        if stop and stop.is_set():
            return fired  # the runtime is stopping: the clock stays at the last firing
        if (current := _fingerprint(backend)) != seen:  # a target changed the schedules
            due, seen = _due(backend, after, to, done), current
        if not due:
            break
        at, schedule = due.pop(0)
        done.add((schedule.arn, at))
        after = at - timedelta(microseconds=1)  # others due at the same instant still fire
        clock.set(at)
        fired.append(fire(clients, schedule, at, stop))
        if schedule.action_after_completion == "DELETE" and \
                schedule.schedule_expression.startswith("at("):
            backend.delete_schedule(schedule.group_name, schedule.name)
    clock.set(to)
    return fired


def _schedules(backend) -> list:
    return [s for group in list(backend.schedule_groups.values())
            for s in list(group.schedules.values())]


def _fingerprint(backend) -> list[tuple]:
    return [(s.arn, s.last_modified_date, s.state) for s in _schedules(backend)]


def _due(backend, after: datetime, to: datetime, done: set) -> list[tuple[datetime, object]]:
    due = []
    for schedule in _schedules(backend):
        if schedule.state != "ENABLED":
            continue
        times = firings(schedule.schedule_expression, after, to,
                        schedule.schedule_expression_timezone or "UTC",
                        _instant(schedule.start_date), _instant(schedule.end_date))
        due += [(t, schedule) for t in times if (schedule.arn, t) not in done]
    return sorted(due, key=lambda item: (item[0], item[1].name))


def fire(clients, schedule, at: datetime, stop: threading.Event | None = None) -> dict:
    target = schedule.target
    payload = _context(target.get("Input") or "{}", schedule, at)
    arn = target["Arn"]
    outcome = {"schedule": schedule.name, "group": schedule.group_name,
               "scheduled_time": format_instant(at), "target": arn}
    service = arn.split(":")[2]
    try:
        if service == "states":
            name = re.sub(r"[^0-9A-Za-z_-]", "-", f"{schedule.name}-{at:%Y%m%dT%H%M}")[-80:]
            outcome.update(_run_execution(clients("stepfunctions"), arn, name, payload, stop))
        elif service == "lambda":
            response = clients("lambda").invoke(FunctionName=arn, Payload=payload)
            result = json.loads(response["Payload"].read() or "null")
            outcome["status"] = "FAILED" if "FunctionError" in response else "SUCCEEDED"
            if "FunctionError" in response:
                outcome["error"] = result.get("errorType")
        elif service == "sqs":
            extra = {"MessageGroupId": target["SqsParameters"]["MessageGroupId"]} \
                if target.get("SqsParameters", {}).get("MessageGroupId") else {}
            sqs = clients("sqs")
            url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
            outcome["message_id"] = sqs.send_message(QueueUrl=url, MessageBody=payload,
                                                     **extra)["MessageId"]
            outcome["status"] = "SUCCEEDED"
        elif service == "events":
            params = target.get("EventBridgeParameters", {})
            clients("events").put_events(Entries=[{
                "EventBusName": arn, "Source": params.get("Source", "aws.scheduler"),
                "DetailType": params.get("DetailType", "Scheduled Event"), "Detail": payload}])
            outcome["status"] = "SUCCEEDED"
        elif service == "scheduler" and arn.split(":")[5] == "aws-sdk":
            sdk, action = arn.split(":")[6:8]
            method = re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()
            getattr(clients(SDK_SERVICES.get(sdk, sdk)), method)(**json.loads(payload))
            outcome["status"] = "SUCCEEDED"
        else:
            outcome["status"] = "UNSUPPORTED_TARGET"
    except ClientError as error:
        outcome.update(status="FAILED", error=error.response["Error"]["Code"],
                       cause=error.response["Error"]["Message"])
    return outcome


def _run_execution(sfn, arn: str, name: str, payload: str, stop) -> dict:
    try:
        execution = sfn.start_execution(stateMachineArn=arn, name=name, input=payload)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
        execution = {"executionArn": arn.replace(":stateMachine:", ":execution:") + f":{name}"}
    delay = 0.005
    while True:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING" or (stop and stop.is_set()):
            break
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
    result = {"execution_arn": described["executionArn"], "status": described["status"]}
    if described["status"] == "SUCCEEDED":
        result["output"] = json.loads(described.get("output") or "null")
    for key in ("error", "cause"):
        if described.get(key):
            result[key] = described[key]
    return result


def _context(text: str, schedule, at: datetime) -> str:
    """Scheduler's context attributes in the target input."""
    values = {
        "scheduled-time": format_instant(at),
        "execution-id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{schedule.arn}@{at.isoformat()}")),
        "schedule-arn": schedule.arn,
        "attempt-number": "1",
    }
    for key, value in values.items():
        text = text.replace(f"<aws.scheduler.{key}>", value)
    return text


def _instant(value) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, int | float) or str(value).replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(value), UTC)
    return parse_instant(str(value))

