"""Typed storage of the domain objects on top of DynamoStore.

Key layout (table `BillingTable`):

| object | pk | sk | gsi1 | gsi2 | gsi3 |
|---|---|---|---|---|---|
| billing entity | ENT#id | A | ENTS / id | | |
| customer | CUS#id | A | CUSTOMERS / id | | |
| plan (current version) | PLAN#code | A | PLANS / code | | |
| plan version (immutable) | PLAN#code | V#000001 | | | |
| metric | METRIC#code | A | METRICS / code | | |
| coupon | COUPON#code | A | COUPONS / code | | |
| usage record | USE#subscription#metric | timestamp#transaction_id | | | |
| usage claim (idempotency) | UTX#subscription#transaction_id (customer events: UTX#customer#transaction_id) | A | | | |
| late usage marker | SUB#id | LATE#metric#timestamp#transaction_id | | | DUE#shard / due#id |
| usage fence (plain attributes seq, billed_until) | SUB#id | USAGE_FENCE | | | |
| usage-limit counter (plain attribute used) | SUB#id | USED#metric#period_start | | | |
| subscription | SUB#id | A | CUS#customer / SUB#id | SUBS / id | DUE#shard / next_bill_date#id |
| billed item | SUB#id | BILLED#charge#period_start (coupon cycles: BILLED#coupon:CODE#cycle_start) | | | |
| invoice, credit note | INV#id | A | CUS#customer / INV#id | INVOICES / id | SERIES#entity#kind / sequence |
| its lines, when they do not fit in its item | INV#id | LINE#000001 (chunks) | | | |
| a bill-run invoice being finalized (saga) | INV#id | PENDING, STEP#000001 (chunks of claims) | | | |
| a customer's invoicing slot (lock, pending) | CUS#id | INVOICING | | | |
| an invoice a bill run issued | RUNINV#run#customer#scope | INV#id | | | |
| invoicing after-step done | SUB#id | INVOICED#invoice_id | | | |
| bill run | BR#id | A | BILLRUNS / id | | |
| "reconciled, e-mail sent" marker of a bill run | BR#id | RECONCILED | | | |
| audit event | AUDIT#object_id | id | AUDIT_ACTOR#actor / id | AUDIT_ACTION#action / id | AUDIT / id |
| API key | KEY#sha256 | A | KEYS / name | | |
| webhook endpoint | WH#id | A | WEBHOOKS / id | | |
| alias | ALIAS#kind#value | A | | | |
| payment | PAY#id | A | INV#invoice / PAY#id | | |
| payment key (a retried or re-entered payment is recorded once) | PAYKEY#sha256 | A | | | |
| outbox entry (an event to publish; TTL `expires_at`) | OUTBOX#event_id | A | | | |

Aliases (entity codes, external ids, key names) are written in the same transaction as
their object with "must not exist", so uniqueness holds under concurrency. The invoices a bill
run issued a customer (scope: a subscription, or `*` for all) are found by key (RUNINV#).

DynamoDB's 400 KB per item never decides whether a document can be stored: a document whose
lines exceed INLINE_LINES_BYTES keeps them in LINE# chunk items beside it (the item says how
many: attribute `line_chunks`); every reader below reassembles them, so a document that fits
stays one read.
"""

from __future__ import annotations

import json
import zlib
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from shared.adapters.dynamodb import Delete, DynamoStore, Item, Put, Update, to_data
from shared.billing.errors import NonRetryableError
from shared.billing.models import (
    AuditEvent,
    BillingEntity,
    BillRun,
    Coupon,
    Customer,
    Invoice,
    InvoiceLine,
    Metric,
    Model,
    Plan,
    Subscription,
    UsageEvent,
)

DUE_SHARDS = 8
# a document keeps its lines in its item while their JSON stays under this: DynamoDB allows 400 KB an item,
# and the rest of the document (parties, taxes, payments, history) must fit beside them. Lines never change
# once finalized, so a document's layout never changes either.
INLINE_LINES_BYTES = 200_000
CHUNK_BYTES = 300_000  # the JSON of one LINE# or STEP# chunk item
M = TypeVar("M", bound=Model)


def alias_item(kind: str, value: str, target: str) -> Item:
    return Item(pk=f"ALIAS#{kind}#{value}", sk="A", type="alias", data={"target": target})


def due_shard(subscription_id: str) -> int:
    return zlib.crc32(subscription_id.encode()) % DUE_SHARDS


def json_size(value) -> int:
    """Bytes of `value` as stored (the compact JSON of Item.to_dynamo)."""
    return len(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def chunked(values: list, max_bytes: int = CHUNK_BYTES) -> list[list]:
    """`values` in order, cut into lists whose JSON stays under `max_bytes` (a value too big alone: its own)."""
    chunks: list[list] = [[]]
    size = 0
    for value in values:
        value_size = json_size(value) + 1
        if chunks[-1] and size + value_size > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(value)
        size += value_size
    return chunks if chunks[-1] else []


class Repository:
    def __init__(self, store: DynamoStore):
        self.store = store

    # generic ----------------------------------------------------------------
    def _load(self, model: type[M], pk: str) -> M | None:
        item = self.store.get(pk, "A")
        if item is None:
            return None
        obj = model.model_validate(item.data)
        obj.version = item.version
        return obj

    def _list(self, model: type[M], pk: str, index: str, limit: int, after: str | None,
              begins_with: str = "", newest_first: bool = False) -> tuple[list[M], bool]:
        items, more = self.store.query(
            pk, index=index, begins_with=begins_with, after=after, limit=limit,
            newest_first=newest_first,
        )
        objs = []
        for item in items:
            obj = model.model_validate(item.data)
            obj.version = item.version
            objs.append(obj)
        return objs, more

    def resolve_alias(self, kind: str, value: str) -> str | None:
        item = self.store.get(f"ALIAS#{kind}#{value}", "A")
        return item.data["target"] if item else None

    # billing entities ---------------------------------------------------------
    def entity_item(self, entity: BillingEntity) -> Item:
        return Item(f"ENT#{entity.id}", "A", "billing_entity", to_data(entity), entity.version,
                    {"gsi1": ("ENTS", entity.id)})

    def create_entity(self, entity: BillingEntity, audit: AuditEvent, events: list[dict] = ()) -> None:
        self.store.transact(
            [Put(self.entity_item(entity)), Put(alias_item("entity", entity.code, entity.id))], [audit], events
        )

    def update_entity(self, entity: BillingEntity, audit: AuditEvent, events: list[dict] = ()) -> None:
        """Write `entity` over the version it was read at (ConflictError if it changed), bumping it."""
        self._update(self.entity_item(entity), entity, audit, events)

    def _update(self, item: Item, model, audit: AuditEvent, events: list[dict] = ()) -> None:
        expected = model.version
        item.version = expected + 1
        self.store.transact([Put(item, expected)], [audit], events)
        model.version = expected + 1

    def get_entity(self, entity_id: str) -> BillingEntity | None:
        return self._load(BillingEntity, f"ENT#{entity_id}")

    def list_entities(self, limit: int, after: str | None):
        return self._list(BillingEntity, "ENTS", "gsi1", limit, after)

    # customers --------------------------------------------------------------
    def customer_item(self, customer: Customer) -> Item:
        return Item(f"CUS#{customer.id}", "A", "customer", to_data(customer), customer.version,
                    {"gsi1": ("CUSTOMERS", customer.id)})

    def create_customer(self, customer: Customer, audit: AuditEvent, events: list[dict] = ()) -> None:
        ops = [Put(self.customer_item(customer))]
        if customer.external_id:
            ops.append(Put(alias_item("customer", customer.external_id, customer.id)))
        self.store.transact(ops, [audit], events)

    def customer_put(self, customer: Customer) -> Put:
        """Write `customer` over the version it was read at, as the next version."""
        item = self.customer_item(customer)
        item.version = customer.version + 1
        return Put(item, customer.version)

    def update_customer(self, customer: Customer, audit: AuditEvent, events: list[dict] = ()) -> None:
        self._update(self.customer_item(customer), customer, audit, events)

    def get_customer(self, customer_id: str) -> Customer | None:
        return self._load(Customer, f"CUS#{customer_id}")

    def get_customers(self, ids: set[str]) -> dict[str, Customer]:
        return {c.id: c for c in (Customer.model_validate(i.data)
                                  for i in self.store.batch_get((f"CUS#{x}", "A") for x in ids))}

    def get_entities(self, ids: set[str]) -> dict[str, BillingEntity]:
        return {e.id: e for e in (BillingEntity.model_validate(i.data)
                                  for i in self.store.batch_get((f"ENT#{x}", "A") for x in ids))}

    def list_customers(self, limit: int, after: str | None):
        return self._list(Customer, "CUSTOMERS", "gsi1", limit, after)

    # plans ------------------------------------------------------------------
    def plan_item(self, plan: Plan) -> Item:
        return Item(f"PLAN#{plan.code}", "A", "plan", to_data(plan), plan.version,
                    {"gsi1": ("PLANS", plan.code)})

    def plan_version_item(self, plan: Plan) -> Item:
        return Item(f"PLAN#{plan.code}", f"V#{plan.plan_version:06d}", "plan_version", to_data(plan))

    def create_plan(self, plan: Plan, audit: AuditEvent, events: list[dict] = ()) -> None:
        self.store.transact([Put(self.plan_item(plan)), Put(self.plan_version_item(plan))], [audit], events)

    def add_plan_version(self, plan: Plan, expected: int, audit: AuditEvent, events: list[dict] = ()) -> None:
        """Make `plan` the current version if the current one is still version `expected`."""
        self.store.transact([Put(self.plan_item(plan), expected), Put(self.plan_version_item(plan))], [audit],
                            events)

    def plan_versions(self, code: str) -> list[Plan]:
        items, _ = self.store.query(f"PLAN#{code}", begins_with="V#")
        return [Plan.model_validate(item.data) for item in items]

    def get_plan_versions(self, wanted: set[tuple[str, int]]) -> dict[str, dict[int, Plan]]:
        plans: dict[str, dict[int, Plan]] = {}
        for item in self.store.batch_get((f"PLAN#{code}", f"V#{v:06d}") for code, v in wanted):
            plan = Plan.model_validate(item.data)
            plans.setdefault(plan.code, {})[plan.plan_version] = plan
        return plans

    def get_plan(self, code: str) -> Plan | None:
        return self._load(Plan, f"PLAN#{code}")

    def get_plans(self, codes: set[str]) -> dict[str, Plan]:
        plans = {}
        for item in self.store.batch_get((f"PLAN#{code}", "A") for code in codes):
            plan = Plan.model_validate(item.data)
            plan.version = item.version
            plans[plan.code] = plan
        return plans

    def list_plans(self, limit: int, after: str | None):
        return self._list(Plan, "PLANS", "gsi1", limit, after)

    # metrics and coupons ----------------------------------------------------------
    def metric_item(self, metric: Metric) -> Item:
        return Item(f"METRIC#{metric.code}", "A", "metric", to_data(metric), metric.version,
                    {"gsi1": ("METRICS", metric.code)})

    def get_metrics(self, codes: set[str]) -> dict[str, Metric]:
        return {m.code: m for m in (Metric.model_validate(i.data)
                                    for i in self.store.batch_get((f"METRIC#{c}", "A") for c in codes))}

    def list_metrics(self, limit: int, after: str | None):
        return self._list(Metric, "METRICS", "gsi1", limit, after)

    def coupon_item(self, coupon: Coupon) -> Item:
        return Item(f"COUPON#{coupon.code}", "A", "coupon", to_data(coupon), coupon.version,
                    {"gsi1": ("COUPONS", coupon.code)})

    def get_coupon(self, code: str) -> Coupon | None:
        return self._load(Coupon, f"COUPON#{code}")

    def list_coupons(self, limit: int, after: str | None):
        return self._list(Coupon, "COUPONS", "gsi1", limit, after)

    # usage --------------------------------------------------------------------------
    @staticmethod
    def usage_claim_key(scope: str, transaction_id: str) -> tuple[str, str]:
        """The idempotency key of an event: per subscription (or customer, for events sent for a
        customer) and transaction id."""
        return f"UTX#{scope}#{transaction_id}", "A"

    def usage_claim(self, scope: str, transaction_id: str, digest: str, events: list[UsageEvent]) -> Item:
        """The claim of (scope, transaction id), written with "must not exist" together with its records:
        the first event sent wins; `digest` tells a later send with other content from a plain retry."""
        pk, sk = self.usage_claim_key(scope, transaction_id)
        return Item(pk, sk, "usage_claim", {"transaction_id": transaction_id, "scope": scope, "digest": digest,
                                            "records": [list(self.usage_record_key(e)) for e in events]})

    def usage_claims(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
        """The stored claims among these (scope, transaction id), consistent reads."""
        items = self.store.batch_get(self.usage_claim_key(*key) for key in keys)
        return {(i.data["scope"], i.data["transaction_id"]): i.data for i in items}

    @staticmethod
    def usage_record_key(event: UsageEvent) -> tuple[str, str]:
        stamp = event.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"USE#{event.subscription_id}#{event.metric_code}", f"{stamp}#{event.transaction_id}"

    def usage_item(self, event: UsageEvent) -> Item:
        """The usage record, in its subscription and metric's partition (read with ConsistentRead)."""
        return Item(*self.usage_record_key(event), "usage_event", to_data(event), 1)

    def late_marker(self, event: UsageEvent, due: date) -> Item:
        """"This usage arrived after its period was invoiced": on the due index from `due` until an
        invoice settles it, so a contract that has ended (no next bill date) is still invoiced."""
        stamp = event.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return Item(f"SUB#{event.subscription_id}", f"LATE#{event.metric_code}#{stamp}#{event.transaction_id}",
                    "late_usage", {"metric_code": event.metric_code, "date": event.timestamp.date().isoformat(),
                                   "due": due.isoformat()},
                    indexes={"gsi3": (f"DUE#{due_shard(event.subscription_id)}",
                                      f"{due.isoformat()}#{event.subscription_id}")},
                    extra={"customer_id": event.customer_id})

    def usage_records(self, sub_id: str, metric_code: str, start: date, end: date,
                      received_until: datetime | None = None):
        """(timestamp, transaction_id, properties) of the usage in [start, end), in time order (consistent)."""
        for item in self.store.stream(f"USE#{sub_id}#{metric_code}", start.isoformat(),
                                      f"{(end - timedelta(days=1)).isoformat()}T~"):
            data = item.data
            if received_until and data.get("received_at") and (
                    datetime.fromisoformat(data["received_at"]) > received_until):
                continue
            yield datetime.fromisoformat(data["timestamp"]), data["transaction_id"], data["properties"]

    def usage_events(self, sub_id: str, metric_code: str, limit: int, after: str | None):
        items, more = self.store.query(f"USE#{sub_id}#{metric_code}", after=after, limit=limit)
        return [UsageEvent.model_validate(i.data) for i in items], more

    def late_markers(self, sub_id: str) -> list[Item]:
        items, _ = self.store.query(f"SUB#{sub_id}", begins_with="LATE#")
        return items

    # The usage fence of a subscription (SUB#id / USAGE_FENCE, plain attributes): `billed_until` (usage
    # before that day is invoiced) and `seq`, bumped by every write of usage that a bill run could be
    # rating right now. Ingestion bumps `seq` on condition "not billed yet"; finalization sets
    # `billed_until` on condition "`seq` unchanged since the usage was read". Either one fails and
    # re-reads: an event is billed on its period's invoice or marked late, never neither.
    @staticmethod
    def usage_fence_key(sub_id: str) -> tuple[str, str]:
        return f"SUB#{sub_id}", "USAGE_FENCE"

    def usage_fence(self, sub_id: str) -> int:
        """The fence's `seq` (0 when no usage was fenced yet): read it before reading the usage."""
        found = self.store.plain([self.usage_fence_key(sub_id)])
        return int(found.get(self.usage_fence_key(sub_id), {}).get("seq", 0))

    def usage_fence_claim(self, sub_id: str, earliest: date) -> Update:
        """Ingestion's part: usage from `earliest` on is written while that day is not invoiced yet."""
        return Update(*self.usage_fence_key(sub_id), "ADD seq :one",
                      "attribute_not_exists(billed_until) OR billed_until <= :day",
                      {":one": 1, ":day": earliest.isoformat()})

    def usage_fence_close(self, sub_id: str, seq: int, billed_until: date) -> Update:
        """Finalization's part: usage before `billed_until` is invoiced, if no usage arrived since `seq`."""
        condition = "attribute_not_exists(seq)" if seq == 0 else "seq = :seq"
        values: dict = {":until": billed_until.isoformat()}
        if seq:
            values[":seq"] = seq
        return Update(*self.usage_fence_key(sub_id), "SET billed_until = :until", condition, values)

    # Usage-limit counters (SUB#id / USED#metric#period_start, plain attribute `used`): what the period
    # has used of a metric whose usage a customer limits (V5-4180), moved atomically with the events.
    @staticmethod
    def usage_used_key(sub_id: str, metric_code: str, period_start: date) -> tuple[str, str]:
        return f"SUB#{sub_id}", f"USED#{metric_code}#{period_start.isoformat()}"

    def usage_used(self, keys: list[tuple[str, str, date]]) -> dict[tuple[str, str, date], Decimal]:
        stored = self.store.plain(self.usage_used_key(*k) for k in keys)
        return {k: stored[self.usage_used_key(*k)]["used"] for k in keys if self.usage_used_key(*k) in stored}

    def usage_used_add(self, key: tuple[str, str, date], seed: Decimal, add: Decimal, limit: Decimal) -> Update:
        """Add `add` to the counter (first set to `seed`) if it stays within `limit`."""
        return Update(*self.usage_used_key(*key), "SET used = if_not_exists(used, :seed) + :add",
                      "attribute_not_exists(used) OR used <= :room", {":seed": seed, ":add": add, ":room": limit - add})

    # subscriptions ------------------------------------------------------------
    def subscription_item(self, sub: Subscription) -> Item:
        indexes = {"gsi1": (f"CUS#{sub.customer_id}", f"SUB#{sub.id}"), "gsi2": ("SUBS", sub.id)}
        if sub.next_bill_date is not None:
            indexes["gsi3"] = (f"DUE#{due_shard(sub.id)}", f"{sub.next_bill_date.isoformat()}#{sub.id}")
        return Item(f"SUB#{sub.id}", "A", "subscription", to_data(sub), sub.version, indexes,
                    extra={"customer_id": sub.customer_id})

    def subscription_put(self, sub: Subscription) -> Put:
        """Write `sub` over the version it was read at, as the next version (the caller bumps it on success)."""
        item = self.subscription_item(sub)
        item.version = sub.version + 1
        return Put(item, sub.version)

    def create_subscription(self, sub: Subscription, audit: AuditEvent, also: list[Put] = (),
                            events: list[dict] = ()) -> None:
        ops = [Put(self.subscription_item(sub)), *also]
        if sub.external_id:
            ops.append(Put(alias_item("subscription", sub.external_id, sub.id)))
        self.store.transact(ops, [audit], events)

    def update_subscription(self, sub: Subscription, audit: AuditEvent, events: list[dict] = ()) -> None:
        """Write `sub` if nobody changed it since it was read (its version), bumping it."""
        expected = sub.version
        sub.version = expected + 1
        try:
            self.store.transact([Put(self.subscription_item(sub), expected)], [audit], events)
        except Exception:
            sub.version = expected
            raise

    def get_subscription(self, sub_id: str) -> Subscription | None:
        return self._load(Subscription, f"SUB#{sub_id}")

    def get_subscriptions(self, sub_ids: set[str]) -> dict[str, Subscription]:
        """Consistent batch read, versions set."""
        subs = {}
        for item in self.store.batch_get((f"SUB#{s}", "A") for s in sub_ids):
            sub = Subscription.model_validate(item.data)
            sub.version = item.version
            subs[sub.id] = sub
        return subs

    def resolve_aliases(self, kind: str, values: set[str]) -> dict[str, str]:
        items = self.store.batch_get((f"ALIAS#{kind}#{v}", "A") for v in values)
        return {item.pk.removeprefix(f"ALIAS#{kind}#"): item.data["target"] for item in items}

    def list_subscriptions(self, limit: int, after: str | None, customer_id: str | None = None):
        if customer_id:
            subs, more = self._list(Subscription, f"CUS#{customer_id}", "gsi1", limit,
                                    after and f"SUB#{after}", begins_with="SUB#")
            return subs, more
        return self._list(Subscription, "SUBS", "gsi2", limit, after)

    def customer_subscriptions(self, customer_id: str) -> list[Subscription]:
        subs, _ = self.list_subscriptions(limit=10_000, after=None, customer_id=customer_id)
        return subs

    def billed_keys(self, sub_id: str) -> set[str]:
        return set(self.billed(sub_id))

    def billed(self, sub_id: str) -> dict[str, dict]:
        """Billed item keys of a subscription, with what each billed (usage: per group)."""
        items, _ = self.store.query(f"SUB#{sub_id}", begins_with="BILLED#")
        return {item.data["key"]: item.data for item in items}

    def due_customers(self, as_of: date) -> dict[str, list[str]]:
        """Customers with a subscription whose next bill date (or late usage not yet invoiced) is on or
        before `as_of`, and those subscriptions."""
        customers: dict[str, list[str]] = {}
        for shard in range(DUE_SHARDS):
            items, _ = self.store.query(f"DUE#{shard}", index="gsi3", at_most=f"{as_of.isoformat()}#~")
            for item in items:
                customers.setdefault(item.extra["customer_id"], []).append(item.pk.removeprefix("SUB#"))
        return {customer: sorted(set(subs)) for customer, subs in sorted(customers.items())}

    def late_usage_due(self, as_of: date) -> list[Item]:
        """Late-usage markers due on or before `as_of` that no invoice has settled yet."""
        found = []
        for shard in range(DUE_SHARDS):
            items, _ = self.store.query(f"DUE#{shard}", index="gsi3", at_most=f"{as_of.isoformat()}#~")
            found += [item for item in items if item.type == "late_usage"]
        return found

    # invoices -----------------------------------------------------------------
    def invoice_item(self, invoice: Invoice) -> Item:
        """The document's item; its lines stay out of it when they would not fit (see `store_lines`)."""
        indexes = {"gsi1": (f"CUS#{invoice.customer_id}", f"INV#{invoice.id}"), "gsi2": ("INVOICES", invoice.id)}
        if invoice.sequence is not None:
            indexes["gsi3"] = (f"SERIES#{invoice.billing_entity_id}#{invoice.kind}", f"{invoice.sequence:012d}")
        data, chunks = self._split_lines(invoice)
        extra = {"line_chunks": str(len(chunks))} if chunks else {}
        return Item(f"INV#{invoice.id}", "A", "invoice", data, invoice.version, indexes, extra)

    @staticmethod
    def _split_lines(invoice: Invoice) -> tuple[dict, list[list[dict]]]:
        """(item data, line chunks): no chunks while the whole document fits in its item."""
        data = to_data(invoice)
        if json_size(data["lines"]) <= INLINE_LINES_BYTES:
            return data, []
        chunks = chunked(data["lines"])
        data["lines"] = []
        return data, chunks

    def line_items(self, invoice: Invoice) -> list[Item]:
        """The LINE# chunk items of a document too big for one item (none for one that fits)."""
        _, chunks = self._split_lines(invoice)
        return [Item(f"INV#{invoice.id}", f"LINE#{n:06d}", "invoice_lines", {"lines": lines})
                for n, lines in enumerate(chunks, 1)]

    def store_lines(self, invoice: Invoice) -> None:
        """Write the lines of a document too big for one item, before the transaction that writes its item.
        Idempotent (same id, same lines, same chunks); nothing for a document that fits."""
        for item in self.line_items(invoice):
            self.store.put_plain(item)

    def _invoice(self, item: Item) -> Invoice:
        invoice = Invoice.model_validate(item.data)
        invoice.version = item.version
        if "line_chunks" in item.extra:
            invoice.lines = self._stored_lines(item.pk, int(item.extra["line_chunks"]))
        return invoice

    def _stored_lines(self, pk: str, count: int) -> list[InvoiceLine]:
        chunks, _ = self.store.query(pk, begins_with="LINE#")
        chunks = [c for c in chunks if int(c.sk.removeprefix("LINE#")) <= count]
        if len(chunks) != count:
            raise NonRetryableError(f"{pk}: {len(chunks)} of its {count} line chunks are stored",
                                    code="incomplete_document")
        return [InvoiceLine.model_validate(line) for chunk in chunks for line in chunk.data["lines"]]

    def invoice_put(self, invoice: Invoice, expected: int | None) -> Put:
        """Write `invoice` over version `expected` as the next version (None: it must not exist yet)."""
        item = self.invoice_item(invoice)
        if expected is not None:
            item.version = expected + 1
        return Put(item, expected)

    def series(self, entity_id: str, kind: str):
        """Every finalized document of a series in number order (streamed)."""
        for item in self.store.stream(f"SERIES#{entity_id}#{kind}", " ", "~", index="gsi3"):
            yield self._invoice(item)

    @staticmethod
    def billed_item(key: str, invoice_id: str, usage: list[dict] | None = None, fixed: dict | None = None) -> Item:
        """The marker that `key` (subscription#what#period_start) is billed, written with its invoice:
        for usage what each group billed, for a recurring or one-time charge the days and amounts."""
        sub_id, rest = key.split("#", 1)
        data = {"key": key, "invoice_id": invoice_id}
        if usage is not None:
            data["usage"] = usage
        if fixed is not None:
            data["fixed"] = fixed
        return Item(f"SUB#{sub_id}", f"BILLED#{rest}", "billed_item", data)

    def get_invoice(self, invoice_id: str) -> Invoice | None:
        item = self.store.get(f"INV#{invoice_id}", "A")
        return self._invoice(item) if item else None

    def get_invoices(self, ids) -> list[Invoice]:
        return [self._invoice(item) for item in self.store.batch_get((f"INV#{x}", "A") for x in ids)]

    def list_invoices(self, limit: int, after: str | None, customer_id: str | None = None):
        if customer_id:
            items, more = self.store.query(f"CUS#{customer_id}", index="gsi1", begins_with="INV#",
                                           after=after and f"INV#{after}", limit=limit)
        else:
            items, more = self.store.query("INVOICES", index="gsi2", after=after, limit=limit)
        return [self._invoice(item) for item in items], more

    # invoicing saga (services/billing.py) ------------------------------------------------
    def invoicing_slot(self, customer_id: str) -> Item:
        """The customer's invoicing slot: its version orders the customer's finalizations (every one advances
        it), `data["pending"]` names a document being finalized. Version 0: never written."""
        item = self.store.get(f"CUS#{customer_id}", "INVOICING")
        return item or Item(f"CUS#{customer_id}", "INVOICING", "invoicing_slot", {"pending": None}, 0)

    @staticmethod
    def slot_put(slot: Item, pending: dict | None) -> Put:
        """Advance the slot from the version it was read at (a concurrent finalization conflicts)."""
        item = Item(slot.pk, slot.sk, slot.type, {"pending": pending}, slot.version + 1)
        return Put(item, slot.version or None)

    @staticmethod
    def bill_run_mark(bill_run_id: str, customer_id: str, scope: str | None, invoice_id: str) -> Put:
        """That bill run `bill_run_id` issued this invoice to the customer (written with the invoice)."""
        return Put(Item(f"RUNINV#{bill_run_id}#{customer_id}#{scope or '*'}", f"INV#{invoice_id}", "run_invoice",
                        {"invoice_id": invoice_id}))

    def issued_in_run(self, bill_run_id: str, customer_id: str, scope: str | None) -> Invoice | None:
        """The last invoice bill run `bill_run_id` issued this customer (scope: a subscription, or all), by key."""
        items, _ = self.store.query(f"RUNINV#{bill_run_id}#{customer_id}#{scope or '*'}", newest_first=True, limit=1)
        return self.get_invoice(items[0].data["invoice_id"]) if items else None

    def store_pending(self, invoice: Invoice, scope: str | None, steps: list[dict]) -> Item:
        """Write a document's lines and claims in chunks (idempotent, invisible until its PENDING item
        exists); return that PENDING item, for the transaction that takes the customer's slot."""
        self.store_lines(invoice)
        step_chunks = chunked(steps)
        for n, chunk in enumerate(step_chunks, 1):
            self.store.put_plain(Item(f"INV#{invoice.id}", f"STEP#{n:06d}", "invoice_steps", {"steps": chunk}))
        header, line_chunks = self._split_lines(invoice)
        return Item(f"INV#{invoice.id}", "PENDING", "pending_invoice",
                    {"invoice": header, "scope": scope, "line_chunks": len(line_chunks), "steps": len(step_chunks)})

    def pending_invoice(self, invoice_id: str) -> tuple[Invoice, list[dict]] | None:
        """A document being finalized and its claims, as `store_pending` wrote them (None once finalized)."""
        item = self.store.get(f"INV#{invoice_id}", "PENDING")
        if item is None:
            return None
        invoice = Invoice.model_validate(item.data["invoice"])
        if item.data["line_chunks"]:
            invoice.lines = self._stored_lines(item.pk, item.data["line_chunks"])
        steps = self.invoice_steps(invoice_id)
        if len(steps) != item.data["steps"]:
            raise NonRetryableError(f"invoice {invoice_id}: {len(steps)} of its {item.data['steps']} claim chunks "
                                    "are stored", code="incomplete_document")
        return invoice, [step for chunk in steps for step in chunk]

    def invoice_steps(self, invoice_id: str, flat: bool = False) -> list:
        """The claim chunks `store_pending` wrote (flat: their steps in order)."""
        items, _ = self.store.query(f"INV#{invoice_id}", begins_with="STEP#")
        chunks = [item.data["steps"] for item in items]
        return [step for chunk in chunks for step in chunk] if flat else chunks

    def drop_invoice_steps(self, invoice_id: str, lines_too: bool = False) -> None:
        """Delete a finished saga's claim chunks (and, for a document never taken, its line chunks)."""
        prefixes = ("STEP#", "LINE#") if lines_too else ("STEP#",)
        for prefix in prefixes:
            items, _ = self.store.query(f"INV#{invoice_id}", begins_with=prefix)
            for item in items:
                self.store.delete_plain(item.pk, item.sk)

    @staticmethod
    def pending_delete(invoice_id: str) -> Delete:
        return Delete(f"INV#{invoice_id}", "PENDING", must_exist=True)

    def update_invoice(self, invoice: Invoice, audit: list[AuditEvent] = ()) -> None:
        expected = invoice.version
        invoice.version = expected + 1
        try:
            self.store.transact([Put(self.invoice_item(invoice), expected)], audit)
        except Exception:
            invoice.version = expected
            raise

    # bill runs ------------------------------------------------------------------
    def bill_run_item(self, run: BillRun) -> Item:
        return Item(f"BR#{run.id}", "A", "bill_run", to_data(run), run.version,
                    {"gsi1": ("BILLRUNS", run.id)})

    def get_bill_run(self, run_id: str) -> BillRun | None:
        return self._load(BillRun, f"BR#{run_id}")

    def list_bill_runs(self, limit: int, after: str | None):
        return self._list(BillRun, "BILLRUNS", "gsi1", limit, after, newest_first=True)

    def save_bill_run(self, run: BillRun, audit: list[AuditEvent] = (), new: bool = False,
                      events: list[dict] = ()) -> None:
        expected = None if new else run.version
        if not new:
            run.version += 1
        self.store.transact([Put(self.bill_run_item(run), expected)], audit, events)

    # audit --------------------------------------------------------------------
    def list_audit(self, limit: int, after: str | None, object_id: str | None = None,
                   actor: str | None = None, action: str | None = None):
        if object_id:
            pk, index = f"AUDIT#{object_id}", None
        elif actor:
            pk, index = f"AUDIT_ACTOR#{actor}", "gsi1"
        elif action:
            pk, index = f"AUDIT_ACTION#{action}", "gsi2"
        else:
            pk, index = "AUDIT", "gsi3"
        items, more = self.store.query(pk, index=index, after=after, limit=limit, newest_first=True)
        events = [AuditEvent.model_validate(item.data) for item in items]
        if object_id and (actor or action):  # narrow a partition by the other filters
            events = [e for e in events if (not actor or e.actor == actor)
                      and (not action or e.action == action)]
        return events, more

    # API keys -------------------------------------------------------------------
    def get_api_key(self, key_hash: str) -> dict | None:
        item = self.store.get(f"KEY#{key_hash}", "A")
        return item.data if item else None

    def create_api_key(self, key_hash: str, record: dict, audit: AuditEvent) -> None:
        self.store.transact(
            [Put(Item(f"KEY#{key_hash}", "A", "api_key", record, 1, {"gsi1": ("KEYS", record["name"])})),
             Put(alias_item("api_key", record["name"], key_hash))],
            [audit],
        )


    # webhook endpoints -----------------------------------------------------------
    def create_webhook_endpoint(self, endpoint: dict, secret: str, audit: AuditEvent) -> None:
        item = Item(f"WH#{endpoint['id']}", "A", "webhook_endpoint", {**endpoint, "secret": secret}, 1,
                    {"gsi1": ("WEBHOOKS", endpoint["id"])})
        self.store.transact([Put(item)], [audit])

    def webhook_endpoints(self) -> list[tuple[dict, str]]:
        items, _ = self.store.query("WEBHOOKS", index="gsi1")
        return [({k: v for k, v in i.data.items() if k != "secret"}, i.data["secret"]) for i in items]
