"""Invoice delivery log and resend, webhook retries with backoff and replay, over HTTP on the local
platform (the CDK stack deployed into moto, its DocumentsBucket with Object Lock).

moto's SES publishes no configuration-set events; the local runtime publishes them the way SES's
mailbox simulator decides (shared/local/ses.py), so the log also shows delivered, bounced and
complained entries.
"""

from __future__ import annotations

import email
import threading
import time
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.services.webhooks import sign
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def invoice(platform, api) -> dict:
    """Given a customer with a CC address, billed and emailed by the 02:00 bill run."""
    api.ok(api.post("/plans", {"code": "managed-service", "name": "Managed Service", "currency": "USD",
                               "charges": [{"code": "ms-fee", "name": "Managed Service", "price": "1250.00"}]}))
    api.ok(api.post("/customers", {"name": "Acme IoT", "email": "ap@acme-iot.example", "external_id": "ACME",
                                   "cc_emails": ["finance@acme-iot.example"], "country": "US", "region": "US-CA",
                                   "currency": "USD"}))
    api.ok(api.post("/subscriptions", {"customer_id": "ACME", "plan_code": "managed-service",
                                       "start_date": "2025-03-01"}))
    fired = platform.advance_clock("2025-03-01T03:00:00Z")
    assert [f["status"] for f in fired if "DailyBillRun" in f["schedule"]] == ["SUCCEEDED"]
    (issued,) = api.ok(api.get("/invoices", customer_id="ACME"))["data"]
    return issued


def sent(api, invoice_id: str) -> list[dict]:
    return [e for e in api.ok(api.get(f"/invoices/{invoice_id}/deliveries"))["data"] if e["status"] == "sent"]


def emails(platform) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(raw, policy=policy.default) for raw in platform.sent_emails()]


def test_the_bill_runs_email_is_logged_with_its_ses_message_id(platform, api, invoice):
    (entry,) = sent(api, invoice["id"])
    assert (entry["status"], entry["resend"], entry["actor"]) == ("sent", False, "system:bill-run")
    assert (entry["to"], entry["cc"]) == (["ap@acme-iot.example"], ["finance@acme-iot.example"])
    assert entry["message_id"] and entry["occurred_at"] == "2025-03-01T02:00:00Z"  # the run fired at 02:00


def test_resend_to_another_address_with_the_pay_link(platform, api, invoice, monkeypatch):
    monkeypatch.setenv("PAY_URL_TEMPLATE", "https://pay.example/{invoice_id}")  # the API reads it per request
    response = api.post(f"/invoices/{invoice['id']}/resend", {"to": ["controller@acme-iot.example"]})
    assert response.status == 201, response.body
    entry = response.json()
    (mail,) = [m for m in emails(platform) if m["To"] == "controller@acme-iot.example"]
    assert mail["Cc"] is None
    assert f"https://pay.example/{invoice['id']}" in mail.get_body(("plain",)).get_content()
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_filename() == f"{invoice['number']}.pdf"

    log = sent(api, invoice["id"])
    assert [(e["status"], e["resend"]) for e in log] == [("sent", False), ("sent", True)]
    assert log[1] == entry and entry["actor"] == "key:local"
    assert api.post(f"/invoices/{invoice['id']}/resend", {"to": ["not-an-email"]}).json()["error"]["param"] == "to[0]"
    assert api.post("/invoices/inv_missing/resend", {}).status == 404

    again = api.post(f"/invoices/{invoice['id']}/resend")  # no body: the customer's To and CC again
    assert again.status == 201 and again.json()["cc"] == ["finance@acme-iot.example"]
    assert [m["Cc"] for m in emails(platform) if m["To"] == "ap@acme-iot.example"] == ["finance@acme-iot.example"] * 2
    assert len(sent(api, invoice["id"])) == 3


def test_ses_events_come_back_as_the_mailbox_simulator_decides(platform, api, invoice):
    to = ["bounce@simulator.amazonses.com", "complaint@simulator.amazonses.com", "success@simulator.amazonses.com"]
    resent = api.ok(api.post(f"/invoices/{invoice['id']}/resend", {"to": to}))
    def outcomes():
        log = [e for e in api.ok(api.get(f"/invoices/{invoice['id']}/deliveries"))["data"]
               if e.get("message_id") == resent["message_id"] and e["status"] != "sent"]
        return log if {e["status"] for e in log} >= {"delivered", "bounced", "complained"} else None

    log = wait_for(outcomes, what="SES delivery, bounce and complaint events")
    by_status = {e["status"]: e for e in log}
    assert set(by_status) == {"delivered", "bounced", "complained"}, log
    assert by_status["bounced"]["recipients"] == ["bounce@simulator.amazonses.com"]
    assert by_status["complained"]["recipients"] == ["complaint@simulator.amazonses.com"]
    assert sorted(by_status["delivered"]["recipients"]) == ["complaint@simulator.amazonses.com",
                                                            "success@simulator.amazonses.com"]
    assert by_status["bounced"]["occurred_at"] == by_status["delivered"]["occurred_at"]  # the platform clock


class FlakyReceiver(BaseHTTPRequestHandler):
    """Answers 503 to the first two requests, then 200."""

    received: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802
        with self.lock:
            self.received.append((self.headers["Billing-Signature"],
                                  self.rfile.read(int(self.headers["Content-Length"]))))
            status = 503 if len(self.received) <= 2 else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


def wait_for_requests(count: int, received: list) -> None:
    wait_for(lambda: len(received) >= count, what=f"{count} requests (got {len(received)})")


def test_a_failing_receiver_gets_the_event_again_until_it_answers_then_replay(platform, api, invoice):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = api.ok(api.post("/webhook-endpoints", {"url": f"http://127.0.0.1:{server.server_port}/hook",
                                                         "events": ["customer.created"]}))
        api.ok(api.post("/customers", {"name": "Hooked Corp", "email": "ap@hooked.example", "country": "US",
                                       "region": "US-NY", "currency": "USD"}))
        wait_for_requests(3, FlakyReceiver.received)
        time.sleep(0.5)  # a fourth delivery would come about as fast as the retries did
        assert len(FlakyReceiver.received) == 3
        bodies = {body for _, body in FlakyReceiver.received}
        assert len(bodies) == 1
        body = bodies.pop()
        for signature, _ in FlakyReceiver.received:
            stamp = int(signature.split(",")[0].removeprefix("t="))
            assert signature == sign(endpoint["secret"], stamp, body)

        records = api.ok(api.get(f"/webhook-endpoints/{endpoint['id']}/deliveries"))["data"]
        assert [(r["attempt"], r["status_code"], r["succeeded"]) for r in records] == [
            (3, 200, True), (2, 503, False), (1, 503, False)]
        assert records[0]["next_retry_at"] is None
        assert [r["next_retry_at"] for r in records[1:]] == ["2025-03-01T03:04:00Z", "2025-03-01T03:01:00Z"]
        event_id = records[0]["event_id"]

        platform.advance_clock("2025-03-01T03:10:00Z")
        replayed = api.ok(api.post(f"/webhook-events/{event_id}/replay", {}))
        (record,) = replayed["deliveries"]
        assert (record["replay"], record["status_code"], record["succeeded"]) == (True, 200, True)
        assert len(FlakyReceiver.received) == 4
        signature, again = FlakyReceiver.received[3]
        assert again == body
        assert signature == sign(endpoint["secret"], 1740798600, body)  # 2025-03-01T03:10:00Z, fresh
        assert api.post("/webhook-events/evt_missing/replay", {}).status == 404
    finally:
        server.shutdown()
