"""What every use case receives: who acts, and the ports it may use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.adapters.repository import Repository
from shared.billing.errors import PermissionDeniedError
from shared.billing.models import AuditEvent, Model
from shared.services.ids import new_id

# What each role may do. Reading is open to every role.
PERMISSIONS: dict[str, set[str]] = {
    "admin": {"read", "contracts:write", "usage:write", "billing:run", "invoices:write", "entities:write",
              "keys:write"},
    "cre": {"read", "contracts:write", "usage:write"},
    "finance": {"read", "billing:run", "invoices:write"},
}


@dataclass(frozen=True)
class Actor:
    name: str  # "key:alice", "cli:root", "system:bill-run"
    role: str
    correlation_id: str | None = None

    def require(self, permission: str) -> None:
        if permission not in PERMISSIONS.get(self.role, set()):
            raise PermissionDeniedError(
                f"role '{self.role}' may not do this (needs '{permission}')", code="forbidden"
            )


SYSTEM = Actor("system:billing", "admin")


class Clock(Protocol):
    def now(self) -> datetime: ...


class Publisher(Protocol):
    """Puts envelopes on the event bus. Only the outbox publisher (shared/services/outbox.py) uses it:
    a use case never publishes after its commit, it commits its events (`Ports.event`)."""

    def put(self, events: list[dict]) -> list[int]: ...  # one PutEvents (<= 10); the indexes refused


class Workflows(Protocol):
    def start_bill_run(self, name: str, payload: dict) -> str: ...


class Documents(Protocol):
    def put(self, key: str, body: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...


class Previews(Protocol):
    def render(self, invoice_id: str, mode: str) -> bytes: ...


class Mailer(Protocol):
    def send(self, to: list[str], subject: str, text: str, html: str | None = None,
             cc: list[str] | None = None, attachments: list[tuple[str, bytes, str]] = (),
             bcc: list[str] | None = None, tags: dict[str, str] | None = None) -> str: ...


@dataclass
class Ports:
    repo: Repository
    clock: Clock
    publisher: Publisher | None = None  # for shared/services/outbox.py only
    workflows: Workflows | None = None
    documents: Documents | None = None
    mailer: Mailer | None = None
    previews: Previews | None = None
    settings: Any = None
    tax: Any = None  # shared.services.taxes.TaxSetup: tax engines and exchange rates

    def audit(self, actor: Actor, action: str, obj_type: str, obj_id: str,
              before: Model | dict | None = None, after: Model | dict | None = None) -> AuditEvent:
        return AuditEvent(
            id=new_id("evt"),
            occurred_at=self.clock.now(),
            actor=actor.name,
            role=actor.role,
            action=action,
            object_type=obj_type,
            object_id=obj_id,
            before=_plain(before),
            after=_plain(after),
            correlation_id=actor.correlation_id,
        )

    def event(self, actor: Actor, event_type: str, data: dict) -> dict:
        """The envelope of an event the change announces: id, type, version, time, correlation id, data.

        Nothing is sent here. Pass it with the change, in the same transaction
        (`store.transact(ops, audit, events=[...])` or a repository method's `events=`): it is
        written to the outbox with the change, and published from there only if it commits."""
        return {
            "id": new_id("evt"),
            "type": event_type,
            "version": "1",
            "occurred_at": self.clock.now().isoformat().replace("+00:00", "Z"),
            "correlation_id": actor.correlation_id,
            "actor": actor.name,
            "data": data,
        }


def as_updated(model: Model) -> dict:
    """`model` as the update being written stores it (its version + 1): what an event of that update carries."""
    return {**model.model_dump(mode="json"), "version": model.version + 1}


def _plain(value: Model | dict | None) -> dict | None:
    if value is None or isinstance(value, dict):
        return value
    return value.model_dump(mode="json")
