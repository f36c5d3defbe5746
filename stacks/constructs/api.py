"""The public REST API: API Gateway proxies every path (root and {proxy+}, ANY) to `api`.

Routes live in the function (`/v1/customers`, ...), so the stage name is not part of them; the
function authenticates (Bearer API keys, hashed in DynamoDB) and validates (pydantic).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks import nag
from stacks.config import BillingConfig
from stacks.function_factory import FunctionFactory


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BillingConfig,
        factory: FunctionFactory,
        billing_table: dynamodb.ITable,
        counters_table: dynamodb.ITable,
        idempotency_table: dynamodb.ITable,
        documents_bucket: s3.IBucket,
        state_machine: sfn.StateMachine,
    ) -> None:
        super().__init__(scope, construct_id)

        self.function = factory.function(
            self,
            "api",
            environment={"BILL_RUN_STATE_MACHINE_ARN": state_machine.state_machine_arn},
        )
        # Grants exactly as in shared/ARCHITECTURE.md's table of functions.
        for table in (billing_table, counters_table, idempotency_table):
            table.grant_read_write_data(self.function)
        documents_bucket.grant_read(self.function)
        state_machine.grant_start_execution(self.function)
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution"],
                resources=[
                    Stack.of(self).format_arn(
                        service="states",
                        resource="execution",
                        resource_name=f"{state_machine.state_machine_name}:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        nag.acknowledge_table_access(self.function.role, billing_table)
        nag.acknowledge_bucket_access(self.function.role, documents_bucket, write=False)
        nag.acknowledge_wildcards(
            self.function.role,
            [
                "Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
                f"{nag.arn_of(state_machine, 'Name')}:*"
            ],
            "states:DescribeExecution on executions of BillRun only (execution ARNs are "
            "<state machine name>:<execution name>).",
        )

        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        self.rest_api = apigw.LambdaRestApi(
            self,
            "RestApi",
            handler=self.function,
            proxy=True,
            description="Billing public API (routes under /v1, served by the api function)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # GET /v1/invoices/{id}/pdf (and attachments) return files base64-encoded (isBase64Encoded);
            # API Gateway decodes them only for listed types (the client sends the matching Accept).
            binary_media_types=["application/pdf", "image/png", "image/jpeg",
                                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
            # Method logging needs the account-level CloudWatch role (AWS::ApiGateway::Account).
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=config.stage_name,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=config.api_throttle_rate,
                throttling_burst_limit=config.api_throttle_burst,
            ),
        )
        # LambdaRestApi adds an "Endpoint" output; the stack exports it once, as ApiUrl.
        self.rest_api.node.try_remove_child("Endpoint")

        auth_reason = (
            "Authentication is done by the api function itself: Bearer API keys, hashed and "
            "looked up in BillingTable, scoped per key; API Gateway auth stays NONE."
        )
        nag.acknowledge(self.rest_api, "AwsSolutions-APIG4", auth_reason)
        nag.acknowledge(self.rest_api, "AwsSolutions-COG4", auth_reason)
        nag.acknowledge(
            self.rest_api,
            "AwsSolutions-APIG2",
            "A single {proxy+} integration: the api function validates every request body and "
            "query with pydantic (422 with the failing field), so an API Gateway model would "
            "duplicate and drift from it.",
        )
        nag.acknowledge(
            self.rest_api,
            "AwsSolutions-APIG3",
            "No WAF web ACL by default (cost, per-deployment rules); the function authenticates "
            "every route and the stage is throttled. Attach a WebACL per environment if needed.",
        )
        nag.acknowledge(
            self.rest_api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "The account-level API Gateway CloudWatch role uses the AWS managed policy made for "
            "exactly this purpose (logs for every API in the account/region).",
        )
