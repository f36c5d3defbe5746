"""The platform's own wording on invoices (notes, line descriptions, proration rules), printed in the
customer's language (invoice_v3)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from document_fixtures import REVERSE_CHARGE_NOTES, make_reverse_charge_credit_note
from hypothesis import given
from hypothesis import strategies as st

from shared.billing.invoicing import CREDIT_NOTE_NOTE
from shared.billing.tax import RulesTaxProvider, TaxableLine, TaxParty, TaxRequest
from shared.documents.html import medium_date, render_invoice_html
from shared.documents.labels import LABELS
from shared.documents.wording import ENGLISH, TAX_NAMES, TRANSLATIONS, localized, localized_tax_name

FIELD = re.compile(r"\{(\w+)\}")


@pytest.mark.parametrize("language", sorted(TRANSLATIONS))
def test_every_translation_has_every_note_with_the_same_values(language):
    assert set(TRANSLATIONS[language]) == set(ENGLISH) | set(TAX_NAMES)
    for key, english in ENGLISH.items():
        assert set(FIELD.findall(TRANSLATIONS[language][key])) == set(FIELD.findall(english)), key


def test_every_language_with_labels_but_english_has_the_notes_too():
    assert set(TRANSLATIONS) == set(LABELS) - {"en"}


VALUE = st.text(alphabet=st.sampled_from("ABCDEFGHXYZ0123456789-. "), min_size=1, max_size=12).map(str.strip) \
    .filter(bool)
DATE_FIELD = re.compile(r"(start|day|date)$")


@pytest.mark.parametrize("key", sorted(ENGLISH))
@given(data=st.data())
def test_wording_written_from_its_template_prints_in_each_language_with_the_same_values(key, data):
    names = set(FIELD.findall(ENGLISH[key]))
    values = {name: data.draw(st.dates() if DATE_FIELD.search(name) else VALUE, label=name) for name in names}
    english = ENGLISH[key].format(**values)
    assert localized(english, "en") == english
    for language, catalog in TRANSLATIONS.items():
        assert localized(english, language) == catalog[key].format(**values)


def test_dates_print_in_the_languages_format_and_descriptions_nest():
    credit = "Credit: Managed Service: unused time 2025-03-15 to 2025-03-31"  # a credit note of a proration line
    assert localized(credit, "de", lambda d: medium_date(d, "de")) == \
        "Gutschrift: Managed Service: nicht genutzte Zeit vom 15.03.2025 bis 31.03.2025"
    rule = "prorated by day: 17/31 days of 2025-03-01 to 2025-03-31"
    assert localized(rule, "ja", lambda d: medium_date(d, "ja")) == "日割り：2025/03/01～2025/03/31の31日中17日"
    assert localized("Support: Q1 to Q2", "de") == "Support: Q1 to Q2"  # not dates: not the platform's wording
    bad = "Build: 2025-13-45 to 2025-14-01"  # as a template prints it, with the language's date format
    assert localized(bad, "de", lambda d: medium_date(d, "de")) == bad


def rules_notes(seller_country: str, buyer_country: str, buyer_tax_id: str | None) -> list[str]:
    """The notes the rules provider writes for one B2B sale."""
    seller = TaxParty(country=seller_country, region=None, registrations={seller_country: "FR40303265045"},
                      tax_id="FR40303265045")
    buyer = TaxParty(country=buyer_country, region=None, customer_type="business", tax_id=buyer_tax_id)
    line = TaxableLine(index=0, amount=Decimal("100.00"), tax_code=None, period_start=date(2025, 3, 1),
                       period_end=date(2025, 4, 1))
    request = TaxRequest(seller=seller, buyer=buyer, currency="EUR", invoice_date=date(2025, 4, 1), lines=(line,))
    return RulesTaxProvider().calculate(request).notes


def test_the_tax_wording_of_an_intra_eu_sale_prints_in_german_and_japanese():
    notes = rules_notes("FR", "DE", "DE136695976")
    assert notes == REVERSE_CHARGE_NOTES  # what the credit-note fixture (and golden file) carries
    german = [localized(n, "de") for n in notes]
    assert german == [
        "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge): Der Leistungsempfänger schuldet die "
        "Umsatzsteuer nach Artikel 196 der Richtlinie 2006/112/EG des Rates.",
        "USt-IdNr. des Leistenden: FR40303265045",
        "USt-IdNr. des Leistungsempfängers: DE136695976"]
    assert localized(notes[2], "ja") == "顧客のVAT番号：DE136695976"
    assert localized(notes[2], "pt-PT") == "Número de IVA do cliente: DE136695976"  # via pt-BR


def test_a_note_someone_typed_or_a_language_without_notes_prints_as_stored():
    typed = "Payment by wire transfer to account 000123456."
    assert localized(typed, "de") == typed
    assert localized("Customer VAT number: DE1", "ko") == "Customer VAT number: DE1"
    assert localized("Customer VAT number: DE1", None) == "Customer VAT number: DE1"


def test_the_credited_invoice_date_is_formatted_for_the_language():
    stored = CREDIT_NOTE_NOTE.format(number="FR-000001", date=date(2025, 3, 1), reason="SLA: 2 h down")
    assert localized(stored, "de", lambda d: medium_date(d, "de")) == \
        "Gutschrift zur Rechnung FR-000001 vom 01.03.2025: SLA: 2 h down"
    assert localized(stored, "fr", lambda d: medium_date(d, "fr")) == \
        "Avoir sur la facture FR-000001 du 1 mars 2025 : SLA: 2 h down"


def test_invoice_v3_prints_a_german_credit_note_in_german():
    html = render_invoice_html(make_reverse_charge_credit_note())
    assert "Gutschriftsdatum" in html and "Rechnungsdatum" not in html
    assert "Gutschrift zur Rechnung FR-000001 vom 01.03.2025: SLA-Gutschrift" in html
    assert "Steuerschuldnerschaft des Leistungsempfängers" in html and "Reverse charge:" not in html
    assert "USt-IdNr. des Leistungsempfängers: DE136695976" in html
    assert "Bitte verrechnen Sie die Gutschrift" in html  # typed notes print as typed
    assert "Gutschrift: Managed Service" in html and "tagesanteilig: 17/31 Tage vom 01.03.2025 bis 01.04.2025" in html
    assert 'content="billing-platform invoice_v3"' in html


def test_invoice_v2_keeps_printing_notes_as_stored():
    html = render_invoice_html(make_reverse_charge_credit_note().model_copy(update={"template_version": "invoice_v2"}))
    assert "Reverse charge: the customer is liable" in html and "Rechnungsdatum" in html


def test_the_platforms_tax_names_are_translated_on_tax_lines_only():
    assert [localized_tax_name(n, "fr") for n in ("VAT", "Sales tax", "GST", "CA STATE TAX")] == [
        "TVA", "Taxe de vente", "GST", "CA STATE TAX"]  # GST is a name; a provider's names print as given
    assert localized_tax_name("Consumption tax", "ja") == "消費税"
    assert localized("VAT", "fr") == "VAT"  # a line or note that says "VAT" is not a tax line
    assert "<td>USt. <span class=\"jurisdiction\">FR</span>" in render_invoice_html(make_reverse_charge_credit_note())
