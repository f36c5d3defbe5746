"""Webhooks: integrators register endpoints; every platform event is POSTed, signed.

The signature header is `Billing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the endpoint's secret>` (the scheme Stripe uses), so a receiver can
check both origin and freshness.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime

from pydantic import Field, field_validator

from shared.billing.errors import RetryableError
from shared.billing.models import Model
from shared.services.context import Actor, Ports
from shared.services.ids import new_id

Post = Callable[[str, bytes, dict[str, str]], int]


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
    except (urllib.error.URLError, TimeoutError) as error:
        raise RetryableError(f"{url}: {error}") from error


def dispatch(ports: Ports, envelope: dict, post: Post = http_post) -> int:
    """POST one event to every endpoint subscribed to its type; returns how many got it.

    Any failure raises RetryableError, so the queue redelivers the event (and, after its
    receive limit, parks it in the dead-letter queue for replay).
    """
    body = json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(ports.clock.now().timestamp())
    failures, delivered = [], 0
    for endpoint, secret in ports.repo.webhook_endpoints():
        if "*" not in endpoint["events"] and envelope["type"] not in endpoint["events"]:
            continue
        headers = {"Content-Type": "application/json", "Billing-Event-Id": envelope["id"],
                   "Billing-Signature": sign(secret, timestamp, body)}
        status = post(endpoint["url"], body, headers)
        if 200 <= status < 300:
            delivered += 1
        else:
            failures.append(f"{endpoint['url']} answered {status}")
    if failures:
        raise RetryableError(f"event {envelope['id']}: " + "; ".join(failures))
    return delivered
