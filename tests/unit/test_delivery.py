"""Invoice email delivery and its log (shared/services/delivery.py) on moto's in-memory DynamoDB,
S3 and SES, and the `delivery_events` handler on the `events/ses/` samples.

The samples are EventBridge events of an SES configuration set: the envelope of
https://docs.aws.amazon.com/ses/latest/dg/monitoring-eventbridge.html around the event records
of https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-examples.html
(Bounce, Complaint, Delivery).
"""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email import policy
from pathlib import Path
from types import SimpleNamespace

import pytest

from shared.billing.errors import ConflictError, NonRetryableError, NotFoundError, PermissionDeniedError
from shared.documents.email import PAY_LABELS, invoice_email, pay_url
from shared.services import delivery
from shared.services.context import Actor
from tests.unit.moto_ports import add_customer, add_invoice, moto_world, stored

EVENTS = Path(__file__).resolve().parents[2] / "events" / "ses"
BILL_RUN = Actor("system:bill-run", "admin")
FINANCE = Actor("key:finance", "finance")
compose = delivery.email_composer("https://pay.example/{invoice_id}")


def ses_sample(name: str, message_id: str, invoice_id: str = "inv_0001") -> dict:
    text = (EVENTS / f"{name}.json").read_text()
    return json.loads(text.replace("${MESSAGE_ID}", message_id).replace("${INVOICE_ID}", invoice_id))


def parsed(message) -> email.message.EmailMessage:
    return email.message_from_string(message.raw_data, policy=policy.default)


@pytest.fixture
def world():
    with moto_world() as world:
        yield world


@pytest.fixture
def sent_invoice(world):
    """Given a customer with a CC address and a finalized invoice delivered by the bill run."""
    customer = add_customer(world.ports)
    add_invoice(world.ports, customer)
    return delivery.deliver(world.ports, BILL_RUN, "inv_0001", compose)


# -- first send --------------------------------------------------------------------------------

def test_the_bill_run_sends_to_to_and_cc_once_and_logs_the_ses_message_id(world, sent_invoice):
    assert sent_invoice.delivery_status == "sent" and sent_invoice.version == 2
    (message,) = world.sent()
    mail = parsed(message)
    assert (mail["To"], mail["Cc"]) == ("ap@acme-iot.example", "finance@acme-iot.example")
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_filename() == "INV-000001.pdf" and attachment.get_content() == b"%PDF-1.7 test"
    assert "https://pay.example/inv_0001" in mail.get_body(("plain",)).get_content()

    (entry,) = delivery.list_deliveries(world.ports, "inv_0001")
    assert (entry.status, entry.message_id, entry.resend) == ("sent", message.id, False)
    assert (entry.to, entry.cc, entry.bcc, entry.actor) == (["ap@acme-iot.example"], ["finance@acme-iot.example"],
                                                            [], "system:bill-run")
    assert world.ports.repo.get_invoice("inv_0001").delivery_status == "sent"
    audit, _ = world.ports.repo.list_audit(10, None, object_id="inv_0001")
    assert [(a.action, a.after["message_id"]) for a in audit] == [("invoice.sent", message.id)]

    again = delivery.deliver(world.ports, BILL_RUN, "inv_0001", compose)  # a retried bill-run step
    assert again.version == 2 and len(world.sent()) == 1
    assert len(delivery.list_deliveries(world.ports, "inv_0001")) == 1


def test_bcc_addresses_are_envelope_recipients_never_a_header(world):
    mailer = world.ports.mailer
    message_id = mailer.send(to=["ap@acme-iot.example"], cc=["finance@acme-iot.example"],
                             bcc=["archive@billing.example"], subject="s", text="t")
    (message,) = world.sent()
    assert message.id == message_id
    assert "archive@billing.example" in message.destinations
    assert "archive@billing.example" not in message.raw_data and parsed(message)["Bcc"] is None


def test_recipients_are_to_cc_bcc_each_address_once():
    customer = SimpleNamespace(id="cus_1", email="ap@x.example", cc_emails=["cc@x.example", "ap@x.example"],
                               bcc_emails=["archive@x.example", "cc@x.example", "archive@x.example"])
    assert delivery.recipients(customer) == (["ap@x.example"], ["cc@x.example"], ["archive@x.example"])
    no_bcc = SimpleNamespace(id="cus_2", email="ap@y.example", cc_emails=[], bcc_emails=[])
    assert delivery.recipients(no_bcc) == (["ap@y.example"], [], [])


def test_an_invoice_without_its_pdf_is_not_sent(world):
    add_invoice(world.ports, add_customer(world.ports), pdf=None)
    with pytest.raises(NotFoundError) as error:
        delivery.deliver(world.ports, BILL_RUN, "inv_0001", compose)
    assert error.value.code == "document_not_ready" and world.sent() == []


# -- resend -----------------------------------------------------------------------------------

def test_resend_to_another_address_sends_only_there_and_is_logged(world, sent_invoice):
    entry = delivery.resend(world.ports, FINANCE, "inv_0001", compose, to=["controller@acme-iot.example"])
    first, second = world.sent()
    mail = parsed(second)
    assert (mail["To"], mail["Cc"]) == ("controller@acme-iot.example", None)
    assert set(second.destinations) == {"controller@acme-iot.example"}  # moto lists header addresses twice
    assert (entry.status, entry.message_id, entry.resend, entry.actor) == ("sent", second.id, True, "key:finance")
    log = delivery.list_deliveries(world.ports, "inv_0001")
    assert [(e.message_id, e.resend) for e in log] == [(first.id, False), (second.id, True)]
    audit, _ = world.ports.repo.list_audit(10, None, object_id="inv_0001", action="invoice.resent")
    assert audit[0].actor == "key:finance" and audit[0].after["to"] == ["controller@acme-iot.example"]
    assert world.ports.repo.get_invoice("inv_0001").version == 2  # the invoice itself is untouched


def test_resend_by_default_goes_to_the_customer_again(world, sent_invoice):
    delivery.resend(world.ports, FINANCE, "inv_0001", compose)
    assert parsed(world.sent()[-1])["Cc"] == "finance@acme-iot.example"


def test_resend_needs_billing_rights_and_refuses_a_void_invoice(world):
    customer = add_customer(world.ports)
    add_invoice(world.ports, customer, status="void")
    with pytest.raises(PermissionDeniedError):
        delivery.resend(world.ports, Actor("key:cre", "cre"), "inv_0001", compose)
    with pytest.raises(ConflictError) as error:
        delivery.resend(world.ports, FINANCE, "inv_0001", compose)
    assert error.value.code == "invoice_void" and world.sent() == []


# -- SES events -------------------------------------------------------------------------------

def test_ses_events_append_delivered_bounced_complained_by_message_id(world, sent_invoice):
    (message,) = world.sent()
    for name in ("delivery", "bounce", "complaint"):
        assert delivery.record_ses_event(world.ports, ses_sample(name, message.id)) is not None
    log = delivery.list_deliveries(world.ports, "inv_0001")
    assert [e.status for e in log] == ["sent", "delivered", "bounced", "complained"]
    _, delivered, bounced, complained = log
    assert delivered.occurred_at == datetime(2025, 4, 1, 2, 0, 6, 871000, tzinfo=UTC)
    assert delivered.recipients == ["ap@acme-iot.example"]
    assert delivered.detail == {"smtpResponse": "250 2.6.0 Message received",
                                "reportingMTA": "a8-70.smtp-out.amazonses.com"}
    assert bounced.recipients == ["finance@acme-iot.example"]
    assert bounced.detail["bounceType"] == "Permanent" and bounced.detail["bounceSubType"] == "General"
    assert bounced.detail["diagnosticCode"] == "finance@acme-iot.example: smtp; 550 5.1.1 user unknown"
    assert complained.detail["complaintFeedbackType"] == "abuse" and "complaintSubType" not in complained.detail
    assert {e.message_id for e in log} == {message.id}
    assert world.ports.repo.get_invoice("inv_0001").version == 2  # the log is beside the invoice


def test_an_event_delivered_twice_is_logged_once(world, sent_invoice):
    event = ses_sample("bounce", world.sent()[0].id)
    assert delivery.record_ses_event(world.ports, event) is not None
    assert delivery.record_ses_event(world.ports, event) is None
    assert [e.status for e in delivery.list_deliveries(world.ports, "inv_0001")] == ["sent", "bounced"]


def test_events_of_other_mail_or_other_types_are_ignored(world, sent_invoice):
    foreign = ses_sample("delivery", "0100018e-not-ours", invoice_id="inv_unknown")
    assert delivery.record_ses_event(world.ports, foreign) is None
    opened = ses_sample("delivery", world.sent()[0].id)
    opened["detail"]["eventType"] = "Open"
    assert delivery.record_ses_event(world.ports, opened) is None
    assert len(delivery.list_deliveries(world.ports, "inv_0001")) == 1


def test_the_invoice_tag_finds_the_invoice_when_the_message_index_is_missing(world, sent_invoice):
    event = ses_sample("delivery", "0100018e-sent-elsewhere")  # tags.invoice_id = inv_0001
    entry = delivery.record_ses_event(world.ports, event)
    assert entry.invoice_id == "inv_0001" and entry.message_id == "0100018e-sent-elsewhere"


class Context:
    function_name, memory_limit_in_mb, aws_request_id = "delivery_events", 256, "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:delivery_events"


def test_the_delivery_events_handler_on_the_samples(world, sent_invoice, monkeypatch):
    from functions.delivery_events.handler import handler

    message_id = world.sent()[0].id
    results = [handler(ses_sample(name, message_id), Context(), ports=world.ports)
               for name in ("delivery", "bounce", "complaint", "bounce")]
    assert [(r["recorded"], r.get("status")) for r in results] == [
        (True, "delivered"), (True, "bounced"), (True, "complained"), (False, None)]
    keys = [item.sk for item in stored(world.ports, "INV#inv_0001") if item.sk.startswith("DLV#")]
    assert keys[1:] == ["DLV#20250401T020006.871000Z#dlv_6b0c9d7e-0d3e-4b1c-9d2a-2f1f5d0c1a01",
                        "DLV#20250401T020007.669000Z#dlv_6b0c9d7e-0d3e-4b1c-9d2a-2f1f5d0c1a02",
                        "DLV#20250402T091501.000000Z#dlv_6b0c9d7e-0d3e-4b1c-9d2a-2f1f5d0c1a03"]


# -- the email's pay link ---------------------------------------------------------------------

@pytest.mark.parametrize("language", sorted(PAY_LABELS))
def test_the_pay_link_is_in_both_bodies_in_the_invoice_language(invoice_factory, language):
    invoice = invoice_factory(language=language)
    _, text, html = invoice_email(invoice, pay_url="https://pay.example/inv_1")
    assert f"{PAY_LABELS[language]}: https://pay.example/inv_1" in text
    assert 'href="https://pay.example/inv_1"' in html and PAY_LABELS[language] in html


def test_without_a_pay_url_template_there_is_no_link(invoice_factory):
    invoice = invoice_factory()
    _, text, html = delivery.email_composer(None)(invoice)
    assert "http" not in text and "href" not in html
    assert text == invoice_email(invoice)[1]


def test_pay_url_fields_are_percent_encoded(invoice_factory):
    invoice = invoice_factory(number="INV/2025 #7")
    url = pay_url("https://pay.example/{customer_id}/{number}?i={invoice_id}", invoice)
    assert url == "https://pay.example/cus_1/INV%2F2025%20%237?i=inv_1"


@pytest.mark.parametrize("template", ["ftp://pay.example/{invoice_id}", "https://pay.example/{amount}"])
def test_a_bad_pay_url_template_names_the_setting(invoice_factory, template):
    with pytest.raises(NonRetryableError) as error:
        pay_url(template, invoice_factory())
    assert error.value.param == "PAY_URL_TEMPLATE"
