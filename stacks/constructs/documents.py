"""Buckets (documents, exports, their access logs), the SES identity invoices are sent from and
its configuration set.

Retention. `DocumentsBucket` holds the documents of record (invoice PDFs, UBL/Factur-X files)
and uses S3 Object Lock with a default retention of `RETENTION_YEARS` (10) years on every
object version: invoices must stay unmodified for 7-10 years in most jurisdictions (seed 001
§9, "Record Retention"; 10 years e.g. in France, Code de commerce L123-22, and Germany, §147
AO), so the longest common term is the default. The mode is COMPLIANCE for real stacks: no
one, the root user included, can delete a locked version or shorten its retention, which is
what "finalized documents are never deleted" means; a bucket policy also denies
`s3:DeleteObject*` to every principal, so not even a delete marker can hide a document.
Throw-away stacks (`-c ephemeral=true`) use GOVERNANCE instead, so whoever holds
`s3:BypassGovernanceRetention` can empty the bucket before the stack is destroyed.
Object Lock needs versioning (the bucket is versioned) and must be enabled when the bucket is
created (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html). The PDFs
name people, so an erasure request is met by anonymizing the customer record, not the
retained documents (the legal obligation prevails, seed 001 §9, "GDPR and Data Privacy").

Mail events. The `InvoiceMail` configuration set is the MailFrom identity's default, so every
invoice email publishes its Delivery, Bounce, Complaint and Reject events to the account's
default EventBridge bus (the only bus SES publishes to), where `MailEvents` picks them up
(stacks/constructs/events.py).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses
from constructs import Construct

from stacks import nag
from stacks.config import BillingConfig

RETENTION_YEARS = 10


def retention_days(years: int) -> int:
    """Days that cover `years` calendar years from any date (a leap day at most every 4 years)."""
    return years * 365 + (years + 3) // 4


MAIL_EVENTS = [
    ses.EmailSendingEvent.DELIVERY,
    ses.EmailSendingEvent.BOUNCE,
    ses.EmailSendingEvent.COMPLAINT,
    ses.EmailSendingEvent.REJECT,
]


class Documents(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: BillingConfig) -> None:
        super().__init__(scope, construct_id)
        removal = config.removal_policy

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=removal,
        )
        nag.acknowledge(
            self.access_logs_bucket,
            "AwsSolutions-S1",
            "This is the server-access-log bucket of the documents and exports buckets; logging "
            "its own accesses would recurse.",
        )

        # Invoice PDFs and UBL files, kept for the legal retention period: versioned, locked, never public.
        retention = (
            s3.ObjectLockRetention.governance
            if config.ephemeral
            else s3.ObjectLockRetention.compliance
        )(Duration.days(retention_days(RETENTION_YEARS)))
        self.documents_bucket = self._bucket(
            "DocumentsBucket",
            "documents/",
            removal,
            object_lock_enabled=True,
            object_lock_default_retention=retention,
        )
        if not config.ephemeral:
            self.documents_bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="DocumentsAreNeverDeleted",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                    resources=[self.documents_bucket.arn_for_objects("*")],
                )
            )
        # Finance exports (CSV), written by staff tooling.
        self.exports_bucket = self._bucket("ExportsBucket", "exports/", removal)

        # Every invoice email's delivery events go to the default event bus.
        self.configuration_set = ses.ConfigurationSet(
            self,
            "InvoiceMail",
            configuration_set_name=f"{Stack.of(self).stack_name}-invoice-mail",
        )
        self.configuration_set.add_event_destination(
            "ToDefaultEventBus",
            destination=ses.EventDestination.event_bus(
                events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
            ),
            events=MAIL_EVENTS,
        )
        identity = (
            ses.Identity.email(config.mail_from)
            if "@" in config.mail_from
            else ses.Identity.domain(config.mail_from)
        )
        self.mail_from = config.mail_from
        self.email_identity = ses.EmailIdentity(
            self, "MailFrom", identity=identity, configuration_set=self.configuration_set
        )

    def grant_send_invoices(self, grantee: iam.IGrantable) -> None:
        """Send from the MailFrom identity through its configuration set (SES checks both)."""
        self.email_identity.grant_send_email(grantee)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ses:SendEmail", "ses:SendRawEmail"],
                resources=[
                    Stack.of(self).format_arn(
                        service="ses",
                        resource="configuration-set",
                        resource_name=self.configuration_set.configuration_set_name,
                    )
                ],
            )
        )

    def _bucket(
        self, construct_id: str, log_prefix: str, removal: RemovalPolicy, **extra: object
    ) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix=log_prefix,
            lifecycle_rules=[
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(7))
            ],
            removal_policy=removal,
            **extra,
        )
