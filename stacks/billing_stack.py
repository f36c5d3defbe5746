"""BillingStack: composes one construct per capability; holds no resources of its own."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from stacks.config import BillingConfig
from stacks.constructs.api import Api
from stacks.constructs.contracts import ContractCalendar
from stacks.constructs.data import Data
from stacks.constructs.documents import Documents
from stacks.constructs.events import Bus, MailEvents, Outbox, Webhooks
from stacks.constructs.finance import Finance, finance_emails
from stacks.constructs.issuing import DocumentIssuing
from stacks.constructs.monitoring import Monitoring
from stacks.constructs.reference import ReferenceRates
from stacks.constructs.usage import UsageImport
from stacks.constructs.workflows import Workflows
from stacks.function_factory import FunctionFactory

STACK_NAME = "BillingStack"


class BillingStack(Stack):
    def __init__(self, scope: Construct, construct_id: str = STACK_NAME, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config = BillingConfig.from_context(self)

        data = Data(self, "Data", config=config)
        documents = Documents(self, "Documents", config=config)
        bus = Bus(self, "Events").event_bus

        # Same key => same value in every function (shared/ARCHITECTURE.md).
        factory = FunctionFactory(
            self,
            config=config,
            environment={
                "BILLING_TABLE": data.billing_table.table_name,
                "COUNTERS_TABLE": data.counters_table.table_name,
                "IDEMPOTENCY_TABLE": data.idempotency_table.table_name,
                "DOCUMENTS_BUCKET": documents.documents_bucket.bucket_name,
                "EXPORTS_BUCKET": documents.exports_bucket.bucket_name,
                "EVENT_BUS_NAME": bus.event_bus_name,
                "MAIL_FROM": config.mail_from,
                "POWERTOOLS_SERVICE_NAME": "billing",
                "POWERTOOLS_METRICS_NAMESPACE": "Billing",
                "LOG_LEVEL": "INFO",
                **finance_emails(self),  # CRE_EMAIL, FINANCE_EMAIL
                # UC04: Ops confirms annual terminations; the same people as the alarms (`ops_emails`)
                "OPS_EMAIL": ",".join(config.ops_emails) or "ops@example.com",
            },
        )

        outbox = Outbox(self, "Outbox", factory=factory, billing_table=data.billing_table, bus=bus)
        webhooks = Webhooks(
            self, "Webhooks", bus=bus, factory=factory, billing_table=data.billing_table
        )
        workflows = Workflows(
            self,
            "Workflows",
            config=config,
            factory=factory,
            billing_table=data.billing_table,
            counters_table=data.counters_table,
            documents_bucket=documents.documents_bucket,
            email_identity=documents.email_identity,
        )
        api = Api(
            self,
            "Api",
            config=config,
            factory=factory,
            billing_table=data.billing_table,
            counters_table=data.counters_table,
            idempotency_table=data.idempotency_table,
            documents_bucket=documents.documents_bucket,
            state_machine=workflows.state_machine,
        )
        ReferenceRates(self, "Reference", factory=factory, exports_bucket=documents.exports_bucket,
                       readers=[factory.functions["api"], factory.functions["billrun_invoice_account"]])
        UsageImport(
            self,
            "Usage",
            removal_policy=config.removal_policy,
            factory=factory,
            billing_table=data.billing_table,
            access_logs_bucket=documents.access_logs_bucket,
        )
        MailEvents(self, "MailEvents", factory=factory, billing_table=data.billing_table,
                   grant_send=documents.grant_send_invoices,
                   senders=[factory.functions["invoice_deliver"], factory.functions["api"]])
        Finance(self, "Finance", factory=factory, bus=bus, billing_table=data.billing_table,
                exports_bucket=documents.exports_bucket, grant_send=documents.grant_send_invoices,
                api=factory.functions["api"])
        DocumentIssuing(self, "Issuing", factory=factory, billing_table=data.billing_table,
                        documents_bucket=documents.documents_bucket, bus=bus,
                        grant_send=documents.grant_send_invoices, api=api.function)
        ContractCalendar(self, "Contracts", factory=factory, billing_table=data.billing_table,
                         grant_send=documents.grant_send_invoices)
        Monitoring(
            self,
            "Monitoring",
            config=config,
            functions=factory.functions,
            webhooks_dlq=webhooks.dlq,
            outbox_dlq=outbox.dlq,
            state_machine=workflows.state_machine,
        )

        # Read by the staff CLI; keep the names stable.
        outputs = {
            "ApiUrl": api.rest_api.url,
            "BillingTableName": data.billing_table.table_name,
            "CountersTableName": data.counters_table.table_name,
            "IdempotencyTableName": data.idempotency_table.table_name,
            "DocumentsBucketName": documents.documents_bucket.bucket_name,
            "ExportsBucketName": documents.exports_bucket.bucket_name,
            "EventBusName": bus.event_bus_name,
            "BillRunStateMachineArn": workflows.state_machine.state_machine_arn,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
