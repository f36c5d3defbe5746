"""Invoice emails and their delivery log: the first send, resends, and what SES reports later.

The log is append-only and lives beside the invoice (shared/adapters/delivery_repository.py):
`sent` when SES accepts a message (with its message id), then `delivered`, `bounced`,
`complained` or `rejected` when the configuration set's event for that message id arrives
(`functions/delivery_events`). SES event shapes:
https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html (the
`detail` of the EventBridge event, https://docs.aws.amazon.com/ses/latest/dg/monitoring-eventbridge.html).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field

from shared.adapters.delivery_repository import DeliveryRepository
from shared.billing.errors import ConflictError, ValidationError
from shared.billing.models import Customer, Invoice, Model
from shared.documents.email import invoice_email, pay_url
from shared.services.attachments import attachment_files
from shared.services.catalog import get_customer
from shared.services.context import Actor, Ports
from shared.services.ids import new_id
from shared.services.invoices import PDF, get_invoice, read_pdf

Compose = Callable[[Invoice], tuple[str, str, str]]
DeliveryStatus = Literal["sent", "delivered", "bounced", "complained", "rejected"]
# SES `eventType` -> our status, and the key of its object in the event.
SES_EVENTS: dict[str, tuple[DeliveryStatus, str]] = {
    "Delivery": ("delivered", "delivery"),
    "Bounce": ("bounced", "bounce"),
    "Complaint": ("complained", "complaint"),
    "Reject": ("rejected", "reject"),
}
INVOICE_TAG = "invoice_id"  # SES message tag: reaches every event as mail.tags.invoice_id


class DeliveryLogEntry(Model):
    id: str
    invoice_id: str
    status: DeliveryStatus
    occurred_at: datetime
    message_id: str = Field(description="SES message id: the `mail.messageId` of its events")
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    recipients: list[str] = Field(default_factory=list, description="the addresses an SES event concerns")
    resend: bool = False
    actor: str | None = None
    detail: dict[str, str] = Field(default_factory=dict,
                                   description="bounce type and subtype, diagnostic, complaint type, SMTP answer")


class ResendRequest(Model):
    to: list[EmailStr] | None = Field(default=None, min_length=1, max_length=50,
                                      description="send only to these addresses (no CC/BCC); "
                                                  "default: the customer's To, CC and BCC")


def deliveries(ports: Ports) -> DeliveryRepository:
    return DeliveryRepository(ports.repo.store)


def email_composer(pay_url_template: str | None) -> Compose:
    """The invoice email, with the pay link `pay_url_template` gives (`PAY_URL_TEMPLATE`)."""
    return lambda invoice: invoice_email(invoice, pay_url(pay_url_template, invoice))


def recipients(customer: Customer) -> tuple[list[str], list[str], list[str]]:
    """(To, CC, BCC) of the customer's invoices, each address once, To first."""
    if not customer.email:
        raise ValidationError(f"customer {customer.id} has no email", param="email")
    to = [customer.email]
    cc = [a for a in dict.fromkeys(customer.cc_emails) if a not in to]
    bcc = [a for a in dict.fromkeys(customer.bcc_emails) if a not in to + cc]
    return to, cc, bcc


def deliver(ports: Ports, actor: Actor, invoice_id: str, compose: Compose) -> Invoice:
    """Email the PDF to the customer (To, CC, BCC) once; a repeat does not send again.

    The invoice's `delivery_status`, its `sent` log entry and the audit event are written in
    one transaction after SES accepted the message.
    """
    invoice, pdf = read_pdf(ports, invoice_id)
    if invoice.delivery_status == "sent":
        return invoice
    customer = get_customer(ports, invoice.customer_id)
    to, cc, bcc = recipients(customer)
    entry = _send(ports, actor, invoice, pdf, compose, to, cc, bcc, resend=False)
    expected, before = invoice.version, invoice.delivery_status
    invoice.delivery_status = "sent"
    invoice.version = expected + 1
    audit = ports.audit(actor, "invoice.sent", "invoice", invoice.id, after={
        "to": to, "cc": cc, "bcc": bcc, "message_id": entry.message_id})
    try:
        deliveries(ports).record_send(entry.model_dump(mode="json"), [audit],
                                      ports.repo.invoice_item(invoice), expected)
    except Exception:
        invoice.version, invoice.delivery_status = expected, before
        raise
    return invoice


def resend(ports: Ports, actor: Actor, invoice_id: str, compose: Compose,
           to: list[str] | None = None) -> DeliveryLogEntry:
    """Send the invoice again (to `to` only, or to the customer's To/CC/BCC) and log it."""
    actor.require("billing:run")
    invoice, pdf = read_pdf(ports, invoice_id)
    if invoice.status == "void":
        raise ConflictError(f"invoice {invoice.id} is void; it is not sent again", code="invoice_void")
    if to:
        to, cc, bcc = list(dict.fromkeys(str(a) for a in to)), [], []
    else:
        to, cc, bcc = recipients(get_customer(ports, invoice.customer_id))
    entry = _send(ports, actor, invoice, pdf, compose, to, cc, bcc, resend=True)
    audit = ports.audit(actor, "invoice.resent", "invoice", invoice.id, after={
        "to": to, "cc": cc, "bcc": bcc, "message_id": entry.message_id})
    deliveries(ports).record_send(entry.model_dump(mode="json"), [audit])
    return entry


def _send(ports: Ports, actor: Actor, invoice: Invoice, pdf: bytes, compose: Compose,
          to: list[str], cc: list[str], bcc: list[str], resend: bool) -> DeliveryLogEntry:
    subject, text, html = compose(invoice)
    message_id = ports.mailer.send(
        to=to, cc=cc, bcc=bcc, subject=subject, text=text, html=html,
        attachments=[(f"{invoice.number}.pdf", pdf, PDF), *attachment_files(ports, invoice)],
        tags={INVOICE_TAG: invoice.id})
    return DeliveryLogEntry(id=new_id("dlv"), invoice_id=invoice.id, status="sent", occurred_at=ports.clock.now(),
                            message_id=message_id, to=to, cc=cc, bcc=bcc, resend=resend, actor=actor.name)


def list_deliveries(ports: Ports, invoice_id: str) -> list[DeliveryLogEntry]:
    """The invoice's delivery log, oldest first."""
    invoice = get_invoice(ports, invoice_id)
    return [DeliveryLogEntry.model_validate(e) for e in deliveries(ports).invoice_log(invoice.id)]


def record_ses_event(ports: Ports, event: dict) -> DeliveryLogEntry | None:
    """Append what an SES event (EventBridge `aws.ses`) says about one of our messages.

    Returns None for an event type the log does not keep, a message that is not an invoice's,
    or an event already recorded (EventBridge delivers at least once).
    """
    detail = event.get("detail") or {}
    kind = SES_EVENTS.get(detail.get("eventType", ""))
    if kind is None:
        return None
    status, key = kind
    mail, body = detail.get("mail") or {}, detail.get(key) or {}
    message_id = mail.get("messageId")
    if not message_id:
        raise ValidationError("the SES event names no message", param="detail.mail.messageId")
    log = deliveries(ports)
    tagged = (mail.get("tags") or {}).get(INVOICE_TAG) or [None]  # SES lists each tag's values
    invoice_id = log.invoice_of_message(message_id) or tagged[0]
    if not invoice_id or ports.repo.get_invoice(invoice_id) is None:
        return None
    entry = DeliveryLogEntry(
        id=f"dlv_{event.get('id') or message_id + '_' + status}", invoice_id=invoice_id, status=status,
        occurred_at=_instant(body.get("timestamp") or event.get("time") or mail.get("timestamp")),
        message_id=message_id, recipients=_recipients(key, body, mail), detail=_detail(key, body))
    return entry if log.append(entry.model_dump(mode="json")) else None


def _instant(text: str | None) -> datetime:
    if not text:
        raise ValidationError("the SES event has no timestamp", param="detail.mail.timestamp")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _recipients(key: str, body: dict, mail: dict) -> list[str]:
    if key == "bounce":
        return [r["emailAddress"] for r in body.get("bouncedRecipients", [])]
    if key == "complaint":
        return [r["emailAddress"] for r in body.get("complainedRecipients", [])]
    if key == "delivery":
        return list(body.get("recipients", []))
    return list(mail.get("destination", []))


_DETAIL_FIELDS = {
    "bounce": ("bounceType", "bounceSubType", "feedbackId"),
    "complaint": ("complaintFeedbackType", "complaintSubType", "feedbackId", "userAgent"),
    "delivery": ("smtpResponse", "reportingMTA"),
    "reject": ("reason",),
}


def _detail(key: str, body: dict) -> dict[str, str]:
    detail = {name: str(body[name]) for name in _DETAIL_FIELDS[key] if body.get(name) is not None}
    if key == "bounce":
        codes = [f"{r['emailAddress']}: {r['diagnosticCode']}" for r in body.get("bouncedRecipients", [])
                 if r.get("diagnosticCode")]
        if codes:
            detail["diagnosticCode"] = "; ".join(codes)
    return detail
