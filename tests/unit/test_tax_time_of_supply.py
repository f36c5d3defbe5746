"""Time of supply: which day's rate taxes a line when the rate changes, per jurisdiction.

Each case rebuilds the situation a tax authority describes for its own rate change; the rules and
their sources are in shared/billing/README.md ("Tax time of supply"). The amounts are round figures
chosen here; the dates and rates are the authorities'.
"""

from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.adapters.tax_providers import AvalaraTaxProvider
from shared.billing.tax import (
    CA_HST,
    DEFAULT_TIME_OF_SUPPLY,
    RulesTaxProvider,
    TaxableLine,
    TaxParty,
    TaxRequest,
    rate_on,
    tax_date,
)

D = Decimal
CA_SELLER = TaxParty("CA", "NS", None, registrations={"CA": "123456782RT0001"})
NS_BUYER = TaxParty("CA", "NS", None)
UK_SELLER = TaxParty("GB", None, "GB980780684", registrations={"GB": "GB980780684"})
UK_CONSUMER = TaxParty("GB", None, None, customer_type="individual")
DE_SELLER = TaxParty("DE", None, "DE136695976", registrations={"DE": "DE136695976"})
DE_CONSUMER = TaxParty("DE", None, None, customer_type="individual")
JP_SELLER = TaxParty("JP", None, None, registrations={"JP": "T5835678256246"})
JP_BUYER = TaxParty("JP", None, None)


def one_line(amount: str, start: date, end: date) -> TaxableLine:
    return TaxableLine(index=0, amount=D(amount), tax_code=None, period_start=start, period_end=end)


def tax(seller, buyer, currency, amount, start, end, invoice_date, payment_date=None, **provider):
    request = TaxRequest(seller=seller, buyer=buyer, currency=currency, invoice_date=invoice_date,
                         lines=(one_line(amount, start, end),), payment_date=payment_date)
    result = RulesTaxProvider(**provider).calculate(request)
    return [(t.rate, t.taxable_amount, t.amount) for t in result.tax_lines]


# ---------------------------------------------------------------------------------------------
# Canada: ETA s.168(1) and s.152(1); CRA GST/HST Notice 342 (Nova Scotia HST 15 % -> 14 % on 2025-04-01)
# ---------------------------------------------------------------------------------------------

APRIL = (date(2025, 4, 1), date(2025, 5, 1))
STRADDLING = (date(2025, 3, 15), date(2025, 4, 15))


def test_notice_342_invoiced_before_april_paid_after_is_15_percent_on_the_whole_amount():
    # invoice dated March 25 for a service performed in April, paid April 15: the consideration became due
    # on March 25 (the invoice date), before the change; the later payment changes nothing
    assert tax(CA_SELLER, NS_BUYER, "CAD", "1000.00", *APRIL, invoice_date=date(2025, 3, 25),
               payment_date=date(2025, 4, 15)) == [(D("0.15"), D("1000.00"), D("150.00"))]


def test_notice_342_invoiced_on_or_after_april_1_is_14_percent_even_for_march_service_days():
    # a service from March 15 to April 14 billed in arrears on April 15: payable on or after April 1
    assert tax(CA_SELLER, NS_BUYER, "CAD", "1000.00", *STRADDLING, invoice_date=date(2025, 4, 15)) == [
        (D("0.14"), D("1000.00"), D("140.00"))]
    # the same period billed in advance on March 15: payable before April 1, 15 % on all of it
    assert tax(CA_SELLER, NS_BUYER, "CAD", "1000.00", *STRADDLING, invoice_date=date(2025, 3, 15)) == [
        (D("0.15"), D("1000.00"), D("150.00"))]


def test_notice_342_paid_before_april_without_having_become_due_is_15_percent():
    # paid on March 28 (a prepayment), invoiced on April 5: the earlier of paid and due is March 28
    assert tax(CA_SELLER, NS_BUYER, "CAD", "1000.00", *APRIL, invoice_date=date(2025, 4, 5),
               payment_date=date(2025, 3, 28)) == [(D("0.15"), D("1000.00"), D("150.00"))]
    # a payment after the invoice date leaves the invoice date in charge
    assert tax(CA_SELLER, NS_BUYER, "CAD", "1000.00", *APRIL, invoice_date=date(2025, 4, 5),
               payment_date=date(2025, 4, 20)) == [(D("0.14"), D("1000.00"), D("140.00"))]


def test_canadas_provincial_taxes_follow_the_same_day():
    qc_buyer = TaxParty("CA", "QC", None)
    # GST and QST of an invoice dated March 31 for April: both at the rates of March 31
    assert tax(CA_SELLER, qc_buyer, "CAD", "100.00", *APRIL, invoice_date=date(2025, 3, 31)) == [
        (D("0.05"), D("100.00"), D("5.00")), (D("0.09975"), D("100.00"), D("9.98"))]


# ---------------------------------------------------------------------------------------------
# UK: VAT Act 1994 s.6 and s.88; VAT Regulations 1995 reg. 90; HMRC VAT Notice 700 section 30
# (standard rate 17.5 % -> 20 % on 2011-01-04)
# ---------------------------------------------------------------------------------------------

QUARTER = (date(2010, 12, 1), date(2011, 3, 1))  # December to February, 90 days, 34 of them before Jan 4


def test_hmrc_continuous_supply_invoiced_before_the_change_is_taxed_at_the_old_rate():
    # reg. 90: the tax point of a continuous supply of services is the earlier of invoice and payment
    assert tax(UK_SELLER, UK_CONSUMER, "GBP", "3000.00", *QUARTER, invoice_date=date(2010, 12, 1)) == [
        (D("0.175"), D("3000.00"), D("525.00"))]


def test_hmrc_continuous_supply_invoiced_after_the_change_is_taxed_at_the_new_rate():
    assert tax(UK_SELLER, UK_CONSUMER, "GBP", "3000.00", *QUARTER, invoice_date=date(2011, 3, 1)) == [
        (D("0.20"), D("3000.00"), D("600.00"))]
    # paid on December 20, invoiced on January 10: the payment is the actual tax point (s.6(4))
    assert tax(UK_SELLER, UK_CONSUMER, "GBP", "3000.00", *QUARTER, invoice_date=date(2011, 1, 10),
               payment_date=date(2010, 12, 20)) == [(D("0.175"), D("3000.00"), D("525.00"))]


def test_hmrc_a_supplier_may_elect_to_apportion_by_days():
    # s.88 / Notice 700 section 30: 3000 x 34/90 = 1133.33 at 17.5 % and 1866.67 at 20 %
    assert tax(UK_SELLER, UK_CONSUMER, "GBP", "3000.00", *QUARTER, invoice_date=date(2010, 12, 1),
               time_of_supply={"GB": "days"}) == [
        (D("0.175"), D("1133.33"), D("198.33")), (D("0.20"), D("1866.67"), D("373.33"))]


# ---------------------------------------------------------------------------------------------
# EU: Directive 2006/112/EC art. 63, 64(1), 65, 93, 95 (Germany 19 % -> 16 % on 2020-07-01, back on 2021-01-01)
# ---------------------------------------------------------------------------------------------


def test_eu_statement_period_ending_after_the_cut_is_taxed_at_the_new_rate_though_invoiced_before():
    # art. 64(1): the supply is complete when the period the statement covers expires (July 14, 2020)
    assert tax(DE_SELLER, DE_CONSUMER, "EUR", "1000.00", date(2020, 6, 15), date(2020, 7, 15),
               invoice_date=date(2020, 6, 15)) == [(D("0.16"), D("1000.00"), D("160.00"))]


def test_eu_quarter_completed_before_the_cut_keeps_the_old_rate_though_invoiced_after():
    assert tax(DE_SELLER, DE_CONSUMER, "EUR", "1000.00", date(2020, 4, 1), date(2020, 7, 1),
               invoice_date=date(2020, 7, 1)) == [(D("0.19"), D("1000.00"), D("190.00"))]


def test_eu_period_completed_after_the_return_to_19_percent():
    # December 15, 2020 to January 14, 2021, invoiced in advance at 16 %: completed in 2021, so 19 %
    assert tax(DE_SELLER, DE_CONSUMER, "EUR", "1000.00", date(2020, 12, 15), date(2021, 1, 15),
               invoice_date=date(2020, 12, 15)) == [(D("0.19"), D("1000.00"), D("190.00"))]


def test_eu_payment_on_account_is_adjusted_to_the_rate_at_completion():
    # art. 65 taxes a payment on account when received (June 1, 19 %); art. 95 lets the member state adjust
    # to the rate of the supply, as Germany does (s.27(1) UStG): the final invoice carries 16 %
    assert tax(DE_SELLER, DE_CONSUMER, "EUR", "1000.00", date(2020, 7, 1), date(2020, 8, 1),
               invoice_date=date(2020, 8, 1), payment_date=date(2020, 6, 1)) == [
        (D("0.16"), D("1000.00"), D("160.00"))]


# ---------------------------------------------------------------------------------------------
# Japan: consumption tax 8 % -> 10 % on 2019-10-01 (NTA Q&A on the transitional measures)
# ---------------------------------------------------------------------------------------------


def test_nta_service_completed_after_october_1_is_10_percent_though_billed_and_paid_before():
    # a monthly service from September 16 to October 15, 2019, billed and paid on September 16
    assert tax(JP_SELLER, JP_BUYER, "JPY", "100000", date(2019, 9, 16), date(2019, 10, 16),
               invoice_date=date(2019, 9, 16), payment_date=date(2019, 9, 16)) == [
        (D("0.10"), D("100000"), D("10000"))]


def test_nta_service_completed_in_september_is_8_percent_though_billed_in_october():
    assert tax(JP_SELLER, JP_BUYER, "JPY", "100000", date(2019, 9, 1), date(2019, 10, 1),
               invoice_date=date(2019, 10, 1)) == [(D("0.08"), D("100000"), D("8000"))]


# ---------------------------------------------------------------------------------------------
# US: sales tax at the invoice date, computed by the tax engine
# ---------------------------------------------------------------------------------------------


def test_us_engines_are_sent_the_invoice_date():
    assert DEFAULT_TIME_OF_SUPPLY["US"] == "invoice_date"
    seller = TaxParty("US", "WA", None, postal_address=("255 S King St", "Seattle", "98104"))
    buyer = TaxParty("US", "CA", None, postal_address=("100 Ravine Lane NE", "Irvine", "92615"))
    request = TaxRequest(seller=seller, buyer=buyer, currency="USD", invoice_date=date(2025, 4, 2),
                         lines=(one_line("100.00", date(2025, 3, 15), date(2025, 4, 15)),))
    provider = AvalaraTaxProvider(account_id="1", license_key="k", company_code="DEFAULT",
                                  client=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500))))
    assert provider.transaction_body(request)["date"] == "2025-04-02"


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@given(start=st.dates(date(2024, 1, 1), date(2026, 12, 31)), days=st.integers(1, 400),
       invoice_offset=st.integers(-60, 400), paid_offset=st.one_of(st.none(), st.integers(-120, 400)))
def test_canada_taxes_the_whole_line_at_the_rate_of_the_earlier_of_invoice_and_payment(
        start, days, invoice_offset, paid_offset):
    invoice_date = start + timedelta(days=invoice_offset)
    payment_date = None if paid_offset is None else start + timedelta(days=paid_offset)
    taxes = tax(CA_SELLER, NS_BUYER, "CAD", "1000.00", start, start + timedelta(days=days),
                invoice_date=invoice_date, payment_date=payment_date)
    payable = min(invoice_date, payment_date) if payment_date else invoice_date
    rate = rate_on(CA_HST["NS"], payable)
    assert taxes == [(rate, D("1000.00"), (D("1000.00") * rate).quantize(D("0.01")))]


@pytest.mark.parametrize("rule", ["invoice_or_payment", "supply_completed", "invoice_date"])
def test_every_rule_but_days_names_one_day(rule):
    line = one_line("1.00", date(2025, 3, 15), date(2025, 4, 15))
    day, _ = tax_date(rule, line, date(2025, 4, 20), date(2025, 3, 1))
    assert day == {"invoice_or_payment": date(2025, 3, 1), "supply_completed": date(2025, 4, 14),
                   "invoice_date": date(2025, 4, 20)}[rule]
    assert tax_date("days", line, date(2025, 4, 20)) is None
    with pytest.raises(ValueError):
        RulesTaxProvider(time_of_supply={"GB": "whenever"})
