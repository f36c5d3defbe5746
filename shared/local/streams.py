"""DynamoDB Streams event source mappings: one poller thread per mapping, with Lambda's semantics.

The transactional outbox reaches its publisher through BillingTable's stream. moto 5.2.5 keeps
a table's stream (the CloudFormation-deployed table gets its `StreamSpecification`, and
`GetAtt StreamArn` resolves), but: its own trigger invokes the function synchronously inside the
write and then drops the records; reading through the API is not isolated from transactions (a
reader can see the records of a transaction that is then rolled back, since moto writes first
and restores a copy of the table on failure); and the records are kept forever (each transaction
deep-copies the table, stream included). So the poller here detaches moto's trigger, reads the
shard under the runtime's DynamoDB lock (shared/local/dynamodb.py: never in the middle of a
transaction), and trims what it has consumed, as the stream's retention would.

Like Lambda's poller: starts at the stream's end when the runtime starts (after a restore:
restored items are not new writes), applies the mapping's filter (records that do not match are
skipped), invokes the function with up to `BatchSize` records in the DynamoDB Streams shape,
retries from the first failed record (`ReportBatchItemFailures`; a function error fails the whole
batch), halves the batch on failure (`BisectBatchOnFunctionError`), and after
`MaximumRetryAttempts` sends the batch's coordinates to the on-failure destination and moves on.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from moto.core.utils import unix_time
from moto.dynamodb.models import dynamodb_backends
from moto.events.models import EventPattern

from .dynamodb import LOCK

log = logging.getLogger("shared.local")
POLL_SECONDS = 0.02  # an empty stream is read again this soon (Lambda polls about 4 times a second)
RETRY_SECONDS = 1.0  # before a failed batch is retried (times the runtime's time scale)


@dataclass(frozen=True)
class StreamMapping:
    function_arn: str
    stream_arn: str
    batch_size: int
    report_failures: bool
    bisect: bool
    max_retries: int  # -1: until the records expire
    filters: tuple[str, ...]
    on_failure: str | None  # an SQS queue ARN

    @property
    def table_name(self) -> str:
        return self.stream_arn.split(":table/", 1)[1].split("/stream/", 1)[0]

    @classmethod
    def from_esm(cls, esm: dict) -> StreamMapping:
        patterns = tuple(f["Pattern"] for f in (esm.get("FilterCriteria") or {}).get("Filters", []))
        destination = ((esm.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        retries = esm.get("MaximumRetryAttempts")
        return cls(esm["FunctionArn"], esm["EventSourceArn"], int(esm.get("BatchSize") or 100),
                   "ReportBatchItemFailures" in (esm.get("FunctionResponseTypes") or []),
                   bool(esm.get("BisectBatchOnFunctionError")), -1 if retries is None else int(retries),
                   patterns, destination)


def detach_moto_trigger(mapping: StreamMapping, account: str, region: str) -> None:
    """moto would otherwise invoke the function itself, inside the write, and then drop the records."""
    table = dynamodb_backends[account][region].get_table(mapping.table_name)
    table.lambda_event_source_mappings.pop(mapping.function_arn, None)


class StreamPoller(threading.Thread):
    def __init__(self, mapping: StreamMapping, clients, stop: threading.Event, time_scale: float,
                 account: str, region: str):
        super().__init__(name=f"stream-poller-{mapping.table_name}", daemon=True)
        self.mapping, self.clients, self.stop, self.time_scale = mapping, clients, stop, time_scale
        self.account, self.region = account, region
        self.patterns = [EventPattern.load(p) for p in mapping.filters]
        self.position = self._end()  # the next sequence number to read
        self._idle = threading.Event()

    def run(self) -> None:
        attempts, size = 0, self.mapping.batch_size
        while not self.stop.is_set():
            try:
                batch, after = self._read(size)
                if batch is None:  # nothing new
                    self._idle.set()
                    self.stop.wait(POLL_SECONDS)
                    continue
                self._idle.clear()
                if not batch:  # only records the filter drops
                    self.position = after
                    continue
                failed_from = self._invoke(batch)
                if failed_from is None:
                    self.position, attempts, size = after, 0, self.mapping.batch_size
                    continue
                self.position = failed_from  # the checkpoint: retried from the first failed record
                attempts += 1
                if 0 <= self.mapping.max_retries < attempts:
                    self._give_up([r for r in batch if int(r["dynamodb"]["SequenceNumber"]) >= failed_from])
                    self.position, attempts, size = after, 0, self.mapping.batch_size
                    continue
                if self.mapping.bisect:
                    size = max(1, len(batch) // 2)
                self.stop.wait(RETRY_SECONDS * self.time_scale)
            except Exception:  # keep polling, as Lambda's pollers do
                if not self.stop.is_set():
                    log.exception("stream poller for %s", self.mapping.stream_arn)
                    self.stop.wait(1)

    def caught_up(self, timeout: float) -> bool:
        """Whether everything written so far was handed to the function (waits up to `timeout` s)."""
        self._idle.clear()
        return self._idle.wait(timeout)

    # -- the shard, read under the DynamoDB lock ---------------------------------------------------

    def _shard(self):
        return dynamodb_backends[self.account][self.region].get_table(self.mapping.table_name).stream_shard

    def _end(self) -> int:
        with LOCK:
            shard = self._shard()
            return shard.starting_sequence_number + len(shard.items)

    def _read(self, size: int) -> tuple[list[dict] | None, int]:
        """Up to `size` records from the position (those the filter keeps) and the position after
        them; (None, position) when there is nothing new. Consumed records are trimmed."""
        with LOCK:
            shard = self._shard()
            consumed = min(self.position - shard.starting_sequence_number, len(shard.items))
            if consumed > 0:
                del shard.items[:consumed]
                shard.starting_sequence_number += consumed
            start = self.position - shard.starting_sequence_number
            taken = [r.to_json() for r in shard.items[start:start + size]]
        if not taken:
            return None, self.position
        after = int(taken[-1]["dynamodb"]["SequenceNumber"]) + 1
        records = [self._lambda_record(r) for r in taken]
        if self.patterns:
            records = [r for r in records if any(p.matches_event(r) for p in self.patterns)]
        return records, after

    def _lambda_record(self, record: dict) -> dict:
        dynamodb = dict(record["dynamodb"])
        if isinstance(dynamodb.get("ApproximateCreationDateTime"), datetime):
            dynamodb["ApproximateCreationDateTime"] = unix_time(dynamodb["ApproximateCreationDateTime"])
        return json.loads(json.dumps({
            "eventID": record["eventID"], "eventName": record["eventName"], "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": self.region, "dynamodb": dynamodb,
            "eventSourceARN": self.mapping.stream_arn}))

    # -- the function ------------------------------------------------------------------------------

    def _invoke(self, batch: list[dict]) -> int | None:
        """None when the batch succeeded, else the sequence number to retry from."""
        response = self.clients("lambda").invoke(FunctionName=self.mapping.function_arn,
                                                 Payload=json.dumps({"Records": batch}))
        payload = response["Payload"].read()
        first = int(batch[0]["dynamodb"]["SequenceNumber"])
        if "FunctionError" in response:
            log.warning("%s failed a stream batch of %d: %s", self.mapping.function_arn, len(batch), payload[:500])
            return first
        if not self.mapping.report_failures:
            return None
        sequences = [r["dynamodb"]["SequenceNumber"] for r in batch]
        try:
            failures = (json.loads(payload) or {}).get("batchItemFailures") or [] if payload.strip() else []
            reported = [int(f["itemIdentifier"]) for f in failures if str(f["itemIdentifier"]) in sequences]
            if len(reported) < len(failures):
                return first  # an identifier not in the batch: Lambda fails the whole batch
        except (ValueError, TypeError, KeyError, AttributeError):
            return first
        return min(reported) if reported else None

    def _give_up(self, records: list[dict]) -> None:
        numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
        log.error("%s: stream records %s..%s exhausted their retries", self.mapping.function_arn,
                  numbers[0], numbers[-1])
        if not self.mapping.on_failure or ":sqs:" not in self.mapping.on_failure:
            return
        sqs = self.clients("sqs")
        url = sqs.get_queue_url(QueueName=self.mapping.on_failure.rsplit(":", 1)[-1])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({
            "requestContext": {"functionArn": self.mapping.function_arn, "condition": "RetryAttemptsExhausted"},
            "DDBStreamBatchInfo": {"streamArn": self.mapping.stream_arn, "startSequenceNumber": numbers[0],
                                   "endSequenceNumber": numbers[-1], "batchSize": len(numbers)}}))
