"""S3 -> Lambda notifications as the template declares them, invoked asynchronously.

moto's CloudFormation creates a bucket without its `NotificationConfiguration`, so after the
deploy (and after a `--data` restore, so restored files are not imported again) the runtime
puts each bucket's template property through the S3 API. moto then invokes the function
inside the PutObject request; here that invocation goes to the runtime's pool instead, as S3
invokes Lambda asynchronously (event invocation type: retried twice on a function error).
"""

from __future__ import annotations

import json
import logging

from moto.s3 import notifications

from . import events
from .deploy import Deployment

log = logging.getLogger("shared.local")
BUCKET = "AWS::S3::Bucket"


def apply() -> None:
    if getattr(notifications._invoke_awslambda, "local_patch", False):
        return

    def invoke_async(account_id: str, event_body: dict, fn_arn: str, region_name: str) -> None:
        submit = events._delivery.get("submit")  # the running runtime's pool (None once stopped)
        if submit:
            submit(lambda: _deliver(fn_arn, event_body))

    invoke_async.local_patch = True
    notifications._invoke_awslambda = invoke_async


def configure_notifications(clients, deployment: Deployment) -> int:
    """Put every bucket's Lambda notifications from the template; how many buckets have some."""
    configured = 0
    for bucket in deployment.of_type(BUCKET):
        declared = bucket.properties.get("NotificationConfiguration") or {}
        if set(declared) - {"LambdaConfigurations"}:
            log.warning("%s: only LambdaConfigurations are applied locally", bucket.logical_id)
        lambdas = [{
            "LambdaFunctionArn": _function_arn(clients, deployment, entry["Function"]),
            "Events": [entry["Event"]],
            **({"Filter": {"Key": {"FilterRules": entry["Filter"]["S3Key"]["Rules"]}}} if "Filter" in entry else {}),
        } for entry in declared.get("LambdaConfigurations", [])]
        if lambdas:
            clients("s3").put_bucket_notification_configuration(
                Bucket=bucket.physical_id, NotificationConfiguration={"LambdaFunctionConfigurations": lambdas})
            configured += 1
    return configured


def _function_arn(clients, deployment: Deployment, value) -> str:
    """A function named by `Fn::GetAtt [id, Arn]`, `Ref`, or a literal ARN."""
    if isinstance(value, dict):
        logical_id = value["Fn::GetAtt"][0] if "Fn::GetAtt" in value else value["Ref"]
        value = deployment.resources[logical_id].physical_id
    return clients("lambda").get_function_configuration(FunctionName=value)["FunctionArn"]


def _deliver(fn_arn: str, event: dict) -> None:
    clients = events._delivery.get("clients")
    if clients is None:  # the runtime stopped meanwhile
        return
    try:
        for attempt, delay in enumerate((*events.ASYNC_RETRY_DELAYS, None), start=1):
            response = clients("lambda").invoke(FunctionName=fn_arn, Payload=json.dumps(event))
            if "FunctionError" not in response:
                return
            log.warning("S3 notification -> %s failed (attempt %d): %s", fn_arn, attempt,
                        response["Payload"].read().decode()[:500])
            wait = events._delivery.get("wait")
            if delay is None or wait is None or wait(delay * events._delivery["scale"]):
                return
    except Exception:  # nobody awaits this thread: say it here
        log.exception("S3 notification could not invoke %s", fn_arn)
