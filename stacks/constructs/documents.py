"""Buckets (documents, exports, their access logs) and the SES identity invoices are sent from."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses
from constructs import Construct

from stacks import nag
from stacks.config import BillingConfig


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

        # Invoice PDFs and UBL files, kept for the legal retention period: versioned, never public.
        self.documents_bucket = self._bucket("DocumentsBucket", "documents/", removal)
        # Finance exports (CSV), written by staff tooling.
        self.exports_bucket = self._bucket("ExportsBucket", "exports/", removal)

        identity = (
            ses.Identity.email(config.mail_from)
            if "@" in config.mail_from
            else ses.Identity.domain(config.mail_from)
        )
        self.mail_from = config.mail_from
        self.email_identity = ses.EmailIdentity(self, "MailFrom", identity=identity)

    def _bucket(self, construct_id: str, log_prefix: str, removal: RemovalPolicy) -> s3.Bucket:
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
        )
