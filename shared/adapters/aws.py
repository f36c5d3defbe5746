"""Thin boto3 adapters: event publishing, workflow start, document storage, mail, SQS retries."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import boto3
from botocore.exceptions import ClientError

from shared.billing.errors import NotFoundError, RetryableError

EVENT_SOURCE = "billing"


class EventBridgePublisher:
    def __init__(self, bus_name: str | None, client=None):
        self.bus_name = bus_name
        self.client = client or boto3.client("events")

    def put(self, events: list[dict]) -> list[int]:
        """One PutEvents request (at most 10 envelopes); the indexes of the entries EventBridge refused."""
        if not events:
            return []
        if not self.bus_name:  # never drop an event silently: the outbox keeps it until the bus is named
            raise RetryableError("EVENT_BUS_NAME is not set: the outbox cannot publish")
        if len(events) > 10:
            raise ValueError(f"PutEvents takes at most 10 entries, got {len(events)}")
        response = self.client.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": event["type"],
                    "Detail": json.dumps(event, default=str),
                    "EventBusName": self.bus_name,
                }
                for event in events
            ]
        )
        if not response.get("FailedEntryCount"):
            return []
        return [i for i, entry in enumerate(response.get("Entries", [])) if entry.get("ErrorCode")] or \
            list(range(len(events)))


class StepFunctionsWorkflows:
    def __init__(self, bill_run_arn: str | None, client=None):
        self.bill_run_arn = bill_run_arn
        self.client = client or boto3.client("stepfunctions")

    def start_bill_run(self, name: str, payload: dict) -> str:
        if not self.bill_run_arn:
            raise RetryableError("BILL_RUN_STATE_MACHINE_ARN is not configured")
        try:
            response = self.client.start_execution(
                stateMachineArn=self.bill_run_arn, name=name, input=json.dumps(payload)
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return f"{self.bill_run_arn.replace(':stateMachine:', ':execution:')}:{name}"
            raise
        return response["executionArn"]


class LambdaPreviews:
    """Draft previews and pro-formas, rendered by the `document_preview` function (which has weasyprint)."""

    def __init__(self, function_name: str | None, client=None):
        self.function_name = function_name
        self.client = client  # made at the first preview: most functions never ask for one

    def render(self, invoice_id: str, mode: str) -> bytes:
        if not self.function_name:
            raise RetryableError("PREVIEW_FUNCTION_NAME is not configured")
        self.client = self.client or boto3.client("lambda")
        response = self.client.invoke(FunctionName=self.function_name,
                                      Payload=json.dumps({"invoice_id": invoice_id, "mode": mode}).encode())
        payload = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            raise RetryableError(f"preview rendering failed: {payload.get('errorMessage')}")
        if "error" in payload:
            raise refusal(payload["error"])
        return base64.b64decode(payload["pdf_base64"])


def refusal(error: dict) -> Exception:
    """The refusal the preview function returned (`BillingError.to_dict()` and its status), raised again here."""
    from shared.billing import errors

    kinds = {404: errors.NotFoundError, 409: errors.ConflictError, 422: errors.ValidationError}
    kind = kinds.get(error.get("status"), errors.NonRetryableError)
    return kind(error.get("message") or "refused", param=error.get("param"), code=error.get("code"))


class S3Documents:
    """Put and get only. Documents of record are never deleted: there is no delete here, and
    the DocumentsBucket's Object Lock (stacks/constructs/documents.py) refuses it anyway."""

    def __init__(self, bucket: str | None, client=None):
        self.bucket = bucket
        self.client = client or boto3.client("s3")

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type
        )

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise NotFoundError(f"document {key} does not exist") from error
            raise


class SesMailer:
    """SES v1 SendRawEmail. The identity's default configuration set (stacks/constructs/documents.py)
    publishes the delivery events; `configuration_set` names another one explicitly."""

    def __init__(self, sender: str, client=None, configuration_set: str | None = None):
        self.sender = sender
        self.client = client or boto3.client("ses")
        self.configuration_set = configuration_set

    def send(
        self,
        to: list[str],
        subject: str,
        text: str,
        html: str | None = None,
        cc: list[str] | None = None,
        attachments: list[tuple[str, bytes, str]] = (),
        bcc: list[str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Send; returns SES's message id (the `mail.messageId` of its later events).

        BCC recipients are envelope destinations only, never a header. `tags` reach the
        configuration set's events as `mail.tags` (SES allows letters, digits, `_` and `-`).
        """
        message = MIMEMultipart("mixed")
        message["Subject"] = subject
        message["From"] = self.sender
        message["To"] = ", ".join(to)
        if cc:
            message["Cc"] = ", ".join(cc)
        body = MIMEMultipart("alternative")
        body.attach(MIMEText(text, "plain", "utf-8"))
        if html:
            body.attach(MIMEText(html, "html", "utf-8"))
        message.attach(body)
        for filename, content, mime in attachments:
            part = MIMEApplication(content, _subtype=mime.split("/")[-1])
            part.add_header("Content-Disposition", "attachment", filename=filename)
            message.attach(part)
        request: dict = {
            "Source": self.sender,
            "Destinations": list(dict.fromkeys([*to, *(cc or []), *(bcc or [])])),
            "RawMessage": {"Data": message.as_bytes()},
        }
        if tags:
            request["Tags"] = [{"Name": name, "Value": value} for name, value in tags.items()]
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            response = self.client.send_raw_email(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("Throttling", "ServiceUnavailable"):
                raise RetryableError(f"SES {error.response['Error']['Code']}") from error
            raise
        return response["MessageId"]


class SqsRetries:
    """Exponential backoff for a message an SQS-triggered function failed: the message stays
    invisible for the delay (ChangeMessageVisibility), then Lambda receives it again.
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html
    """

    MAX_SECONDS = 12 * 3600  # SQS's ceiling for a visibility timeout

    def __init__(self, client=None):
        self.client = client or boto3.client("sqs")
        self._urls: dict[str, str] = {}

    def queue_url(self, queue_arn: str) -> str:
        if queue_arn not in self._urls:
            _, _, _, _, account, name = queue_arn.split(":", 5)
            self._urls[queue_arn] = self.client.get_queue_url(
                QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return self._urls[queue_arn]

    def delay(self, queue_arn: str, receipt_handle: str, seconds: int) -> None:
        self.client.change_message_visibility(
            QueueUrl=self.queue_url(queue_arn), ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(int(seconds), self.MAX_SECONDS)))


def utc_stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")
