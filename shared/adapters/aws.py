"""Thin boto3 adapters: event publishing, workflow start, document storage, mail."""

from __future__ import annotations

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

    def publish(self, events: list[dict]) -> None:
        """Publish envelopes (see shared/services/events.py); raises RetryableError on failure."""
        if not self.bus_name or not events:
            return
        for start in range(0, len(events), 10):
            batch = events[start : start + 10]
            response = self.client.put_events(
                Entries=[
                    {
                        "Source": EVENT_SOURCE,
                        "DetailType": event["type"],
                        "Detail": json.dumps(event, default=str),
                        "EventBusName": self.bus_name,
                    }
                    for event in batch
                ]
            )
            if response.get("FailedEntryCount"):
                raise RetryableError(f"EventBridge refused {response['FailedEntryCount']} events")


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


class S3Documents:
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
    def __init__(self, sender: str, client=None):
        self.sender = sender
        self.client = client or boto3.client("ses")

    def send(
        self,
        to: list[str],
        subject: str,
        text: str,
        html: str | None = None,
        cc: list[str] | None = None,
        attachments: list[tuple[str, bytes, str]] = (),
    ) -> str:
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
        try:
            response = self.client.send_raw_email(
                Source=self.sender,
                Destinations=to + (cc or []),
                RawMessage={"Data": message.as_bytes()},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] in ("Throttling", "ServiceUnavailable"):
                raise RetryableError(f"SES {error.response['Error']['Code']}") from error
            raise
        return response["MessageId"]


def utc_stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")
