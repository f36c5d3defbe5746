"""The transactional outbox's publisher: what a committed change announces reaches the event bus.

A use case never publishes after its commit (a failure there would lose the event): it builds
the envelope with `Ports.event` and commits it with the change (`transact(..., events=[...])`),
as an outbox item `OUTBOX#<event id>`. The table's stream (NEW_IMAGE, filtered on new outbox
items) hands those items to `outbox_publish`, which puts them on the bus here. Delivery is at
least once: a failed batch is retried from its first failed record, so an event can be published
twice; every consumer is idempotent by event id or by its natural key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from shared.adapters.dynamodb import OUTBOX_TYPE
from shared.services.context import Publisher

log = logging.getLogger(__name__)
PUT_EVENTS_MAX = 10  # entries per PutEvents request


def outbox_entries(records: Iterable[dict]) -> list[tuple[str, dict]]:
    """(sequence number, envelope) of each new outbox item in a DynamoDB Streams batch, in stream order."""
    entries = []
    for record in records:
        image = record.get("dynamodb", {}).get("NewImage") or {}
        if record.get("eventName") != "INSERT" or image.get("type", {}).get("S") != OUTBOX_TYPE:
            continue  # the event source's filter lets only these through; anything else is not ours
        entries.append((record["dynamodb"]["SequenceNumber"], json.loads(image["data"]["S"])))
    return entries


def publish_records(publisher: Publisher, records: list[dict]) -> list[str]:
    """Publish the batch's outbox entries in order, 10 per request; return the sequence numbers to report
    as failed: the first entry not published (Lambda retries the stream from there, so nothing after it is
    lost, and what was already published may go out again)."""
    entries = outbox_entries(records)
    for start in range(0, len(entries), PUT_EVENTS_MAX):
        chunk = entries[start:start + PUT_EVENTS_MAX]
        try:
            refused = publisher.put([envelope for _, envelope in chunk])
        except Exception:  # the bus could not be reached: retry this chunk and what follows
            log.exception("PutEvents failed for %d outbox entries", len(chunk))
            return [chunk[0][0]]
        if refused:
            log.warning("EventBridge refused outbox entries %s", [chunk[i][1]["id"] for i in refused])
            return [chunk[min(refused)][0]]
    return []
