"""SaaS and receivables analytics: MRR and its movements, ARR, AR aging, DSO (JSON rows and CSV).

MRR (end of a month, per customer and currency, no FX conversion): every contract active or pending
termination on the month's last day contributes its recurring charges' price (contract override or
the price segment in force that day, x quantity for per-unit and tiered seats) normalized to a month:
annual / 12, semi-annual / 6, quarterly / 3. Usage and one-time charges are not recurring revenue;
coupons are left out. ARR = MRR x 12. Each customer's MRR is rounded half up at the currency's minor
unit before the movements are taken, so the bridge adds up exactly:
previous MRR + new + reactivation + expansion - contraction - churned = MRR.

Movements (ChartMogul's definitions, https://help.chartmogul.com/hc/en-us/articles/203299912):
new (no MRR before, first time paying), reactivation (no MRR at the previous month end, had a
contract that ended earlier), expansion (more than before), contraction (less, still > 0), churned
(had MRR, now none: the customer's last contract ended).

AR aging (on a date): finalized invoices issued by then with something left to pay (after payments,
credit notes and the credit balance applied), by days past their due date: current (not yet due),
1-30, 31-60, 61-90, over 90. Payments are not dated on the invoice, so an invoice paid (or partly
paid) today counts today's remainder on every past date too.

DSO (a month): receivables at the month's end / invoiced in the month x days in the month
(https://quickbooks.intuit.ca/r/finance-accounting/days-sales-outstanding/: 300,000 / 450,000 x 31 =
20.67 days), rounded to 2 decimals; none when nothing was invoiced.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from shared.billing.errors import ValidationError
from shared.billing.models import Invoice, Plan, Subscription
from shared.billing.money import ZERO, round_money
from shared.billing.periods import monthly_equivalent
from shared.billing.pricing import price_quantity
from shared.billing.rating import segment_windows
from shared.billing.revrec import check_month, month_bounds
from shared.services.billing import plans_for
from shared.services.context import Ports
from shared.services.reconciliation import all_subscriptions

MRR_COLUMNS = ("month", "customer_id", "currency", "previous_mrr", "mrr", "arr", "movement", "change")
MOVEMENTS = ("new", "reactivation", "expansion", "contraction", "churned")
AGING_BUCKETS = ("current", "1_30", "31_60", "61_90", "over_90")
AGING_COLUMNS = ("as_of", "currency", *AGING_BUCKETS, "total", "invoices")
DSO_COLUMNS = ("month", "currency", "receivables", "invoiced", "days", "dso")


def to_csv(columns: Sequence[str], rows: Iterable[dict]) -> str:
    """RFC 4180, CRLF, header first (as Finance's exports)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([[row[c] if row[c] is not None else "" for c in columns] for row in rows])
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- MRR


def subscription_mrr(sub: Subscription, plans: dict[int, Plan], day: date) -> Decimal:
    """The contract's monthly recurring revenue on `day` (exact, unrounded); 0 when not live."""
    if sub.status_on(day) not in ("active", "pending_termination"):
        return ZERO
    plan = plans[sub.plan_version_on(day)]
    total = ZERO
    for charge in plan.charges:
        if charge.type != "recurring":
            continue
        price = sub.price_of(charge)
        if charge.segments and charge.code not in sub.price_overrides:
            price = next((p for window, p in segment_windows(sub, charge) if window.contains(day)), ZERO)
        quantity = Decimal(1) if charge.model == "flat_fee" else sub.quantity
        unit = None if charge.model in ("tiered", "volume") else price
        total += monthly_equivalent(price_quantity(charge, quantity, unit).amount, charge.billing_period)
    return total


def _customer_mrr(subs: list[Subscription], plans: dict[str, dict[int, Plan]], day: date) -> dict[tuple, Decimal]:
    totals: dict[tuple[str, str], Decimal] = {}
    for sub in subs:
        amount = subscription_mrr(sub, plans[sub.plan_code], day)
        if amount:
            key = (sub.customer_id, plans[sub.plan_code][sub.plan_version_on(day)].currency)
            totals[key] = totals.get(key, ZERO) + amount
    return {key: round_money(amount, key[1]) for key, amount in totals.items()}


def mrr_rows(subs: list[Subscription], plans: dict[str, dict[int, Plan]], month: str) -> list[dict]:
    """One row per customer and currency with MRR at the month's end or at the previous month's end."""
    check_month(month)
    first, following = month_bounds(month)
    now = _customer_mrr(subs, plans, following - timedelta(days=1))
    before = _customer_mrr(subs, plans, first - timedelta(days=1))
    ended_earlier = {s.customer_id for s in subs if s.service_end is not None and s.service_end < first
                     and s.start_date < s.service_end}
    rows = []
    for customer, currency in sorted(set(now) | set(before)):
        previous, current = before.get((customer, currency), ZERO), now.get((customer, currency), ZERO)
        if previous == 0:
            movement = "reactivation" if customer in ended_earlier else "new"
        elif current == 0:
            movement = "churned"
        else:
            movement = "expansion" if current > previous else "contraction" if current < previous else "unchanged"
        rows.append({"month": month, "customer_id": customer, "currency": currency,
                     "previous_mrr": _money(previous, currency), "mrr": _money(current, currency),
                     "arr": _money(current * 12, currency), "movement": movement,
                     "change": _money(current - previous, currency)})
    return rows


def mrr_totals(rows: list[dict]) -> list[dict]:
    """Per currency: MRR, ARR, each movement (positive amounts), net new MRR, paying customers."""
    totals: dict[str, dict] = {}
    for row in rows:
        t = totals.setdefault(row["currency"], {"currency": row["currency"], "previous_mrr": ZERO, "mrr": ZERO,
                                                **{m: ZERO for m in MOVEMENTS}, "customers": 0})
        t["previous_mrr"] += Decimal(row["previous_mrr"])
        t["mrr"] += Decimal(row["mrr"])
        if row["movement"] in MOVEMENTS:
            t[row["movement"]] += abs(Decimal(row["change"]))
        t["customers"] += Decimal(row["mrr"]) > 0
    out = []
    for currency, t in sorted(totals.items()):
        net = t["new"] + t["reactivation"] + t["expansion"] - t["contraction"] - t["churned"]
        assert t["previous_mrr"] + net == t["mrr"], "the MRR bridge adds up by construction"
        out.append({"currency": currency, "mrr": _money(t["mrr"], currency), "arr": _money(t["mrr"] * 12, currency),
                    "previous_mrr": _money(t["previous_mrr"], currency),
                    **{f"{m}_mrr": _money(t[m], currency) for m in MOVEMENTS},
                    "net_new_mrr": _money(net, currency), "customers": t["customers"]})
    return out


def mrr_report(ports: Ports, month: str) -> dict:
    check_month(month)
    subs = list(all_subscriptions(ports))
    plans = plans_for(ports, subs) if subs else {}
    rows = mrr_rows(subs, plans, month)
    return {"month": month, "totals": mrr_totals(rows), "data": rows}


# ---------------------------------------------------------------------------------------------- receivables


def _open(invoice: Invoice, day: date) -> bool:
    return invoice.status == "finalized" and invoice.issue_date <= day and invoice.left_to_pay() > 0


def aging_rows(invoices: Iterable[Invoice], as_of: date) -> list[dict]:
    buckets: dict[str, dict] = {}
    for invoice in invoices:
        if not _open(invoice, as_of):
            continue
        late = (as_of - invoice.due_date).days
        bucket = ("current" if late <= 0 else "1_30" if late <= 30 else "31_60" if late <= 60
                  else "61_90" if late <= 90 else "over_90")
        row = buckets.setdefault(invoice.currency, {"as_of": as_of.isoformat(), "currency": invoice.currency,
                                                    **{b: ZERO for b in AGING_BUCKETS}, "invoices": 0})
        row[bucket] += invoice.left_to_pay()
        row["invoices"] += 1
    rows = []
    for currency, row in sorted(buckets.items()):
        row["total"] = sum((row[b] for b in AGING_BUCKETS), ZERO)
        rows.append({**row, **{k: _money(row[k], currency) for k in (*AGING_BUCKETS, "total")}})
    return rows


def dso_rows(invoices: Iterable[Invoice], month: str) -> list[dict]:
    check_month(month)
    first, following = month_bounds(month)
    last = following - timedelta(days=1)
    days = (following - first).days
    figures: dict[str, list[Decimal]] = {}
    for invoice in invoices:
        pair = figures.setdefault(invoice.currency, [ZERO, ZERO])
        if _open(invoice, last):
            pair[0] += invoice.left_to_pay()
        if first <= invoice.issue_date < following and invoice.status not in ("draft", "void"):
            pair[1] += invoice.total
    rows = []
    for currency, (receivables, invoiced) in sorted(figures.items()):
        if receivables == 0 and invoiced == 0:
            continue
        dso = (receivables / invoiced * days).quantize(Decimal("0.01"), ROUND_HALF_UP) if invoiced > 0 else None
        rows.append({"month": month, "currency": currency, "receivables": _money(receivables, currency),
                     "invoiced": _money(invoiced, currency), "days": days,
                     "dso": None if dso is None else format(dso, "f")})
    return rows


def all_invoices(ports: Ports) -> list[Invoice]:
    found, cursor = [], None
    while True:
        page, more = ports.repo.list_invoices(100, cursor)
        found += page
        if not more or not page:
            return found
        cursor = page[-1].id


def aging_report(ports: Ports, as_of: date | None = None) -> dict:
    day = as_of or ports.clock.now().date()
    return {"as_of": day.isoformat(), "data": aging_rows(all_invoices(ports), day)}


def dso_report(ports: Ports, month: str) -> dict:
    return {"month": check_month(month), "data": dso_rows(all_invoices(ports), month)}


def parse_day(value: str | None, param: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"'{value}' is not a date (YYYY-MM-DD)", param=param) from None


def _money(amount: Decimal, currency: str) -> str:
    return format(round_money(amount, currency), "f")
