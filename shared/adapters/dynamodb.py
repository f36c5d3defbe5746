"""DynamoDB storage: one table for the system of record, one small table for counters.

Every object is an item with its keys and a `data` attribute holding the model's JSON
(money stays an exact decimal string; no float ever reaches DynamoDB). `version` is a
number used for optimistic locking. A mutation, its audit events and its outbox entries (the
events it announces) are written in one TransactWriteItems, so there is never a change without
its audit entry or its event, or the reverse. The table's stream carries each outbox entry to the
`outbox_publish` function, which puts it on the event bus (shared/services/outbox.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from shared.billing.errors import ConflictError, NonRetryableError, RetryableError
from shared.billing.models import AuditEvent, Model

TRANSIENT = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "TransactionInProgressException",
}
INDEXES = ("gsi1", "gsi2", "gsi3")
OUTBOX_TYPE = "outbox"
OUTBOX_RETENTION_SECONDS = 14 * 24 * 3600  # kept for replay, then removed by the table's TTL
TTL_ATTRIBUTE = "expires_at"  # BillingTable's time-to-live attribute (epoch seconds)
MAX_TRANSACTION_WRITES = 100  # DynamoDB's TransactWriteItems limit


@dataclass
class Item:
    """A stored object: its keys, index keys and model data."""

    pk: str
    sk: str
    type: str
    data: dict[str, Any]
    version: int = 1
    indexes: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (pk, sk)
    extra: dict[str, str] = field(default_factory=dict)  # plain string attributes
    expires_at: int | None = None  # epoch seconds: DynamoDB's TTL removes the item after it

    def to_dynamo(self) -> dict[str, dict]:
        attrs: dict[str, dict] = {
            "pk": {"S": self.pk},
            "sk": {"S": self.sk},
            "type": {"S": self.type},
            "data": {"S": json.dumps(self.data, separators=(",", ":"), sort_keys=True)},
            "version": {"N": str(self.version)},
        }
        for name, (ipk, isk) in self.indexes.items():
            attrs[f"{name}pk"] = {"S": ipk}
            attrs[f"{name}sk"] = {"S": isk}
        for name, value in self.extra.items():
            attrs[name] = {"S": value}
        if self.expires_at is not None:
            attrs[TTL_ATTRIBUTE] = {"N": str(self.expires_at)}
        return attrs

    @classmethod
    def from_dynamo(cls, attrs: dict[str, dict]) -> Item:
        indexes = {
            name: (attrs[f"{name}pk"]["S"], attrs[f"{name}sk"]["S"])
            for name in INDEXES
            if f"{name}pk" in attrs
        }
        known = {"pk", "sk", "type", "data", "version"} | {
            f"{n}{k}" for n in INDEXES for k in ("pk", "sk")
        }
        return cls(
            pk=attrs["pk"]["S"],
            sk=attrs["sk"]["S"],
            type=attrs["type"]["S"],
            data=json.loads(attrs["data"]["S"]),
            version=int(attrs["version"]["N"]),
            indexes=indexes,
            extra={k: v["S"] for k, v in attrs.items() if k not in known and "S" in v},
            expires_at=int(attrs[TTL_ATTRIBUTE]["N"]) if TTL_ATTRIBUTE in attrs else None,
        )


@dataclass
class Put:
    item: Item
    expected_version: int | None = None  # None: must not exist yet

    def to_transact(self, table: str) -> dict:
        if self.expected_version is None:
            condition = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"N": str(self.expected_version)}},
            }
        return {"Put": {"TableName": table, "Item": self.item.to_dynamo(), **condition}}


@dataclass
class Delete:
    pk: str
    sk: str
    must_exist: bool = False  # fail the transaction when another writer deleted it first
    expected_version: int | None = None  # fail it too when another writer changed it since it was read

    def to_transact(self, table: str) -> dict:
        delete: dict[str, Any] = {"TableName": table, "Key": {"pk": {"S": self.pk}, "sk": {"S": self.sk}}}
        if self.expected_version is not None:
            delete["ConditionExpression"] = "version = :v"
            delete["ExpressionAttributeValues"] = {":v": {"N": str(self.expected_version)}}
        elif self.must_exist:
            delete["ConditionExpression"] = "attribute_exists(pk)"
        return {"Delete": delete}


@dataclass
class CounterAdvance:
    """Move a counter from `current` to `current + 1`, storing `head` (e.g. a hash) with it."""

    key: str
    current: int
    head: str

    def to_transact(self, table: str) -> dict:
        condition = (
            "attribute_not_exists(pk)" if self.current == 0 else "seq = :current"
        )
        values = {":next": {"N": str(self.current + 1)}, ":head": {"S": self.head}}
        if self.current:
            values[":current"] = {"N": str(self.current)}
        return {
            "Update": {
                "TableName": table,
                "Key": {"pk": {"S": self.key}},
                "UpdateExpression": "SET seq = :next, head = :head",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
        }


def plain_value(value: Any) -> dict:
    """A DynamoDB attribute value for a number (int, Decimal) or a string."""
    if isinstance(value, bool):
        raise TypeError("no booleans in plain attributes")
    if isinstance(value, int | Decimal):
        return {"N": format(value, "f") if isinstance(value, Decimal) else str(value)}
    return {"S": str(value)}


@dataclass
class Update:
    """Update plain (top-level, non-`data`) attributes of one item in place, e.g. a counter or a
    fence, under `condition` (None: none). `values` maps `:name` to an int, Decimal or str."""

    pk: str
    sk: str
    expression: str
    condition: str | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def to_transact(self, table: str) -> dict:
        update: dict[str, Any] = {"TableName": table, "Key": {"pk": {"S": self.pk}, "sk": {"S": self.sk}},
                                  "UpdateExpression": self.expression}
        if self.condition:
            update["ConditionExpression"] = self.condition
        if self.values:
            update["ExpressionAttributeValues"] = {k: plain_value(v) for k, v in self.values.items()}
        return {"Update": update}


@dataclass
class ConditionCheck:
    """Fail the transaction unless `condition` holds on the item (nothing is written to it)."""

    pk: str
    sk: str
    condition: str
    values: dict[str, Any] = field(default_factory=dict)

    def to_transact(self, table: str) -> dict:
        check: dict[str, Any] = {"TableName": table, "Key": {"pk": {"S": self.pk}, "sk": {"S": self.sk}},
                                 "ConditionExpression": self.condition}
        if self.values:
            check["ExpressionAttributeValues"] = {k: plain_value(v) for k, v in self.values.items()}
        return {"ConditionCheck": check}


class ConditionFailed(ConflictError):
    """A transaction's condition failed; `failed` lists the positions of the operations whose
    condition did not hold (in the order they were passed to `transact`)."""

    def __init__(self, message: str, failed: list[int], **kwargs):
        super().__init__(message, **kwargs)
        self.failed = failed


class DynamoStore:
    def __init__(self, table: str, counters_table: str, client=None):
        self.table = table
        self.counters_table = counters_table
        # our requests are built here, not typed by users: skip botocore's walk over every attribute
        self.client = client or boto3.client("dynamodb", config=Config(parameter_validation=False))

    # reads -----------------------------------------------------------------
    def get(self, pk: str, sk: str) -> Item | None:
        response = self._call(
            self.client.get_item,
            TableName=self.table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            ConsistentRead=True,
        )
        return Item.from_dynamo(response["Item"]) if "Item" in response else None

    def batch_get(self, keys: Iterable[tuple[str, str]]) -> list[Item]:
        keys = list(dict.fromkeys(keys))
        found: list[Item] = []
        for start in range(0, len(keys), 100):
            request = {
                self.table: {
                    "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            while request:
                response = self._call(self.client.batch_get_item, RequestItems=request)
                found += [Item.from_dynamo(a) for a in response["Responses"].get(self.table, [])]
                request = response.get("UnprocessedKeys") or {}
        return found

    def query(
        self,
        pk: str,
        *,
        index: str | None = None,
        begins_with: str = "",
        at_most: str | None = None,
        after: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> tuple[list[Item], bool]:
        """Items of one partition in sort-key order (or reversed), and whether more exist.

        `begins_with` restricts the sort key to a prefix, `at_most` caps it (inclusive),
        `after` is the exclusive cursor: the sort key of the last item already seen.
        """
        pk_name, sk_name = ("pk", "sk") if index is None else (f"{index}pk", f"{index}sk")
        # DynamoDB refuses empty key values; every sort key we write starts above " ".
        low = begins_with or " "
        high = at_most if at_most is not None else begins_with + "\uffff"
        if after is not None:
            if newest_first:
                high = min(high, after[:-1] + chr(ord(after[-1]) - 1) + "\uffff") if after else high
            else:
                low = max(low, after + "\u0001")
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":low": {"S": low}, ":high": {"S": high}},
            "ExpressionAttributeNames": {"#pk": pk_name, "#sk": sk_name},
            "ScanIndexForward": not newest_first,
        }
        if index:
            kwargs["IndexName"] = index
        else:
            kwargs["ConsistentRead"] = True
        if limit is not None:
            kwargs["Limit"] = limit + 1
        items: list[Item] = []
        for attrs in self._paginate(kwargs):
            items.append(Item.from_dynamo(attrs))
            if limit is not None and len(items) > limit:
                return items[:limit], True
        return items, False

    def stream(self, pk: str, low: str, high: str, index: str | None = None) -> Iterator[Item]:
        """Every item of a partition with sort key in [low, high], page by page (constant memory)."""
        pk_name, sk_name = ("pk", "sk") if index is None else (f"{index}pk", f"{index}sk")
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":low": {"S": low}, ":high": {"S": high}},
            "ExpressionAttributeNames": {"#pk": pk_name, "#sk": sk_name},
        }
        if index:
            kwargs["IndexName"] = index
        else:
            kwargs["ConsistentRead"] = True
        for attrs in self._paginate(kwargs):
            yield Item.from_dynamo(attrs)

    def existing(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these keys exist (consistent reads of the keys only)."""
        keys = list(dict.fromkeys(keys))
        found: set[tuple[str, str]] = set()
        for start in range(0, len(keys), 100):
            request = {
                self.table: {
                    "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys[start : start + 100]],
                    "ConsistentRead": True,
                    "ProjectionExpression": "pk, sk",
                }
            }
            while request:
                response = self._call(self.client.batch_get_item, RequestItems=request)
                found |= {(a["pk"]["S"], a["sk"]["S"]) for a in response["Responses"].get(self.table, [])}
                request = response.get("UnprocessedKeys") or {}
        return found

    def plain(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The plain attributes (numbers as Decimal, strings) of the items that exist, by key
        (consistent reads): counters and fences written with `Update`."""
        keys = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(keys), 100):
            wanted = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys[start : start + 100]]
            request = {self.table: {"Keys": wanted, "ConsistentRead": True}}
            while request:
                response = self._call(self.client.batch_get_item, RequestItems=request)
                for attrs in response["Responses"].get(self.table, []):
                    found[(attrs["pk"]["S"], attrs["sk"]["S"])] = {
                        name: Decimal(value["N"]) if "N" in value else value.get("S")
                        for name, value in attrs.items() if name not in ("pk", "sk")}
                request = response.get("UnprocessedKeys") or {}
        return found

    def batch_put(self, items: Iterable[Item]) -> None:
        """Unconditional puts, 25 per request, retrying what DynamoDB leaves unprocessed."""
        items = list(items)
        for start in range(0, len(items), 25):
            request = {self.table: [{"PutRequest": {"Item": i.to_dynamo()}} for i in items[start : start + 25]]}
            for _ in range(8):
                response = self._call(self.client.batch_write_item, RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
            else:
                raise RetryableError("DynamoDB left writes unprocessed after 8 attempts")

    def _paginate(self, kwargs: dict) -> Iterable[dict]:
        while True:
            response = self._call(self.client.query, **kwargs)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            kwargs = {**kwargs, "ExclusiveStartKey": response["LastEvaluatedKey"]}

    def counter(self, key: str) -> tuple[int, str]:
        response = self._call(
            self.client.get_item,
            TableName=self.counters_table,
            Key={"pk": {"S": key}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return 0, ""
        return int(item["seq"]["N"]), item.get("head", {}).get("S", "")

    # writes ----------------------------------------------------------------
    def transact(self, operations: list, audit: Iterable[AuditEvent] = (), events: Iterable[dict] = ()) -> None:
        """Write everything or nothing. A failed condition raises ConflictError.

        `events` are envelopes (`Ports.event`): each becomes an outbox entry of this transaction,
        published after the commit by the outbox publisher, and only if it commits."""
        writes = [
            op.to_transact(self.counters_table if isinstance(op, CounterAdvance) else self.table)
            for op in operations
        ]
        writes += [Put(audit_item(event)).to_transact(self.table) for event in audit]
        writes += [Put(outbox_item(envelope)).to_transact(self.table) for envelope in events]
        if len(writes) > MAX_TRANSACTION_WRITES:
            raise NonRetryableError(f"a transaction holds at most {MAX_TRANSACTION_WRITES} writes, got {len(writes)}",
                                    code="transaction_too_large")
        try:
            self.client.transact_write_items(TransactItems=writes)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            _refuse_limits(error)
            if code == "ValidationException":  # e.g. two operations on one item: the same request fails again
                raise NonRetryableError(f"DynamoDB refused the transaction: {error.response['Error'].get('Message')}",
                                        code="invalid_transaction") from error
            if code == "TransactionCanceledException":
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
                if "ValidationError" in reasons:
                    raise NonRetryableError(f"DynamoDB refused the transaction: {reasons}",
                                            code="invalid_transaction") from error
                if "ConditionalCheckFailed" in reasons:
                    raise ConditionFailed(
                        "the object changed or already exists; read it again and retry",
                        [i for i, r in enumerate(reasons) if r == "ConditionalCheckFailed"],
                        code="concurrent_modification",
                    ) from error
                raise RetryableError(f"transaction cancelled: {reasons}") from error
            if code in TRANSIENT:
                raise RetryableError(f"DynamoDB {code}") from error
            raise

    def put_plain(self, item: Item) -> None:
        """Unconditional single put: derived data that may be rewritten, or an idempotent step (the same
        item written again is the same item)."""
        self._call(self.client.put_item, TableName=self.table, Item=item.to_dynamo())

    def delete_plain(self, pk: str, sk: str) -> None:
        """Unconditional delete (idempotent: nothing happens when the item is gone already)."""
        self._call(self.client.delete_item, TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}})

    def _call(self, method, **kwargs):
        try:
            return method(**kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] in TRANSIENT:
                raise RetryableError(f"DynamoDB {error.response['Error']['Code']}") from error
            _refuse_limits(error)
            raise


def _refuse_limits(error: ClientError) -> None:
    """A write DynamoDB refuses for its size fails again tomorrow: say so (not retried), by name."""
    message = error.response["Error"].get("Message", "")
    if error.response["Error"]["Code"] == "ValidationException" and "size" in message.lower():
        raise NonRetryableError(f"DynamoDB refused the write: {message}", code="item_too_large") from error


def audit_item(event: AuditEvent) -> Item:
    return Item(
        pk=f"AUDIT#{event.object_id}",
        sk=event.id,
        type="audit_event",
        data=event.model_dump(mode="json"),
        indexes={
            "gsi1": (f"AUDIT_ACTOR#{event.actor}", event.id),
            "gsi2": (f"AUDIT_ACTION#{event.action}", event.id),
            "gsi3": ("AUDIT", event.id),
        },
    )


def outbox_item(envelope: dict) -> Item:
    """An event to publish, keyed by its id (written once: "must not exist"), kept two weeks."""
    occurred = datetime.fromisoformat(envelope["occurred_at"].replace("Z", "+00:00"))
    return Item(pk=f"OUTBOX#{envelope['id']}", sk="A", type=OUTBOX_TYPE, data=envelope,
                expires_at=int(occurred.timestamp()) + OUTBOX_RETENTION_SECONDS)


def to_data(model: Model) -> dict:
    return model.model_dump(mode="json")
