"""Ports on moto's in-memory AWS (`mock_aws`, no HTTP): the real repository, S3 and SES adapters
on tables shaped like the stack's (stacks/constructs/data.py), a fixed clock."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import boto3
from moto import mock_aws
from moto.ses.models import ses_backends

from shared.adapters.aws import S3Documents, SesMailer
from shared.adapters.clock import FixedClock
from shared.adapters.dynamodb import DynamoStore, Item, Put
from shared.adapters.repository import Repository
from shared.billing.models import Customer, Invoice, InvoiceLine, PartySnapshot
from shared.services import outbox
from shared.services.context import SYSTEM, Ports

REGION, ACCOUNT = "us-east-1", "123456789012"
SENDER = "billing@example.com"
AT = datetime(2025, 4, 1, 2, 0, 5, tzinfo=UTC)


class Recorded:
    """The event bus: what the outbox publisher put on it; `failing` refuses every PutEvents."""

    def __init__(self):
        self.events: list[dict] = []
        self.failing = False

    def put(self, events: list[dict]) -> list[int]:
        if self.failing:
            raise ConnectionError("EventBridge is unreachable")
        self.events += events
        return []


@dataclass
class World:
    ports: Ports
    clock: FixedClock
    stream_position: str | None = None  # the last stream record the outbox publisher took (Lambda's checkpoint)

    def sent(self) -> list:
        """moto's record of every SendRawEmail: `.destinations`, `.raw_data`, `.id`."""
        return list(ses_backends[ACCOUNT][REGION].sent_messages)

    def stream_records(self, after: str | None = None) -> list[dict]:
        """BillingTable's stream (DynamoDB Streams records, as Lambda receives them), after a sequence number."""
        # botocore 1.44 addresses streams at <account>.streams-ddb.<region>: moto answers the classic endpoint
        streams = boto3.client("dynamodbstreams", endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com")
        arn = boto3.client("dynamodb").describe_table(TableName="billing")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after} if after else \
            {"ShardIteratorType": "TRIM_HORIZON"}
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, **position)["ShardIterator"]
        return streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]

    def outbox(self) -> list[dict]:
        """Every event committed so far (the outbox entries on the stream), in commit order."""
        return [envelope for _, envelope in outbox.outbox_entries(self.stream_records())]

    def publish_outbox(self) -> list[str]:
        """What `outbox_publish` does with the stream's new records, with Lambda's checkpoint: a reported
        failure leaves the stream at that record, to be retried. Returns the failed sequence numbers."""
        records = self.stream_records(self.stream_position)
        failed = outbox.publish_records(self.ports.publisher, records)
        done = [r for r in records if not failed or int(r["dynamodb"]["SequenceNumber"]) < int(failed[0])]
        if done:
            self.stream_position = done[-1]["dynamodb"]["SequenceNumber"]
        return failed


def _tables(client) -> None:
    strings = [{"AttributeName": n, "AttributeType": "S"} for n in
               ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk")]
    client.create_table(
        TableName="billing", BillingMode="PAY_PER_REQUEST", AttributeDefinitions=strings,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": f"gsi{n}", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": f"gsi{n}pk", "KeyType": "HASH"},
                          {"AttributeName": f"gsi{n}sk", "KeyType": "RANGE"}]} for n in (1, 2, 3)])
    client.create_table(TableName="counters", BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])


@contextmanager
def moto_world():
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")}
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ["AWS_DEFAULT_REGION"] = REGION
    try:
        with mock_aws():
            _tables(boto3.client("dynamodb"))
            boto3.client("s3").create_bucket(Bucket="documents")
            boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
            clock = FixedClock(AT)
            ports = Ports(repo=Repository(DynamoStore("billing", "counters")), clock=clock, publisher=Recorded(),
                          documents=S3Documents("documents"), mailer=SesMailer(SENDER))
            yield World(ports, clock)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def add_customer(ports: Ports, **fields) -> Customer:
    base = dict(id="cus_acme", name="Acme IoT", email="ap@acme-iot.example", cc_emails=["finance@acme-iot.example"],
                country="US", region="US-CA", currency="USD", billing_entity="ent_us", created_at=AT)
    customer = Customer(**(base | fields))
    ports.repo.create_customer(customer, ports.audit(SYSTEM, "customer.created", "customer", customer.id))
    return customer


def add_invoice(ports: Ports, customer: Customer, pdf: bytes | None = b"%PDF-1.7 test", **fields) -> Invoice:
    """A finalized invoice of `customer`, stored with its PDF (none when `pdf` is None)."""
    line = InvoiceLine(description="Managed Service", charge_code="ms-fee", quantity=Decimal(1),
                       unit_price=Decimal("1250.00"), amount=Decimal("1250.00"), currency="USD",
                       period_start=date(2025, 4, 1), period_end=date(2025, 5, 1), external_id="MS-2025-001")
    base = dict(id="inv_0001", number="INV-000001", status="finalized", customer_id=customer.id,
                billing_entity_id="ent_us", currency="USD", issue_date=date(2025, 4, 1), due_date=date(2025, 5, 1),
                lines=[line], subtotal=Decimal("1250.00"), tax_total=Decimal("0.00"), total=Decimal("1250.00"),
                amount_due=Decimal("1250.00"), seller=PartySnapshot(name="Billing US, Inc.", country="US"),
                buyer=PartySnapshot(name=customer.name, country="US"), created_at=AT, finalized_at=AT)
    invoice = Invoice(**(base | fields))
    if pdf is not None:
        invoice.pdf_key = f"invoices/{invoice.number}.pdf"
        ports.documents.put(invoice.pdf_key, pdf, "application/pdf")
    ports.repo.store.transact([Put(ports.repo.invoice_item(invoice))])
    return invoice


def stored(ports: Ports, pk: str) -> list[Item]:
    items, _ = ports.repo.store.query(pk)
    return items
