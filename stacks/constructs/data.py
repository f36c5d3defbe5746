"""DynamoDB tables: BillingTable (single table + 3 GSIs; its stream carries the outbox, its TTL removes
published outbox entries), CountersTable, IdempotencyTable."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from shared.adapters.dynamodb import TTL_ATTRIBUTE
from stacks.config import BillingConfig

S = dynamodb.AttributeType.STRING

# name -> (partition key, sort key); every GSI projects ALL.
BILLING_GSIS: dict[str, tuple[str, str]] = {
    "gsi1": ("gsi1pk", "gsi1sk"),
    "gsi2": ("gsi2pk", "gsi2sk"),
    "gsi3": ("gsi3pk", "gsi3sk"),
}


class Data(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: BillingConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config

        self.billing_table = self._table(
            "BillingTable",
            partition_key=dynamodb.Attribute(name="pk", type=S),
            sort_key=dynamodb.Attribute(name="sk", type=S),
            # the transactional outbox: every committed event reaches `outbox_publish` through the stream
            stream=dynamodb.StreamViewType.NEW_IMAGE,
            time_to_live_attribute=TTL_ATTRIBUTE,
        )
        for index_name, (pk, sk) in BILLING_GSIS.items():
            self.billing_table.add_global_secondary_index(
                index_name=index_name,
                partition_key=dynamodb.Attribute(name=pk, type=S),
                sort_key=dynamodb.Attribute(name=sk, type=S),
                projection_type=dynamodb.ProjectionType.ALL,
            )

        # Invoice-number counters and hash-chain heads: small on purpose (transactions copy it
        # whole in moto, and hot keys stay few in DynamoDB).
        self.counters_table = self._table(
            "CountersTable", partition_key=dynamodb.Attribute(name="pk", type=S)
        )

        # Powertools idempotency layout.
        self.idempotency_table = self._table(
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name="id", type=S),
            time_to_live_attribute="expiration",
        )

    def _table(self, construct_id: str, **props) -> dynamodb.Table:
        ephemeral = self._config.ephemeral
        return dynamodb.Table(
            self,
            construct_id,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=not ephemeral,
            removal_policy=self._config.removal_policy,
            **props,
        )
