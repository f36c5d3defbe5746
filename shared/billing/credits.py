"""What a credit note takes off its invoice: net per line (discounts in proportion) and tax per rate.

A credit names the invoice lines it credits with a net amount each (at most what is left on the line).
A line that reduces others (a negative one: a discount, a coupon) is credited in proportion to what of
the lines it reduces is credited so far, counted cumulatively: each credit takes the difference between
the share due after it and what earlier credits took, so the credit completing those lines takes the
discount's remainder and the credits never go beyond it.

Tax is never recomputed on the credited amount alone: each rate's tax is the invoice's tax at that rate
in proportion to the taxable amount credited so far (cumulative again), and the credit completing the
invoice takes what is left of each rate's taxable amount and tax. So credits add up to the invoice's
net, tax per rate and total exactly, and never beyond.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from shared.billing.models import InvoiceLine, TaxLine
from shared.billing.money import ZERO, round_money


def reduced_by(lines: Sequence[InvoiceLine], index: int) -> list[int]:
    """The positive lines a negative line reduces: those of its subscription, else all positive lines."""
    positive = [i for i, line in enumerate(lines) if line.amount > 0]
    reducer = lines[index]
    same = [i for i in positive if reducer.subscription_id and lines[i].subscription_id == reducer.subscription_id]
    return same or positive


def credit_by_line(lines: Sequence[InvoiceLine], credited: Mapping[int, Decimal], requested: Mapping[int, Decimal],
                   currency: str) -> dict[int, Decimal]:
    """The amount a credit takes off each invoice line, signed as the line (negative on a discount).

    `credited`: what earlier credits took per line (signed as the line); `requested`: the positive lines
    credited now, with positive amounts already checked against what is left on them.
    """
    taken = {i: a for i, a in requested.items() if a}
    for index, line in enumerate(lines):
        if line.amount >= 0:
            continue
        base = reduced_by(lines, index)
        base_total = sum((lines[i].amount for i in base), ZERO)
        if not base or not any(i in taken for i in base):
            continue
        after = sum((credited.get(i, ZERO) + taken.get(i, ZERO) for i in base), ZERO)
        due = line.amount if after >= base_total else round_money(line.amount * after / base_total, currency)
        share = due - credited.get(index, ZERO)
        if share * line.amount > 0:  # never back the other way (an earlier credit took more)
            taken[index] = share
    return taken


def tax_key(line: TaxLine) -> tuple:
    return line.name, line.jurisdiction, line.rate, line.category, line.exemption_reason


def credit_tax_lines(invoice_tax: Sequence[TaxLine], earlier: Iterable[TaxLine], computed: Sequence[TaxLine],
                     currency: str, completes: bool) -> list[TaxLine]:
    """A credit note's tax lines (negative) from its invoice's tax lines.

    `earlier`: the tax lines of the credit notes issued before against the invoice; `computed`: the tax
    the provider computed on this credit note's lines (its rates and taxable amounts per rate); `completes`:
    this credit leaves nothing on the invoice, so it takes every rate's remainder. A rate the invoice does
    not have (an external engine answering differently) is kept as computed, unless the credit completes.
    """
    before_taxable: dict[tuple, Decimal] = {}
    before_tax: dict[tuple, Decimal] = {}
    for line in earlier:
        key = tax_key(line)
        before_taxable[key] = before_taxable.get(key, ZERO) - line.taxable_amount
        before_tax[key] = before_tax.get(key, ZERO) - line.amount
    invoiced = {tax_key(line): line for line in invoice_tax}
    now = {tax_key(line): line for line in computed}
    result: list[TaxLine] = []
    for key, line in invoiced.items():
        taxable_before, tax_before = before_taxable.get(key, ZERO), before_tax.get(key, ZERO)
        if completes:
            taxable_now = line.taxable_amount - taxable_before
            tax_after = line.amount
        elif key in now:
            taxable_now = -now[key].taxable_amount
            after = taxable_before + taxable_now
            if line.taxable_amount == 0 or after == line.taxable_amount:
                tax_after = line.amount
            else:
                share = min(max(after / line.taxable_amount, Decimal(0)), Decimal(1))
                tax_after = round_money(line.amount * share, currency)
        else:
            continue
        tax_now = tax_after - tax_before
        if key in now or taxable_now or tax_now:
            result.append(line.model_copy(update={"taxable_amount": -taxable_now, "amount": -tax_now}))
    if not completes:  # completing, the invoice's rates already take all that is left
        result += [line for key, line in now.items() if key not in invoiced]
    return result
