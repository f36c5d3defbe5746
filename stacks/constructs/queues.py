"""Dead-letter queues, declared one way: encrypted, TLS only, kept 14 days."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks import nag


def dead_letter_queue(scope: Construct, construct_id: str, *, of_what: str) -> sqs.Queue:
    """A DLQ `construct_id` for `of_what` (it needs no DLQ of its own: cdk-nag SQS3 acknowledged)."""
    queue = sqs.Queue(scope, construct_id, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
                      retention_period=Duration.days(14))
    nag.acknowledge(queue, "AwsSolutions-SQS3", f"{construct_id} is itself the dead-letter queue of {of_what}.")
    return queue
