"""Avalara AvaTax and Stripe Tax adapters against recorded responses (httpx.MockTransport).

Recordings under tests/integration/recordings/ have the vendors' documented shapes:
- avalara_create_transaction.json: the TransactionModel of AvaTax's own SDK fixture
  (avadev/AvaTax-REST-V2-JS-SDK, test/fixtures/transaction_response.js: $100 in Irvine, CA ->
  CA state 6 %, Orange county 0.25 %, two special districts 1 % and 0.5 %: $7.75);
- avalara_error_invalid_address.json: the AvaTax ErrorResult envelope (error.code/message/target/details[],
  https://developer.avalara.com/avatax/errors/, InvalidAddress = 309);
- stripe_tax_calculation*.json: the tax.calculation object of https://docs.stripe.com/api/tax/calculations/object
  with `line_items.data.tax_breakdown` expanded (tax.calculation_line_item, jurisdiction/sourcing/tax_rate_details);
- stripe_error_tax_location.json: Stripe's error object (type/code/message/param/doc_url).
"""

import copy
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest

from shared.adapters.tax_providers import AvalaraTaxProvider, StripeTaxProvider
from shared.billing.errors import NonRetryableError, RetryableError, ValidationError
from shared.billing.tax import RulesTaxProvider, TaxableLine, TaxParty, TaxRequest, provider_for

RECORDINGS = Path(__file__).parent / "recordings"
D = Decimal


def recording(name: str) -> dict:
    return json.loads((RECORDINGS / name).read_text())


def us_request(amount="100.00", index=1, tax_code="PS081282", **buyer_fields) -> TaxRequest:
    seller = TaxParty("US", "CA", "04-2103594", postal_address=("123 Main Street", "Irvine", "92615"),
                      reference="ent_us")
    buyer = TaxParty(**({"country": "US", "region": "CA", "tax_id": None, "reference": "cus_abc",
                         "postal_address": ("123 Main Street", "Irvine", "92615")} | buyer_fields))
    line = TaxableLine(index=index, amount=D(amount), tax_code=tax_code, period_start=date(2017, 4, 1),
                       period_end=date(2017, 5, 1), description="Yarn")
    return TaxRequest(seller=seller, buyer=buyer, currency="USD", invoice_date=date(2017, 4, 12), lines=(line,),
                      document_id="inv_2017_0001")


def avalara(handler) -> AvalaraTaxProvider:
    return AvalaraTaxProvider(account_id="1100012345", license_key="secret-license", company_code="DEFAULT",
                              client=httpx.Client(transport=httpx.MockTransport(handler)), timeout=5.0,
                              tax_codes={"MANAGED-SERVICE": "SW054000"})


def stripe(handler) -> StripeTaxProvider:
    return StripeTaxProvider(api_key="sk_test_123", client=httpx.Client(transport=httpx.MockTransport(handler)),
                             timeout=5.0, tax_codes={"MANAGED-SERVICE": "txcd_10103001"})


def reply(status: int, body: dict | str):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body) if isinstance(body, dict) else httpx.Response(status, text=body)

    return handler


def raising(error: Exception):
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return handler


# ---------------------------------------------------------------------------------------------
# Avalara
# ---------------------------------------------------------------------------------------------


def test_avalara_create_transaction_request_and_recorded_answer():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["request"] = request
        return httpx.Response(200, json=recording("avalara_create_transaction.json"))

    result = avalara(handler).calculate(us_request())
    sent = seen["request"]
    assert sent.method == "POST" and sent.url.path == "/api/v2/transactions/create"
    assert sent.url.host == "sandbox-rest.avatax.com"
    assert sent.url.params["$include"] == "Lines,Details,Summary"
    assert sent.headers["Authorization"].startswith("Basic ")
    assert b'"amount":100.00' in sent.content  # an exact decimal literal, not a float
    body = json.loads(sent.content)
    assert body["type"] == "SalesInvoice" and body["commit"] is False and body["code"] == "inv_2017_0001"
    assert body["companyCode"] == "DEFAULT" and body["customerCode"] == "cus_abc" and body["currencyCode"] == "USD"
    assert body["addresses"]["shipTo"] == {"line1": "123 Main Street", "city": "Irvine", "region": "CA",
                                          "country": "US", "postalCode": "92615"}
    assert body["lines"] == [{"number": "1", "quantity": 1, "amount": 100.0, "description": "Yarn",
                              "taxIncluded": False, "taxCode": "PS081282"}]

    assert result.provider == "avalara"
    assert result.tax_total == D("7.75")
    assert [(t.name, t.jurisdiction, t.rate, t.taxable_amount, t.amount) for t in result.tax_lines] == [
        ("CA STATE TAX", "US-CA:CALIFORNIA", D("0.06"), D("100.00"), D("6.00")),
        ("CA COUNTY TAX", "US-CA:ORANGE", D("0.0025"), D("100.00"), D("0.25")),
        ("CA SPECIAL TAX", "US-CA:ORANGE COUNTY DISTRICT TAX SP", D("0.005"), D("100.00"), D("0.50")),
        ("CA SPECIAL TAX", "US-CA:ORANGE CO LOCAL TAX SL", D("0.01"), D("100.00"), D("1.00")),
    ]
    assert len(result.line_taxes[1]) == 4  # several tax lines on one line
    assert all(t.category == "S" for t in result.tax_lines)
    assert "AvaTax" in result.rounding


def test_avalara_maps_catalog_tax_codes_and_exempt_buyers():
    seen = {}

    def handler(request):
        seen["body"] = json.loads(request.content)
        answer = recording("avalara_create_transaction.json")
        return httpx.Response(200, json=answer)

    avalara(handler).calculate(us_request(tax_code="MANAGED-SERVICE", tax_exempt=True, tax_id="04-2103594"))
    assert seen["body"]["lines"][0]["taxCode"] == "SW054000"
    assert seen["body"]["exemptionNo"] == "04-2103594"


@pytest.mark.parametrize(("handler", "error", "code"), [
    (raising(httpx.ReadTimeout("read timed out")), RetryableError, "tax_engine_timeout"),
    (raising(httpx.ConnectError("connection refused")), RetryableError, "tax_engine_unavailable"),
    (reply(503, "Service Unavailable"), RetryableError, "tax_engine_unavailable"),
    (reply(429, {"error": {"code": "TooManyRequests", "message": "Rate limit exceeded"}}), RetryableError,
     "tax_engine_unavailable"),
    (reply(200, "<html>maintenance</html>"), RetryableError, "tax_engine_unavailable"),
    (reply(401, {"error": {"code": "AuthenticationException", "message": "Authentication failed."}}),
     NonRetryableError, "tax_engine_credentials"),
])
def test_avalara_failures_are_retryable_only_when_they_can_heal(handler, error, code):
    with pytest.raises(error) as raised:
        avalara(handler).calculate(us_request())
    assert raised.value.code == code


def test_avalara_wrong_input_is_not_retried_and_says_why():
    with pytest.raises(NonRetryableError) as raised:
        avalara(reply(400, recording("avalara_error_invalid_address.json"))).calculate(us_request())
    assert raised.value.code == "tax_engine_rejected"
    assert "InvalidAddress" in raised.value.message and "line1 + postal code" in raised.value.message


def test_avalara_answer_that_does_not_add_up_is_never_invoiced():
    answer = recording("avalara_create_transaction.json")
    answer["totalTax"] = 7.76
    with pytest.raises(NonRetryableError) as raised:
        avalara(reply(200, answer)).calculate(us_request())
    assert raised.value.code == "tax_engine_inconsistent"
    answer = recording("avalara_create_transaction.json")
    answer["lines"][0]["lineNumber"] = "9"
    with pytest.raises(NonRetryableError):
        avalara(reply(200, answer)).calculate(us_request())
    answer = recording("avalara_create_transaction.json")
    del answer["lines"]
    with pytest.raises(RetryableError):
        avalara(reply(200, answer)).calculate(us_request())


def test_engines_need_the_buyer_address():
    request = us_request(postal_address=())
    with pytest.raises(ValidationError) as raised:
        avalara(reply(200, {})).calculate(request)
    assert raised.value.param == "buyer.postal_address"


def test_us_buyers_go_to_the_configured_engine():
    engine = avalara(reply(200, recording("avalara_create_transaction.json")))
    chosen = provider_for(us_request(), {"US": engine}, RulesTaxProvider())
    assert chosen.calculate(us_request()).tax_total == D("7.75")


# ---------------------------------------------------------------------------------------------
# Stripe Tax
# ---------------------------------------------------------------------------------------------


def wa_request(amount="100.00", **buyer_fields) -> TaxRequest:
    seller = TaxParty("US", "CA", "04-2103594")
    buyer = TaxParty(**({"country": "US", "region": "WA", "tax_id": None,
                         "postal_address": ("920 5th Ave", "Seattle", "98104")} | buyer_fields))
    line = TaxableLine(index=0, amount=D(amount), tax_code="MANAGED-SERVICE", period_start=date(2024, 1, 1),
                       period_end=date(2024, 2, 1), description="Managed Service")
    return TaxRequest(seller=seller, buyer=buyer, currency="USD", invoice_date=date(2024, 1, 29), lines=(line,),
                      document_id="inv_2024_0042")


def test_stripe_tax_calculation_request_and_recorded_answer():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["request"] = request
        return httpx.Response(200, json=recording("stripe_tax_calculation.json"))

    result = stripe(handler).calculate(wa_request())
    sent = seen["request"]
    assert sent.method == "POST" and sent.url == "https://api.stripe.com/v1/tax/calculations"
    assert sent.headers["Authorization"] == "Bearer sk_test_123"
    assert sent.headers["Idempotency-Key"] == "tax-calculation-inv_2024_0042"
    form = parse_qsl(sent.content.decode())
    assert ("currency", "usd") in form
    assert ("line_items[0][amount]", "10000") in form and ("line_items[0][reference]", "0") in form
    assert ("line_items[0][tax_code]", "txcd_10103001") in form
    assert ("line_items[0][tax_behavior]", "exclusive") in form
    assert ("customer_details[address][state]", "WA") in form
    assert ("customer_details[address][postal_code]", "98104") in form
    assert ("expand[]", "line_items.data.tax_breakdown") in form
    assert not any(key == "tax_date" for key, _ in form)

    assert result.provider == "stripe_tax"
    assert [(t.name, t.jurisdiction, t.rate, t.taxable_amount, t.amount, t.category) for t in result.tax_lines] == [
        ("Sales and Use Tax", "US-WA", D("0.065"), D("100.00"), D("6.50"), "S"),
        ("Local Sales and Use Tax", "US-WA:Seattle", D("0.0375"), D("100.00"), D("3.75"), "S"),
    ]
    assert result.tax_total == D("10.25")  # the calculation's 10.25 % on $100.00


def test_stripe_reverse_charge_carries_the_mention():
    request = TaxRequest(
        seller=TaxParty("US", "CA", None),
        buyer=TaxParty("FR", None, "FR40303265045", postal_address=("10 Rue de Rivoli", "Paris", "75004")),
        currency="EUR", invoice_date=date(2024, 7, 11),
        lines=(TaxableLine(0, D("1250.00"), None, date(2024, 7, 1), date(2024, 8, 1)),))
    seen = {}

    def handler(request):
        seen["form"] = parse_qsl(request.content.decode())
        return httpx.Response(200, json=recording("stripe_tax_calculation_reverse_charge.json"))

    result = stripe(handler).calculate(request)
    assert ("customer_details[tax_ids][0][type]", "eu_vat") in seen["form"]
    assert ("customer_details[tax_ids][0][value]", "FR40303265045") in seen["form"]
    assert [(t.jurisdiction, t.rate, t.amount, t.category, t.exemption_reason) for t in result.tax_lines] == [
        ("FR", D("0"), D("0.00"), "AE", "Reverse charge")]
    assert "Reverse charge" in result.notes


def test_stripe_line_items_are_paged_when_stripe_says_there_is_more():
    first = recording("stripe_tax_calculation.json")
    second_item = copy.deepcopy(first["line_items"]["data"][0]) | {"id": "tax_li_PSqf3RMNZa23H5", "reference": "1"}
    first["line_items"]["has_more"] = True
    first["tax_amount_exclusive"] = 2050
    page = {"object": "list", "data": [second_item], "has_more": False,
            "url": "/v1/tax/calculations/taxcalc_1OduxkBUZ691iUZ4iWvpMApI/line_items"}
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=first if request.method == "POST" else page)

    two_lines = wa_request()
    two_lines = TaxRequest(two_lines.seller, two_lines.buyer, "USD", two_lines.invoice_date,
                           (two_lines.lines[0], TaxableLine(1, D("100.00"), None, date(2024, 1, 1), date(2024, 2, 1))))
    result = stripe(handler).calculate(two_lines)
    assert calls[1].method == "GET"
    assert calls[1].url.path == "/v1/tax/calculations/taxcalc_1OduxkBUZ691iUZ4iWvpMApI/line_items"
    assert calls[1].url.params["starting_after"] == "tax_li_PSqf3RMNZa23H4"
    assert sum(t.amount for t in result.line_taxes[1]) == D("10.25")
    assert result.tax_total == D("20.50")


def test_stripe_refuses_negative_lines_before_calling():
    with pytest.raises(NonRetryableError) as raised:
        stripe(raising(AssertionError("no call expected"))).calculate(wa_request(amount="-5.00"))
    assert "lines[0].amount" in raised.value.message


@pytest.mark.parametrize(("handler", "error"), [
    (raising(httpx.ReadTimeout("read timed out")), RetryableError),
    (reply(500, {"error": {"type": "api_error", "message": "An unknown error occurred"}}), RetryableError),
    (reply(429, {"error": {"type": "invalid_request_error", "code": "rate_limit"}}), RetryableError),
    (reply(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}),
     NonRetryableError),
])
def test_stripe_failures(handler, error):
    with pytest.raises(error):
        stripe(handler).calculate(wa_request())


def test_stripe_wrong_input_is_not_retried_and_says_why():
    with pytest.raises(NonRetryableError) as raised:
        stripe(reply(400, recording("stripe_error_tax_location.json"))).calculate(wa_request())
    assert "customer_tax_location_invalid" in raised.value.message
    assert "param customer_details[address]" in raised.value.message


def test_stripe_answer_that_does_not_add_up_is_never_invoiced():
    answer = recording("stripe_tax_calculation.json")
    answer["line_items"]["data"][0]["amount_tax"] = 1024
    with pytest.raises(NonRetryableError):
        stripe(reply(200, answer)).calculate(wa_request())
    answer = recording("stripe_tax_calculation.json")
    answer["tax_amount_exclusive"] = 1000
    with pytest.raises(NonRetryableError):
        stripe(reply(200, answer)).calculate(wa_request())
    answer = recording("stripe_tax_calculation.json")
    del answer["line_items"]
    with pytest.raises(RetryableError):
        stripe(reply(200, answer)).calculate(wa_request())
