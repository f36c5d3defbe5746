"""Factur-X PDFs (`shared.documents.facturx`): the invoice PDF/A-3 with its CII XML embedded.

What is checked: the attachment the Factur-X 1.0 specification asks for (`factur-x.xml`,
AFRelationship `Data`, listed in the catalog's /AF), the XMP that declares PDF/A-3 and the
Factur-X profile "EN 16931", and that the embedded XML is the CII of the invoice. Full PDF/A
conformance needs veraPDF (Java), which these tests do not run: they claim no more than this.
"""

from __future__ import annotations

from io import BytesIO

import pytest
from facturx import get_facturx_xml_from_pdf
from lxml import etree
from pypdf import PdfReader
from test_ubl import SCENARIOS

from shared.billing.errors import ValidationError
from shared.documents.cii import invoice_to_cii

try:
    from weasyprint import HTML
    from weasyprint.text.fonts import FontConfiguration

    from shared.documents.facturx import facturx_pdf
    from shared.documents.html import TEMPLATES, render_invoice_html
    from shared.documents.pdf import LocalOnlyFetcher
except (ImportError, OSError) as error:  # weasyprint missing, or Pango missing under it
    pytest.skip(f"weasyprint unavailable: {error}", allow_module_level=True)

XMP = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
}


def render(invoice, variant: str | None) -> bytes:
    """As `shared.documents.pdf.html_to_pdf`, with weasyprint's PDF/A variant (which it lacks)."""
    html = HTML(string=render_invoice_html(invoice), base_url=TEMPLATES.resolve().as_uri() + "/",
                url_fetcher=LocalOnlyFetcher())
    return html.write_pdf(font_config=FontConfiguration(), pdf_variant=variant)


@pytest.fixture(scope="module")
def domestic():
    scenario = SCENARIOS["domestic_eu_vat_20"]
    pdfa = render(scenario.invoice, "pdf/a-3b")
    return scenario, pdfa, facturx_pdf(pdfa, scenario.invoice)


def xmp(pdf: bytes) -> etree._Element:
    metadata = PdfReader(BytesIO(pdf)).trailer["/Root"]["/Metadata"].get_object().get_data()
    return etree.fromstring(metadata)


def test_embedded_xml_is_the_invoice_cii(domestic):
    scenario, _, pdf = domestic
    filename, xml = get_facturx_xml_from_pdf(pdf, check_xsd=True)
    assert filename == "factur-x.xml"
    assert xml == invoice_to_cii(scenario.invoice)


def test_attachment_is_declared_as_associated_data(domestic):
    _, _, pdf = domestic
    catalog = PdfReader(BytesIO(pdf)).trailer["/Root"]
    associated = [spec.get_object() for spec in catalog["/AF"]]
    assert [(spec["/F"], spec["/AFRelationship"]) for spec in associated] == [("factur-x.xml", "/Data")]
    embedded = associated[0]["/EF"]["/F"].get_object()
    assert embedded["/Subtype"] == "/text/xml"


def test_xmp_declares_pdfa3_and_the_en16931_profile(domestic):
    _, _, pdf = domestic
    root = xmp(pdf)
    values = {etree.QName(e).localname: e.text for e in root.iter() if etree.QName(e).namespace in XMP.values()}
    attributes = {etree.QName(k).localname: v for e in root.iter() for k, v in e.attrib.items()
                  if etree.QName(k).namespace == XMP["pdfaid"]}
    assert (values.get("part") or attributes.get("part")) == "3"
    assert values["ConformanceLevel"] == "EN 16931"
    assert values["DocumentFileName"] == "factur-x.xml"
    assert values["DocumentType"] == "INVOICE"


def test_pages_and_title_survive(domestic):
    scenario, pdfa, pdf = domestic
    assert len(PdfReader(BytesIO(pdf)).pages) == len(PdfReader(BytesIO(pdfa)).pages)
    assert scenario.invoice.number in PdfReader(BytesIO(pdf)).metadata.title


def test_credit_note_embeds_a_381(domestic):
    _, pdfa, _ = domestic
    scenario = SCENARIOS["credit_note"]
    pdf = facturx_pdf(pdfa, scenario.invoice, scenario.credit_note_of)
    _, xml = get_facturx_xml_from_pdf(pdf, check_xsd=True)
    type_code = etree.fromstring(xml).findtext(
        "{*}ExchangedDocument/{*}TypeCode")
    assert type_code == "381"


def test_a_pdf_that_is_not_pdfa3_is_refused(domestic):
    scenario, _, _ = domestic
    with pytest.raises(ValidationError) as error:
        facturx_pdf(render(scenario.invoice, None), scenario.invoice)
    assert error.value.param == "pdf_bytes"


def test_bytes_that_are_not_a_pdf_are_refused(domestic):
    scenario, _, _ = domestic
    with pytest.raises(ValidationError) as error:
        facturx_pdf(b"%PDF-nonsense", scenario.invoice)
    assert error.value.param == "pdf_bytes"
