"""Storage of revenue schedules and Finance's export records on top of DynamoStore, and the
Finance settings read from the environment.

Key layout (table `BillingTable`, beside `shared/adapters/repository.py`'s):

| object | pk | sk | gsi1 | gsi2 |
|---|---|---|---|---|
| revenue schedule | REV#invoice | S#pos | REVSUB#sub / invoice#pos | REVENT#entity#shard / billed_month#invoice#pos |
| invoice processed | REV#invoice | DOC | | REVDOC#entity / issue_date#invoice |
| invoice void applied | REV#invoice | VOID | | REVDOC#entity / void_date#invoice |
| finance export | EXPORT#entity#month | A | EXPORTS#entity / month | EXPORTS / month#entity |

`pos` is the line's index in the invoice's `lines[]` (4 digits) and the bundle component's index
(2 digits; 00 for a line without components): `0003#00`. `shard` is crc32(invoice id) mod 8.
A schedule's id is `rs_<invoice id without inv_>_<line>_<component index>`. The "invoice
processed" marker is written with "must not exist" in the transaction that stores an invoice's
schedules (or applies a credit note), so a redelivered `invoice.finalized` changes nothing; the
"void applied" marker likewise in the transaction that voids them (`invoice.voided`).
Schedules of one billing entity spread over `REVENUE_SHARDS` partitions of gsi2, so invoices
finalized at month end do not all land on one partition.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import asdict
from datetime import date
from decimal import Decimal
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.aws import S3Documents
from shared.adapters.dynamodb import DynamoStore, Item, Put
from shared.billing.models import AuditEvent
from shared.billing.revrec import RevenueSchedule, ScheduleEntry

REVENUE_SHARDS = 8


class FinanceSettings(BaseModel):
    """Who hears about reconciliation findings, and where exports go (read once per cold start)."""

    model_config = ConfigDict(frozen=True)

    cre_email: str = Field(default="cre@example.com", alias="CRE_EMAIL")
    finance_email: str = Field(default="finance@example.com", alias="FINANCE_EMAIL")
    ops_email: str = Field(default="ops@example.com", alias="OPS_EMAIL")  # UC04; comma-separated

    @property
    def ops(self) -> list[str]:
        return [a.strip() for a in self.ops_email.split(",") if a.strip()]
    exports_bucket: str | None = Field(default=None, alias="EXPORTS_BUCKET")

    @property
    def recipients(self) -> list[str]:
        return list(dict.fromkeys(e for e in (self.cre_email, self.finance_email) if e))


@lru_cache(maxsize=1)
def finance_settings() -> FinanceSettings:
    import os

    return FinanceSettings.model_validate({k: v for k, v in os.environ.items() if v != ""})


def exports_store(config: FinanceSettings | None = None) -> S3Documents:
    """The Finance bucket (`EXPORTS_BUCKET`); one client per bucket and container."""
    return _store((config or finance_settings()).exports_bucket)


@lru_cache(maxsize=4)
def _store(bucket: str | None) -> S3Documents:
    return S3Documents(bucket)


def schedule_id(invoice_id: str, line: int, component: int) -> str:
    return f"rs_{invoice_id.removeprefix('inv_')}_{line}_{component}"


def _shard(invoice_id: str) -> int:
    return zlib.crc32(invoice_id.encode()) % REVENUE_SHARDS


def schedule_to_data(schedule: RevenueSchedule) -> dict:
    data = asdict(schedule)
    for key in ("amount", "consumed_units", "prepaid_units"):
        data[key] = None if data[key] is None else format(data[key], "f")
    for key in ("service_start", "service_end"):
        data[key] = data[key].isoformat()
    for key in ("entries", "credits"):
        data[key] = [{"period": e["period"], "amount": format(e["amount"], "f")} for e in data[key]]
    return data


def schedule_from_data(data: dict) -> RevenueSchedule:
    fields = dict(data)
    for key in ("amount", "consumed_units", "prepaid_units"):
        fields[key] = None if fields[key] is None else Decimal(fields[key])
    for key in ("service_start", "service_end"):
        fields[key] = date.fromisoformat(fields[key])
    for key in ("entries", "credits"):
        fields[key] = tuple(ScheduleEntry(e["period"], Decimal(e["amount"])) for e in fields[key])
    return RevenueSchedule(**fields)


class StoredSchedule:
    """A schedule as stored: its id, component index, billing entity and item version."""

    __slots__ = ("schedule", "id", "component_index", "entity_id", "version")

    def __init__(self, schedule: RevenueSchedule, component_index: int, entity_id: str, version: int = 1):
        self.schedule = schedule
        self.component_index = component_index
        self.entity_id = entity_id
        self.version = version
        self.id = schedule_id(schedule.invoice_id, schedule.line_index, component_index)


class RevenueRepository:
    def __init__(self, store: DynamoStore):
        self.store = store

    # schedules ------------------------------------------------------------------------------
    def schedule_item(self, stored: StoredSchedule) -> Item:
        s = stored.schedule
        position = f"{s.line_index:04d}#{stored.component_index:02d}"
        indexes = {"gsi2": (f"REVENT#{stored.entity_id}#{_shard(s.invoice_id)}",
                            f"{s.billed_period}#{s.invoice_id}#{position}")}
        if s.subscription_id:
            indexes["gsi1"] = (f"REVSUB#{s.subscription_id}", f"{s.invoice_id}#{position}")
        return Item(f"REV#{s.invoice_id}", f"S#{position}", "revenue_schedule",
                    {"id": stored.id, "entity_id": stored.entity_id, "component_index": stored.component_index,
                     "schedule": schedule_to_data(s)}, stored.version, indexes)

    @staticmethod
    def _stored(item: Item) -> StoredSchedule:
        return StoredSchedule(schedule_from_data(item.data["schedule"]), item.data["component_index"],
                              item.data["entity_id"], item.version)

    def invoice_schedules(self, invoice_id: str) -> list[StoredSchedule]:
        items, _ = self.store.query(f"REV#{invoice_id}", begins_with="S#")
        return [self._stored(i) for i in items]

    def subscription_schedules(self, subscription_id: str) -> list[StoredSchedule]:
        return [self._stored(i) for i in self.store.stream(f"REVSUB#{subscription_id}", " ", "\uffff", index="gsi1")]

    def entity_schedules(self, entity_id: str, billed_until: str | None = None) -> list[StoredSchedule]:
        """Every schedule of the entity's invoices (those billed in or before `billed_until`, a month)."""
        high = f"{billed_until}#\uffff" if billed_until else "\uffff"
        found = []
        for shard in range(REVENUE_SHARDS):
            found += [self._stored(i) for i in self.store.stream(f"REVENT#{entity_id}#{shard}", " ", high,
                                                                 index="gsi2")]
        return sorted(found, key=lambda s: s.id)

    # processed documents -------------------------------------------------------------------
    @staticmethod
    def document_item(invoice_id: str, entity_id: str, issue_date: date, schedules: int, kind: str) -> Item:
        return Item(f"REV#{invoice_id}", "DOC", "revenue_document",
                    {"invoice_id": invoice_id, "entity_id": entity_id, "issue_date": issue_date.isoformat(),
                     "schedules": schedules, "kind": kind},
                    indexes={"gsi2": (f"REVDOC#{entity_id}", f"{issue_date.isoformat()}#{invoice_id}")})

    @staticmethod
    def void_item(invoice_id: str, entity_id: str, void_date: date, month: str) -> Item:
        """The marker of an invoice whose schedules were voided (`month`: the month the void took effect in)."""
        return Item(f"REV#{invoice_id}", "VOID", "revenue_void",
                    {"invoice_id": invoice_id, "entity_id": entity_id, "void_date": void_date.isoformat(),
                     "month": month},
                    indexes={"gsi2": (f"REVDOC#{entity_id}", f"{void_date.isoformat()}#{invoice_id}")})

    def is_processed(self, invoice_id: str) -> bool:
        return self.store.get(f"REV#{invoice_id}", "DOC") is not None

    def is_voided(self, invoice_id: str) -> bool:
        return self.store.get(f"REV#{invoice_id}", "VOID") is not None

    def documents_issued(self, entity_id: str, first: date, last: date) -> list[str]:
        """Ids of the entity's invoices and credit notes with schedules issued, or voided, in [first, last]
        (each once)."""
        return list(dict.fromkeys(i.data["invoice_id"] for i in self.store.stream(
            f"REVDOC#{entity_id}", first.isoformat(), f"{last.isoformat()}#\uffff", index="gsi2")))

    def save(self, new: Iterable[StoredSchedule], changed: Iterable[StoredSchedule], marker: Item | None,
             audit: Iterable[AuditEvent] = (), also: Iterable[Item] = ()) -> None:
        """New schedules, changed ones (if unchanged since read) and the processed marker (and the `also`
        markers, each written only if it does not exist), all or none.

        More than one transaction holds (100 writes) are written in chunks, the marker in the last one:
        a repeat after a partial write rewrites the same new schedules and then completes.
        """
        operations = [Put(self.schedule_item(s)) for s in new]
        for stored in changed:
            operations.append(Put(self.schedule_item(_bumped(stored)), stored.version))
        if marker is not None:
            operations.append(Put(marker))
        operations += [Put(item) for item in also]
        audit = list(audit)
        while len(operations) + len(audit) > 100:
            chunk, operations = operations[:90], operations[90:]
            written = [op for op in chunk if op.expected_version is None and op.item.sk.startswith("S#")]
            if len(written) != len(chunk):
                raise ValueError("changes to existing schedules must fit in the last transaction")
            self.store.batch_put(op.item for op in written)  # deterministic content: a rewrite is the same
        self.store.transact(operations, audit)

    # exports -----------------------------------------------------------------------------------
    @staticmethod
    def export_item(record: dict, version: int = 1) -> Item:
        entity_id, month = record["billing_entity_id"], record["month"]
        return Item(f"EXPORT#{entity_id}#{month}", "A", "finance_export", record, version,
                    {"gsi1": (f"EXPORTS#{entity_id}", month), "gsi2": ("EXPORTS", f"{month}#{entity_id}")})

    def get_export(self, entity_id: str, month: str) -> tuple[dict, int] | None:
        item = self.store.get(f"EXPORT#{entity_id}#{month}", "A")
        return (item.data, item.version) if item else None

    def save_export(self, record: dict, expected: int | None, audit: AuditEvent) -> None:
        """Create the record (expected None) or replace version `expected` of it, with its audit event."""
        version = 1 if expected is None else expected + 1
        self.store.transact([Put(self.export_item(record, version), expected)], [audit])

    def list_exports(self, month: str | None = None, entity_id: str | None = None) -> list[dict]:
        if entity_id:
            low, high = (month, month) if month else (" ", "\uffff")
            items = list(self.store.stream(f"EXPORTS#{entity_id}", low, high, index="gsi1"))
        else:
            low, high = (f"{month}#", f"{month}#\uffff") if month else (" ", "\uffff")
            items = list(self.store.stream("EXPORTS", low, high, index="gsi2"))
        return [i.data for i in items]

    def last_exported_month(self, entity_id: str) -> str | None:
        items, _ = self.store.query(f"EXPORTS#{entity_id}", index="gsi1", limit=1, newest_first=True)
        return items[0].data["month"] if items else None


def _bumped(stored: StoredSchedule) -> StoredSchedule:
    return StoredSchedule(stored.schedule, stored.component_index, stored.entity_id, stored.version + 1)
