"""Delivery logs, kept beside the records they describe and never inside them.

A finalized invoice is immutable, so what happens to its email afterwards (sent, delivered,
bounced, complained, rejected) is appended as separate items of the invoice's partition;
webhook events and every attempt to deliver them are stored the same way, for replay and
for the delivery history of an endpoint.

Key layout (table `BillingTable`, next to shared/adapters/repository.py's):

| object | pk | sk | gsi1 |
|---|---|---|---|
| invoice delivery log entry | INV#invoice_id | DLV#<UTC yyyymmddThhmmss.ffffffZ>#entry_id | |
| SES message -> invoice | SESMSG#message_id | A | |
| dispatched webhook event | WHEVT#event_id | A | WEBHOOK_EVENTS / event_id |
| "delivered to this endpoint" marker | WHEVT#event_id | OK#endpoint_id | |
| webhook delivery attempt | WH#endpoint_id | DLV#attempt_id (time-ordered) | |

Entries are written with "must not exist": an entry written twice (a retried Lambda, an
event delivered twice by EventBridge) is stored once. There is no delete anywhere here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from shared.adapters.dynamodb import DynamoStore, Item, Put
from shared.billing.errors import ConflictError
from shared.billing.models import AuditEvent

MAX_LOG_ENTRIES = 1000  # per invoice: a few per email sent, so far more than any invoice has


def log_stamp(moment: datetime) -> str:
    """Sortable UTC text with microseconds: `20250301T020005.123456Z`."""
    return moment.strftime("%Y%m%dT%H%M%S.%fZ")


def invoice_log_item(entry: dict) -> Item:
    occurred_at = datetime.fromisoformat(entry["occurred_at"].replace("Z", "+00:00"))
    return Item(f"INV#{entry['invoice_id']}", f"DLV#{log_stamp(occurred_at)}#{entry['id']}",
                "invoice_delivery", entry)


def message_item(message_id: str, invoice_id: str) -> Item:
    return Item(f"SESMSG#{message_id}", "A", "ses_message", {"invoice_id": invoice_id})


class DeliveryRepository:
    def __init__(self, store: DynamoStore):
        self.store = store

    # invoice emails ----------------------------------------------------------------
    def record_send(self, entry: dict, audit: Iterable[AuditEvent] = (),
                    invoice_item: Item | None = None, expected_version: int | None = None) -> None:
        """A `sent` entry and its message index, with the invoice's new version when given, at once."""
        writes = [Put(invoice_log_item(entry)), Put(message_item(entry["message_id"], entry["invoice_id"]))]
        if invoice_item is not None:
            writes.insert(0, Put(invoice_item, expected_version))
        self.store.transact(writes, audit)

    def append(self, entry: dict) -> bool:
        """Append an entry; False when this very entry is already stored."""
        try:
            self.store.transact([Put(invoice_log_item(entry))])
        except ConflictError:
            return False
        return True

    def invoice_log(self, invoice_id: str) -> list[dict]:
        """The invoice's entries, oldest first."""
        items, _ = self.store.query(f"INV#{invoice_id}", begins_with="DLV#", limit=MAX_LOG_ENTRIES)
        return [item.data for item in items]

    def invoice_of_message(self, message_id: str) -> str | None:
        item = self.store.get(f"SESMSG#{message_id}", "A")
        return item.data["invoice_id"] if item else None

    # webhooks ----------------------------------------------------------------------
    def store_event(self, envelope: dict) -> bool:
        """Keep a dispatched event for replay; False when it was stored before."""
        item = Item(f"WHEVT#{envelope['id']}", "A", "webhook_event", envelope,
                    indexes={"gsi1": ("WEBHOOK_EVENTS", envelope["id"])})
        try:
            self.store.transact([Put(item)])
        except ConflictError:
            return False
        return True

    def get_event(self, event_id: str) -> dict | None:
        item = self.store.get(f"WHEVT#{event_id}", "A")
        return item.data if item else None

    def delivered_endpoints(self, event_id: str) -> set[str]:
        """Endpoints that already answered 2xx for this event."""
        items, _ = self.store.query(f"WHEVT#{event_id}", begins_with="OK#")
        return {item.sk.removeprefix("OK#") for item in items}

    def record_attempt(self, attempt: dict) -> None:
        """One attempt; a successful one also marks the event delivered to its endpoint."""
        writes = [Put(Item(f"WH#{attempt['endpoint_id']}", f"DLV#{attempt['id']}", "webhook_delivery", attempt))]
        if attempt["succeeded"] and not attempt.get("replay"):
            writes.append(Put(Item(f"WHEVT#{attempt['event_id']}", f"OK#{attempt['endpoint_id']}",
                                   "webhook_delivered", {"delivery_id": attempt["id"]})))
        try:
            self.store.transact(writes)
        except ConflictError:  # a concurrent copy of the same message delivered it first
            self.store.transact(writes[:1])

    def endpoint_attempts(self, endpoint_id: str, limit: int, after: str | None) -> tuple[list[dict], bool]:
        """An endpoint's attempts, newest first; `after` is the id of the last one seen."""
        items, more = self.store.query(f"WH#{endpoint_id}", begins_with="DLV#", limit=limit,
                                       after=f"DLV#{after}" if after else None, newest_first=True)
        return [item.data for item in items], more

    def get_endpoint(self, endpoint_id: str) -> dict | None:
        """The endpoint without its secret, or None."""
        item = self.store.get(f"WH#{endpoint_id}", "A")
        return {k: v for k, v in item.data.items() if k != "secret"} if item else None
