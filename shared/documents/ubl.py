"""UBL 2.1 e-invoices (Peppol BIS Billing 3.0 on EN 16931) from an `Invoice`.

Two layers: `en16931_document` maps our invoice onto the EN 16931 semantic model (business
terms BT-n), once, for every syntax; `invoice_to_ubl` writes that model as UBL 2.1 (the CII
writer, `cii.py`, reuses the first layer). Sources followed:
- EN 16931-1 business rules as the CEN validation artefacts state them
  (github.com/ConnectingEurope/eInvoicing-EN16931, release 1.3.16, `ubl/schematron/`).
- Peppol BIS Billing 3.0 (docs.peppol.eu/poacc/billing/3.0/) and its rules
  (github.com/OpenPEPPOL/peppol-bis-invoice-3, `rules/sch/PEPPOL-EN16931-UBL.sch`, 3.0.19).
- UBL 2.1 element order: the OASIS schemas (`UBL-Invoice-2.1.xsd`, `UBL-CreditNote-2.1.xsd`).

Conventions:
- Amounts are written with the currency's minor unit (`currencyID` on each); EN 16931 allows at
  most two decimals (BR-DEC-*), so a three-decimal currency is refused. Nothing is rounded here:
  the invoice's amounts are already rounded, and an amount with more decimals is refused.
- Tax rates are fractions in the model (0.2) and percents here (20).
- A credit note states the credited amounts as positive: one stored with ledger signs (a
  negative total) is negated as a whole.
- A line of kind `discount` with a negative amount becomes a document-level allowance (reason
  code 95, "Discount"); any other negative line keeps its place with a negative quantity, since
  an item price may not be negative (BR-27).
- A line whose amount is not quantity x unit price (a prorated period) carries the difference
  as a line allowance or charge, its reason the proration rule (Peppol R120).
- Each line gets the VAT category of the tax line that covers it; see `_vat_groups` for how
  lines and tax lines are matched while the model has no link between them. No tax line at all
  means "not subject to VAT" (O), which shows no VAT numbers (BR-O-02).
- Parties: a tax id with the party's country prefix is its VAT number (BT-31/48); any other is
  the seller's tax registration (BT-32) or the buyer's legal registration (BT-47). The Peppol
  address (BT-34/49) is given (`scheme:identifier`) or comes from a VAT number under the
  country's EAS VAT scheme; without either, Peppol's R010/R020 cannot be met and the invoice is
  refused. Addresses are free lines: street name, additional street name, then one address line.
- Buyer reference (Peppol R003): the contract ID when the invoice bills one contract (it is
  also the contract reference, BT-12), else our customer id. Each line names its contract as
  the invoiced object (BT-128).
- Deliver-to country (BT-80): the buyer's, where B2B services are supplied (Art. 44, Directive
  2006/112/EC).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from lxml import etree

from shared.billing.errors import ValidationError
from shared.billing.models import Invoice, InvoiceLine, PartySnapshot, TaxLine
from shared.billing.money import ZERO, format_amount, minor_unit, quantum, round_money
from shared.documents.html import inclusive_end, medium_date
from shared.documents.labels import babel_locale, labels_for

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
INVOICE_TYPE_CODE = "380"  # UNTDID 1001: commercial invoice
CREDIT_NOTE_TYPE_CODE = "381"  # UNTDID 1001: credit note
PROJECT_DOCUMENT_TYPE_CODE = "50"  # UNTDID 1001: a credit note's project reference (BT-11)
UNIT_CODE = "C62"  # UN/ECE Recommendation 20: "one"
DISCOUNT_REASON_CODE = "95"  # UNCL 5189: discount
LINE_OBJECT_TYPE_CODE = "130"  # UNTDID 1001: invoicing data sheet (BT-128, the contract ID)
MAX_DECIMALS = 2  # BR-DEC-*: EN 16931 amounts have at most two decimals

# UNCL 5305 codes EN 16931 knows; what each says about rate and exemption reason.
VAT_CATEGORIES = ("S", "Z", "E", "AE", "K", "G", "O", "L", "M")
ZERO_RATED = {"Z", "E", "AE", "K", "G", "O"}  # BR-Z-05, BR-E-05, BR-AE-05, BR-IC-05, BR-G-05, BR-O-05
NO_EXEMPTION_REASON = {"S", "Z", "L", "M"}  # BR-S-10, BR-Z-10, BR-IG-10, BR-IP-10
EXEMPTION_CODES = {"AE": "VATEX-EU-AE", "K": "VATEX-EU-IC", "G": "VATEX-EU-G", "O": "VATEX-EU-O"}
# Peppol P0104-P0111: the category each of these VATEX codes belongs to
VATEX_CATEGORIES = {**{code: category for category, code in EXEMPTION_CODES.items()},
                    **{f"VATEX-EU-{letter}": "E" for letter in "DFIJ"}}
NOT_SUBJECT_TO_VAT = "Not subject to VAT"

# Peppol electronic address schemes (EAS) that are a VAT number, by country (Peppol code list
# "eas"): the address a party registered under its VAT number has on the network.
VAT_ENDPOINT_SCHEMES = {
    "AT": "9914", "BE": "9925", "BG": "9926", "CH": "9927", "CY": "9928", "CZ": "9929", "DE": "9930",
    "DK": "0184", "EE": "9931", "ES": "9920", "FI": "0213", "FR": "9957", "GB": "9932", "GR": "9933",
    "HR": "9934", "HU": "9910", "IE": "9935", "IT": "0211", "LT": "9937", "LU": "9938", "LV": "9939",
    "MT": "9943", "NL": "9944", "PL": "9945", "PT": "9946", "RO": "9947", "SI": "9949", "SK": "9950",
}
VAT_PREFIXES = {"GR": "EL"}  # BR-CO-09: Greece writes EL
_VAT_SHAPE = re.compile(r"^[A-Z]{2}[A-Z0-9+*]{2,14}$")  # CHE123456789MWST is the longest
_ENDPOINT = re.compile(r"^(\d{4}):(\S{1,125})$")

NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
MAX_ASSIGNMENTS = 100_000  # bound on the search that matches lines to tax lines


# --- the EN 16931 model --------------------------------------------------------------------

@dataclass(frozen=True)
class VatCategory:
    """BG-23's category: code (BT-118), percent (BT-119; None for O), exemption (BT-120/121)."""

    code: str
    percent: Decimal | None
    exemption_code: str | None = None
    exemption_reason: str | None = None


@dataclass(frozen=True)
class VatBreakdown:
    category: VatCategory
    taxable: Decimal  # BT-116
    tax: Decimal  # BT-117


@dataclass(frozen=True)
class Party:
    name: str
    email: str | None
    address_lines: tuple[str, ...]
    country: str
    subdivision: str | None
    vat_id: str | None  # BT-31 / BT-48
    tax_registration: str | None  # BT-32 (seller only)
    legal_id: str | None  # BT-47 (buyer only)
    endpoint: tuple[str, str] | None  # BT-34 / BT-49: (EAS scheme, identifier)
    identifier: tuple[str | None, str] | None = None  # BT-29: (ICD scheme, identifier), seller only


@dataclass(frozen=True)
class Adjustment:
    """A line or document allowance (`charge` False) or charge, always a positive amount."""

    charge: bool
    amount: Decimal
    reason: str
    reason_code: str | None
    category: VatCategory | None = None  # document level only


@dataclass(frozen=True)
class Line:
    number: str  # BT-126
    name: str  # BT-153
    note: str | None  # BT-127
    quantity: Decimal  # BT-129
    price: Decimal  # BT-146, never negative
    net: Decimal  # BT-131
    adjustment: Adjustment | None
    period: tuple[date, date] | None  # BT-134 / BT-135, inclusive end
    seller_item_id: str | None  # BT-155
    object_id: str | None  # BT-128
    category: VatCategory


@dataclass(frozen=True)
class Document:
    number: str
    credit_note: bool
    type_code: str
    issue_date: date
    due_date: date
    currency: str
    note: str | None
    buyer_reference: str
    contract_reference: str | None
    order_reference: str | None  # BT-13: the buyer's purchase order (custom field po_number)
    project_reference: str | None  # BT-11: the project (custom field project_code or project)
    preceding: tuple[str, date] | None  # BG-3
    period: tuple[date, date] | None  # BG-14
    delivery_country: str  # BT-80
    payment_terms: str
    seller: Party
    buyer: Party
    lines: tuple[Line, ...]
    allowances: tuple[Adjustment, ...]
    breakdown: tuple[VatBreakdown, ...]
    line_total: Decimal  # BT-106
    allowance_total: Decimal  # BT-107
    tax_exclusive: Decimal  # BT-109
    tax_total: Decimal  # BT-110
    tax_inclusive: Decimal  # BT-112
    prepaid: Decimal  # BT-113
    payable: Decimal  # BT-115


def en16931_document(
    invoice: Invoice,
    credit_note_of: Invoice | None = None,
    *,
    seller_endpoint: str | None = None,
    buyer_endpoint: str | None = None,
    require_endpoints: bool = True,
) -> Document:
    """The invoice (or the credit note of `credit_note_of`) in EN 16931 terms, checked.

    Endpoints are Peppol participant identifiers, `scheme:identifier` (`0088:5790000435968`);
    without one, a party's VAT number gives it where its country has a VAT scheme.
    """
    currency = invoice.currency
    if minor_unit(currency) > MAX_DECIMALS:
        raise ValidationError(
            f"EN 16931 amounts have at most {MAX_DECIMALS} decimals (BR-DEC); {currency} has {minor_unit(currency)}",
            param="currency",
        )
    if invoice.status == "draft":
        raise ValidationError("a draft has no e-invoice: finalize it first", param="status")
    if not invoice.number:
        raise ValidationError("an e-invoice needs the invoice number", param="number")
    preceding = None
    if credit_note_of is not None:
        if not credit_note_of.number:
            raise ValidationError("the credited invoice has no number", param="credit_note_of.number")
        if credit_note_of.currency != currency:
            raise ValidationError(
                f"the credited invoice is in {credit_note_of.currency}, the credit note in {currency}",
                param="credit_note_of.currency",
            )
        preceding = (credit_note_of.number, credit_note_of.issue_date)
    _check_totals(invoice)
    sign = Decimal(-1) if credit_note_of is not None and invoice.total < 0 else Decimal(1)

    def money(value: Decimal) -> Decimal:  # exact already (checked above): fixes the decimals shown
        return (sign * value).quantize(quantum(currency))

    groups, line_groups = _vat_groups(invoice)
    lines: list[Line] = []
    allowances: list[Adjustment] = []
    for line, group in zip(invoice.lines, line_groups, strict=True):
        amount = money(line.amount)
        if line.kind == "discount" and amount < 0:
            category = groups[group].category
            allowances.append(Adjustment(False, -amount, line.description, DISCOUNT_REASON_CODE, category))
        else:
            lines.append(_line(line, len(lines) + 1, sign, groups[group].category))
    if not lines:
        raise ValidationError("an e-invoice needs at least one line that is not a discount (BR-16)", param="lines")

    codes = {g.category.code for g in groups}
    if "O" in codes and len(codes) > 1:
        raise ValidationError("'not subject to VAT' (O) cannot share an invoice with other categories (BR-O-11)",
                              param="tax_lines")
    show_vat = "O" not in codes  # BR-O-02: an outside-scope invoice shows no VAT numbers
    seller = _party(invoice.seller, seller_endpoint, "seller", require_endpoints, show_vat)
    buyer = _party(invoice.buyer, buyer_endpoint, "buyer", require_endpoints, show_vat)
    breakdown = tuple(VatBreakdown(g.category, money(g.taxable), money(g.tax)) for g in groups)
    _check_parties(seller, buyer, codes)

    periods = [line.period for line in lines if line.period]
    period = (min(p[0] for p in periods), max(p[1] for p in periods)) if periods else None
    if any(b.category.code == "K" for b in breakdown) and period is None:
        raise ValidationError("an intra-community supply needs the service period (BR-IC-11)", param="lines")
    contracts = sorted({line.external_id for line in invoice.lines if line.external_id})
    line_total = sum((line.net for line in lines), ZERO)
    allowance_total = sum((a.amount for a in allowances), ZERO)
    notes = [*invoice.notes, *(g.note for g in groups if g.note)]
    return Document(
        number=invoice.number,
        credit_note=credit_note_of is not None,
        type_code=CREDIT_NOTE_TYPE_CODE if credit_note_of is not None else INVOICE_TYPE_CODE,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        currency=currency,
        note="\n".join(notes) or None,
        buyer_reference=contracts[0] if len(contracts) == 1 else invoice.customer_id,
        contract_reference=contracts[0] if len(contracts) == 1 else None,
        order_reference=invoice.custom_fields.get("po_number"),
        project_reference=invoice.custom_fields.get("project_code") or invoice.custom_fields.get("project"),
        preceding=preceding,
        period=period,
        delivery_country=invoice.buyer.country,
        payment_terms=_payment_terms(invoice),
        seller=seller,
        buyer=buyer,
        lines=tuple(lines),
        allowances=tuple(allowances),
        breakdown=breakdown,
        line_total=line_total,
        allowance_total=allowance_total,
        tax_exclusive=money(invoice.subtotal),
        tax_total=money(invoice.tax_total),
        tax_inclusive=money(invoice.total),
        prepaid=money(invoice.total - invoice.amount_due),
        payable=money(invoice.amount_due),
    )


def _check_totals(invoice: Invoice) -> None:
    """The document repeats the invoice's totals; they must add up (BR-CO-10..16)."""
    for index, line in enumerate(invoice.lines):
        if line.currency != invoice.currency:
            raise ValidationError(
                f"line in {line.currency} on a {invoice.currency} invoice", param=f"lines[{index}].currency"
            )
    money = [(f"lines[{i}].amount", line.amount) for i, line in enumerate(invoice.lines)]
    for i, tax in enumerate(invoice.tax_lines):
        money += [(f"tax_lines[{i}].taxable_amount", tax.taxable_amount), (f"tax_lines[{i}].amount", tax.amount)]
    money += [(name, getattr(invoice, name)) for name in ("subtotal", "tax_total", "total", "amount_due")]
    for param, value in money:
        _exact(value, invoice.currency, param)
    checks = (
        ("subtotal", invoice.subtotal, sum((line.amount for line in invoice.lines), ZERO)),
        ("tax_total", invoice.tax_total, sum((tax.amount for tax in invoice.tax_lines), ZERO)),
        ("total", invoice.total, invoice.subtotal + invoice.tax_total),
    )
    for field, stated, computed in checks:
        if stated != computed:
            raise ValidationError(f"{field} is {stated} but its parts add up to {computed}", param=field)
    if invoice.total >= 0 and not ZERO <= invoice.amount_due <= invoice.total:
        raise ValidationError("amount_due must lie between 0 and the total", param="amount_due")
    if invoice.total < 0 and not invoice.total <= invoice.amount_due <= ZERO:
        raise ValidationError("amount_due must lie between the total and 0", param="amount_due")


# --- lines -----------------------------------------------------------------------------------

def _line(line: InvoiceLine, number: int, sign: Decimal, category: VatCategory) -> Line:
    quantity, price, net = line.quantity, sign * line.unit_price, sign * line.amount
    if price < 0:  # BR-27: the item price is never negative; the quantity carries the sign
        quantity, price = -quantity, -price
    difference = net - quantity * price
    adjustment = None
    if abs(difference) >= quantum(line.currency):  # more than the line's own rounding
        amount = round_money(abs(difference), line.currency)  # half up; the residue left is < 0.005
        adjustment = Adjustment(difference > 0, amount, line.proration or "Price adjustment", None)
    period = None
    if line.period_start and line.period_end:
        period = (line.period_start, max(line.period_start, inclusive_end(line.period_end)))
    elif line.period_start or line.period_end:
        day = line.period_start or inclusive_end(line.period_end)
        period = (day, day)
    note = "; ".join(filter(None, [line.proration, *line.details])) or None
    return Line(
        number=str(number),
        name=line.description,
        note=note,
        quantity=quantity,
        price=price,
        net=net.quantize(quantum(line.currency)),
        adjustment=adjustment,
        period=period,
        seller_item_id=line.charge_code,
        object_id=line.external_id,
        category=category,
    )


def _exact(amount: Decimal, currency: str, param: str) -> Decimal:
    """The amount at the currency's minor unit; one with more decimals is an error, not rounded."""
    exact = amount.quantize(quantum(currency))
    if exact != amount:
        raise ValidationError(f"{amount} has more decimals than {currency} allows", param=param)
    return exact


# --- VAT categories --------------------------------------------------------------------------

@dataclass
class _Group:
    category: VatCategory
    taxable: Decimal
    tax: Decimal
    note: str | None = None


def _category(tax: TaxLine, index: int, rate: Decimal | None = None) -> VatCategory:
    code, rate = tax.category, tax.rate if rate is None else rate
    param = f"tax_lines[{index}]"
    if code not in VAT_CATEGORIES:
        raise ValidationError(f"'{code}' is not a UNCL 5305 VAT category EN 16931 accepts", param=f"{param}.category")
    if code == "S" and rate <= 0:
        raise ValidationError("a standard-rated tax needs a rate above zero (BR-S-05)", param=f"{param}.rate")
    if code in ZERO_RATED and rate != 0:
        raise ValidationError(f"category {code} is taxed at 0%", param=f"{param}.rate")
    reason = tax.exemption_reason if code not in NO_EXEMPTION_REASON else None
    exemption_code = _exemption_code(tax, param)
    if code == "E" and not (reason or exemption_code):
        raise ValidationError("an exempt tax line needs its legal mention (BR-E-10)", param=f"{param}.exemption_reason")
    return VatCategory(
        code=code,
        percent=None if code == "O" else _percent(rate),
        exemption_code=exemption_code or EXEMPTION_CODES.get(code),
        exemption_reason=reason,
    )


def _exemption_code(tax: TaxLine, param: str) -> str | None:
    """The tax line's VATEX code (BT-121), checked against its category."""
    code = getattr(tax, "exemption_code", None)  # a recent field of TaxLine
    if not code:
        return None
    code = code.strip().upper()
    if tax.category in NO_EXEMPTION_REASON or not code.startswith("VATEX-"):
        raise ValidationError(f"'{code}' is no VATEX exemption code for category {tax.category} (BR-S-10, BR-Z-10)",
                              param=f"{param}.exemption_code")
    if VATEX_CATEGORIES.get(code, tax.category) != tax.category:
        raise ValidationError(f"{code} belongs to category {VATEX_CATEGORIES[code]}, not {tax.category}",
                              param=f"{param}.exemption_code")
    return code


def _percent(rate: Decimal) -> Decimal:
    return (rate * 100).normalize() + ZERO  # `+ ZERO` turns 2E+1 back into 20


def _vat_groups(invoice: Invoice) -> tuple[list[_Group], list[int]]:
    """The VAT breakdown (one group per category and rate) and the group of each line.

    The model does not say which tax line covers which invoice line, so:
    - no tax line: everything is outside the scope of VAT (O);
    - tax lines whose taxable amounts add up to the net total partition the lines: lines that
      share a tax code go together, and each tax code's net must match exactly one grouping
      (an ambiguous or impossible match is an error, never a guess);
    - tax lines that each cover the whole net total in one category are stacked taxes
      (GST + PST): EN 16931 carries one VAT rate per line, so they become one category at the
      summed rate, with the parts stated in the note.
    """
    net = sum((line.amount for line in invoice.lines), ZERO)
    taxes = invoice.tax_lines
    if not taxes:
        category = VatCategory("O", None, EXEMPTION_CODES["O"], NOT_SUBJECT_TO_VAT)
        return [_Group(category, net, ZERO)], [0] * len(invoice.lines)
    for index, tax in enumerate(taxes):
        _category(tax, index)  # validates each tax line on its own
    if sum((tax.taxable_amount for tax in taxes), ZERO) == net:
        groups: dict[tuple[str, Decimal], _Group] = {}
        for index, tax in enumerate(taxes):
            key = (tax.category, tax.rate)
            if key in groups:
                groups[key].taxable += tax.taxable_amount
                groups[key].tax += tax.amount
            else:
                groups[key] = _Group(_category(tax, index), tax.taxable_amount, tax.amount, _zero_rate_note(tax))
        ordered = list(groups.values())
        return ordered, _assign_lines(invoice, ordered)
    if all(tax.taxable_amount == net for tax in taxes) and len({tax.category for tax in taxes}) == 1:
        rate = sum((tax.rate for tax in taxes), ZERO)
        tax_amount = sum((tax.amount for tax in taxes), ZERO)
        parts = ", ".join(f"{tax.name} {format(_percent(tax.rate), 'f')}%: {tax.amount}" for tax in taxes)
        group = _Group(_category(taxes[0], 0, rate), net, tax_amount, f"Taxes on {net} {invoice.currency}: {parts}")
        return [group], [0] * len(invoice.lines)
    raise ValidationError(
        "the tax lines neither partition the lines nor all cover them, so EN 16931 cannot carry them",
        param="tax_lines",
    )


def _zero_rate_note(tax: TaxLine) -> str | None:
    """A zero-rated line's legal mention may not sit in the breakdown (BR-Z-10): it goes in the note."""
    return tax.exemption_reason if tax.category == "Z" and tax.exemption_reason else None


def _assign_lines(invoice: Invoice, groups: list[_Group]) -> list[int]:
    if len(groups) == 1:
        return [0] * len(invoice.lines)
    by_code: dict[str | None, list[int]] = {}
    for index, line in enumerate(invoice.lines):
        by_code.setdefault(line.tax_code, []).append(index)
    codes = list(by_code)
    nets = [sum((invoice.lines[i].amount for i in by_code[code]), ZERO) for code in codes]
    if len(groups) ** len(codes) > MAX_ASSIGNMENTS:
        raise ValidationError("too many tax codes to match lines to tax lines", param="tax_lines")
    matches = [
        choice
        for choice in itertools.product(range(len(groups)), repeat=len(codes))
        if all(
            sum((nets[c] for c in range(len(codes)) if choice[c] == g), ZERO) == group.taxable
            for g, group in enumerate(groups)
        )
    ]
    if len(matches) != 1:
        found = "no" if not matches else "more than one"
        raise ValidationError(
            f"{found} way to match the lines (grouped by tax code) to the tax lines' taxable amounts",
            param="tax_lines",
        )
    line_groups = [0] * len(invoice.lines)
    for code_index, code in enumerate(codes):
        for line_index in by_code[code]:
            line_groups[line_index] = matches[0][code_index]
    return line_groups


# --- parties ---------------------------------------------------------------------------------

def vat_identifier(party: PartySnapshot) -> str | None:
    """The party's tax id when it is a VAT number (its country's prefix, BR-CO-09), compacted."""
    if not party.tax_id:
        return None
    compact = re.sub(r"[\s.\-]", "", party.tax_id).upper()
    prefix = VAT_PREFIXES.get(party.country, party.country)
    return compact if _VAT_SHAPE.match(compact) and compact.startswith(prefix) else None


def _party(party: PartySnapshot, endpoint: str | None, role: str, required: bool, show_vat: bool) -> Party:
    vat_number = vat_identifier(party)
    vat_id = vat_number if show_vat else None
    other_id = party.tax_id.strip() if party.tax_id and not vat_number else None
    address = _endpoint(party, vat_number, endpoint, role, required)
    identifier = _seller_identifier(address, other_id) if role == "seller" and not vat_id else None
    return Party(
        name=party.name,
        email=party.email,
        address_lines=tuple(line for line in party.address_lines if line.strip()),
        country=party.country,
        subdivision=_subdivision(party),
        vat_id=vat_id,
        tax_registration=other_id if role == "seller" else None,
        legal_id=other_id if role == "buyer" else None,
        endpoint=address,
        identifier=identifier,
    )


def _seller_identifier(address: tuple[str, str] | None, tax_id: str | None) -> tuple[str | None, str] | None:
    """BR-CO-26: a seller without a VAT number is identified (BT-29) by its electronic address when
    that is an ISO 6523 identifier (a GLN...), else by its tax id, else by its address without a
    scheme (99xx schemes are Peppol's own, not ISO 6523 codes)."""
    if address and not address[0].startswith("99"):
        return address
    if tax_id:
        return None, tax_id
    return (None, address[1]) if address else None


def _subdivision(party: PartySnapshot) -> str | None:
    if not party.region:
        return None
    prefix = f"{party.country}-"
    return party.region[len(prefix):] if party.region.upper().startswith(prefix) else party.region


def _endpoint(
    party: PartySnapshot, vat_id: str | None, given: str | None, role: str, required: bool
) -> tuple[str, str] | None:
    if given is not None:
        match = _ENDPOINT.match(given.strip())
        if not match:
            raise ValidationError(
                f"'{given}' is not a participant identifier 'scheme:identifier' (e.g. 0088:5790000435968)",
                param=f"{role}_endpoint",
            )
        return match.group(1), match.group(2)
    scheme = VAT_ENDPOINT_SCHEMES.get(party.country)
    if vat_id and scheme:
        return scheme, vat_id[2:] if party.country == "GR" else vat_id  # 9933 is the bare Greek TIN
    if required:
        raise ValidationError(
            f"Peppol needs the {role}'s electronic address (R010/R020): give {role}_endpoint, "
            f"or a VAT number of a country with a VAT address scheme",
            param=f"{role}_endpoint",
        )
    return None


def _check_parties(seller: Party, buyer: Party, categories: set[str]) -> None:
    """The party identifiers each VAT category asks for (BR-S-02, BR-AE-02/03, BR-IC-02, BR-O-02...)."""
    if categories & {"S", "Z", "E", "L", "M"} and not (seller.vat_id or seller.tax_registration):
        raise ValidationError("a taxed invoice needs the seller's VAT or tax registration number",
                              param="seller.tax_id")
    if categories & {"AE", "K", "G"} and not seller.vat_id:
        raise ValidationError("reverse charge, intra-community and export need the seller's VAT number",
                              param="seller.tax_id")
    if "AE" in categories and not (buyer.vat_id or buyer.legal_id):
        raise ValidationError("reverse charge needs the buyer's VAT number (BR-AE-02)", param="buyer.tax_id")
    if "K" in categories and not buyer.vat_id:
        raise ValidationError("an intra-community supply needs the buyer's VAT number (BR-IC-02)",
                              param="buyer.tax_id")
    if not (seller.vat_id or seller.identifier):  # BR-CO-26
        raise ValidationError("the seller needs a VAT number or an electronic address to be identified by",
                              param="seller.tax_id")


def _payment_terms(invoice: Invoice) -> str:
    """BT-20 in the invoice's language: "Due May 1, 2025"."""
    locale = babel_locale(invoice.language)
    return labels_for(invoice.language)["due_on"].format(date=medium_date(invoice.due_date, locale))


# --- UBL -------------------------------------------------------------------------------------

def invoice_to_ubl(
    invoice: Invoice,
    credit_note_of: Invoice | None = None,
    *,
    seller_endpoint: str | None = None,
    buyer_endpoint: str | None = None,
) -> bytes:
    """A Peppol BIS Billing 3.0 UBL 2.1 Invoice, or a CreditNote of `credit_note_of`, as UTF-8 XML.

    `seller_endpoint` / `buyer_endpoint`: Peppol participant identifiers (`0088:5790000435968`)
    for parties whose VAT number does not give their address.
    """
    doc = en16931_document(
        invoice, credit_note_of, seller_endpoint=seller_endpoint, buyer_endpoint=buyer_endpoint
    )
    return ubl_bytes(doc)


def ubl_bytes(doc: Document) -> bytes:
    root_ns, root_tag = (CREDIT_NOTE_NS, "CreditNote") if doc.credit_note else (INVOICE_NS, "Invoice")
    root = etree.Element(f"{{{root_ns}}}{root_tag}", nsmap={None: root_ns, **NS})
    cur = doc.currency
    _cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    _cbc(root, "ProfileID", PROFILE_ID)
    _cbc(root, "ID", doc.number)
    _cbc(root, "IssueDate", doc.issue_date.isoformat())
    if not doc.credit_note:
        _cbc(root, "DueDate", doc.due_date.isoformat())
    _cbc(root, "CreditNoteTypeCode" if doc.credit_note else "InvoiceTypeCode", doc.type_code)
    if doc.note:
        _cbc(root, "Note", doc.note)
    _cbc(root, "DocumentCurrencyCode", cur)
    _cbc(root, "BuyerReference", doc.buyer_reference)
    if doc.period:
        _period(root, doc.period)
    if doc.order_reference:
        _cbc(_cac(root, "OrderReference"), "ID", doc.order_reference)
    if doc.preceding:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", doc.preceding[0])
        _cbc(reference, "IssueDate", doc.preceding[1].isoformat())
    if doc.contract_reference:
        _cbc(_cac(root, "ContractDocumentReference"), "ID", doc.contract_reference)
    if doc.project_reference and doc.credit_note:  # a UBL CreditNote has no ProjectReference (UBL-SR-43)
        project = _cac(root, "AdditionalDocumentReference")
        _cbc(project, "ID", doc.project_reference)
        _cbc(project, "DocumentTypeCode", PROJECT_DOCUMENT_TYPE_CODE)
    elif doc.project_reference:
        _cbc(_cac(root, "ProjectReference"), "ID", doc.project_reference)
    _ubl_party(_cac(root, "AccountingSupplierParty"), doc.seller)
    _ubl_party(_cac(root, "AccountingCustomerParty"), doc.buyer)
    location = _cac(_cac(root, "Delivery"), "DeliveryLocation")
    _cbc(_cac(_cac(location, "Address"), "Country"), "IdentificationCode", doc.delivery_country)
    _cbc(_cac(root, "PaymentTerms"), "Note", doc.payment_terms)
    for allowance in doc.allowances:
        _allowance(root, allowance, cur)
    tax_total = _cac(root, "TaxTotal")
    _amount(tax_total, "TaxAmount", doc.tax_total, cur)
    for part in doc.breakdown:
        subtotal = _cac(tax_total, "TaxSubtotal")
        _amount(subtotal, "TaxableAmount", part.taxable, cur)
        _amount(subtotal, "TaxAmount", part.tax, cur)
        _tax_category(subtotal, "TaxCategory", part.category, breakdown=True)
    totals = _cac(root, "LegalMonetaryTotal")
    _amount(totals, "LineExtensionAmount", doc.line_total, cur)
    _amount(totals, "TaxExclusiveAmount", doc.tax_exclusive, cur)
    _amount(totals, "TaxInclusiveAmount", doc.tax_inclusive, cur)
    if doc.allowances:
        _amount(totals, "AllowanceTotalAmount", doc.allowance_total, cur)
    if doc.prepaid:
        _amount(totals, "PrepaidAmount", doc.prepaid, cur)
    _amount(totals, "PayableAmount", doc.payable, cur)
    for line in doc.lines:
        _ubl_line(root, line, cur, doc.credit_note)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _ubl_line(root: etree._Element, line: Line, cur: str, credit_note: bool) -> None:
    element = _cac(root, "CreditNoteLine" if credit_note else "InvoiceLine")
    _cbc(element, "ID", line.number)
    if line.note:
        _cbc(element, "Note", line.note)
    quantity = _cbc(element, "CreditedQuantity" if credit_note else "InvoicedQuantity", decimal_text(line.quantity))
    quantity.set("unitCode", UNIT_CODE)
    _amount(element, "LineExtensionAmount", line.net, cur)
    if line.period:
        _period(element, line.period)
    if line.object_id:
        reference = _cac(element, "DocumentReference")
        _cbc(reference, "ID", line.object_id)
        _cbc(reference, "DocumentTypeCode", LINE_OBJECT_TYPE_CODE)
    if line.adjustment:
        _allowance(element, line.adjustment, cur)
    item = _cac(element, "Item")
    _cbc(item, "Name", line.name)
    if line.seller_item_id:
        _cbc(_cac(item, "SellersItemIdentification"), "ID", line.seller_item_id)
    _tax_category(item, "ClassifiedTaxCategory", line.category, breakdown=False)
    _cbc(_cac(element, "Price"), "PriceAmount", format_amount(line.price, cur)).set("currencyID", cur)


def _ubl_party(parent: etree._Element, party: Party) -> None:
    element = _cac(parent, "Party")
    if party.endpoint:
        _cbc(element, "EndpointID", party.endpoint[1]).set("schemeID", party.endpoint[0])
    if party.identifier:
        identifier = _cbc(_cac(element, "PartyIdentification"), "ID", party.identifier[1])
        if party.identifier[0]:
            identifier.set("schemeID", party.identifier[0])
    address = _cac(element, "PostalAddress")
    lines = party.address_lines
    if lines:
        _cbc(address, "StreetName", lines[0])
    if len(lines) > 1:
        _cbc(address, "AdditionalStreetName", lines[1])
    if party.subdivision:
        _cbc(address, "CountrySubentity", party.subdivision)
    if len(lines) > 2:
        _cbc(_cac(address, "AddressLine"), "Line", ", ".join(lines[2:]))
    _cbc(_cac(address, "Country"), "IdentificationCode", party.country)
    for company_id, scheme in ((party.vat_id, "VAT"), (party.tax_registration, "TAX")):
        if company_id:
            tax_scheme = _cac(element, "PartyTaxScheme")
            _cbc(tax_scheme, "CompanyID", company_id)
            _cbc(_cac(tax_scheme, "TaxScheme"), "ID", scheme)
    legal = _cac(element, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", party.name)
    if party.legal_id:
        _cbc(legal, "CompanyID", party.legal_id)
    if party.email:
        _cbc(_cac(element, "Contact"), "ElectronicMail", party.email)


def _allowance(parent: etree._Element, adjustment: Adjustment, cur: str) -> None:
    element = _cac(parent, "AllowanceCharge")
    _cbc(element, "ChargeIndicator", "true" if adjustment.charge else "false")
    if adjustment.reason_code:
        _cbc(element, "AllowanceChargeReasonCode", adjustment.reason_code)
    _cbc(element, "AllowanceChargeReason", adjustment.reason)
    _amount(element, "Amount", adjustment.amount, cur)
    if adjustment.category:
        _tax_category(element, "TaxCategory", adjustment.category, breakdown=False)


def _tax_category(parent: etree._Element, tag: str, category: VatCategory, breakdown: bool) -> None:
    element = _cac(parent, tag)
    _cbc(element, "ID", category.code)
    if category.percent is not None:
        _cbc(element, "Percent", decimal_text(category.percent))
    if breakdown and category.exemption_code:
        _cbc(element, "TaxExemptionReasonCode", category.exemption_code)
    if breakdown and category.exemption_reason:
        _cbc(element, "TaxExemptionReason", category.exemption_reason)
    _cbc(_cac(element, "TaxScheme"), "ID", "VAT")


def _period(parent: etree._Element, period: tuple[date, date]) -> None:
    element = _cac(parent, "InvoicePeriod")
    _cbc(element, "StartDate", period[0].isoformat())
    _cbc(element, "EndDate", period[1].isoformat())


def _amount(parent: etree._Element, tag: str, amount: Decimal, cur: str) -> etree._Element:
    element = _cbc(parent, tag, format(_exact(amount, cur, tag), "f"))
    element.set("currencyID", cur)
    return element


def decimal_text(value: Decimal) -> str:
    """`1`, `1.5`, `0.0025`, `20`: plain notation, no trailing zeros."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _cbc(parent: etree._Element, tag: str, text: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{NS['cbc']}}}{tag}")
    element.text = text
    return element


def _cac(parent: etree._Element, tag: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{NS['cac']}}}{tag}")
