"""Bulk usage files: bucket `UsageImportBucket`, function `usage_import`, S3 -> Lambda notification.

A file dropped under `incoming/` (`.csv` or `.jsonl`) invokes `usage_import`, which ingests it
like `POST /v1/usage-events` and writes `results/<key>.json` to the same bucket.

The notification is the bucket's own L1 `NotificationConfiguration` plus an
`AWS::Lambda::Permission` (CDK's `add_event_notification` needs a custom resource). When
CloudFormation creates the bucket it checks that S3 may invoke the function, so the bucket
depends on the permission; the permission, the function's grants and `USAGE_BUCKET` therefore
name the bucket by a fixed name rather than by `Ref`/`GetAtt`, which would close a cycle
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-s3-bucket-notificationconfig.html,
https://repost.aws/knowledge-center/cloudformation-circular-dependency-sam). The fixed name
(stack, account, region) means a retained bucket must be emptied and deleted by hand before
the stack can be created again in the same account and region.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks import nag
from stacks.function_factory import FunctionFactory

INCOMING_PREFIX = "incoming/"
RESULTS_PREFIX = "results/"
SUFFIXES = (".csv", ".jsonl")
FUNCTION = "usage_import"


def usage_bucket_name(scope: Construct) -> str:
    """`<stack name, lower case>-usage-import-<account>-<region>` (a token until deploy)."""
    return Fn.join("-", [Stack.of(scope).stack_name.lower(), "usage-import", Aws.ACCOUNT_ID, Aws.REGION])


class UsageImport(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy,
        factory: FunctionFactory,
        billing_table: dynamodb.ITable,
        access_logs_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket_name = usage_bucket_name(self)
        bucket_arn = Stack.of(self).format_arn(service="s3", region="", account="", resource=self.bucket_name)

        self.function = factory.function(self, FUNCTION, environment={"USAGE_BUCKET": self.bucket_name})
        billing_table.grant_read_write_data(self.function)
        nag.acknowledge_table_access(self.function.role, billing_table)
        incoming, results = f"{bucket_arn}/{INCOMING_PREFIX}*", f"{bucket_arn}/{RESULTS_PREFIX}*"
        self.function.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[incoming]))
        self.function.add_to_role_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[results]))
        nag.acknowledge_wildcards(
            self.function.role,
            [f"Resource::arn:<AWS::Partition>:s3:::{_nag_name(self)}/{p}*" for p in (INCOMING_PREFIX, RESULTS_PREFIX)],
            "usage_import reads the dropped files (incoming/*) and writes their reports (results/*) of "
            "UsageImportBucket only; object keys are chosen by whoever drops a file.",
        )

        permission = lambda_.CfnPermission(
            self,
            "InvokeFromUsageImportBucket",
            action="lambda:InvokeFunction",
            function_name=self.function.function_arn,
            principal="s3.amazonaws.com",
            source_account=Aws.ACCOUNT_ID,
            source_arn=bucket_arn,
        )

        # Usage files dropped by billing operations or an upstream system; versioned, never public.
        self.bucket = s3.Bucket(
            self,
            "UsageImportBucket",
            bucket_name=self.bucket_name,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix="usage-import/",
            lifecycle_rules=[s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(7))],
            removal_policy=removal_policy,
        )
        cfn_bucket: s3.CfnBucket = self.bucket.node.default_child  # type: ignore[assignment]
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            lambda_configurations=[
                s3.CfnBucket.LambdaConfigurationProperty(
                    event="s3:ObjectCreated:*",
                    function=self.function.function_arn,
                    filter=s3.CfnBucket.NotificationFilterProperty(
                        s3_key=s3.CfnBucket.S3KeyFilterProperty(rules=[
                            s3.CfnBucket.FilterRuleProperty(name="prefix", value=INCOMING_PREFIX),
                            s3.CfnBucket.FilterRuleProperty(name="suffix", value=suffix),
                        ])
                    ),
                )
                for suffix in SUFFIXES
            ]
        )
        cfn_bucket.add_resource_dependency(permission)


def _nag_name(scope: Construct) -> str:
    """How cdk-nag prints the bucket name's Fn::Join inside an IAM5 finding."""
    return f"{Stack.of(scope).stack_name.lower()}-usage-import-<AWS::AccountId>-<AWS::Region>"
