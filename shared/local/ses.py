"""SES's sending events, locally: every message sent produces the events SES would publish.

moto records a SendRawEmail and publishes nothing. On AWS the configuration set sends Delivery,
Bounce and Complaint events to the default bus (rule InvoiceMailEvents -> delivery_events). Here
each sent message produces those events a moment later, decided the way SES's mailbox simulator
decides them (docs.aws.amazon.com/ses/latest/dg/send-an-email-from-console.html#send-email-simulator):
`bounce@simulator.amazonses.com` and `suppressionlist@...` bounce (permanent),
`complaint@...` is delivered and complained about, every other address is delivered.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from email.utils import parseaddr

from moto.ses.models import SESBackend

log = logging.getLogger("shared.local")

SIMULATOR = "simulator.amazonses.com"
BOUNCES = {"bounce", "suppressionlist"}
COMPLAINTS = {"complaint"}

_state: dict = {}


def apply(submit: Callable, put_events: Callable[[list[dict]], None], now: Callable[[], datetime],
          configuration_set: str | None, account: str, region: str) -> None:
    """Publish SES's events for every message sent from now on (once per process)."""
    _state.update(submit=submit, put_events=put_events, now=now, configuration_set=configuration_set,
                  account=account, region=region)
    if getattr(SESBackend.send_raw_email, "local_patch", False):
        return
    moto_send = SESBackend.send_raw_email

    def send_raw_email(self, source, destinations, raw_data):
        message = moto_send(self, source, destinations, raw_data)
        submit_ = _state.get("submit")
        if submit_:
            entries = sending_events(message.id, parseaddr(message.source)[1],
                                     [parseaddr(d)[1] for d in message.destinations], _state["now"](),
                                     _state["configuration_set"], _state["account"], _state["region"])
            submit_(lambda: _publish(entries))
        return message

    send_raw_email.local_patch = True
    SESBackend.send_raw_email = send_raw_email


def clear() -> None:
    _state.clear()


def _publish(entries: list[dict]) -> None:
    put = _state.get("put_events")
    if put is None:
        return
    try:
        put(entries)
    except Exception:  # a stopped runtime: nothing listens any more
        log.debug("SES events not published", exc_info=True)


def sending_events(message_id: str, source: str, destinations: list[str], at: datetime,
                   configuration_set: str | None, account: str, region: str) -> list[dict]:
    """PutEvents entries for one message: Email Delivered / Bounced / Complaint Received."""
    destinations = list(dict.fromkeys(destinations))  # moto adds the header addresses to the envelope's
    instant = at.isoformat().replace("+00:00", "Z")
    mail = {"timestamp": instant, "source": source, "sendingAccountId": account, "messageId": message_id,
            "destination": destinations, "headersTruncated": False,
            "tags": {"ses:configuration-set": [configuration_set]} if configuration_set else {}}
    bounced = [d for d in destinations if _simulated(d, BOUNCES)]
    delivered = [d for d in destinations if d not in bounced]
    complained = [d for d in destinations if _simulated(d, COMPLAINTS)]
    details = []
    if delivered:
        details.append(("Email Delivered", {"eventType": "Delivery", "mail": mail, "delivery": {
            "timestamp": instant, "processingTimeMillis": 0, "recipients": delivered,
            "smtpResponse": "250 2.6.0 Message received", "reportingMTA": "local"}}))
    if bounced:
        details.append(("Email Bounced", {"eventType": "Bounce", "mail": mail, "bounce": {
            "bounceType": "Permanent", "bounceSubType": "General", "timestamp": instant,
            "feedbackId": f"local-{message_id}", "bouncedRecipients": [
                {"emailAddress": d, "action": "failed", "status": "5.1.1",
                 "diagnosticCode": "smtp; 550 5.1.1 user unknown"} for d in bounced]}}))
    if complained:
        details.append(("Email Complaint Received", {"eventType": "Complaint", "mail": mail, "complaint": {
            "timestamp": instant, "feedbackId": f"local-{message_id}-complaint", "complaintFeedbackType": "abuse",
            "complainedRecipients": [{"emailAddress": d} for d in complained]}}))
    resources = [f"arn:aws:ses:{region}:{account}:configuration-set/{configuration_set}"] if configuration_set else []
    return [{"Source": "aws.ses", "DetailType": detail_type, "Detail": json.dumps(detail), "Resources": resources}
            for detail_type, detail in details]


def _simulated(address: str, names: set[str]) -> bool:
    local, _, domain = address.lower().partition("@")
    return domain == SIMULATOR and local.split("+")[0] in names
