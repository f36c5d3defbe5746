"""The local runtime on the fixture stack: deploy, dispatch, rules, queues, workflows, clock."""

from __future__ import annotations

import json
import os
import random
import threading
import time
import zipfile
from datetime import timedelta
from io import BytesIO

import pytest

from shared.local.runtime import LambdaInvokeError
from shared.local.scheduler import ClockError
from tests.local.fixtures import handlers
from tests.waiting import wait_for


def calls(handler: str) -> list[dict]:
    return [c["event"] for c in list(handlers.CALLS) if c["handler"] == handler]


def send(runtime, source: str, *details: dict) -> None:
    runtime.clients("events").put_events(Entries=[
        {"Source": source, "DetailType": "test", "Detail": json.dumps(d),
         "EventBusName": runtime.env["EVENT_BUS_NAME"]} for d in details])


def execution(runtime, machine: str, name: str, payload: dict) -> dict:
    sfn = runtime.clients("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=runtime.physical_id(machine), name=name,
                              input=json.dumps(payload))["executionArn"]
    return wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING"
                    and d, what=f"execution {arn} finished")


# -- deploy ----------------------------------------------------------------------------------

def test_the_runtime_runs_on_a_random_port_and_sets_the_environment(runtime):
    assert runtime.endpoint.startswith("http://127.0.0.1:")
    assert os.environ["AWS_ENDPOINT_URL"] == runtime.endpoint
    assert os.environ["MOTO_PORT"] == runtime.endpoint.rsplit(":", 1)[1]
    assert os.environ["BILLING_LOCAL"] == "1"
    assert runtime.started_in > 0 and {"moto", "synth", "deploy"} <= set(runtime.timings)


def test_the_resources_come_from_the_template(runtime):
    ddb, s3, sqs = (runtime.clients(s) for s in ("dynamodb", "s3", "sqs"))
    table = ddb.describe_table(TableName=runtime.env["BILLING_TABLE"])["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    s3.head_bucket(Bucket=runtime.env["DOCUMENTS_BUCKET"])
    queue_name = runtime.physical_id("WebhooksQueue").rsplit("/", 1)[-1]
    assert sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    # a Ref to the event bus is its name (the functions pass it as EventBusName)
    bus = runtime.clients("events").describe_event_bus(Name=runtime.env["EVENT_BUS_NAME"])
    assert bus["Name"] == runtime.env["EVENT_BUS_NAME"]
    assert runtime.deployment.outputs["BillingTableName"] == runtime.env["BILLING_TABLE"]
    names = {s["Name"] for s in runtime.clients("scheduler").list_schedules()["Schedules"]}
    assert {runtime.physical_id("EverySixHours"), runtime.physical_id("DailyEcho")} <= names


# -- Lambda dispatch -------------------------------------------------------------------------

def test_dispatch_runs_the_real_handler_with_a_context(runtime):
    result = runtime.invoke("echo", {"hello": "world"})
    assert result["event"] == {"hello": "world"}
    assert result["function_name"] == runtime.function_name("echo")
    assert 0 < result["remaining_ms"] <= 30_000
    assert result["clock"] == runtime.clock.path.read_text().strip()


def test_a_container_image_function_runs_its_command(runtime):
    assert runtime.invoke("image_echo", {"n": 1})["event"] == {"n": 1}


def test_an_exception_is_reported_by_class_name(runtime):
    with pytest.raises(LambdaInvokeError) as raised:
        runtime.invoke("fail", {"customer": "cus_1"})
    payload = raised.value.payload
    assert payload["errorType"] == "PaymentDeclined"
    assert payload["errorMessage"] == "card declined for cus_1"
    assert any("handlers.py" in line for line in payload["stackTrace"])
    response = runtime.clients("lambda").invoke(FunctionName=runtime.function_name("fail"),
                                                Payload=b"{}")
    assert response["FunctionError"] == "Unhandled"


def test_runtime_errors_have_the_lambda_runtime_names(runtime):
    code = BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "")
    lambda_ = runtime.clients("lambda")
    role = lambda_.get_function_configuration(FunctionName=runtime.function_name("echo"))["Role"]
    expected = {"tests.local.fixtures.nope.handler": "Runtime.ImportModuleError",
                "tests.local.fixtures.handlers.nope": "Runtime.HandlerNotFound",
                "tests.local.fixtures.handlers.unmarshallable": "Runtime.MarshalError"}
    for number, (handler, error) in enumerate(expected.items()):
        lambda_.create_function(FunctionName=f"created-{number}", Runtime="python3.12",
                                Handler=handler, Role=role, Code={"ZipFile": code.getvalue()})
        response = lambda_.invoke(FunctionName=f"created-{number}", Payload=b"{}")
        assert json.loads(response["Payload"].read())["errorType"] == error


def test_step_functions_retry_and_catch_match_the_exception_class(runtime):
    results = {}
    threads = [threading.Thread(target=lambda k=k, n=n: results.__setitem__(k, execution(
        runtime, "RetryMachine", k, {"key": k, "fail_times": n}))) for k, n in
        (("once", 1), ("always", 5))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["once"]["status"] == "SUCCEEDED"
    assert json.loads(results["once"]["output"]) == {"attempts": 2}  # retried once
    assert json.loads(results["always"]["output"]) == {"gave_up": True, "execution": "always"}
    history = runtime.clients("stepfunctions").get_execution_history(
        executionArn=results["once"]["executionArn"])["events"]
    errors = [e.get("taskFailedEventDetails", e.get("lambdaFunctionFailedEventDetails", {}))
              .get("error") for e in history if e["type"].endswith("Failed")]
    assert "RetryableError" in errors


# -- EventBridge, SQS --------------------------------------------------------------------------

def test_rules_deliver_to_lambda_and_state_machine_targets(runtime):
    send(runtime, "direct", {"marker": "direct-1"})
    seen = wait_for(lambda: len(got := [e for e in calls("echo")
                                        if e.get("detail", {}).get("marker") == "direct-1"]) == 2
                    and got)
    for event in seen:  # once from the Lambda target, once through the state machine
        assert event["source"] == "direct" and event["account"] == "123456789012"
        assert event["time"].endswith("Z")


def test_an_async_lambda_target_is_retried_after_a_function_error(runtime):
    send(runtime, "retry", {"any": "thing"})  # the target's Input replaces the event
    wait_for(lambda: handlers._attempts.get("async") == 2, what="the async retry")  # 60 s at 1/100


def test_rule_queue_poller_with_partial_batch_failure_and_redrive(runtime):
    started = time.perf_counter()
    send(runtime, "billing", {"n": "a"}, {"n": "poison", "poison": True}, {"n": "b"})

    def delivered(n):
        return [r for e in calls("consumer") for r in e["Records"]
                if json.loads(r["body"])["detail"]["n"] == n]

    wait_for(lambda: delivered("a") and delivered("b"))
    latency = time.perf_counter() - started
    dlq = _dlq_bodies(runtime, lambda body: body["detail"]["n"] == "poison")
    record = delivered("a")[0]
    assert record["eventSource"] == "aws:sqs" and record["awsRegion"] == "us-east-1"
    assert record["eventSourceARN"].endswith(runtime.physical_id("WebhooksQueue").split("/")[-1])
    assert {"messageId", "receiptHandle", "md5OfBody", "messageAttributes"} <= set(record)
    assert json.loads(record["body"])["detail-type"] == "test"
    assert len(delivered("a")) == len(delivered("b")) == 1  # deleted after success
    assert [r["attributes"]["ApproximateReceiveCount"] for r in delivered("poison")] == ["1", "2"]
    assert len(dlq) == 1  # maxReceiveCount 2, then the queue's DLQ
    assert latency < 2, latency


def test_a_raised_exception_fails_the_whole_batch(runtime):
    send(runtime, "batch", {"n": "crash", "crash": True}, {"n": "innocent"})
    dlq = _dlq_bodies(runtime, lambda body: body["source"] == "batch", count=2)
    assert sorted(b["detail"]["n"] for b in dlq) == ["crash", "innocent"]
    batches = [[json.loads(r["body"])["detail"]["n"] for r in e["Records"]]
               for e in calls("crasher")]
    assert batches == [["crash", "innocent"]] * 2  # one batch, failed twice as a whole


def _dlq_bodies(runtime, match, count: int = 1) -> list[dict]:
    sqs = runtime.clients("sqs")
    url = sqs.get_queue_url(QueueName=runtime.physical_id("WebhooksDlq").split("/")[-1])[
        "QueueUrl"]
    found: list[dict] = []

    def receive():
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if match(body := json.loads(message["Body"])):
                found.append(body)
        return len(found) >= count

    wait_for(receive, what="the messages")  # returns as soon as they arrive
    return found


# -- DynamoDB under concurrency ------------------------------------------------------------------

def test_transactions_are_serialized(runtime):
    ddb, table = runtime.clients("dynamodb"), runtime.env["BILLING_TABLE"]
    counter = {"pk": {"S": "COUNTER"}, "sk": {"S": "invoice"}}
    ddb.put_item(TableName=table, Item={**counter, "n": {"N": "0"}})
    taken: list[int] = []
    conflicts = []

    def take_number() -> int:
        while True:
            current = int(ddb.get_item(TableName=table, Key=counter,
                                       ConsistentRead=True)["Item"]["n"]["N"])
            try:
                ddb.transact_write_items(TransactItems=[
                    {"Update": {"TableName": table, "Key": counter,
                                "UpdateExpression": "SET n = :new",
                                "ConditionExpression": "n = :old",
                                "ExpressionAttributeValues": {":old": {"N": str(current)},
                                                              ":new": {"N": str(current + 1)}}}},
                    {"Put": {"TableName": table, "ConditionExpression": "attribute_not_exists(pk)",
                             "Item": {"pk": {"S": "NUMBER"}, "sk": {"S": f"{current + 1:06d}"}}}},
                ])
                return current + 1
            except ddb.exceptions.TransactionCanceledException:
                conflicts.append(current)  # someone else took it: read again
                time.sleep(random.random() / 100)

    def worker():
        for _ in range(50):
            taken.append(take_number())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = ddb.get_item(TableName=table, Key=counter)["Item"]["n"]["N"]
    numbers = ddb.query(TableName=table, KeyConditionExpression="pk = :pk",
                        ExpressionAttributeValues={":pk": {"S": "NUMBER"}})["Items"]
    assert final == "200"
    assert sorted(taken) == list(range(1, 201))
    assert len(numbers) == 200
    assert conflicts  # the threads did race


# -- clock and schedules -----------------------------------------------------------------------

def test_advancing_the_clock_fires_the_schedules_in_order(runtime):
    start = runtime.clock_now()
    assert start.hour % 6 == 0 and start.minute == 0  # the fixture starts on the 6-hour grid
    scheduler = runtime.clients("scheduler")
    reminder_at = start + timedelta(hours=1)
    scheduler.create_schedule(
        Name="reminder", ScheduleExpression=f"at({reminder_at:%Y-%m-%dT%H:%M:%S})",
        FlexibleTimeWindow={"Mode": "OFF"}, ActionAfterCompletion="DELETE",
        Target={"Arn": f"arn:aws:lambda:us-east-1:123456789012:function:"
                       f"{runtime.function_name('echo')}",
                "RoleArn": "arn:aws:iam::123456789012:role/x",
                "Input": json.dumps({"reminder": "<aws.scheduler.scheduled-time>"})})
    to = start + timedelta(days=1)
    fired = runtime.advance_clock(to)

    times = [f["scheduled_time"] for f in fired]
    assert times == sorted(times) and len(times) == 6  # reminder, 3 x 6-hourly, daily + 6-hourly
    assert [f["status"] for f in fired] == ["SUCCEEDED"] * 6
    assert fired[0]["schedule"] == "reminder"
    for firing in fired:
        if "output" in firing:  # the state machine's echo saw the clock at the scheduled time
            assert firing["output"]["clock"] == firing["scheduled_time"]
            assert firing["output"]["event"]["as_of"] == firing["scheduled_time"]
            assert firing["execution_arn"].endswith(
                firing["scheduled_time"].replace("-", "").replace(":", "")[:13])
    daily = [e for e in calls("echo") if "daily" in e]
    assert daily[-1] == {"daily": times[-1]}
    assert runtime.clock_now() == to
    assert "reminder" not in {s["Name"] for s in scheduler.list_schedules()["Schedules"]}
    with pytest.raises(ClockError):
        runtime.advance_clock(start)


# -- HTTP adapter ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def http(runtime):
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {runtime.api_key}"
    return session


def test_http_requests_become_rest_proxy_events(runtime, http):
    response = http.post(f"{runtime.api_url}/things/42?x=1&x=2", json={"a": 1},
                         headers={"X-Trace": "t-1"})
    assert response.status_code == 201
    assert response.headers["x-amzn-RequestId"]
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    event = response.json()["received"]
    assert event["resource"] == "/{proxy+}" and event["httpMethod"] == "POST"
    assert event["path"] == "/v1/things/42"
    assert event["pathParameters"] == {"proxy": "v1/things/42"}
    assert event["queryStringParameters"] == {"x": "2"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
    assert event["headers"]["X-Trace"] == "t-1" and event["multiValueHeaders"]["X-Trace"] == ["t-1"]
    assert json.loads(event["body"]) == {"a": 1} and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "live"  # the stack's stage
    assert context["path"] == "/live/v1/things/42" and context["resourcePath"] == "/{proxy+}"
    assert context["identity"]["sourceIp"] == "127.0.0.1" and context["requestId"]


def test_binary_bodies_travel_base64_encoded(runtime, http):
    event = http.put(f"{runtime.api_url}/upload", data=b"\xff\x00\x01").json()["received"]
    assert event["isBase64Encoded"] is True and event["body"] == "/wAB"
    pdf = http.get(f"{runtime.api_url}/pdf")
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content == b"%PDF-1.7 fake"


def test_the_clock_endpoints(runtime, http):
    import requests

    assert requests.get(f"{runtime.api_url}/clock").json()["error"]["code"] == "invalid_api_key"
    now = http.get(f"{runtime.api_url}/clock").json()["now"]
    assert now == runtime.clock.path.read_text().strip()
    bad = http.post(f"{runtime.api_url}/clock/advance", data=b"{")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    missing = http.post(f"{runtime.api_url}/clock/advance", json={})
    assert missing.status_code == 422 and missing.json()["error"]["param"] == "to"
    backwards = http.post(f"{runtime.api_url}/clock/advance", json={"to": "2000-01-01"})
    assert backwards.status_code == 422
    assert set(backwards.json()["error"]) == {"type", "code", "message", "param"}
    moved = http.post(f"{runtime.api_url}/clock/advance", json={"to": now}).json()
    assert moved == {"now": now, "fired": []}


def test_the_cli_talks_to_a_running_platform(runtime, capsys, monkeypatch):
    import argparse

    from shared.local.cli import add_local_commands

    parser = argparse.ArgumentParser()
    add_local_commands(parser.add_subparsers(dest="command"))
    monkeypatch.setenv("BILLING_LOCAL_API_KEY", runtime.api_key)
    args = parser.parse_args(["local", "clock", "show", "--url", runtime.http.url])
    args.func(args)
    assert json.loads(capsys.readouterr().out)["now"] == runtime.clock.path.read_text().strip()
    up = parser.parse_args(["local", "up", "--port", "3001", "--data", "d", "--clock",
                            "2025-04-01", "--moto-port", "5001"])
    assert (up.port, up.data, up.clock, up.moto_port) == (3001, "d", "2025-04-01", 5001)


# -- DynamoDB Streams (the outbox) -------------------------------------------------------------

def _stream_items(key: str) -> list[dict]:
    return [r for e in calls("stream_consumer") for r in e["Records"] if r["dynamodb"]["Keys"]["pk"]["S"] == key]


def test_the_table_stream_delivers_committed_outbox_items_only(runtime):
    ddb, table = runtime.clients("dynamodb"), runtime.env["BILLING_TABLE"]
    started = time.perf_counter()
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": {"pk": {"S": "S#change"}, "sk": {"S": "A"}, "type": {"S": "thing"}}}},
        {"Put": {"TableName": table, "Item": {"pk": {"S": "S#event"}, "sk": {"S": "A"}, "type": {"S": "outbox"}}}}])
    with pytest.raises(ddb.exceptions.TransactionCanceledException):  # rolled back: never on the stream
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "S#rolled-back"}, "sk": {"S": "A"},
                                                  "type": {"S": "outbox"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": "S#change"}, "sk": {"S": "A"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}}])
    ddb.put_item(TableName=table, Item={"pk": {"S": "S#event"}, "sk": {"S": "A"}, "type": {"S": "outbox"},
                                        "v": {"S": "2"}})  # MODIFY: filtered out
    ddb.put_item(TableName=table, Item={"pk": {"S": "S#after"}, "sk": {"S": "A"}, "type": {"S": "outbox"}})
    (record,) = wait_for(lambda: _stream_items("S#event"))
    wait_for(lambda: _stream_items("S#after"))
    assert time.perf_counter() - started < 2
    assert (record["eventName"], record["eventSource"], record["eventVersion"]) == ("INSERT", "aws:dynamodb", "1.1")
    assert record["eventSourceARN"].startswith(f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/")
    assert record["dynamodb"]["NewImage"] == {"pk": {"S": "S#event"}, "sk": {"S": "A"}, "type": {"S": "outbox"}}
    assert record["dynamodb"]["StreamViewType"] == "NEW_IMAGE"
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)
    assert _stream_items("S#change") == [] and _stream_items("S#rolled-back") == []
    assert len(_stream_items("S#event")) == 1


def test_a_reported_stream_record_is_retried_then_its_batch_goes_to_the_dlq(runtime):
    ddb, table = runtime.clients("dynamodb"), runtime.env["BILLING_TABLE"]
    for key, extra in (("P#ok", {}), ("P#poison", {"poison": {"S": "1"}}), ("P#next", {})):
        ddb.put_item(TableName=table, Item={"pk": {"S": key}, "sk": {"S": "A"}, "type": {"S": "outbox"}, **extra})
    sqs = runtime.clients("sqs")
    url = sqs.get_queue_url(QueueName=runtime.physical_id("StreamDlq").split("/")[-1])["QueueUrl"]
    (message,) = wait_for(lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"), timeout=20)
    info = json.loads(message["Body"])["DDBStreamBatchInfo"]
    poison = _stream_items("P#poison")
    assert len(poison) == 3  # the first attempt and two retries (MaximumRetryAttempts 2)
    assert info["startSequenceNumber"] == poison[0]["dynamodb"]["SequenceNumber"]
    wait_for(lambda: _stream_items("P#next"))  # the stream goes on after the batch is given up
    assert len(_stream_items("P#ok")) == 1  # before the failed record: checkpointed, not sent again
