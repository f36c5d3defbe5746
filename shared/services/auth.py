"""API keys: stored only as SHA-256 hashes, each bound to a role."""

from __future__ import annotations

import hashlib
import secrets

from shared.billing.errors import AuthenticationError, ConflictError
from shared.services.context import SYSTEM, Actor, Ports
from shared.services.requests.access import ApiKeyCreate


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def authenticate(ports: Ports, authorization: str | None, correlation_id: str | None = None) -> Actor:
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthenticationError("send your API key as 'Authorization: Bearer <key>'",
                                  param="Authorization")
    record = ports.repo.get_api_key(key_hash(authorization.removeprefix("Bearer ").strip()))
    if record is None or record.get("revoked"):
        raise AuthenticationError("this API key is not valid", param="Authorization")
    return Actor(f"key:{record['name']}", record["role"], correlation_id)


def create_api_key(ports: Ports, actor: Actor, body: ApiKeyCreate, key: str | None = None) -> tuple[dict, str]:
    """A new key (returned once, never stored in clear) for `body.role`."""
    actor.require("keys:write")
    key = key or f"sk_{body.role}_{secrets.token_hex(20)}"
    if ports.repo.resolve_alias("api_key", body.name):
        raise ConflictError(f"an API key named '{body.name}' exists", param="name")
    record = {"name": body.name, "role": body.role, "created_at": ports.clock.now().isoformat(),
              "created_by": actor.name, "prefix": key[:10]}
    ports.repo.create_api_key(key_hash(key), record,
                              ports.audit(actor, "api_key.created", "api_key", body.name, after=record))
    return record, key


def ensure_api_key(ports: Ports, key: str, role: str = "admin", name: str = "local") -> dict:
    """Register `key` unless it is known already (the local platform's start-up key)."""
    existing = ports.repo.get_api_key(key_hash(key))
    if existing:
        return existing
    record, _ = create_api_key(ports, SYSTEM, ApiKeyCreate(name=name, role=role), key=key)
    return record
