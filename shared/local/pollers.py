"""SQS event source mappings: one poller thread per mapping, with Lambda's semantics.

A poller receives up to `BatchSize` messages (waiting up to the batching window), invokes
the function once with the SQS event, deletes what succeeded and leaves the rest to
reappear after the queue's visibility timeout; the queue's redrive policy then moves a
message received `maxReceiveCount` times to its DLQ. With `ReportBatchItemFailures` only the
reported messages fail; a function error fails the whole batch.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass

from moto.sqs.models import sqs_backends

log = logging.getLogger("shared.local")


@dataclass(frozen=True)
class Mapping:
    function_arn: str
    queue_arn: str
    batch_size: int
    window: float
    report_failures: bool

    @classmethod
    def from_esm(cls, esm: dict) -> Mapping:
        return cls(esm["FunctionArn"], esm["EventSourceArn"], int(esm.get("BatchSize") or 10),
                   float(esm.get("MaximumBatchingWindowInSeconds") or 0),
                   "ReportBatchItemFailures" in (esm.get("FunctionResponseTypes") or []))


def detach_moto_trigger(mapping: Mapping, account: str, region: str) -> None:
    """moto would otherwise invoke the function itself, synchronously, at SendMessage."""
    for queue in sqs_backends[account][region].queues.values():
        if queue.queue_arn == mapping.queue_arn:
            queue.lambda_event_source_mappings.pop(mapping.function_arn, None)


class SqsPoller(threading.Thread):
    def __init__(self, mapping: Mapping, clients, stop: threading.Event, time_scale: float):
        super().__init__(name=f"sqs-poller-{mapping.queue_arn.rsplit(':', 1)[-1]}", daemon=True)
        self.mapping, self.clients, self.stop, self.time_scale = mapping, clients, stop, time_scale
        self.sqs = clients("sqs")
        self.queue_url = self.sqs.get_queue_url(QueueName=mapping.queue_arn.rsplit(":", 1)[-1])[
            "QueueUrl"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url,
                                                   AttributeNames=["VisibilityTimeout"])
        self.visibility = int(attributes["Attributes"]["VisibilityTimeout"])
        self._timers: list[threading.Timer] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                batch = self._receive()
                if batch:
                    self._process(batch)
            except Exception:  # keep polling, as Lambda's pollers do
                if not self.stop.is_set():
                    log.exception("poller for %s", self.mapping.queue_arn)
                    self.stop.wait(1)
        for timer in self._timers:
            timer.cancel()

    def _receive(self) -> list[dict]:
        batch = self._poll(wait=1)
        deadline = time.monotonic() + self.mapping.window
        while batch and len(batch) < self.mapping.batch_size and not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = self._poll(wait=1 if left >= 1 else 0,
                              limit=self.mapping.batch_size - len(batch))
            if not more and left < 1:
                self.stop.wait(left)
            batch += more
        return batch

    def _poll(self, wait: int, limit: int | None = None) -> list[dict]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=min(10, limit or self.mapping.batch_size),
            WaitTimeSeconds=wait, VisibilityTimeout=self.visibility,
            MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"])
        return response.get("Messages", [])

    def _process(self, batch: list[dict]) -> None:
        event = {"Records": [self._record(m) for m in batch]}
        response = self.clients("lambda").invoke(FunctionName=self.mapping.function_arn,
                                                 Payload=json.dumps(event))
        payload = response["Payload"].read()
        ids = [m["MessageId"] for m in batch]
        if "FunctionError" in response:
            log.warning("%s failed a batch of %d: %s", self.mapping.function_arn, len(batch),
                        payload[:500])
            failed = set(ids)
        elif self.mapping.report_failures:
            failed = batch_item_failures(payload, ids)
        else:
            failed = set()
        done = [m for m in batch if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[start:start + 10])])
        if failed and self.time_scale < 1:
            self._release_later([m["ReceiptHandle"] for m in batch if m["MessageId"] in failed])

    def _release_later(self, handles: list[str]) -> None:
        """The scaled visibility timeout: make failed messages visible again sooner."""

        def release():
            for handle in handles:
                self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=handle,
                                                   VisibilityTimeout=0)

        timer = threading.Timer(self.visibility * self.time_scale, release)
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _record(self, message: dict) -> dict:
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {k: _attribute(v) for k, v in
                                  message.get("MessageAttributes", {}).items()},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.mapping.queue_arn,
            "awsRegion": self.mapping.queue_arn.split(":")[3],
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record


def batch_item_failures(payload: bytes, ids: list[str]) -> set[str]:
    """Lambda's rules: no response or an empty list is success; anything malformed fails all."""
    try:
        response = json.loads(payload) if payload.strip() else None
    except ValueError:
        return set(ids)
    if not response:
        return set()
    if not isinstance(response, dict):
        return set(ids)
    failures = response.get("batchItemFailures") or []
    if not isinstance(failures, list):
        return set(ids)
    reported = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
    return set(ids) if any(r not in ids for r in reported) else set(reported)


def _attribute(value: dict) -> dict:
    binary = value.get("BinaryValue")
    attribute = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if binary is not None:
        attribute["binaryValue"] = base64.b64encode(binary).decode()
    return attribute
