"""Webhooks: integrators register endpoints; every platform event is POSTed, signed.

The signature header is `Billing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the endpoint's secret>` (the scheme Stripe uses), so a receiver can
check both origin and freshness.

Delivery is at least once. Each event is stored when first dispatched (for replay); each
attempt on each endpoint is recorded (status code, duration, next retry). An endpoint that
fails is retried with exponential backoff, `retry_delay(attempt)`, by keeping the queue
message invisible that long; endpoints that already answered 2xx are not called again.
After `MAX_ATTEMPTS` receives the queue parks the message in its dead-letter queue, and
`replay` sends a stored event again, signed with a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import Field, field_validator

from shared.adapters.delivery_repository import DeliveryRepository
from shared.billing.errors import NotFoundError, RetryableError
from shared.billing.models import Model
from shared.services.context import Actor, Ports
from shared.services.ids import new_id

Post = Callable[[str, bytes, dict[str, str]], int]

MAX_ATTEMPTS = 5  # = WebhooksQueue's maxReceiveCount (stacks/constructs/events.py); then the DLQ
RETRY_BASE_SECONDS = 60
RETRY_FACTOR = 4  # retries 1, 4, 16 and 64 minutes after the failed attempts: about 85 minutes in all
ERROR_CHARS = 300


class WebhookEndpointCreate(Model):
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=lambda: ["*"], description="event types, or ['*']")
    description: str | None = None

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("url must be an http(s) URL")
        return value


class WebhookEndpoint(WebhookEndpointCreate):
    id: str
    created_at: datetime
    version: int = 1


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def create_endpoint(ports: Ports, actor: Actor, body: WebhookEndpointCreate) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; its signing secret is returned once."""
    actor.require("keys:write")
    endpoint = WebhookEndpoint(id=new_id("we"), created_at=ports.clock.now(), **body.model_dump())
    secret = f"whsec_{secrets.token_hex(24)}"
    ports.repo.create_webhook_endpoint(endpoint.model_dump(mode="json"), secret,
                                       ports.audit(actor, "webhook_endpoint.created", "webhook_endpoint",
                                                   endpoint.id, after=endpoint))
    return endpoint, secret


def http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out, not HTTP
        raise RetryableError(f"{url}: {error!r}") from error


class WebhookDelivery(Model):
    """One attempt to deliver one event to one endpoint."""

    id: str
    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    attempt: int = Field(description="1 for the first try; the queue's receive count after")
    replay: bool = False
    attempted_at: datetime
    status_code: int | None = Field(default=None, description="the endpoint's HTTP status; none when unreachable")
    error: str | None = None
    duration_ms: int
    succeeded: bool
    next_retry_at: datetime | None = Field(default=None, description="when a failed attempt is tried again; "
                                                                     "none once it goes to the dead-letter queue")


class WebhookReplay(Model):
    endpoint_id: str | None = Field(default=None, description="only this endpoint; default every subscribed one")


class DeliveryFailed(RetryableError):
    """Some endpoint did not take the event; `retry_in` seconds until the next attempt (None: no more)."""

    def __init__(self, message: str, retry_in: int | None):
        super().__init__(message)
        self.retry_in = retry_in


def retry_delay(attempt: int) -> int | None:
    """Seconds to wait after failed attempt `attempt` (1-based); None after the last one."""
    if attempt >= MAX_ATTEMPTS:
        return None
    return RETRY_BASE_SECONDS * RETRY_FACTOR ** (max(attempt, 1) - 1)


def _log(ports: Ports) -> DeliveryRepository:
    return DeliveryRepository(ports.repo.store)


def _subscribed(ports: Ports, event_type: str) -> list[tuple[dict, str]]:
    return [(endpoint, secret) for endpoint, secret in ports.repo.webhook_endpoints()
            if "*" in endpoint["events"] or event_type in endpoint["events"]]


def _body(envelope: dict) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


def _attempt(ports: Ports, endpoint: dict, secret: str, envelope: dict, body: bytes, post: Post,
             attempt: int, replay: bool, retry_in: int | None) -> WebhookDelivery:
    now = ports.clock.now()
    headers = {"Content-Type": "application/json", "Billing-Event-Id": envelope["id"],
               "Billing-Signature": sign(secret, int(now.timestamp()), body)}
    started = time.perf_counter()
    status, error = None, None
    try:
        status = post(endpoint["url"], body, headers)
    except RetryableError as failure:
        error = failure.message[:ERROR_CHARS]
    duration_ms = round((time.perf_counter() - started) * 1000)
    succeeded = status is not None and 200 <= status < 300
    if status is not None and not succeeded:
        error = f"HTTP {status}"
    retry_at = None if succeeded or replay or retry_in is None else now + timedelta(seconds=retry_in)
    record = WebhookDelivery(
        id=new_id("whd"), event_id=envelope["id"], event_type=envelope["type"], endpoint_id=endpoint["id"],
        url=endpoint["url"], attempt=attempt, replay=replay, attempted_at=now, status_code=status, error=error,
        duration_ms=duration_ms, succeeded=succeeded, next_retry_at=retry_at)
    _log(ports).record_attempt(record.model_dump(mode="json"))
    return record


def dispatch(ports: Ports, envelope: dict, post: Post | None = None, attempt: int = 1) -> int:
    """POST one event to every subscribed endpoint that has not taken it yet; returns how many took it now.

    `attempt` is the queue's receive count. Any failure raises DeliveryFailed (a
    RetryableError) carrying the backoff, so the queue redelivers the event later and, after
    its receive limit, parks it in the dead-letter queue.
    """
    post, log = post or http_post, _log(ports)
    log.store_event(envelope)
    done = log.delivered_endpoints(envelope["id"])  # the event delivered again (outbox, EventBridge): at most once each
    body, retry_in = _body(envelope), retry_delay(attempt)
    failures, delivered = [], 0
    for endpoint, secret in _subscribed(ports, envelope["type"]):
        if endpoint["id"] in done:
            continue
        record = _attempt(ports, endpoint, secret, envelope, body, post, attempt, False, retry_in)
        if record.succeeded:
            delivered += 1
        else:
            failures.append(f"{endpoint['url']}: {record.error}")
    if failures:
        raise DeliveryFailed(f"event {envelope['id']} attempt {attempt}: " + "; ".join(failures), retry_in)
    return delivered


def replay(ports: Ports, actor: Actor, event_id: str, endpoint_id: str | None = None,
           post: Post | None = None) -> list[WebhookDelivery]:
    """Send a stored event again, now, signed with a fresh timestamp; each attempt is recorded.

    To `endpoint_id` only when given (it need not subscribe to the type), else to every
    endpoint subscribed to the event's type. Not retried: replay again if it fails.
    """
    actor.require("keys:write")
    envelope = _log(ports).get_event(event_id)
    if envelope is None:
        raise NotFoundError(f"no stored webhook event '{event_id}'", param="event_id")
    if endpoint_id:
        targets = [(e, s) for e, s in ports.repo.webhook_endpoints() if e["id"] == endpoint_id]
        if not targets:
            raise NotFoundError(f"no webhook endpoint '{endpoint_id}'", param="endpoint_id")
    else:
        targets = _subscribed(ports, envelope["type"])
    body, post = _body(envelope), post or http_post
    return [_attempt(ports, endpoint, secret, envelope, body, post, 1, True, None) for endpoint, secret in targets]


def list_deliveries(ports: Ports, actor: Actor, endpoint_id: str, limit: int,
                    after: str | None) -> tuple[list[WebhookDelivery], bool]:
    """An endpoint's delivery attempts, newest first."""
    actor.require("keys:write")
    log = _log(ports)
    if log.get_endpoint(endpoint_id) is None:
        raise NotFoundError(f"no webhook endpoint '{endpoint_id}'", param="id")
    records, more = log.endpoint_attempts(endpoint_id, limit, after)
    return [WebhookDelivery.model_validate(r) for r in records], more
