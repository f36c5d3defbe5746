"""Bill-run throughput on the local platform, without and with PDFs, vs the storage floor.

Starts the whole platform in this process (moto, the real CDK stack, the state machine, the
REST API) at 2025-03-01T00:00:00Z and bills batches of new customers, each with one monthly
Managed Service contract starting 2025-03-01, through `POST /v1/bill-runs` (as_of
2025-03-01), polling `GET /v1/bill-runs/{id}` (and its execution) until the run ends:

1. warm-up: one contract, real PDFs (imports, fonts, first executions; not a figure);
2. "without PDFs": N contracts, the renderer replaced by a constant 14-byte PDF;
3. "with PDFs": M more contracts, the real weasyprint renderer (and SES mail).

A run invoices what is due and not billed yet, so each run bills exactly its own batch
(checked: invoices == accounts == batch, failed == 0, invoice numbers gapless). The clock
never moves, so no schedule fires. A run whose execution fails is reported with the
invoices it issued (the run record stays `running`) and the script exits 1.

Contracts are created through the service layer in-process (threads), not over HTTP; the
load time is reported apart. Before each batch is loaded, the storage floor is measured in
the same table state: per account, the DynamoDB reads and writes the bill run makes and the
S3 put/get of a tiny document, done directly with boto3 against the same endpoint, on items
under FLOOR# keys seeded like the load's and deleted afterwards. Ratio = wall / floor.

moto as shipped copies the whole table in every TransactWriteItems and scans it in every
Query, which makes a bill run quadratic in the book; `lean_moto` removes that (default) so
the figures are the platform's, `--stock-moto` measures moto as the local runtime ships it.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import functools
import json
import logging
import os
import statistics
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLOCK = "2025-03-01T00:00:00Z"
AS_OF = "2025-03-01"
SEED_BAR = 10_000  # invoices per hour (seed 000)
PLAN = "managed-service"
CHARGE = "ms-fee"
TINY_PDF = b"%PDF-1.4 bench"
ACTIVE = ("pending", "running")

print = functools.partial(builtins.print, flush=True)  # noqa: A001 (rebound to the console in main)


# -- moto's costs that grow with the table --------------------------------------------------

def lean_moto() -> None:
    """Make moto's DynamoDB cost per request independent of the table size, in this process.

    As shipped, moto deep-copies the whole table for each item of a TransactWriteItems (its
    rollback) and lists and sorts every item of the table for each Query, so a bill run's
    time grows with the square of the book: at 1,000 contracts the emulator, not the
    platform, is what a benchmark would measure. Here a transaction keeps an undo copy of
    the items it touches only, and a Query looks only at its partition (through an index of
    the index partitions kept on every write). Results are the same; `--stock-moto` skips it.
    """
    import copy
    import inspect
    import types

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    def hash_attributes(table) -> dict[str, str]:
        return {index.name: next(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")
                for index in table.all_indexes()}

    def state(table) -> dict:  # kept on the table: {"members": {key: {index: value}}, "parts": ...}
        if "_lean" not in table.__dict__:
            table._lean = {"members": {}, "parts": {}}
            for item in Table.all_items(table):
                reindex(table, (item.hash_key, item.range_key), item)
        return table._lean

    def reindex(table, key: tuple, item) -> None:
        lean = table.__dict__.get("_lean")
        if lean is None:
            return  # indexed from scratch at its first query
        for index, value in lean["members"].pop(key, {}).items():
            lean["parts"].get((index, value), {}).pop(key, None)
        if item is None:
            return
        member = {index: item.attrs[attr] for index, attr in hash_attributes(table).items() if attr in item.attrs}
        for index, value in member.items():
            lean["parts"].setdefault((index, value), {})[key] = None
        if member:
            lean["members"][key] = member

    def stored(table, key: tuple):
        part = table.items.get(key[0])
        return part if key[1] is None else (part or {}).get(key[1])

    moto_put, moto_delete, moto_query = Table.put_item, Table.delete_item, Table.query
    moto_update, moto_transact = models.DynamoDBBackend.update_item, models.DynamoDBBackend.transact_write_items
    query_signature = inspect.signature(moto_query)

    def put_item(self, item_attrs, *args, **kwargs):
        item = moto_put(self, item_attrs, *args, **kwargs)
        reindex(self, (item.hash_key, item.range_key), item)
        return item

    def delete_item(self, hash_key, range_key=None):
        item = moto_delete(self, hash_key, range_key)
        if item is not None:
            reindex(self, (item.hash_key, item.range_key), None)
        return item

    def update_item(self, table_name, *args, **kwargs):
        item = moto_update(self, table_name, *args, **kwargs)
        if item is not None:
            key = (item.hash_key, item.range_key)
            table = self.get_table(table_name)
            reindex(table, key, stored(table, key))
        return item

    def query(self, *args, **kwargs):
        arguments = query_signature.bind(self, *args, **kwargs).arguments
        index, value = arguments.get("index_name"), arguments.get("hash_key")
        if index:
            attribute = hash_attributes(self).get(index)
            value = next((v for name, v in arguments.get("hash_key_conditions") or () if name == attribute), value)
            if attribute is None or value is None:
                return moto_query(self, *args, **kwargs)
            keys = state(self)["parts"].get((index, value), {})
            candidates = [item for item in (stored(self, key) for key in keys) if item is not None]
        else:
            if value is None:
                return moto_query(self, *args, **kwargs)
            part = self.items.get(value)
            candidates = [] if part is None else list(part.values()) if self.range_key_attr else [part]
        self.all_items = lambda: candidates  # moto filters, sorts and pages these (under the lock)
        try:
            return moto_query(self, *args, **kwargs)
        finally:
            del self.all_items

    def transact_write_items(self, transact_items):
        undo = []
        for entry in transact_items:
            try:
                operation, request = next(iter(entry.items()))
                table = self.get_table(request["TableName"])
                attrs = request["Item"] if operation == "Put" else request["Key"]
                key = (DynamoType(attrs[table.hash_key_attr]),
                       DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None)
                undo.append((table, key, copy.deepcopy(stored(table, key))))
            except Exception:  # noqa: S112 (moto reports a malformed request itself)
                continue
        try:
            return moto_transact(self, transact_items)
        except BaseException:
            for table, (hash_key, range_key), item in reversed(undo):
                if item is None:
                    Table.delete_item(table, hash_key, range_key)
                elif range_key is None:
                    table.items[hash_key] = item
                else:
                    table.items[hash_key][range_key] = item
                reindex(table, (hash_key, range_key), item)
            raise

    def deepcopy(value, memo=None):  # moto's whole-table rollback copy becomes the table itself
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.copy = types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy)
    Table.put_item, Table.delete_item, Table.query = put_item, delete_item, query
    models.DynamoDBBackend.update_item = update_item
    models.DynamoDBBackend.transact_write_items = transact_write_items


# -- loading --------------------------------------------------------------------------------

def load_batch(ports, tag: str, count: int, workers: int) -> list[str]:
    """`count` customers with one contract each, through the service layer; their ids."""
    from shared.services.catalog import create_customer
    from shared.services.context import Actor
    from shared.services.requests.catalog import CustomerCreate
    from shared.services.requests.contracts import SubscriptionCreate
    from shared.services.subscriptions import create_subscription

    actor = Actor("bench", "admin")

    def one(number: int) -> str:
        ref = f"{tag}-{number:05d}"
        customer = create_customer(ports, actor, CustomerCreate(
            name=f"Bench Customer {ref}", email=f"ap-{ref.lower()}@bench.example", external_id=ref,
            country="US", region="US-CA", currency="USD",
            address_lines=[f"{number} Market Street", "San Francisco, CA 94105"]))
        create_subscription(ports, actor, SubscriptionCreate(
            customer_id=customer.id, plan_code=PLAN, external_id=f"MS-{ref}", start_date=date(2025, 3, 1),
            price_overrides={CHARGE: Decimal(1000 + number % 500) + Decimal("0.25")}))
        return customer.id

    with ThreadPoolExecutor(workers, thread_name_prefix=f"load-{tag}") as pool:
        return list(pool.map(one, range(1, count + 1)))


def make_plan(ports) -> None:
    from shared.services.catalog import create_plan, default_entity
    from shared.services.context import Actor
    from shared.services.requests.catalog import PlanCreate

    default_entity(ports)  # created on first use: once, before the threads
    create_plan(ports, Actor("bench", "admin"), PlanCreate(
        code=PLAN, name="Managed Service", currency="USD",
        charges=[{"code": CHARGE, "name": "Managed Service", "type": "recurring", "model": "flat_fee",
                  "price": "0.00", "gl_code": "7005"}]))


def wait_quiet(runtime, timeout: float = 900) -> float:
    """Until the platform's queues are empty (webhook events of the load); seconds waited."""
    sqs = runtime.clients("sqs")
    began = time.perf_counter()
    urls = sqs.list_queues().get("QueueUrls", [])
    attributes = {u: sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["All"])["Attributes"]
                  for u in urls}
    dlqs = {json.loads(a["RedrivePolicy"])["deadLetterTargetArn"]
            for a in attributes.values() if "RedrivePolicy" in a}
    watched = [u for u, a in attributes.items() if a["QueueArn"] not in dlqs]
    quiet = 0
    while quiet < 2:
        if time.perf_counter() - began > timeout:
            raise RuntimeError("the platform's queues did not drain")
        pending = 0
        for url in watched:
            a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            pending += int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])
        quiet = quiet + 1 if pending == 0 else 0
        time.sleep(0.2)
    return time.perf_counter() - began


# -- the bill run ---------------------------------------------------------------------------

class ConflictCounter:
    """Counts the finalize attempts that hit a conflict (and were retried) in this process."""

    def __init__(self):
        from shared.billing.errors import ConflictError
        from shared.services import billing

        self.count, self._lock = 0, threading.Lock()
        original = billing._invoice_once

        def counted(*args, **kwargs):
            try:
                return original(*args, **kwargs)
            except ConflictError:
                with self._lock:
                    self.count += 1
                raise

        billing._invoice_once = counted


def bill_run(api, runtime, ports, expected: int, timeout: float) -> tuple[float, dict, str | None]:
    """POST a bill run and poll it (and its execution) until it ends: (wall seconds, the run,
    None or what went wrong). An execution that fails leaves the run `running`; then the run
    is reported with the invoices it issued, counted from the invoices themselves."""
    sfn = runtime.clients("stepfunctions")
    machine = runtime.env["BILL_RUN_STATE_MACHINE_ARN"]
    began = time.perf_counter()
    run = api.ok(api.post("/bill-runs", {"as_of": AS_OF}))
    execution = machine.replace(":stateMachine:", ":execution:") + f":{run['id']}"
    while True:
        time.sleep(0.2)
        run = api.ok(api.get(f"/bill-runs/{run['id']}"))
        if run["status"] not in ACTIVE:
            break
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            wall = time.perf_counter() - began
            run = api.ok(api.get(f"/bill-runs/{run['id']}"))  # it may have closed meanwhile
            if run["status"] not in ACTIVE:
                break
            issued = [i for i in all_invoices(ports) if i.bill_run_id == run["id"]]
            sent = sum(1 for i in issued if i.delivery_status == "sent")
            run.update(invoices=len(issued), invoice_ids=[i.id for i in issued])
            return wall, run, (f"execution {described['status']} ({described.get('error')}: "
                               f"{described.get('cause', '')[:300]}); the run stays '{run['status']}'; "
                               f"{len(issued)} invoices issued, {sent} sent")
        if time.perf_counter() - began > timeout:
            raise RuntimeError(f"bill run {run['id']} still {run['status']} after {timeout:.0f}s")
    wall = time.perf_counter() - began
    if run["invoices"] != expected or run["failed"] or run["accounts"] != expected:
        return wall, run, (f"expected {expected} invoices, got {run['invoices']} of {run['accounts']} "
                           f"accounts, {run['failed']} failed: {json.dumps(run['failures'][:3])}")
    return wall, run, None


def all_invoices(ports) -> list:
    found, after = [], None
    while True:
        page, more = ports.repo.list_invoices(100, after)
        found += page
        if not more or not page:
            return found
        after = page[-1].id


class ConstantRenderer:
    """Replaces the PDF renderer (the module's name and the handler's import) while active."""

    def __enter__(self):
        import functions.invoice_render_pdf.handler as handler
        import shared.documents.pdf as pdf

        self.saved = [(pdf, pdf.render_invoice_pdf), (handler, handler.render_invoice_pdf)]
        for module, _ in self.saved:
            module.render_invoice_pdf = lambda invoice, **_: TINY_PDF
        return self

    def __exit__(self, *exc):
        for module, original in self.saved:
            module.render_invoice_pdf = original


# -- the storage floor ----------------------------------------------------------------------

class Floor:
    """The bill run's per-account DynamoDB and S3 calls, with boto3, on FLOOR# copies of a real
    account's items (the warm-up account), so every item has its real attributes."""

    def __init__(self, runtime, ports, customer_id: str):
        self.ddb, self.s3 = runtime.clients("dynamodb"), runtime.clients("s3")
        self.table, self.counters = ports.settings.billing_table, ports.settings.counters_table
        self.bucket = ports.settings.documents_bucket
        repo = ports.repo
        customer = repo.get_customer(customer_id)
        sub = repo.customer_subscriptions(customer_id)[0]
        invoice = repo.list_invoices(1, None, customer_id)[0][0]
        self.ids = [customer.id, sub.id, invoice.id, customer.external_id]  # MS-<ext> for the contract

        def raw(pk, sk="A"):
            return self.ddb.get_item(TableName=self.table, Key=_key(pk, sk))["Item"]

        def audits(object_id, action):
            items = self.ddb.query(TableName=self.table, KeyConditionExpression="pk = :pk",
                                   ExpressionAttributeValues={":pk": {"S": f"AUDIT#{object_id}"}})["Items"]
            return next(i for i in items if json.loads(i["data"]["S"])["action"] == action)

        self.entity = raw(f"ENT#{customer.billing_entity}")
        self.plan = raw(f"PLAN#{PLAN}")
        self.customer = raw(f"CUS#{customer.id}")
        self.sub = {**raw(f"SUB#{sub.id}"), "version": {"N": "1"}}
        self.invoice = {**raw(f"INV#{invoice.id}"), "version": {"N": "1"}}
        self.billed = self.ddb.query(
            TableName=self.table, KeyConditionExpression="pk = :pk AND begins_with(sk, :b)",
            ExpressionAttributeValues={":pk": {"S": f"SUB#{sub.id}"}, ":b": {"S": "BILLED#"}})["Items"][0]
        self.aliases = [raw(f"ALIAS#customer#{customer.external_id}"), raw(f"ALIAS#subscription#{sub.external_id}")]
        self.audit = {a: audits(o, a) for o, a in ((customer.id, "customer.created"),
                                                    (sub.id, "subscription.created"),
                                                    (invoice.id, "invoice.finalized"),
                                                    (invoice.id, "invoice.sent"))}

    def _clone(self, attrs: dict, tag: str, number: int | None, event: str | None = None) -> dict:
        """`attrs` with every key under FLOOR#tag# and the template's ids replaced by this
        account's (index partitions too, so no platform listing ever sees a floor item)."""
        ids = {old: f"{old[:4]}floor{tag}x{number:05d}" for old in self.ids} if number else {}
        clone = dict(attrs)
        for name in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "customer_id"):
            if name in clone:
                value = clone[name]["S"]
                for old, new in ids.items():
                    value = value.replace(old, new)
                if event and name in ("sk", "gsi1sk", "gsi2sk", "gsi3sk"):
                    value = event
                if name in ("pk", "gsi1pk", "gsi2pk", "gsi3pk"):
                    value = f"FLOOR#{tag}#{value}"
                clone[name] = {"S": value}
        return clone

    def seed(self, tag: str, count: int) -> dict:
        """What the load writes per account (customer, contract, their aliases and audit
        events), plus the shared entity and plan; the per-account calls, ready to send."""
        shared = [self._clone(self.entity, tag, None), self._clone(self.plan, tag, None)]
        written, accounts = list(shared), []
        for n in range(1, count + 1):
            seeded = [self._clone(self.customer, tag, n), self._clone(self.sub, tag, n),
                      *(self._clone(a, tag, n) for a in self.aliases),
                      self._clone(self.audit["customer.created"], tag, n, f"evt_floor{tag}c{n:05d}"),
                      self._clone(self.audit["subscription.created"], tag, n, f"evt_floor{tag}s{n:05d}")]
            written += seeded
            accounts.append({
                "customer": seeded[0], "sub": seeded[1],
                "invoice": self._clone(self.invoice, tag, n), "billed": self._clone(self.billed, tag, n),
                "finalized": self._clone(self.audit["invoice.finalized"], tag, n, f"evt_floor{tag}f{n:05d}"),
                "sent": self._clone(self.audit["invoice.sent"], tag, n, f"evt_floor{tag}d{n:05d}"),
                "document": f"floor/{tag}/{n:05d}.pdf"})
        for start in range(0, len(written), 25):
            self._batch_write([{"PutRequest": {"Item": i}} for i in written[start:start + 25]])
        return {"entity": shared[0], "plan": shared[1], "accounts": accounts, "written": written}

    def account(self, seeded: dict, one: dict, series: str) -> None:
        """One account: what billing.invoice_account, invoices.render_pdf and
        invoices.deliver send to DynamoDB and S3 (SES, EventBridge and Lambda left out)."""
        ddb, table = self.ddb, self.table
        customer, sub, invoice = one["customer"], one["sub"], one["invoice"]
        ddb.get_item(TableName=table, Key=_keys(customer), ConsistentRead=True)
        ddb.get_item(TableName=table, Key=_keys(seeded["entity"]), ConsistentRead=True)
        ddb.query(TableName=table, IndexName="gsi1",
                  KeyConditionExpression="#pk = :pk AND #sk BETWEEN :low AND :high",
                  ExpressionAttributeNames={"#pk": "gsi1pk", "#sk": "gsi1sk"},
                  ExpressionAttributeValues={":pk": sub["gsi1pk"], ":low": {"S": "SUB#"},
                                             ":high": {"S": "SUB#\uffff"}})
        ddb.batch_get_item(RequestItems={table: {"Keys": [_keys(seeded["plan"])], "ConsistentRead": True}})
        ddb.query(TableName=table, ConsistentRead=True,
                  KeyConditionExpression="#pk = :pk AND #sk BETWEEN :low AND :high",
                  ExpressionAttributeNames={"#pk": "pk", "#sk": "sk"},
                  ExpressionAttributeValues={":pk": sub["pk"], ":low": {"S": "BILLED#"},
                                             ":high": {"S": "BILLED#\uffff"}})
        counter = ddb.get_item(TableName=self.counters, Key={"pk": {"S": series}}, ConsistentRead=True)
        seq = int(counter["Item"]["seq"]["N"]) if "Item" in counter else 0
        advance = {"TableName": self.counters, "Key": {"pk": {"S": series}},
                   "UpdateExpression": "SET seq = :next, head = :head",
                   "ExpressionAttributeValues": {":next": {"N": str(seq + 1)}, ":head": {"S": "0" * 64}}}
        if seq:
            advance.update(ConditionExpression="seq = :current")
            advance["ExpressionAttributeValues"][":current"] = {"N": str(seq)}
        else:
            advance.update(ConditionExpression="attribute_not_exists(pk)")
        ddb.transact_write_items(TransactItems=[
            _put(table, invoice), {"Update": advance}, _put(table, one["billed"]),
            _put(table, {**sub, "version": {"N": "2"}}, 1), _put(table, one["finalized"])])
        # invoice_render_pdf
        ddb.get_item(TableName=table, Key=_keys(invoice), ConsistentRead=True)
        self.s3.put_object(Bucket=self.bucket, Key=one["document"], Body=TINY_PDF, ContentType="application/pdf")
        ddb.transact_write_items(TransactItems=[_put(table, {**invoice, "version": {"N": "2"}}, 1)])
        # invoice_deliver
        ddb.get_item(TableName=table, Key=_keys(invoice), ConsistentRead=True)
        self.s3.get_object(Bucket=self.bucket, Key=one["document"])["Body"].read()
        ddb.get_item(TableName=table, Key=_keys(customer), ConsistentRead=True)
        ddb.transact_write_items(TransactItems=[_put(table, {**invoice, "version": {"N": "3"}}, 2),
                                                _put(table, one["sent"])])

    def run(self, tag: str, count: int, workers: int) -> float:
        """Seed, time the accounts (each worker its own invoice counter), clean up; seconds."""
        seeded = self.seed(tag, count)
        accounts = seeded["accounts"]
        series = [f"FLOOR#{tag}#SEQ#{w}" for w in range(workers)]
        began = time.perf_counter()
        if workers == 1:
            for one in accounts:
                self.account(seeded, one, series[0])
        else:
            def worker(w: int) -> None:
                for one in accounts[w::workers]:
                    self.account(seeded, one, series[w])
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(worker, range(workers)))
        elapsed = time.perf_counter() - began
        self.clean(seeded, series)
        return elapsed

    def clean(self, seeded: dict, series: list[str]) -> None:
        items = seeded["written"] + [a[k] for a in seeded["accounts"]
                                     for k in ("invoice", "billed", "finalized", "sent")]
        for start in range(0, len(items), 25):
            self._batch_write([{"DeleteRequest": {"Key": _keys(i)}} for i in items[start:start + 25]])
        for key in series:
            self.ddb.delete_item(TableName=self.counters, Key={"pk": {"S": key}})
        documents = [a["document"] for a in seeded["accounts"]]
        for start in range(0, len(documents), 1000):
            self.s3.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": k} for k in documents[start:start + 1000]], "Quiet": True})

    def _batch_write(self, requests: list[dict]) -> None:
        pending = {self.table: requests}
        while pending:
            pending = self.ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def _key(pk: str, sk: str = "A") -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _keys(attrs: dict) -> dict:
    return {"pk": attrs["pk"], "sk": attrs["sk"]}


def _put(table: str, attrs: dict, expected: int | None = None) -> dict:
    if expected is None:
        return {"Put": {"TableName": table, "Item": attrs, "ConditionExpression": "attribute_not_exists(pk)"}}
    return {"Put": {"TableName": table, "Item": attrs, "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": {"N": str(expected)}}}}


def measure_floor(floor: Floor, tag: str, count: int, runs: int, workers: int) -> float:
    return statistics.median(floor.run(f"{tag}{r}", count, workers) for r in range(runs))


# -- reporting ------------------------------------------------------------------------------

def check_numbers(ports, invoice_ids: list[str]) -> None:
    """The measured runs' invoices carry the numbers 2..1+N+M (1 is the warm-up's): none lost
    or repeated, whatever the conflicts and retries."""
    numbers = sorted(int(ports.repo.get_invoice(i).number.rsplit("-", 1)[1]) for i in invoice_ids)
    if numbers != list(range(2, 2 + len(invoice_ids))):
        raise SystemExit(f"invoice numbers are not gapless: {numbers[:5]}...{numbers[-5:]}")


def pdf_sizes(runtime, ports, invoice_ids: list[str]) -> list[int]:
    s3 = runtime.clients("s3")
    sizes = []
    for invoice_id in invoice_ids:
        key = ports.repo.get_invoice(invoice_id).pdf_key
        sizes.append(s3.head_object(Bucket=ports.settings.documents_bucket, Key=key)["ContentLength"])
    return sizes


def row(label: str, batch: dict) -> str:
    per_second = batch["invoices"] / batch["wall"]
    per_hour = per_second * 3600
    return (f"{label:<14}{batch['contracts']:>10}{batch['load']:>9.1f}{batch['wall']:>9.1f}"
            f"{per_second:>11.2f}{per_hour:>12,.0f}{per_hour / SEED_BAR:>9.2f}"
            f"{batch['floor']:>9.1f}{batch['wall'] / batch['floor']:>8.2f}{batch['conflicts']:>10}"
            f"  {'FAILED' if batch['problem'] else 'ok'}")


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    logging.getLogger("moto").addFilter(  # one line per resource type of the stack moto does not model
        lambda record: not record.getMessage().startswith("No Moto CloudFormation support"))
    warnings.filterwarnings("ignore", "No application metrics", UserWarning)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contracts", type=int, default=1000, help="N, billed without PDFs (default 1000)")
    parser.add_argument("--pdf-contracts", type=int, default=200, help="M, billed with PDFs (default 200)")
    parser.add_argument("--runs", type=int, default=3, help="floor repetitions; the median is used (default 3)")
    parser.add_argument("--floor-workers", type=int, default=1,
                        help="threads issuing the floor's calls (default 1; the Map runs 4 accounts at once)")
    parser.add_argument("--load-workers", type=int, default=8, help="threads creating contracts (default 8)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds a bill run may take")
    parser.add_argument("--stock-moto", action="store_true",
                        help="moto as shipped: every transaction copies, every query scans the whole table "
                             "(quadratic in the book; hours at the defaults)")
    parser.add_argument("--log", type=Path, default=ROOT / "out" / "bench" / "functions.log",
                        help="where the functions' stdout goes (Powertools logs and metrics)")
    args = parser.parse_args()

    args.log.parent.mkdir(parents=True, exist_ok=True)
    console = sys.stdout
    global print
    print = functools.partial(builtins.print, file=console, flush=True)  # noqa: A001
    with open(args.log, "w") as function_logs:  # what CloudWatch Logs would hold
        sys.stdout = function_logs
        try:
            bench(args)
        finally:
            sys.stdout = console


def bench(args) -> None:
    print(f"load average at start: {load_average()}  ({os.cpu_count()} CPUs)")
    if not args.stock_moto:
        lean_moto()
    print("moto: " + ("as shipped (--stock-moto)" if args.stock_moto else
                      "transactions undo the items they touch, queries read their partition (see lean_moto)"))
    stderr_log = args.log.with_name("stderr.log")
    print(f"function logs in {args.log}, the process's stderr in {stderr_log}")
    began = time.perf_counter()
    with capture_stderr(stderr_log):
        batches, sizes, emails = run_batches(args, began)
    glib = stderr_log.read_text(errors="replace").count("GLib-WARNING")

    header = (f"{'bill run':<14}{'contracts':>10}{'load s':>9}{'wall s':>9}{'inv/s':>11}{'inv/hour':>12}"
              f"{'vs 10k/h':>9}{'floor s':>9}{'ratio':>8}{'conflicts':>10}  status")
    print("\n" + header + "\n" + "-" * len(header))
    for label, batch in batches.items():
        print(row(label, batch))
    print(f"\ninv/s = invoices issued / wall; ratio = wall / floor (floor: the same DynamoDB and S3 calls "
          f"with boto3, median of {args.runs}, {args.floor_workers} thread(s)); conflicts = finalize attempts retried")
    print(f"median PDF size {statistics.median(sizes) / 1024:.1f} KiB over {len(sizes)} invoices "
          f"(min {min(sizes)}, max {max(sizes)} bytes); {emails} emails sent in all")
    if glib:
        print(f"{glib} GLib warnings on stderr (weasyprint rendering in concurrent threads)")
    print(f"load average at end: {load_average()}; total {time.perf_counter() - began:.0f}s")
    failed = {label: b["problem"] for label, b in batches.items() if b["problem"]}
    if failed:
        raise SystemExit("\n".join(f"bill run {label} FAILED: {problem}" for label, problem in failed.items()))


@contextlib.contextmanager
def capture_stderr(path: Path):
    """File descriptor 2 into `path` (GLib writes there directly); restored before any traceback."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "wb") as target:
        os.dup2(target.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def run_batches(args, began: float) -> tuple[dict, list[int], int]:
    from shared.cli.client import ApiClient
    from shared.local.runtime import LocalRuntime
    from shared.services.wiring import build_ports

    runtime = LocalRuntime(clock=CLOCK, port=0).start()
    try:
        print(f"platform up in {time.perf_counter() - began:.1f}s at {runtime.api_url}")
        api = ApiClient(runtime.api_url, runtime.api_key, timeout=120)
        ports = build_ports()
        for handler in sorted(p.parent.name for p in (ROOT / "functions").glob("*/handler.py")):
            __import__(f"functions.{handler}.handler")  # cold starts are not what is measured
        conflicts = ConflictCounter()
        make_plan(ports)

        warm = time.perf_counter()
        [warm_customer] = load_batch(ports, "WARM", 1, 1)
        wait_quiet(runtime)
        if problem := bill_run(api, runtime, ports, 1, args.timeout)[2]:
            raise SystemExit(f"warm-up bill run: {problem}")
        print(f"warm-up (1 contract, real PDF): {time.perf_counter() - warm:.1f}s")
        floor = Floor(runtime, ports, warm_customer)

        batches = {}
        for label, tag, count, renderer in (("without PDFs", "A", args.contracts, ConstantRenderer),
                                            ("with PDFs", "B", args.pdf_contracts, None)):
            floor_s = measure_floor(floor, tag, count, args.runs, args.floor_workers)
            print(f"{label}: storage floor for {count} accounts {floor_s:.1f}s (median of {args.runs})")
            loading = time.perf_counter()
            load_batch(ports, tag, count, args.load_workers)
            load_s = time.perf_counter() - loading
            drained = wait_quiet(runtime)
            print(f"{label}: loaded {count} contracts in {load_s:.1f}s ({count / load_s:.0f}/s); "
                  f"queues drained {drained:.1f}s later")
            before = conflicts.count
            with renderer() if renderer else contextlib.nullcontext():
                wall, run, problem = bill_run(api, runtime, ports, count, args.timeout)
            print(f"{label}: bill run {run['id']} {run['status']}, {run['invoices']} invoices in {wall:.1f}s"
                  + (f"\n  FAILED: {problem}" if problem else ""))
            batches[label] = {"contracts": count, "invoices": run["invoices"], "load": load_s, "wall": wall,
                              "floor": floor_s, "conflicts": conflicts.count - before, "run": run,
                              "problem": problem}

        stored = runtime.clients("s3").get_object(
            Bucket=ports.settings.documents_bucket,
            Key=ports.repo.get_invoice(batches["without PDFs"]["run"]["invoice_ids"][0]).pdf_key)["Body"].read()
        if stored != TINY_PDF:
            raise SystemExit("the run without PDFs stored a real PDF: the renderer was not replaced")
        check_numbers(ports, [i for b in batches.values() for i in b["run"]["invoice_ids"]])
        sizes = pdf_sizes(runtime, ports, batches["with PDFs"]["run"]["invoice_ids"])
        return batches, sizes, len(runtime.sent_emails())
    finally:
        runtime.stop()


if __name__ == "__main__":
    main()
