"""Finance's exports (seed 000 §6.6, UC03, UC04): recognized revenue, deferred roll-forward, GL journal, invoice
register, and the first business day they are due on."""

import csv
import io
import random
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from shared.billing import exports
from shared.billing.errors import ValidationError
from shared.billing.exports import (
    JOURNAL_COLUMNS,
    REGISTER_COLUMNS,
    REVENUE_COLUMNS,
    ROLLFORWARD_COLUMNS,
    GlAccounts,
    annual_prepay_subscription_ids,
    deferred_rollforward_csv,
    export_due_date,
    first_business_day,
    gl_journal_csv,
    invoice_register_csv,
    recognized_revenue_csv,
)
from shared.billing.invoicing import lines_csv
from shared.billing.models import Charge, Invoice, InvoiceLine, PartySnapshot, Plan, Subscription, TaxLine
from shared.billing.revrec import apply_credit_note, schedules_for_invoice, terminate_schedule, voided_on

D = Decimal
NOW = datetime(2025, 1, 1, tzinfo=UTC)
ACCOUNTS = GlAccounts(receivables="1200", deferred_revenue="2400", tax_payable="2200", suspense="9999")


def line(amount, start, end, sub="sub_esp", code="esp-fee", gl="7010", **fields) -> InvoiceLine:
    base = dict(description="Enterprise Support", charge_code=code, quantity=D(1), unit_price=D(amount),
                amount=D(amount), currency="USD", period_start=start, period_end=end, subscription_id=sub,
                external_id={"sub_esp": "ESP-2025-007", "sub_ms": "MS-2025-001"}.get(sub, sub), gl_code=gl,
                item_key=f"{sub}#{code}#{start}")
    return InvoiceLine(**(base | fields))


def document(number, issue, *lines, customer="cus_1", tax=(), status="finalized", buyer="Acme IoT") -> Invoice:
    subtotal = sum((ln.amount for ln in lines), D(0))
    tax_total = sum((t.amount for t in tax), D(0))
    return Invoice(id=f"inv_{number}", number=number, status=status, customer_id=customer, billing_entity_id="ent",
                   currency="USD", issue_date=issue, due_date=issue + timedelta(days=30), lines=list(lines),
                   tax_lines=list(tax), subtotal=subtotal, tax_total=tax_total, total=subtotal + tax_total,
                   amount_due=subtotal + tax_total, seller=PartySnapshot(name="Soracom Inc.", country="US"),
                   buyer=PartySnapshot(name=buyer, country="US"), created_at=NOW)


def annual_renewals(years=2, start=date(2025, 4, 1)):
    """UC03: an annual pre-pay ESP contract, 12,000.00 on each renewal-month invoice."""
    invoices = []
    for year in range(years):
        begin = date(start.year + year, start.month, 1)
        invoices.append(document(f"INV-ESP-{year + 1}", begin,
                                 line("12000.00", begin, date(begin.year + 1, begin.month, 1))))
    return invoices


def monthly_ms(months=3, start=date(2025, 4, 1)):
    """UC01: a monthly Managed Service contract, 1,250.00 a month, for another account."""
    invoices = []
    for index in range(months):
        begin = date(start.year, start.month + index, 1)
        invoices.append(document(f"INV-MS-{index + 1}", begin,
                                 line("1250.00", begin, date(begin.year, begin.month + 1, 1), sub="sub_ms",
                                      code="ms-fee", gl="7005", description="Managed Service"),
                                 customer="cus_2", buyer="Globex"))
    return invoices


def schedules(invoices, convention="monthly"):
    return [s for i in invoices for s in schedules_for_invoice(i, convention=convention)]


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# --- the column schemas ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [REVENUE_COLUMNS, ROLLFORWARD_COLUMNS, JOURNAL_COLUMNS, REGISTER_COLUMNS])
def test_every_column_schema_is_documented_in_the_module(columns):
    docstring = re.sub(r"\s+", " ", exports.__doc__)
    assert ", ".join(columns) in docstring


# --- recognized revenue ------------------------------------------------------------------------------------------


def test_an_annual_prepay_account_recognizes_a_twelfth_each_month():
    # A 12,000 annual subscription billed upfront releases 1,000.00 of deferred revenue each month:
    # https://www.journalentrieshub.com/entries/ps-deferred-subscription-monthly-release
    text = recognized_revenue_csv(schedules(annual_renewals(1)), "2025-07")
    assert text == (
        "month,customer_id,subscription_id,external_id,charge_code,component,pob_identifier,gl_code,currency,"
        "recognized\r\n"
        "2025-07,cus_1,sub_esp,ESP-2025-007,esp-fee,,BK-OT-RATABLE,7010,USD,1000.00\r\n")


def test_the_annual_prepay_export_leaves_monthly_contracts_out():
    plans = {"esp": Plan(code="esp", name="ESP", currency="USD", created_at=NOW, charges=[
                 Charge(code="esp-fee", name="Enterprise Support", billing_period="annual", price=D(12000))]),
             "ms": Plan(code="ms", name="MS", currency="USD", created_at=NOW, charges=[
                 Charge(code="ms-fee", name="Managed Service", price=D(1250))])}
    subs = [Subscription(id=i, customer_id="c", plan_code=p, start_date=date(2025, 4, 1), billing_day=1,
                         created_at=NOW) for i, p in (("sub_esp", "esp"), ("sub_ms", "ms"))]
    annual = annual_prepay_subscription_ids(subs, plans)
    assert annual == {"sub_esp"}
    everything = schedules(annual_renewals(1) + monthly_ms())
    assert [r["subscription_id"] for r in rows(recognized_revenue_csv(everything, "2025-05"))] == ["sub_esp", "sub_ms"]
    assert [r["subscription_id"] for r in rows(recognized_revenue_csv(everything, "2025-05", annual))] == ["sub_esp"]


def test_uc04_rows_stop_after_a_terminated_annual_contracts_last_renewal():
    # Terminated during year 2: the next renewal (2027-04-01) is not billed, the paid year runs out.
    recognized = schedules(annual_renewals(2))
    months = {m: rows(recognized_revenue_csv(recognized, m)) for m in ("2027-03", "2027-04", "2027-05")}
    assert [r["recognized"] for r in months["2027-03"]] == ["1000.00"]
    assert months["2027-04"] == months["2027-05"] == []


def test_an_immediate_termination_recognizes_the_rest_in_its_month_then_rows_stop():
    [schedule] = schedules(annual_renewals(1))
    ended = terminate_schedule(schedule, service_end=date(2025, 8, 20), effective=date(2025, 8, 20))
    assert [r["recognized"] for r in rows(recognized_revenue_csv([ended], "2025-07"))] == ["1000.00"]
    assert [r["recognized"] for r in rows(recognized_revenue_csv([ended], "2025-08"))] == ["8000.00"]
    assert rows(recognized_revenue_csv([ended], "2025-09")) == []


def test_rerunning_a_month_gives_byte_identical_files_whatever_the_input_order():
    invoices = annual_renewals(2) + monthly_ms(6)
    recognized = schedules(invoices, convention="daily")
    shuffled_invoices, shuffled = invoices[:], recognized[:]
    random.Random(7).shuffle(shuffled_invoices)
    random.Random(7).shuffle(shuffled)
    builds = (lambda s, i: recognized_revenue_csv(s, "2025-06"), lambda s, i: deferred_rollforward_csv(s, "2025-06"),
              lambda s, i: gl_journal_csv(i, s, "2025-06", ACCOUNTS), lambda s, i: invoice_register_csv(i, "2025-06"))
    for build in builds:
        first = build(recognized, invoices).encode()
        assert first.count(b"\r\n") > 1  # a header and rows
        assert first == build(shuffled, shuffled_invoices).encode()


# --- deferred revenue roll-forward -------------------------------------------------------------------------------


def test_rollforward_of_an_annual_prepay_account():
    recognized = schedules(annual_renewals(1))
    assert rows(deferred_rollforward_csv(recognized, "2025-04")) == [
        {"month": "2025-04", "customer_id": "cus_1", "currency": "USD", "opening_deferred": "0.00",
         "billed": "12000.00", "reversed": "0.00", "recognized": "1000.00", "closing_deferred": "11000.00"}]
    [may] = rows(deferred_rollforward_csv(recognized, "2025-05"))
    assert (may["opening_deferred"], may["billed"], may["recognized"], may["closing_deferred"]) == (
        "11000.00", "0.00", "1000.00", "10000.00")
    assert rows(deferred_rollforward_csv(recognized, "2026-04")) == []  # nothing deferred, billed or recognized


def test_rollforward_adds_up_for_every_account_and_month_with_credits():
    invoices = annual_renewals(2) + monthly_ms(6)
    recognized = schedules(invoices, convention="daily")
    note = document("CN-1", date(2025, 9, 10), line("-6000.00", date(2025, 4, 1), date(2026, 4, 1), kind="credit"))
    recognized = apply_credit_note(recognized, note)
    for month in [f"{y}-{m:02d}" for y in (2025, 2026) for m in range(1, 13)]:
        for row in rows(deferred_rollforward_csv(recognized, month)):
            opening, billed, reversed_, recognized_amount, closing = (D(row[k]) for k in ROLLFORWARD_COLUMNS[3:])
            assert opening + billed - reversed_ - recognized_amount == closing
    [september] = [r for r in rows(deferred_rollforward_csv(recognized, "2025-09")) if r["customer_id"] == "cus_1"]
    assert (september["billed"], september["reversed"]) == ("0.00", "6000.00")


# --- GL journal ----------------------------------------------------------------------------------------------------


def test_the_journal_posts_billing_to_deferred_revenue_and_releases_it_to_7005_and_7010():
    vat = TaxLine(name="VAT", jurisdiction="GB", rate=D("0.2"), taxable_amount=D("13250.00"), amount=D("2650.00"))
    bill = document("INV-1", date(2025, 4, 1), line("12000.00", date(2025, 4, 1), date(2026, 4, 1)),
                    line("1250.00", date(2025, 4, 1), date(2025, 5, 1), sub="sub_ms", code="ms-fee", gl="7005"),
                    tax=[vat])
    text = gl_journal_csv([bill], schedules([bill]), "2025-04", ACCOUNTS)
    assert [(r["entry_id"], r["source"], r["account"], r["description"], r["debit"], r["credit"])
            for r in rows(text)] == [
        ("INV-1", "invoice", "1200", "Receivable", "15900.00", "0.00"),
        ("INV-1", "invoice", "2400", "Deferred revenue 7005", "0.00", "1250.00"),
        ("INV-1", "invoice", "2400", "Deferred revenue 7010", "0.00", "12000.00"),
        ("INV-1", "invoice", "2200", "Tax VAT GB", "0.00", "2650.00"),
        ("REV-2025-04-USD", "recognition", "2400", "Revenue recognized", "2250.00", "0.00"),
        ("REV-2025-04-USD", "recognition", "7005", "Revenue", "0.00", "1250.00"),
        ("REV-2025-04-USD", "recognition", "7010", "Revenue", "0.00", "1000.00"),
    ]
    assert {r["entry_date"] for r in rows(text) if r["source"] == "recognition"} == {"2025-04-30"}


def test_every_journal_entry_balances_and_deferred_moves_as_the_rollforward():
    invoices = annual_renewals(2) + monthly_ms(6)
    recognized = schedules(invoices, convention="daily")
    note = document("CN-1", date(2025, 9, 10), line("-6000.00", date(2025, 4, 1), date(2026, 4, 1), kind="credit"))
    recognized = apply_credit_note(recognized, note)
    for month in ("2025-04", "2025-06", "2025-09", "2026-04"):
        journal = rows(gl_journal_csv(invoices + [note], recognized, month, ACCOUNTS))
        for entry in {r["entry_id"] for r in journal}:
            lines_ = [r for r in journal if r["entry_id"] == entry]
            assert sum(D(r["debit"]) for r in lines_) == sum(D(r["credit"]) for r in lines_), (month, entry)
        deferred = sum(D(r["credit"]) - D(r["debit"]) for r in journal if r["account"] == ACCOUNTS.deferred_revenue)
        movement = sum(D(r["closing_deferred"]) - D(r["opening_deferred"])
                       for r in rows(deferred_rollforward_csv(recognized, month)))
        assert deferred == movement, month
    assert "credit_note" in {r["source"] for r in rows(gl_journal_csv([note], [], "2025-09", ACCOUNTS))}


def test_the_journal_refuses_an_invoice_that_does_not_add_up_and_parks_lines_without_a_gl_code():
    broken = document("INV-9", date(2025, 4, 1), line("100.00", date(2025, 4, 1), date(2025, 5, 1)))
    broken = broken.model_copy(update={"total": D("101.00")})
    with pytest.raises(ValidationError) as error:
        gl_journal_csv([broken], [], "2025-04", ACCOUNTS)
    assert error.value.param == "invoices[0].total"
    unmapped = document("INV-8", date(2025, 4, 1), line("100.00", date(2025, 4, 1), date(2025, 5, 1), gl=None))
    journal = rows(gl_journal_csv([unmapped], schedules([unmapped]), "2025-04", ACCOUNTS))
    assert ("9999", "Revenue without GL code", "100.00") in {(r["account"], r["description"], r["credit"])
                                                            for r in journal}


# --- invoice register ------------------------------------------------------------------------------------------------


def test_the_register_lists_every_numbered_document_of_the_month():
    bills = monthly_ms(2) + [document("INV-V", date(2025, 4, 20), line("5.00", date(2025, 4, 1), date(2025, 5, 1)),
                                      status="void"),
                             document("DRAFT", date(2025, 4, 21), line("5.00", date(2025, 4, 1), date(2025, 5, 1)),
                                      status="draft", buyer="=HYPERLINK(\"http://x\")")]
    register = rows(invoice_register_csv(bills, "2025-04"))
    assert [(r["document_type"], r["number"], r["status"], r["total"], r["subscription_ids"]) for r in register] == [
        ("invoice", "INV-MS-1", "finalized", "1250.00", "sub_ms"), ("invoice", "INV-V", "void", "5.00", "sub_esp"),
        ("void", "INV-V", "void", "-5.00", "sub_esp")]  # issued and voided in April: it nets to nothing
    assert register[0]["external_ids"] == "MS-2025-001"


def test_free_text_cannot_become_a_spreadsheet_formula():
    bill = document("INV-X", date(2025, 4, 1), line("5.00", date(2025, 4, 1), date(2025, 5, 1)),
                    buyer="=HYPERLINK(\"http://x\")")
    [row] = rows(invoice_register_csv([bill], "2025-04"))
    assert row["buyer_name"] == "'=HYPERLINK(\"http://x\")"


def test_every_text_cell_is_formula_safe_and_negative_amounts_stay_numbers():
    """Codes and ids come from users too (GL code, charge code, external id, document number): every
    text cell is neutralised; a credit note's amounts keep their "-" and read as numbers."""
    evil = "=cmd|' /C calc'!A0"
    invoice = document("-2+3", date(2025, 4, 1), line("5.00", date(2025, 4, 1), date(2025, 5, 1), sub="@sub",
                                                     code="+code", gl="=1+1", tax_code="-x", metric_code=evil,
                                                     group="@g", description=evil, external_id="-ext"))
    note = document("CN-1", date(2025, 4, 2), line("-12.50", date(2025, 4, 1), date(2025, 5, 1), gl=evil))
    cells = [cell for csv_file in (invoice_register_csv([invoice, note], "2025-04"),
                                   gl_journal_csv([invoice, note], [], "2025-04", ACCOUNTS),
                                   lines_csv(invoice), lines_csv(note))
             for row in csv.reader(io.StringIO(csv_file)) for cell in row]
    numbers = re.compile(r"^-?\d+(\.\d+)?$")
    assert not [c for c in cells if c.startswith(("=", "+", "@", "\t", "\r")) or
                (c.startswith("-") and not numbers.match(c))]
    assert "'=cmd|' /C calc'!A0" in cells and "'-2+3" in cells and "'-ext" in cells
    [register_note] = [r for r in rows(invoice_register_csv([note], "2025-04"))]
    assert (register_note["subtotal"], register_note["total"]) == ("-12.50", "-12.50")
    [line_row] = rows(lines_csv(note))
    assert (line_row["amount"], line_row["unit_price"], line_row["gl_code"]) == ("-12.50", "-12.50", "'" + evil)


def test_months_are_validated():
    with pytest.raises(ValidationError) as error:
        recognized_revenue_csv([], "2025-4")
    assert error.value.param == "month"


# --- due dates --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("year", "month", "country", "subdivision", "expected"), [
    # Labor Day, Monday 1 September 2025 (https://www.opm.gov/policy-data-oversight/pay-leave/federal-holidays/)
    (2025, 9, "US", None, date(2025, 9, 2)),
    # New Year's Day 2022 fell on a Saturday: substitute day Monday 3 January (https://www.gov.uk/bank-holidays)
    (2022, 1, "GB", None, date(2022, 1, 4)),
    # 2 January is a bank holiday in Scotland only (https://www.gov.uk/bank-holidays)
    (2026, 1, "GB", "GB-SCT", date(2026, 1, 5)),
    (2026, 1, "GB", None, date(2026, 1, 2)),
    # Canada Day, Tuesday 1 July 2025 (https://www.canada.ca/en/revenue-agency/services/tax/public-holidays.html)
    (2025, 7, "CA", None, date(2025, 7, 2)),
    # Mexico: first Monday of February, Constitution Day (Ley Federal del Trabajo, art. 74)
    (2026, 2, "MX", None, date(2026, 2, 3)),
    # Saudi Arabia's weekend is Friday and Saturday: 1 August 2025 is a Friday
    (2025, 8, "SA", None, date(2025, 8, 3)),
])
def test_first_business_day_skips_the_countrys_weekend_and_holidays(year, month, country, subdivision, expected):
    assert first_business_day(year, month, country, subdivision) == expected


def test_a_months_exports_are_due_on_the_next_months_first_business_day():
    assert export_due_date("2025-08", "US") == date(2025, 9, 2)
    assert export_due_date("2021-12", "GB") == date(2022, 1, 4)


@pytest.mark.parametrize(("args", "param"), [((2025, 13, "US"), "month"), ((2025, 1, "XX"), "country"),
                                             ((2025, 1, "US", "ZZ"), "subdivision")])
def test_bad_calendar_requests_name_the_field(args, param):
    with pytest.raises(ValidationError) as error:
        first_business_day(*args)
    assert error.value.param == param


# --- 14 months of invoices, credit notes and voids: the files agree with each other -----------------------------

FOURTEEN = [f"{2025 + (k // 12)}-{k % 12 + 1:02d}" for k in range(14)]  # 2025-01 .. 2026-02


def _month_end(month: str) -> date:
    year, number = int(month[:4]), int(month[5:])
    return (date(year + number // 12, number % 12 + 1, 1)) - timedelta(days=1)


def _book(seed: int):
    """Two billing entities, each month a few invoices (annual, monthly, one-time lines); some are voided later,
    some credited later (part of a line), each on its own date. Returns the invoices and the dated events."""
    rng = random.Random(seed)
    invoices, events = [], []
    for k, month in enumerate(FOURTEEN):
        year, number = int(month[:4]), int(month[5:])
        for entity in ("ent_a", "ent_b"):
            for n in range(rng.randint(1, 3)):
                issue = date(year, number, rng.randint(1, 28))
                lines = []
                for index in range(rng.randint(1, 2)):
                    kind, months = rng.choice([("recurring", 12), ("recurring", 1), ("one_time", 0)])
                    end = (date(issue.year + (issue.month - 1 + months) // 12, (issue.month - 1 + months) % 12 + 1,
                                issue.day) if months else issue + timedelta(days=1))
                    amount = f"{rng.randint(100, 2_000_000) / 100:.2f}"
                    lines.append(line(amount, issue, end, sub=f"sub_{entity}_{k}_{n}_{index}",
                                      code=f"fee-{index}", gl=rng.choice(["7005", "7010"]), kind=kind))
                bill = document(f"INV-{entity}-{k}-{n}", issue, *lines, customer=f"cus_{entity}_{n % 2}",
                                tax=[TaxLine(name="VAT", jurisdiction="GB", rate=D("0.2"),
                                             taxable_amount=sum((ln.amount for ln in lines), D(0)),
                                             amount=(sum((ln.amount for ln in lines), D(0)) * D("0.2")).quantize(
                                                 D("0.01")))])
                bill = bill.model_copy(update={"billing_entity_id": entity, "status_history": [
                    {"status": "finalized", "at": f"{issue.isoformat()}T02:00:00+00:00"}]})
                invoices.append(bill)
                later = issue + timedelta(days=rng.randint(0, 200))
                if later > _month_end(FOURTEEN[-1]):
                    continue
                roll = rng.random()
                if roll < 0.2:
                    events.append((later, "void", bill.id, None))
                elif roll < 0.55:
                    target = rng.randrange(len(lines))
                    share = D(rng.randint(1, 100)) / 100
                    events.append((later, "credit", bill.id, (target, (lines[target].amount * share).quantize(
                        D("0.01")))))
    return invoices, sorted(events, key=lambda e: (e[0], e[2]))


def _files(invoices, schedules_, month, entity):
    mine = [i for i in invoices if i.billing_entity_id == entity]
    ids = {i.id for i in mine}
    theirs = [s for s in schedules_ if s.invoice_id in ids or s.invoice_id in
              {i.credit_note_of for i in mine if i.credit_note_of}]
    return {"recognized": recognized_revenue_csv(theirs, month), "rollforward": deferred_rollforward_csv(theirs, month),
            "journal": gl_journal_csv(mine, theirs, month, ACCOUNTS), "register": invoice_register_csv(mine, month)}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fourteen_months_of_voids_and_credit_notes_keep_register_journal_and_revenue_files_in_agreement(seed):
    from shared.billing.revrec import void_schedule

    invoices, events = _book(seed)
    by_id = {i.id: i for i in invoices}
    recognized = [s for i in invoices for s in schedules_for_invoice(i, convention="daily")]
    written: dict[tuple[str, str], dict[str, str]] = {}
    pending = list(events)
    credit_notes = 0
    for month in FOURTEEN:
        while pending and pending[0][0] <= _month_end(month):  # what happened in the month, in date order
            day, what, invoice_id, detail = pending.pop(0)
            bill = by_id[invoice_id]
            if what == "void":
                by_id[invoice_id] = bill.model_copy(update={"status": "void", "status_history": [
                    *bill.status_history, {"status": "void", "at": f"{day.isoformat()}T10:00:00+00:00"}]})
                recognized = [void_schedule(s, day) if s.invoice_id == invoice_id else s for s in recognized]
            else:
                target, amount = detail
                credit_notes += 1
                credited = bill.lines[target].model_copy(update={"kind": "credit", "amount": -amount,
                                                                 "unit_price": -amount, "credited_line": target})
                note = document(f"CN-{credit_notes}", day, credited, customer=bill.customer_id)
                note = note.model_copy(update={"kind": "credit_note", "credit_note_of": bill.id,
                                               "id": f"cn_{credit_notes}", "billing_entity_id": bill.billing_entity_id})
                by_id[note.id] = note
                recognized = apply_credit_note(recognized, note)
        for entity in ("ent_a", "ent_b"):  # the month's files, written on its export day
            written[(entity, month)] = _files(list(by_id.values()), recognized, month, entity)
    assert credit_notes and any(i.status == "void" for i in by_id.values())
    assert any(e.amount < 0 for s in recognized for e in s.entries)  # catch-up reversals happened
    final = list(by_id.values())
    for (entity, month), files in written.items():
        assert _files(final, recognized, month, entity) == files, (entity, month)  # written months stay as written
        revenue = rows(files["recognized"])
        journal = rows(files["journal"])
        register = rows(files["register"])
        rollforward = rows(files["rollforward"])
        mine = [i for i in final if i.billing_entity_id == entity]
        scheduled = [s for s in recognized if s.invoice_id in {i.id for i in mine}]
        by_gl: dict[str, Decimal] = {}
        for s in scheduled:
            by_gl[s.gl_code] = by_gl.get(s.gl_code, D(0)) + s.recognized_in(month)
        journal_revenue = {}
        for r in journal:
            if r["source"] == "recognition" and r["account"] != ACCOUNTS.deferred_revenue:
                journal_revenue[r["account"]] = journal_revenue.get(r["account"], D(0)) + D(r["credit"]) - D(r["debit"])
        file_revenue = {}
        for r in revenue:
            file_revenue[r["gl_code"]] = file_revenue.get(r["gl_code"], D(0)) + D(r["recognized"])
        nonzero = {gl: a for gl, a in by_gl.items() if a != 0}
        assert journal_revenue == nonzero == {gl: a for gl, a in file_revenue.items() if a != 0}, (entity, month)
        for entry in {r["entry_id"] for r in journal}:
            lines_ = [r for r in journal if r["entry_id"] == entry]
            assert sum(D(r["debit"]) for r in lines_) == sum(D(r["credit"]) for r in lines_), (month, entry)
        for r in rollforward:
            opening, billed, reversed_, recognized_amount, closing = (D(r[k]) for k in ROLLFORWARD_COLUMNS[3:])
            assert opening + billed - recognized_amount - reversed_ == closing
        deferred_moved = sum(D(r["credit"]) - D(r["debit"]) for r in journal
                             if r["account"] == ACCOUNTS.deferred_revenue)
        net_billed = sum(D(r["billed"]) - D(r["reversed"]) for r in rollforward)
        assert deferred_moved == sum(D(r["closing_deferred"]) - D(r["opening_deferred"]) for r in rollforward)
        assert sum(D(r["subtotal"]) for r in register) == net_billed, (entity, month)  # net invoiced, before tax
        receivable = sum(D(r["debit"]) - D(r["credit"]) for r in journal if r["account"] == ACCOUNTS.receivables)
        assert sum(D(r["total"]) for r in register) == receivable
        last = _month_end(month)
        for invoice in (i for i in mine if i.kind == "invoice"):  # per invoice: recognized + deferred = net invoiced
            own = [s for s in scheduled if s.invoice_id == invoice.id]
            credited = sum((-n.subtotal for n in mine if n.credit_note_of == invoice.id and n.issue_date <= last), D(0))
            voided = voided_on(invoice)
            net = D(0) if invoice.issue_date > last or (voided and voided <= last) else invoice.subtotal - credited
            assert sum(s.recognized_through(month) + s.deferred_at_end_of(month) for s in own) == net
            assert all(s.recognized_through(month) >= 0 and s.deferred_at_end_of(month) >= 0 for s in own)
