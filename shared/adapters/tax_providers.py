"""Tax engines behind the `TaxProvider` port: Avalara AvaTax and Stripe Tax, over httpx.

Both return `shared.billing.tax.TaxResult` and map failures the same way, so a bill run retries an
engine outage instead of issuing a wrong invoice:
- timeout, connection error, HTTP 429 or 5xx, a 2xx body that is not the documented object -> RetryableError;
- 401/403 (credentials) and any other 4xx (the engine says the input is wrong) -> NonRetryableError with
  the engine's own message;
- an answer that does not add up (line taxes vs totals) -> NonRetryableError: never invoice it.

Stripe Tax is called with plain httpx against /v1/tax/calculations rather than the `stripe` package:
one HTTP stack, timeout policy and error mapping for both engines; the recorded-response tests drive
both through `httpx.MockTransport`; and the SDK's own network retries would hide outages from the
bill run's retry policy. The request is form-encoded as the Stripe API documents it.

Money: JSON numbers are parsed as Decimal (never float); AvaTax amounts are sent as exact decimal
literals; Stripe amounts are integer minor units.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from urllib.parse import urlencode

import httpx

from shared.billing.errors import NonRetryableError, RetryableError, ValidationError
from shared.billing.models import TaxLine
from shared.billing.money import ZERO, check_currency, from_minor, round_money, to_minor
from shared.billing.tax import (
    CUSTOMER_VAT_NOTE,
    EU_MEMBER_STATES,
    EXEMPT_CUSTOMER_NOTE,
    REVERSE_CHARGE,
    SALES_TAX_NAME,
    TAX_NAME,
    TaxableLine,
    TaxParty,
    TaxRequest,
    TaxResult,
    check_country,
    region_code,
)

AVATAX_PRODUCTION_URL = "https://rest.avatax.com"
AVATAX_SANDBOX_URL = "https://sandbox-rest.avatax.com"
STRIPE_API_URL = "https://api.stripe.com"
DEFAULT_TIMEOUT_SECONDS = 10.0


# ---------------------------------------------------------------------------------------------
# Shared HTTP handling
# ---------------------------------------------------------------------------------------------


def _send(client: httpx.Client, engine: str, method: str, url: str, **kwargs) -> dict:
    """One call to an engine: the parsed JSON body (numbers as Decimal), or the mapped error."""
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TimeoutException as error:
        raise RetryableError(f"{engine} did not answer in time: {error}", code="tax_engine_timeout") from error
    except httpx.TransportError as error:
        raise RetryableError(f"{engine} could not be reached: {error}", code="tax_engine_unavailable") from error
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryableError(f"{engine} answered HTTP {response.status_code}: {_error_text(engine, response)}",
                             code="tax_engine_unavailable")
    if response.status_code in (401, 403):
        raise NonRetryableError(f"{engine} refused the credentials (HTTP {response.status_code}): "
                                f"{_error_text(engine, response)}", code="tax_engine_credentials")
    if response.status_code >= 400:
        raise NonRetryableError(f"{engine} refused the request (HTTP {response.status_code}): "
                                f"{_error_text(engine, response)}", code="tax_engine_rejected")
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except ValueError as error:
        raise RetryableError(f"{engine} sent a body that is not JSON", code="tax_engine_unavailable") from error
    if not isinstance(body, dict):
        raise RetryableError(f"{engine} sent an unexpected body", code="tax_engine_unavailable")
    return body


def _error_text(engine: str, response: httpx.Response) -> str:
    """The engine's own error message: AvaTax `error.code/message/details[].description`, Stripe
    `error.type/code/message/param`."""
    try:
        error = json.loads(response.content).get("error") or {}
    except (ValueError, AttributeError):
        return response.text[:300]
    if not isinstance(error, dict):
        return str(error)[:300]
    parts = [str(error[key]) for key in ("type", "code", "message") if error.get(key)]
    if error.get("param"):
        parts.append(f"param {error['param']}")
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("description"):
            parts.append(str(detail["description"]))
    return ": ".join(parts) or response.text[:300]


def _address(party: TaxParty, param: str) -> dict[str, str]:
    """`postal_address` is street lines, then city, then postal code; region and country come from the party."""
    lines = [line for line in party.postal_address if line and line.strip()]
    if len(lines) < 2:
        raise ValidationError("a tax engine needs an address: street lines, city and postal code",
                              param=f"{param}.postal_address")
    *street, city, postal_code = lines
    country = check_country(party.country, param=f"{param}.country")
    region = region_code(country, party.region, param=f"{param}.region")
    return {"street": street, "city": city, "postal_code": postal_code, "region": region or "",
            "country": country}


def _result_line(line: TaxLine, currency: str) -> TaxLine:
    return line.model_copy(update={"amount": round_money(line.amount, currency),
                                   "taxable_amount": round_money(line.taxable_amount, currency)})


def _check_totals(engine: str, line_taxes: dict[int, list[TaxLine]], expected: Decimal) -> None:
    total = sum((t.amount for taxes in line_taxes.values() for t in taxes), ZERO)
    if total != expected:
        raise NonRetryableError(f"{engine} answer does not add up: line taxes {total} vs total {expected}",
                                code="tax_engine_inconsistent")


def _aggregate(line_taxes: dict[int, list[TaxLine]]) -> list[TaxLine]:
    """Invoice tax lines: the line taxes added up per name, jurisdiction, rate, category and reason."""
    groups: dict[tuple, TaxLine] = {}
    for taxes in line_taxes.values():
        for tax in taxes:
            key = (tax.name, tax.jurisdiction, tax.rate, tax.category, tax.exemption_reason)
            if key in groups:
                seen = groups[key]
                groups[key] = seen.model_copy(update={"taxable_amount": seen.taxable_amount + tax.taxable_amount,
                                                      "amount": seen.amount + tax.amount})
            else:
                groups[key] = tax
    return list(groups.values())


# ---------------------------------------------------------------------------------------------
# Avalara AvaTax: POST /api/v2/transactions/create
# ---------------------------------------------------------------------------------------------


class AvalaraTaxProvider:
    """AvaTax CreateTransaction (REST v2). Each line is sent as `number` = the line index, with the
    line's `tax_code` mapped through `tax_codes` (catalog code -> AvaTax tax code, e.g. "SW054000");
    unmapped codes are sent as they are, no code lets AvaTax apply the company default.

    The transaction is a `SalesInvoice` coded with the request's `document_id` and left uncommitted
    (`commit=False`) unless configured: a retry with the same code replaces it. A tax-exempt buyer is
    sent with an `exemptionNo` (its tax ID, or "EXEMPT"). Rounding is AvaTax's: per line and
    jurisdiction; invoice tax lines add the line details up per jurisdiction."""

    name = "avalara"

    def __init__(self, *, account_id: str, license_key: str, company_code: str,
                 base_url: str = AVATAX_SANDBOX_URL, client: httpx.Client | None = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, document_type: str = "SalesInvoice",
                 commit: bool = False, tax_codes: Mapping[str, str] | None = None,
                 client_name: str = "billing-platform; 0.1.0; python; AvaTax REST v2"):
        self.base_url = base_url.rstrip("/")
        self.company_code = company_code
        self.document_type = document_type
        self.commit = commit
        self.tax_codes = dict(tax_codes or {})
        self.client = client or httpx.Client(timeout=timeout)
        self.auth = httpx.BasicAuth(account_id, license_key)
        self.timeout = timeout
        self.client_name = client_name

    def calculate(self, request: TaxRequest) -> TaxResult:
        currency = check_currency(request.currency, "currency")
        body = self.transaction_body(request)
        answer = _send(self.client, "AvaTax", "POST", f"{self.base_url}/api/v2/transactions/create",
                       params={"$include": "Lines,Details,Summary"}, content=_json_with_decimals(body),
                       headers={"Content-Type": "application/json", "X-Avalara-Client": self.client_name},
                       auth=self.auth, timeout=self.timeout)
        return self._result(answer, request, currency)

    def transaction_body(self, request: TaxRequest) -> dict:
        """The CreateTransactionModel for `request`."""
        seller, buyer = _address(request.seller, "seller"), _address(request.buyer, "buyer")
        body: dict = {
            "type": self.document_type,
            "companyCode": self.company_code,
            "date": request.invoice_date.isoformat(),
            "customerCode": request.buyer.reference or request.buyer.tax_id or "anonymous",
            "currencyCode": request.currency,
            "commit": self.commit,
            "addresses": {"shipFrom": _avalara_address(seller), "shipTo": _avalara_address(buyer)},
            "lines": [self._line(line) for line in request.lines],
        }
        if request.document_id:
            body["code"] = request.document_id
        if request.buyer.tax_id:
            body["businessIdentificationNo"] = request.buyer.tax_id
        if request.buyer.tax_exempt:
            body["exemptionNo"] = request.buyer.tax_id or "EXEMPT"
        return body

    def _line(self, line: TaxableLine) -> dict:
        payload: dict = {"number": str(line.index), "quantity": 1, "amount": line.amount,
                         "description": line.description[:2048], "taxIncluded": False}
        if line.tax_code:
            payload["taxCode"] = self.tax_codes.get(line.tax_code, line.tax_code)
        return payload

    def _result(self, answer: dict, request: TaxRequest, currency: str) -> TaxResult:
        indexes = {str(line.index): line.index for line in request.lines}
        try:
            line_taxes: dict[int, list[TaxLine]] = {line.index: [] for line in request.lines}
            for line in answer["lines"]:
                number = str(line["lineNumber"])
                if number not in indexes:
                    raise NonRetryableError(f"AvaTax answered for line {number}, which was not sent",
                                            code="tax_engine_inconsistent")
                for detail in line.get("details") or []:
                    line_taxes[indexes[number]].append(_result_line(_avalara_tax_line(detail), currency))
            total_tax = round_money(Decimal(answer["totalTax"]), currency)
        except (KeyError, TypeError, ArithmeticError) as error:
            raise RetryableError(f"AvaTax sent a transaction without {error}", code="tax_engine_unavailable") \
                from error
        _check_totals("AvaTax", line_taxes, total_tax)
        notes = [EXEMPT_CUSTOMER_NOTE] if request.buyer.tax_exempt and total_tax == ZERO else []
        return TaxResult(tax_lines=_aggregate(line_taxes), line_taxes=line_taxes, notes=notes,
                         rounding=f"per line and jurisdiction, as calculated by AvaTax (transaction "
                                  f"{answer.get('code') or answer.get('id')})", provider=self.name)


def _avalara_address(address: dict) -> dict:
    street = address["street"]
    out = {"city": address["city"], "region": address["region"], "country": address["country"],
           "postalCode": address["postal_code"]}
    for number, text in enumerate(street[:3], start=1):
        out[f"line{number}"] = text
    return out


def _avalara_tax_line(detail: dict) -> TaxLine:
    """One TransactionLineDetailModel -> a tax line named by AvaTax, jurisdiction "US-CA:ORANGE"."""
    rate, tax = Decimal(detail["rate"]), Decimal(detail["tax"])
    exempt = Decimal(detail.get("exemptAmount") or 0) + Decimal(detail.get("nonTaxableAmount") or 0)
    category = "S" if rate > 0 or tax != 0 else ("E" if exempt != 0 else "O")
    region = f"{detail['country']}-{detail['region']}" if detail.get("region") else detail["country"]
    return TaxLine(name=detail.get("taxName") or detail.get("taxType") or SALES_TAX_NAME,
                   jurisdiction=f"{region}:{detail.get('jurisName') or detail.get('jurisCode')}",
                   rate=rate, taxable_amount=Decimal(detail.get("taxableAmount") or 0), amount=tax,
                   category=category,
                   exemption_reason=None if category == "S" else f"AvaTax: {detail.get('nonTaxableType') or 'exempt'}")


def _json_with_decimals(body: dict) -> bytes:
    """JSON with Decimal amounts written as exact number literals (json cannot, and floats would round)."""
    decimals: list[Decimal] = []

    def mark(value):
        if isinstance(value, Decimal):
            decimals.append(value)
            return f"__decimal_{len(decimals) - 1}__"
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    text = json.dumps(body, default=mark, separators=(",", ":"))
    return re.sub(r'"__decimal_(\d+)__"', lambda m: format(decimals[int(m.group(1))], "f"), text).encode()


# ---------------------------------------------------------------------------------------------
# Stripe Tax: POST /v1/tax/calculations
# ---------------------------------------------------------------------------------------------

STRIPE_TAX_ID_TYPES = {"GB": "gb_vat", "MX": "mx_rfc", "US": "us_ein", "CH": "ch_vat", "NO": "no_vat",
                       "AU": "au_abn"}
STRIPE_CATEGORIES = {
    "standard_rated": "S", "reduced_rated": "S", "portion_standard_rated": "S", "portion_reduced_rated": "S",
    "proportionally_rated": "S", "taxable_basis_reduced": "S", "zero_rated": "Z", "reverse_charge": "AE",
    "customer_exempt": "E", "product_exempt": "E", "product_exempt_holiday": "E", "portion_product_exempt": "E",
    "not_collecting": "O", "not_subject_to_tax": "O", "not_supported": "O",
}
LINE_ITEMS_PAGE = 100


class StripeTaxProvider:
    """Stripe Tax calculations. Lines are sent exclusive of tax with `reference` = the line index and
    `tax_code` mapped through `tax_codes` (catalog code -> Stripe code such as "txcd_10103001");
    amounts are integer minor units and must not be negative (Stripe refuses them: discounts go on
    the lines they reduce). The buyer's tax ID is sent when Stripe knows its type; a tax-exempt buyer
    is sent with `taxability_override=customer_exempt`. No `tax_date` is sent: Stripe applies the rules
    in force when the invoice is created (it accepts dates within 48 hours only). The line breakdown is
    expanded (`line_items.data.tax_breakdown`) and paged when Stripe says there is more. Rounding is
    Stripe's: per line item."""

    name = "stripe_tax"

    def __init__(self, *, api_key: str, base_url: str = STRIPE_API_URL, client: httpx.Client | None = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, stripe_version: str | None = None,
                 tax_codes: Mapping[str, str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.Client(timeout=timeout)
        self.timeout = timeout
        self.headers = {"Authorization": f"Bearer {api_key}"}
        if stripe_version:
            self.headers["Stripe-Version"] = stripe_version
        self.tax_codes = dict(tax_codes or {})

    def calculate(self, request: TaxRequest) -> TaxResult:
        currency = check_currency(request.currency, "currency")
        headers = {**self.headers, "Content-Type": "application/x-www-form-urlencoded"}
        if request.document_id:
            headers["Idempotency-Key"] = f"tax-calculation-{request.document_id}"
        answer = _send(self.client, "Stripe Tax", "POST", f"{self.base_url}/v1/tax/calculations",
                       content=urlencode(self.calculation_params(request)).encode(), headers=headers,
                       timeout=self.timeout)
        items = self._line_items(answer)
        return self._result(answer, items, request, currency)

    def calculation_params(self, request: TaxRequest) -> list[tuple[str, str]]:
        """The form fields of POST /v1/tax/calculations for `request`."""
        buyer = _address(request.buyer, "buyer")
        params: list[tuple[str, str]] = [("currency", request.currency.lower())]
        for i, line in enumerate(request.lines):
            minor = to_minor(line.amount, request.currency)
            if minor < 0:
                raise NonRetryableError(
                    f"Stripe Tax takes no negative line amounts (lines[{line.index}].amount = {line.amount}): "
                    f"apply the discount to the line it reduces", code="tax_engine_unsupported")
            prefix = f"line_items[{i}]"
            params += [(f"{prefix}[amount]", str(minor)), (f"{prefix}[reference]", str(line.index)),
                       (f"{prefix}[tax_behavior]", "exclusive")]
            if line.tax_code:
                params.append((f"{prefix}[tax_code]", self.tax_codes.get(line.tax_code, line.tax_code)))
        address = [("line1", buyer["street"][0] if buyer["street"] else ""),
                   ("line2", " ".join(buyer["street"][1:])), ("city", buyer["city"]),
                   ("state", buyer["region"]), ("postal_code", buyer["postal_code"]), ("country", buyer["country"])]
        params += [(f"customer_details[address][{key}]", value) for key, value in address if value]
        params.append(("customer_details[address_source]", "billing"))
        tax_id_type = _stripe_tax_id_type(request.buyer.country, request.buyer.tax_id or "")
        if request.buyer.tax_id and tax_id_type:
            params += [("customer_details[tax_ids][0][type]", tax_id_type),
                       ("customer_details[tax_ids][0][value]", request.buyer.tax_id)]
        if request.buyer.tax_exempt:
            params.append(("customer_details[taxability_override]", "customer_exempt"))
        params += [("expand[]", "line_items"), ("expand[]", "line_items.data.tax_breakdown")]
        return params

    def _line_items(self, answer: dict) -> list[dict]:
        listing = answer.get("line_items")
        if not isinstance(listing, dict) or not isinstance(listing.get("data"), list):
            raise RetryableError("Stripe Tax sent a calculation without its line items", code="tax_engine_unavailable")
        items = list(listing["data"])
        while listing.get("has_more"):
            if not items or not answer.get("id"):
                raise RetryableError("Stripe Tax line items cannot be paged", code="tax_engine_unavailable")
            url = f"{self.base_url}/v1/tax/calculations/{answer['id']}/line_items"
            listing = _send(self.client, "Stripe Tax", "GET", url,
                            params=[("limit", str(LINE_ITEMS_PAGE)), ("starting_after", items[-1]["id"]),
                                    ("expand[]", "data.tax_breakdown")],
                            headers=self.headers, timeout=self.timeout)
            if not isinstance(listing.get("data"), list):
                raise RetryableError("Stripe Tax sent a line item page without data", code="tax_engine_unavailable")
            items += listing["data"]
        return items

    def _result(self, answer: dict, items: list[dict], request: TaxRequest, currency: str) -> TaxResult:
        indexes = {str(line.index): line.index for line in request.lines}
        line_taxes: dict[int, list[TaxLine]] = {line.index: [] for line in request.lines}
        reasons: set[str] = set()
        try:
            for item in items:
                reference = str(item["reference"])
                if reference not in indexes:
                    raise NonRetryableError(f"Stripe Tax answered for line {reference}, which was not sent",
                                            code="tax_engine_inconsistent")
                for part in item.get("tax_breakdown") or []:
                    reasons.add(part["taxability_reason"])
                    line_taxes[indexes[reference]].append(_stripe_tax_line(part, currency))
                if sum((t.amount for t in line_taxes[indexes[reference]]), ZERO) != from_minor(item["amount_tax"],
                                                                                               currency):
                    raise NonRetryableError(f"Stripe Tax breakdown of line {reference} does not add up to its "
                                            f"amount_tax", code="tax_engine_inconsistent")
            total = from_minor(int(answer["tax_amount_exclusive"]) + int(answer["tax_amount_inclusive"]), currency)
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise RetryableError(f"Stripe Tax sent a calculation without {error}", code="tax_engine_unavailable") \
                from error
        _check_totals("Stripe Tax", line_taxes, total)
        notes = []
        if "reverse_charge" in reasons:
            notes.append(REVERSE_CHARGE)
            if request.buyer.tax_id:
                notes.append(CUSTOMER_VAT_NOTE.format(number=request.buyer.tax_id))
        if "customer_exempt" in reasons:
            notes.append(EXEMPT_CUSTOMER_NOTE)
        return TaxResult(tax_lines=_aggregate(line_taxes), line_taxes=line_taxes, notes=notes,
                         rounding=f"per line item, as calculated by Stripe Tax (calculation {answer.get('id')})",
                         provider=self.name)


def _stripe_tax_id_type(country: str, tax_id: str) -> str | None:
    """Stripe's tax ID type for a number `check_tax_id` accepted; None when Stripe has none for it."""
    if country in EU_MEMBER_STATES:
        return "eu_vat"
    if country == "CA":
        return "ca_gst_hst" if "RT" in tax_id.upper() else "ca_bn"
    if country == "JP":
        return "jp_trn" if tax_id.upper().startswith("T") else "jp_cn"
    if country == "BR":
        return "br_cpf" if sum(ch.isdigit() for ch in tax_id) == 11 else "br_cnpj"
    return STRIPE_TAX_ID_TYPES.get(country)


def _stripe_tax_line(part: dict, currency: str) -> TaxLine:
    """One line item tax_breakdown entry -> a tax line; jurisdiction "US-WA:Seattle" below state level."""
    place = part["jurisdiction"]
    region = f"{place['country']}-{place['state']}" if place.get("state") else place["country"]
    jurisdiction = region if place.get("level") in ("country", "state") else f"{region}:{place['display_name']}"
    details = part.get("tax_rate_details") or {}
    reason = part["taxability_reason"]
    category = STRIPE_CATEGORIES.get(reason, "S")
    rate = Decimal(details["percentage_decimal"]) / 100 if details.get("percentage_decimal") else ZERO
    exemption = None
    if category != "S":
        exemption = REVERSE_CHARGE if category == "AE" else f"Stripe Tax: {reason.replace('_', ' ')}"
    return TaxLine(name=details.get("display_name") or place.get("display_name") or TAX_NAME,
                   jurisdiction=jurisdiction,
                   rate=rate, taxable_amount=from_minor(part["taxable_amount"], currency),
                   amount=from_minor(part["amount"], currency), category=category, exemption_reason=exemption)
