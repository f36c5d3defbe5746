"""Webhook delivery (shared/services/webhooks.py): signed attempts recorded one by one, exponential
backoff, no second call to an endpoint that took the event, replay with a fresh signature; and the
webhooks_dispatch handler delaying a failed message's retry. On moto's in-memory DynamoDB and SQS.

Signature scheme checked against Stripe's documented one (the platform's is the same:
`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
https://docs.stripe.com/webhooks#verify-manually).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.billing.errors import NotFoundError, PermissionDeniedError, RetryableError
from shared.services import webhooks
from shared.services.context import Actor
from stacks.constructs.events import WEBHOOKS_MAX_RECEIVE_COUNT
from tests.unit.moto_ports import AT, moto_world

ADMIN = Actor("key:admin", "admin")
ENVELOPE = {"id": "evt_01", "type": "invoice.finalized", "version": "1", "occurred_at": "2025-04-01T02:00:05Z",
            "correlation_id": "br_1", "actor": "system:bill-run", "data": {"invoice_id": "inv_1"}}


class Receiver:
    """A fake endpoint per URL: answers the statuses given, in turn (an exception is raised)."""

    def __init__(self, **answers):
        self.answers = {f"https://{host}.example/hook": list(seq) for host, seq in answers.items()}
        self.calls: list[tuple[str, bytes, dict]] = []

    def __call__(self, url: str, body: bytes, headers: dict) -> int:
        self.calls.append((url, body, headers))
        answer = self.answers[url].pop(0) if len(self.answers[url]) > 1 else self.answers[url][0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def hosts(self) -> list[str]:
        return [url.removeprefix("https://").split(".")[0] for url, _, _ in self.calls]


def verify(secret: str, body: bytes, header: str) -> int:
    """Stripe's manual check: split t= and v1=, HMAC-SHA256 over "<t>.<body>", constant-time compare."""
    parts = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"])
    return int(parts["t"])


@pytest.fixture
def world():
    with moto_world() as world:
        yield world


def endpoint(world, host: str, events=("*",)) -> tuple[dict, str]:
    created, secret = webhooks.create_endpoint(world.ports, ADMIN, webhooks.WebhookEndpointCreate(
        url=f"https://{host}.example/hook", events=list(events)))
    return created.model_dump(mode="json"), secret


def test_backoff_is_exponential_then_stops_at_the_queues_receive_limit():
    assert webhooks.MAX_ATTEMPTS == WEBHOOKS_MAX_RECEIVE_COUNT
    assert [webhooks.retry_delay(n) for n in range(1, 7)] == [60, 240, 960, 3840, None, None]


@given(st.integers(min_value=1, max_value=webhooks.MAX_ATTEMPTS - 2))
def test_each_delay_is_the_factor_times_the_one_before(attempt):
    assert webhooks.retry_delay(attempt + 1) == webhooks.RETRY_FACTOR * webhooks.retry_delay(attempt)


def test_a_failing_endpoint_is_retried_alone_until_it_takes_the_event(world):
    good, _ = endpoint(world, "good")
    flaky, flaky_secret = endpoint(world, "flaky")
    endpoint(world, "other", events=["customer.created"])  # not subscribed to invoice.finalized
    post = Receiver(good=[200], flaky=[503, RetryableError("connection refused"), 204])

    with pytest.raises(webhooks.DeliveryFailed) as first:
        webhooks.dispatch(world.ports, ENVELOPE, post, attempt=1)
    assert first.value.retry_in == 60 and "HTTP 503" in first.value.message
    world.clock.at += timedelta(minutes=1)
    with pytest.raises(webhooks.DeliveryFailed) as second:
        webhooks.dispatch(world.ports, ENVELOPE, post, attempt=2)
    assert second.value.retry_in == 240 and "connection refused" in second.value.message
    world.clock.at += timedelta(minutes=4)
    assert webhooks.dispatch(world.ports, ENVELOPE, post, attempt=3) == 1

    assert post.hosts() == ["good", "flaky", "flaky", "flaky"]  # good got it once
    for _, body, headers in post.calls:
        assert json.loads(body) == ENVELOPE and headers["Billing-Event-Id"] == "evt_01"
    stamps = [verify(flaky_secret, body, headers["Billing-Signature"]) for _, body, headers in post.calls[1:]]
    assert stamps == [int(AT.timestamp()), int(AT.timestamp()) + 60, int(AT.timestamp()) + 300]

    records, more = webhooks.list_deliveries(world.ports, ADMIN, flaky["id"], 10, None)
    assert not more
    assert [(r.attempt, r.status_code, r.succeeded) for r in records] == [(3, 204, True), (2, None, False),
                                                                          (1, 503, False)]  # newest first
    assert [r.next_retry_at for r in records] == [None, AT + timedelta(minutes=5), AT + timedelta(minutes=1)]
    assert records[1].error.endswith("connection refused") and records[2].error == "HTTP 503"
    assert all(r.duration_ms >= 0 and r.event_type == "invoice.finalized" for r in records)
    (only,), _ = webhooks.list_deliveries(world.ports, ADMIN, good["id"], 10, None)
    assert (only.attempt, only.succeeded) == (1, True)


def test_the_last_attempt_has_no_next_retry(world):
    flaky, _ = endpoint(world, "flaky")
    with pytest.raises(webhooks.DeliveryFailed) as failure:
        webhooks.dispatch(world.ports, ENVELOPE, Receiver(flaky=[500]), attempt=webhooks.MAX_ATTEMPTS)
    assert failure.value.retry_in is None
    (record,), _ = webhooks.list_deliveries(world.ports, ADMIN, flaky["id"], 10, None)
    assert record.next_retry_at is None and record.status_code == 500


def test_replay_sends_the_stored_event_again_with_a_fresh_signature(world):
    hook, secret = endpoint(world, "hook")
    post = Receiver(hook=[200])
    webhooks.dispatch(world.ports, ENVELOPE, post)
    world.clock.at = datetime(2025, 4, 3, 9, 0, tzinfo=UTC)

    (replayed,) = webhooks.replay(world.ports, ADMIN, "evt_01", post=post)
    assert (replayed.replay, replayed.succeeded, replayed.next_retry_at) == (True, True, None)
    (_, first_body, first), (_, body, headers) = post.calls
    assert body == first_body
    assert verify(secret, body, headers["Billing-Signature"]) == int(world.clock.at.timestamp())
    assert verify(secret, body, first["Billing-Signature"]) == int(AT.timestamp())
    records, _ = webhooks.list_deliveries(world.ports, ADMIN, hook["id"], 10, None)
    assert [r.replay for r in records] == [True, False]


def test_a_redelivered_message_does_not_call_an_endpoint_that_took_the_event(world):
    endpoint(world, "hook")
    webhooks.dispatch(world.ports, ENVELOPE, Receiver(hook=[200]))
    again = Receiver(hook=[500])
    assert webhooks.dispatch(world.ports, ENVELOPE, again, attempt=2) == 0
    assert again.calls == []


def test_replay_to_one_endpoint_and_what_it_refuses(world):
    first, _ = endpoint(world, "first")
    second, _ = endpoint(world, "second", events=["customer.created"])
    webhooks.dispatch(world.ports, ENVELOPE, Receiver(first=[200], second=[200]))
    post = Receiver(first=[200], second=[410])
    (record,) = webhooks.replay(world.ports, ADMIN, "evt_01", second["id"], post=post)
    assert (record.endpoint_id, record.status_code, record.succeeded) == (second["id"], 410, False)
    with pytest.raises(NotFoundError) as missing:
        webhooks.replay(world.ports, ADMIN, "evt_missing", post=post)
    assert missing.value.param == "event_id"
    with pytest.raises(NotFoundError) as no_endpoint:
        webhooks.replay(world.ports, ADMIN, "evt_01", "we_missing", post=post)
    assert no_endpoint.value.param == "endpoint_id"
    with pytest.raises(PermissionDeniedError):
        webhooks.replay(world.ports, Actor("key:cre", "cre"), "evt_01", post=post)
    with pytest.raises(NotFoundError):
        webhooks.list_deliveries(world.ports, ADMIN, "we_missing", 10, None)


def test_deliveries_page_newest_first(world):
    hook, _ = endpoint(world, "hook")
    for n in range(5):
        webhooks.dispatch(world.ports, ENVELOPE | {"id": f"evt_{n}"}, Receiver(hook=[200]))
    seen, cursor = [], None
    while True:
        page, more = webhooks.list_deliveries(world.ports, ADMIN, hook["id"], 2, cursor)
        seen += [r.event_id for r in page]
        if not more:
            break
        cursor = page[-1].id
    assert seen == [f"evt_{n}" for n in reversed(range(5))]


# -- the SQS handler -----------------------------------------------------------------------------

class Context:
    function_name, memory_limit_in_mb, aws_request_id = "webhooks_dispatch", 512, "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:webhooks_dispatch"


def test_the_handler_delays_a_failed_message_by_the_backoff(world, monkeypatch):
    import functions.webhooks_dispatch.handler as dispatch_handler

    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="WebhooksQueue", Attributes={"VisibilityTimeout": "360"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for envelope in (ENVELOPE, ENVELOPE | {"id": "evt_02", "type": "customer.created"}):
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"detail": envelope}))
    message, other = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=2,
                                         AttributeNames=["All"])["Messages"]
    endpoint(world, "flaky", events=["invoice.finalized"])
    monkeypatch.setattr(dispatch_handler, "default_ports", lambda: world.ports)
    monkeypatch.setattr(webhooks, "http_post", Receiver(flaky=[502]))
    monkeypatch.setattr(dispatch_handler.retries(), "client", sqs)
    delayed, change = [], sqs.change_message_visibility
    monkeypatch.setattr(sqs, "change_message_visibility", lambda **kw: (delayed.append(kw), change(**kw))[1])

    records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "2"}, "messageAttributes": {}, "md5OfBody": "",
                "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1"} for m in (message, other)]
    result = dispatch_handler.handler({"Records": records}, Context())  # customer.created: no endpoint, done
    assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert delayed == [{"QueueUrl": queue_url, "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 240}]
    dispatch_handler.retries().delay(arn, message["ReceiptHandle"], 0)  # the same call, visible again now
    (again,) = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=2)["Messages"]
    assert again["MessageId"] == message["MessageId"]
