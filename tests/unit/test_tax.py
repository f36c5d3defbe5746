"""Tax rules against official figures, tax ID checks, rounding, the tax report, and properties.

Sources of the figures:
- Revenu Québec, "Calculating the taxes" (GST 5 % and QST 9.975 % both on the price without tax;
  $100 -> GST $5.00, QST $9.98, total $114.98; fractions of 1/2 cent or more count as a cent):
  https://www.revenuquebec.ca/en/businesses/consumption-taxes/gsthst-and-qst/collecting-gst-and-qst/calculating-the-taxes/
- CRA, "GST/HST rates" (ON 13 %, NB/NL/PE 15 %, NS 15 % then 14 % from 2025-04-01, GST 5 % elsewhere):
  https://www.canada.ca/en/revenue-agency/services/tax/businesses/topics/gst-hst-businesses/charge-collect-which-rate/calculator.html
  and Nova Scotia Finance, "Nova Scotia's HST to drop in 2025" (14 % from April 1, 2025).
- BC PST 7 % (gov.bc.ca, PST), Saskatchewan PST 6 % since 2017-03-23 (Saskatchewan 2017-18 budget),
  Manitoba RST 7 % since 2019-07-01 (Manitoba 2019 budget).
- HMRC, "VAT rates" (standard 20 %, reduced 5 %): https://www.gov.uk/vat-rates
- Council Directive 2006/112/EC, Article 196 (the customer pays the VAT on Article 44 services from a
  supplier not established in its member state) and Article 226(11a) (the invoice mentions "Reverse charge").
- EU standard rates: European Commission, "VAT rates applied in the Member States of the European Union"
  and TEDB (FI 25.5 % from 2024-09-01, SK 23 % from 2025-01-01, EE 24 % from 2025-07-01, RO 21 % from
  2025-08-01; DE 16 % from 2020-07-01 to 2020-12-31).
- National Tax Agency (Japan): consumption tax 10 % (reduced 8 %) since 2019-10-01; qualified invoice Q&A 46
  (rounding once per invoice and tax rate).
- Seed 000 §6.5 (UK entity: 20 % to UK corporates, 0 % reverse charge to EU corporates; Japan TBD).
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.billing.errors import NonRetryableError, ValidationError
from shared.billing.models import Invoice, PartySnapshot, TaxLine
from shared.billing.periods import Period
from shared.billing.tax import (
    EU_MEMBER_STATES,
    EU_STANDARD_RATES,
    REVERSE_CHARGE,
    Rounding,
    RulesTaxProvider,
    TaxableLine,
    TaxParty,
    TaxRequest,
    allocate,
    check_tax_id,
    check_taxable,
    provider_for,
    rate_on,
    split_by_days,
    tax_report,
)

D = Decimal
CA_SELLER = TaxParty("CA", "ON", None, registrations={"CA": "123456782RT0001", "CA-QC": "1234567890TQ0001"})
UK_SELLER = TaxParty("GB", None, "GB980780684", registrations={"GB": "GB980780684"})
DE_SELLER = TaxParty("DE", None, "DE136695976", registrations={"DE": "DE136695976"})


def line(amount: str, start=date(2025, 5, 1), end=date(2025, 6, 1), index=0, tax_code=None) -> TaxableLine:
    return TaxableLine(index=index, amount=D(amount), tax_code=tax_code, period_start=start, period_end=end)


def request(seller, buyer, *lines, currency="CAD", invoice_date=date(2025, 5, 1)) -> TaxRequest:
    return TaxRequest(seller=seller, buyer=buyer, currency=currency, invoice_date=invoice_date,
                      lines=tuple(lines) or (line("100.00"),))


def taxes(result) -> list[tuple[str, str, Decimal, Decimal, str]]:
    return [(t.name, t.jurisdiction, t.rate, t.amount, t.category) for t in result.tax_lines]


# ---------------------------------------------------------------------------------------------
# Canada
# ---------------------------------------------------------------------------------------------


def test_revenu_quebec_worked_example_gst_and_qst_on_the_same_base():
    result = RulesTaxProvider().calculate(request(CA_SELLER, TaxParty("CA", "QC", None)))
    assert taxes(result) == [("GST", "CA", D("0.05"), D("5.00"), "S"), ("QST", "CA-QC", D("0.09975"), D("9.98"), "S")]
    assert D("100.00") + result.tax_total == D("114.98")
    assert result.line_taxes[0] == result.tax_lines  # one line: its taxes are the invoice's
    assert "GST/HST registration number: 123456782RT0001" in result.notes
    assert "QST registration number: 1234567890TQ0001" in result.notes
    assert result.rounding.startswith("per invoice and tax rate, half up to 0.01 CAD")


@pytest.mark.parametrize(("province", "day", "rate"), [
    ("ON", date(2025, 5, 1), "0.13"),
    ("NB", date(2025, 5, 1), "0.15"),
    ("NL", date(2025, 5, 1), "0.15"),
    ("PE", date(2025, 5, 1), "0.15"),
    ("NS", date(2025, 3, 1), "0.15"),
    ("NS", date(2025, 4, 1), "0.14"),
    ("NB", date(2016, 6, 30), "0.13"),
    ("PE", date(2016, 9, 30), "0.14"),
])
def test_cra_hst_rates_by_province(province, day, rate):
    # ETA s.168(1): the rate of the day the tax becomes payable (here the invoice date), not the service day
    result = RulesTaxProvider().calculate(
        request(CA_SELLER, TaxParty("CA", province, None), line("200.00", day, day + timedelta(days=1)),
                invoice_date=day))
    assert taxes(result) == [("HST", f"CA-{province}", D(rate), (D("200.00") * D(rate)).quantize(D("0.01")), "S")]


def test_nova_scotia_line_across_the_change_is_taxed_whole_at_the_invoice_dates_rate():
    # Was a split by days (17 days at 15 %, 14 at 14 %). Canada's rule (ETA s.168(1), CRA GST/HST Notice 342):
    # the rate in force when the tax becomes payable applies to the whole consideration.
    period = (date(2025, 3, 15), date(2025, 4, 15))
    in_advance = RulesTaxProvider().calculate(request(CA_SELLER, TaxParty("CA", "NS", None), line("310.00", *period),
                                                      invoice_date=date(2025, 3, 15)))
    assert taxes(in_advance) == [("HST", "CA-NS", D("0.15"), D("46.50"), "S")]
    in_arrears = RulesTaxProvider().calculate(request(CA_SELLER, TaxParty("CA", "NS", None), line("310.00", *period),
                                                      invoice_date=date(2025, 4, 15)))
    assert taxes(in_arrears) == [("HST", "CA-NS", D("0.14"), D("43.40"), "S")]


@pytest.mark.parametrize(("province", "name", "rate", "amount"), [
    ("BC", "PST", "0.07", "7.00"), ("SK", "PST", "0.06", "6.00"), ("MB", "RST", "0.07", "7.00")])
def test_pst_provinces_add_a_separate_line_beside_gst(province, name, rate, amount):
    result = RulesTaxProvider().calculate(request(CA_SELLER, TaxParty("CA", province, None)))
    assert taxes(result) == [("GST", "CA", D("0.05"), D("5.00"), "S"),
                             (name, f"CA-{province}", D(rate), D(amount), "S")]


def test_manitoba_rst_was_8_percent_before_july_2019():
    result = RulesTaxProvider().calculate(
        request(CA_SELLER, TaxParty("CA", "MB", None), line("100.00", date(2019, 6, 1), date(2019, 6, 2)),
                invoice_date=date(2019, 6, 1)))  # the rate of the invoice date (ETA s.168(1))
    assert taxes(result)[1] == ("RST", "CA-MB", D("0.08"), D("8.00"), "S")


def test_alberta_and_the_territories_charge_gst_only():
    for province in ("AB", "NT", "NU", "YT"):
        result = RulesTaxProvider().calculate(request(CA_SELLER, TaxParty("CA", province, None)))
        assert taxes(result) == [("GST", "CA", D("0.05"), D("5.00"), "S")]


def test_a_pst_exempt_product_code_keeps_gst_and_qst_but_drops_pst():
    provider = RulesTaxProvider(tax_codes={"MANAGED-SERVICE": "pst_exempt"})
    bc = provider.calculate(request(CA_SELLER, TaxParty("CA", "BC", None), line("100.00", tax_code="MANAGED-SERVICE")))
    qc = provider.calculate(request(CA_SELLER, TaxParty("CA", "QC", None), line("100.00", tax_code="MANAGED-SERVICE")))
    assert [t.name for t in bc.tax_lines] == ["GST"]
    assert [t.name for t in qc.tax_lines] == ["GST", "QST"]


def test_canada_needs_a_known_province():
    with pytest.raises(ValidationError) as missing:
        RulesTaxProvider().calculate(request(CA_SELLER, TaxParty("CA", None, None)))
    assert missing.value.param == "buyer.region"
    with pytest.raises(ValidationError) as unknown:
        check_taxable("CA", "XX", "business", None, param_prefix="customer.")
    assert unknown.value.param == "customer.region"


def test_a_tax_date_before_the_table_is_an_error_naming_the_field_that_gave_it():
    # Canada keys on the invoice date (ETA s.168(1)), so the invoice date is named; the EU on the end of the
    # service (art. 64(1)), so the line's period_end; an apportioning UK supplier on the line's first day.
    with pytest.raises(ValidationError) as error:
        RulesTaxProvider().calculate(
            request(CA_SELLER, TaxParty("CA", "SK", None), line("100.00", date(2016, 1, 1), date(2016, 1, 2)),
                    invoice_date=date(2016, 1, 1)))
    assert error.value.param == "invoice_date"
    ee_seller = TaxParty("EE", None, "EE100931558", registrations={"EE": "EE100931558"})
    with pytest.raises(ValidationError) as error:
        RulesTaxProvider().calculate(request(ee_seller, TaxParty("EE", None, None, customer_type="individual"),
                                             line("100.00", date(2008, 1, 1), date(2008, 2, 1), index=2),
                                             currency="EUR"))
    assert error.value.param == "lines[2].period_end"
    with pytest.raises(ValidationError) as error:
        RulesTaxProvider(time_of_supply={"GB": "days"}).calculate(
            request(UK_SELLER, TaxParty("GB", None, None, customer_type="individual"),
                    line("100.00", date(2009, 12, 1), date(2010, 2, 1)), currency="GBP"))
    assert error.value.param == "lines[0].period_start"


# ---------------------------------------------------------------------------------------------
# UK and EU VAT
# ---------------------------------------------------------------------------------------------


def test_hmrc_standard_rate_uk_entity_to_uk_corporate():
    buyer = TaxParty("GB", None, "GB 980 7806 84")
    result = RulesTaxProvider().calculate(request(UK_SELLER, buyer, line("1250.00"), currency="GBP"))
    assert taxes(result) == [("VAT", "GB", D("0.20"), D("250.00"), "S")]
    assert "Supplier VAT number: GB980780684" in result.notes
    assert "Customer VAT number: GB980780684" in result.notes


def test_hmrc_reduced_rate_through_a_product_tax_code():
    provider = RulesTaxProvider(tax_codes={"ENERGY-SAVING": "reduced"})
    result = provider.calculate(request(UK_SELLER, TaxParty("GB", None, None, customer_type="individual"),
                                        line("100.00", tax_code="ENERGY-SAVING"), currency="GBP"))
    assert taxes(result) == [("VAT", "GB", D("0.05"), D("5.00"), "S")]


def test_germany_reduced_rate_and_an_unknown_reduced_rate_is_refused():
    buyer = TaxParty("DE", None, None, customer_type="individual")
    result = RulesTaxProvider().calculate(request(DE_SELLER, buyer, line("100.00", tax_code="reduced"), currency="EUR"))
    assert taxes(result) == [("VAT", "DE", D("0.07"), D("7.00"), "S")]
    fr_seller = TaxParty("FR", None, "FR40303265045")
    with pytest.raises(ValidationError) as error:
        RulesTaxProvider().calculate(request(fr_seller, TaxParty("FR", None, None, customer_type="individual"),
                                             line("100.00", tax_code="reduced"), currency="EUR"))
    assert error.value.param == "lines[0].tax_code"


def test_unknown_tax_code_names_the_line():
    with pytest.raises(ValidationError) as error:
        RulesTaxProvider().calculate(request(DE_SELLER, TaxParty("DE", None, None), line("1.00", index=3,
                                             tax_code="NO-SUCH-CODE"), currency="EUR"))
    assert error.value.param == "lines[3].tax_code"


def test_eu_b2b_cross_border_is_reverse_charged_with_the_directive_wording():
    buyer = TaxParty("FR", None, "FR 40 303 265 045")
    result = RulesTaxProvider().calculate(request(DE_SELLER, buyer, line("1250.00"), currency="EUR"))
    assert taxes(result) == [("VAT", "DE", D("0"), D("0.00"), "AE")]
    assert result.tax_lines[0].exemption_reason == REVERSE_CHARGE == "Reverse charge"
    assert any("Reverse charge" in note and "Article 196 of Council Directive 2006/112/EC" in note
               for note in result.notes)
    assert "Supplier VAT number: DE136695976" in result.notes
    assert "Customer VAT number: FR40303265045" in result.notes


def test_uk_entity_to_eu_corporate_is_zero_rated_reverse_charge():
    buyer = TaxParty("DE", None, "DE136695976")
    result = RulesTaxProvider().calculate(request(UK_SELLER, buyer, line("1000.00"), currency="EUR"))
    assert taxes(result) == [("VAT", "GB", D("0"), D("0.00"), "AE")]
    assert result.tax_total == 0
    assert any("Article 196" in note for note in result.notes)


def test_uk_buyer_of_a_foreign_supplier_accounts_for_the_vat():
    result = RulesTaxProvider().calculate(request(DE_SELLER, TaxParty("GB", None, "GB980780684"), currency="GBP"))
    assert [t.category for t in result.tax_lines] == ["AE"]
    assert any("VAT Act 1994, section 8" in note for note in result.notes)


def test_eu_consumer_in_another_state_pays_its_own_states_vat():
    result = RulesTaxProvider().calculate(
        request(DE_SELLER, TaxParty("FR", None, None, customer_type="individual"), currency="EUR"))
    assert taxes(result) == [("VAT", "FR", D("0.20"), D("20.00"), "S")]
    assert any("customer's rate" in note for note in result.notes)


def test_eu_domestic_uses_the_rate_in_force_including_the_german_2020_cut():
    buyer = TaxParty("DE", None, None, customer_type="individual")
    provider = RulesTaxProvider()
    cut = provider.calculate(request(DE_SELLER, buyer, line("100.00", date(2020, 8, 1), date(2020, 9, 1)),
                                     currency="EUR"))
    assert taxes(cut) == [("VAT", "DE", D("0.16"), D("16.00"), "S")]
    assert taxes(provider.calculate(request(DE_SELLER, buyer, currency="EUR"))) == [
        ("VAT", "DE", D("0.19"), D("19.00"), "S")]


EC_STANDARD_RATES_2025_09 = {  # EC / TEDB standard rates in force on 2025-09-01
    "AT": "20", "BE": "21", "BG": "20", "CY": "19", "CZ": "21", "DE": "19", "DK": "25", "EE": "24", "ES": "21",
    "FI": "25.5", "FR": "20", "GR": "24", "HR": "25", "HU": "27", "IE": "23", "IT": "22", "LT": "21", "LU": "17",
    "LV": "21", "MT": "18", "NL": "21", "PL": "23", "PT": "23", "RO": "21", "SE": "25", "SI": "22", "SK": "23",
}


def test_all_27_member_states_have_their_standard_rate():
    assert EU_MEMBER_STATES == set(EC_STANDARD_RATES_2025_09)
    for country, percent in EC_STANDARD_RATES_2025_09.items():
        assert rate_on(EU_STANDARD_RATES[country], date(2025, 9, 1)) * 100 == D(percent), country
    assert rate_on(EU_STANDARD_RATES["FI"], date(2024, 8, 31)) == D("0.24")
    assert rate_on(EU_STANDARD_RATES["SK"], date(2024, 12, 31)) == D("0.20")
    assert rate_on(EU_STANDARD_RATES["EE"], date(2025, 6, 30)) == D("0.22")
    assert rate_on(EU_STANDARD_RATES["RO"], date(2025, 7, 31)) == D("0.19")


def test_finland_rate_change_taxes_the_line_at_the_rate_of_its_completion():
    # Was a split by days (15 days at 24 %, 15 at 25.5 %). EU rule (Directive 2006/112/EC art. 64(1), 93):
    # the chargeable event is the end of the period the statement of account covers; its rate taxes it all.
    buyer = TaxParty("FI", None, None, customer_type="individual")
    seller = TaxParty("FI", None, "FI20774740", registrations={"FI": "FI20774740"})
    result = RulesTaxProvider().calculate(
        request(seller, buyer, line("300.00", date(2024, 8, 17), date(2024, 9, 16)), currency="EUR"))
    assert [(t.rate, t.taxable_amount, t.amount) for t in result.tax_lines] == [(D("0.255"), D("300.00"), D("76.50"))]


def test_a_seller_without_a_vat_number_cannot_invoice_vat():
    with pytest.raises(ValidationError) as error:
        RulesTaxProvider().calculate(request(TaxParty("DE", None, None), TaxParty("DE", None, None), currency="EUR"))
    assert error.value.param == "seller.registrations"


def test_a_non_eu_seller_needs_an_eu_registration_to_charge_a_consumers_vat():
    us_seller = TaxParty("US", "CA", "04-2103594")
    consumer = TaxParty("FR", None, None, customer_type="individual")
    with pytest.raises(ValidationError) as error:
        RulesTaxProvider().calculate(request(us_seller, consumer, currency="EUR"))
    assert error.value.param == "seller.registrations"
    registered = TaxParty("US", "CA", "04-2103594", registrations={"EU": "EU372012345"})
    result = RulesTaxProvider().calculate(request(registered, consumer, currency="EUR"))
    assert taxes(result) == [("VAT", "FR", D("0.20"), D("20.00"), "S")]
    assert "Supplier VAT number: EU372012345" in result.notes


def test_eu_seller_to_a_customer_outside_the_eu_is_outside_the_scope():
    result = RulesTaxProvider().calculate(request(DE_SELLER, TaxParty("BR", None, None), currency="EUR"))
    assert taxes(result) == [("VAT", "DE", D("0"), D("0.00"), "O")]
    assert result.tax_lines[0].exemption_reason == "Outside the scope of EU VAT"


def test_no_rule_is_an_error_unless_the_country_is_declared_outside_the_scope():
    us_seller = TaxParty("US", "CA", "04-2103594")
    with pytest.raises(NonRetryableError) as error:
        RulesTaxProvider().calculate(request(us_seller, TaxParty("MX", None, None), currency="USD"))
    assert error.value.code == "no_tax_rule"
    result = RulesTaxProvider(outside_scope_countries={"MX"}).calculate(
        request(us_seller, TaxParty("MX", None, None), currency="USD"))
    assert taxes(result) == [("Sales tax", "US", D("0"), D("0.00"), "O")]
    assert result.notes == ["Outside the scope of US sales tax: the place of supply is the customer's country (MX)."]


# ---------------------------------------------------------------------------------------------
# Tax IDs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("country", "raw", "normalized"), [
    ("DE", "DE 136 695 976", "DE136695976"),
    ("DE", "136695976", "DE136695976"),
    ("FR", "FR40303265045", "FR40303265045"),
    ("GR", "094259216", "EL094259216"),
    ("GR", "GR094259216", "EL094259216"),
    ("GB", "GB 980 7806 84", "GB980780684"),
    ("CA", "123456782RT0001", "123456782RT0001"),
    ("JP", "T5835678256246", "T5835678256246"),
    ("MX", "GODE561231GR8", "GODE561231GR8"),
    ("BR", "16.727.230/0001-97", "16727230000197"),
])
def test_valid_tax_ids_are_normalized(country, raw, normalized):
    assert check_tax_id(country, raw) == normalized


@pytest.mark.parametrize(("country", "raw"), [
    ("DE", "DE136695977"),  # check digit
    ("FR", "FR41303265045"),  # check digits
    ("GB", "GB980780685"),
    ("DE", "FR40303265045"),  # another country's number
    ("CA", "123456789"),
    ("DE", "  "),
])
def test_malformed_tax_ids_are_refused_naming_the_field(country, raw):
    with pytest.raises(ValidationError) as error:
        check_tax_id(country, raw, param="customer.tax_id")
    assert error.value.param == "customer.tax_id"


def test_an_invalid_vat_id_never_reaches_a_reverse_charge():
    with pytest.raises(ValidationError) as error:
        RulesTaxProvider().calculate(request(DE_SELLER, TaxParty("FR", None, "FR41303265045"), currency="EUR"))
    assert error.value.param == "buyer.tax_id"


def test_check_taxable_names_the_bad_field():
    check_taxable("US", "US-CA", "business", "04-2103594")
    for args, param in [(("XX", None, "business", None), "country"), (("US", None, "business", None), "region"),
                        (("US", "ZZ", "business", None), "region"), (("DE", None, "robot", None), "customer_type"),
                        (("DE", None, "business", "DE1"), "tax_id")]:
        with pytest.raises(ValidationError) as error:
            check_taxable(*args)
        assert error.value.param == param


# ---------------------------------------------------------------------------------------------
# Exempt customers, Japan, the US, provider choice
# ---------------------------------------------------------------------------------------------


def test_a_tax_exempt_customer_gets_no_tax_but_a_stated_note():
    result = RulesTaxProvider().calculate(request(CA_SELLER, TaxParty("CA", "QC", None, tax_exempt=True)))
    assert taxes(result) == [("GST", "CA", D("0"), D("0.00"), "E")]
    assert result.tax_lines[0].exemption_reason == "Tax exempt customer"
    assert result.notes == ["Tax exempt customer: no tax charged."]


def test_japan_consumption_tax_on_and_off():
    seller = TaxParty("JP", None, None, registrations={"JP": "T5835678256246"})
    buyer = TaxParty("JP", None, None)
    on = RulesTaxProvider().calculate(request(seller, buyer, line("12345"), currency="JPY"))
    assert taxes(on) == [("Consumption tax", "JP", D("0.10"), D("1235"), "S")]  # 1234.5 rounded half up
    assert "Registration number: T5835678256246" in on.notes
    off = RulesTaxProvider(japan_consumption_tax=False).calculate(request(seller, buyer, line("12345"), currency="JPY"))
    assert taxes(off) == [("Consumption tax", "JP", D("0"), D("0"), "O")]
    assert off.notes == ["Japanese consumption tax not charged on this invoice."]


def test_japan_rounds_once_per_invoice_and_rate():
    seller, buyer = TaxParty("JP", None, None), TaxParty("JP", None, None)
    lines = [line("105", index=i) for i in range(3)]  # 10.5 each: 31.5 -> 32 once, not 3 x 11
    result = RulesTaxProvider().calculate(request(seller, buyer, *lines, currency="JPY"))
    assert result.tax_total == D("32")
    assert sum(t.amount for i in range(3) for t in result.line_taxes[i]) == D("32")


class Engine:
    name = "engine"

    def calculate(self, request):  # pragma: no cover - never called here
        raise AssertionError


def test_us_needs_a_tax_engine():
    rules, engine = RulesTaxProvider(), Engine()
    buyer = TaxParty("US", "CA", None)
    assert provider_for(buyer, {"US": engine}, rules) is engine
    assert provider_for(request(CA_SELLER, TaxParty("CA", "QC", None)), {"US": engine}, rules) is rules
    assert provider_for(TaxParty("US", "US-WA", None), {"US-WA": engine}, rules) is engine
    with pytest.raises(NonRetryableError) as error:
        provider_for(buyer, {}, rules)
    assert error.value.code == "tax_engine_required"
    with pytest.raises(NonRetryableError):
        rules.calculate(request(TaxParty("US", "CA", None), buyer, currency="USD"))


# ---------------------------------------------------------------------------------------------
# Rounding
# ---------------------------------------------------------------------------------------------


def test_per_line_and_per_invoice_rounding_differ_by_a_cent_on_a_crafted_invoice():
    buyer = TaxParty("GB", None, None, customer_type="individual")
    lines = [line("0.03", index=i) for i in range(3)]  # 20 % of 0.03 = 0.006 each
    per_invoice = RulesTaxProvider().calculate(request(UK_SELLER, buyer, *lines, currency="GBP"))
    per_line = RulesTaxProvider(rounding={"GB": Rounding("line")}).calculate(
        request(UK_SELLER, buyer, *lines, currency="GBP"))
    assert per_invoice.tax_total == D("0.02")  # 0.018 rounded once
    assert per_line.tax_total == D("0.03")  # 0.006 -> 0.01, three times
    assert per_line.rounding.startswith("per line and tax rate, half up to 0.01 GBP")
    assert per_invoice.rounding.startswith("per invoice and tax rate")
    assert sum(t.amount for i in range(3) for t in per_invoice.line_taxes[i]) == D("0.02")


def test_discount_lines_reduce_the_base():
    result = RulesTaxProvider().calculate(
        request(CA_SELLER, TaxParty("CA", "ON", None), line("100.00", index=0), line("-10.00", index=1)))
    assert taxes(result) == [("HST", "CA-ON", D("0.13"), D("11.70"), "S")]
    assert [t.amount for t in result.line_taxes[1]] == [D("-1.30")]


def test_bad_lines_are_errors_naming_the_field():
    provider = RulesTaxProvider()
    buyer = TaxParty("CA", "ON", None)
    cases = [
        ((line("1.005"),), "lines[0].amount"),
        ((line("1.00", date(2025, 5, 2), date(2025, 5, 2)),), "lines[0].period_end"),
        ((line("1.00"), line("2.00")), "lines"),
    ]
    for lines, param in cases:
        with pytest.raises(ValidationError) as error:
            provider.calculate(request(CA_SELLER, buyer, *lines))
        assert error.value.param == param
    with pytest.raises(ValidationError) as error:
        provider.calculate(request(CA_SELLER, buyer, currency="XYZ"))
    assert error.value.param == "currency"


money = st.decimals(min_value=D("-10000"), max_value=D("10000"), places=2)
rates = st.sampled_from([D("0.05"), D("0.09975"), D("0.13"), D("0.14"), D("0.19"), D("0.20"), D("0.255")])


@settings(max_examples=200, deadline=None)
@given(amounts=st.lists(money, min_size=1, max_size=12), rate=rates)
def test_per_line_rounding_differs_from_tax_of_the_sum_by_at_most_half_a_cent_per_line(amounts, rate):
    per_line = sum(((a * rate).quantize(D("0.01"), "ROUND_HALF_UP") for a in amounts), D(0))
    of_sum = (sum(amounts, D(0)) * rate).quantize(D("0.01"), "ROUND_HALF_UP")
    assert abs(per_line - of_sum) <= len(amounts) * D("0.005")


SCENARIOS = [  # (seller, buyer, currency, rounding key, rates of the taxes charged)
    (UK_SELLER, TaxParty("GB", None, None, customer_type="individual"), "GBP", "GB", [D("0.20")]),
    (CA_SELLER, TaxParty("CA", "QC", None), "CAD", "CA", [D("0.05"), D("0.09975")]),
    (CA_SELLER, TaxParty("CA", "ON", None), "CAD", "CA", [D("0.13")]),
    (DE_SELLER, TaxParty("DE", None, None, customer_type="individual"), "EUR", "DE", [D("0.19")]),
]


@settings(max_examples=200, deadline=None)
@given(amounts=st.lists(money, min_size=1, max_size=8), scenario=st.sampled_from(SCENARIOS),
       level=st.sampled_from(["line", "invoice"]))
def test_line_taxes_add_up_to_the_invoice_tax_lines(amounts, scenario, level):
    seller, buyer, currency, key, rates_charged = scenario
    lines = [line(str(a), index=i) for i, a in enumerate(amounts)]
    result = RulesTaxProvider(rounding={key: Rounding(level)}).calculate(
        request(seller, buyer, *lines, currency=currency))
    assert sum(t.amount for taxes_ in result.line_taxes.values() for t in taxes_) == result.tax_total
    for tax_line, rate in zip(result.tax_lines, rates_charged, strict=True):
        exact = sum(amounts, D(0)) * rate
        assert abs(tax_line.amount - exact) <= (len(amounts) if level == "line" else 1) * D("0.005")


@settings(max_examples=300, deadline=None)
@given(amount=money, start=st.dates(date(2020, 1, 1), date(2030, 1, 1)),
       cuts=st.lists(st.integers(1, 400), min_size=1, max_size=5, unique=True))
def test_splitting_by_days_allocates_exactly_the_line_amount(amount, start, cuts):
    bounds = [start] + [start + timedelta(days=c) for c in sorted(cuts)]
    parts = [Period(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]
    split = split_by_days(amount, parts, "EUR")
    assert sum(split, D(0)) == amount
    total_days = sum(p.days for p in parts)
    for part, value in zip(parts, split, strict=True):
        assert abs(value - amount * part.days / total_days) < D("0.01")


@given(exact=st.lists(st.decimals(min_value=D("-1000"), max_value=D("1000"), places=5), min_size=1, max_size=10))
def test_allocate_keeps_the_rounded_total_and_each_part_within_a_cent(exact):
    total = sum(exact, D(0)).quantize(D("0.01"), "ROUND_HALF_UP")
    parts = allocate(total, exact, "USD")
    assert sum(parts, D(0)) == total
    assert all(abs(p - e) < D("0.01") for p, e in zip(parts, exact, strict=True))


# ---------------------------------------------------------------------------------------------
# The tax report
# ---------------------------------------------------------------------------------------------


def invoice(invoice_id, tax_lines, *, status="finalized", issue=date(2025, 4, 10), currency="EUR", buyer_tax_id=None):
    subtotal = sum((t.taxable_amount for t in tax_lines), D(0))
    tax_total = sum((t.amount for t in tax_lines), D(0))
    return Invoice(id=invoice_id, status=status, customer_id="cus", billing_entity_id="ent", currency=currency,
                   issue_date=issue, due_date=issue, lines=[], tax_lines=tax_lines, subtotal=subtotal,
                   tax_total=tax_total, total=subtotal + tax_total, amount_due=subtotal + tax_total,
                   seller=PartySnapshot(name="Seller", country="DE"),
                   buyer=PartySnapshot(name="Buyer", country="FR", tax_id=buyer_tax_id),
                   created_at=datetime(2025, 4, 10, tzinfo=UTC))


def vat(taxable, amount, rate="0.19", category="S", jurisdiction="DE"):
    return TaxLine(name="VAT", jurisdiction=jurisdiction, rate=D(rate), taxable_amount=D(taxable), amount=D(amount),
                   category=category, exemption_reason=REVERSE_CHARGE if category == "AE" else None)


def test_tax_report_sums_per_jurisdiction_rate_and_category_and_credit_notes_reduce():
    invoices = [
        invoice("inv_1", [vat("1000.00", "190.00")]),
        invoice("inv_2", [vat("500.00", "95.00"), vat("200.00", "0.00", "0", "AE")], buyer_tax_id="FR40303265045"),
        invoice("cn_1", [vat("-100.00", "-19.00")]),
        invoice("inv_draft", [vat("999.00", "189.81")], status="draft"),
        invoice("inv_void", [vat("999.00", "189.81")], status="void"),
        invoice("inv_may", [vat("999.00", "189.81")], issue=date(2025, 5, 1)),
        invoice("inv_gbp", [vat("100.00", "20.00", "0.20", jurisdiction="GB")], currency="GBP"),
    ]
    report = tax_report(invoices, date(2025, 4, 1), date(2025, 5, 1))
    assert report.splitlines() == [
        "jurisdiction,tax_name,category,rate_percent,currency,buyer_tax_id,taxable_amount,tax_amount,invoice_count,"
        "credit_note_count,period_start,period_end",
        "DE,VAT,AE,0,EUR,FR40303265045,200.00,0.00,1,0,2025-04-01,2025-05-01",
        "DE,VAT,S,19,EUR,,1400.00,266.00,2,1,2025-04-01,2025-05-01",
        "GB,VAT,S,20,GBP,,100.00,20.00,1,0,2025-04-01,2025-05-01",
    ]


def test_tax_report_period_must_not_be_empty():
    with pytest.raises(ValidationError) as error:
        tax_report([], date(2025, 5, 1), date(2025, 5, 1))
    assert error.value.param == "end"
