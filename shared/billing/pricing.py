"""Charge models: how a quantity, a stream of transactions or a stream of durations becomes an amount.

Pure and exact: amounts are never rounded here (the caller rounds once per invoice line at the
currency's minor unit, see money.round_money). The conventions, with their sources, are in
PRICING.md beside this file:

- a tier's `up_to` is inclusive; the first tier starts at 0 and the last one is open;
- quantity 0 lies in the first tier, so its flat price is charged (Lago, OpenMeter);
- a fractional quantity above a bound belongs to the next tier (100.5 over `up_to` 100: 0.5 in tier 2);
- negative quantities, amounts and durations are refused;
- package: started packages count in full (rounded up), after the free units;
- percentage: Lago's model, transaction by transaction (free events / free amount, whichever runs
  out first, then rate + fixed fee clamped to the per-transaction min/max);
- duration (seed 003): each event rounded up to the rating unit, priced through the tiers as time
  ranges within that one event, plus a setup fee per event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from shared.billing.errors import ValidationError
from shared.billing.models import Charge, Tier
from shared.billing.money import ZERO, check_currency, parse_amount

QUANTITY_MODELS = ("flat_fee", "per_unit", "tiered", "volume", "package", "overage")
USAGE_ONLY_MODELS = ("overage", "percentage", "duration")
UNIT_PRICE_DECIMALS = 12  # an average unit price shown on a line (Stripe's unit_amount_decimal allows 12)
SECONDS_PER = {"second": Decimal(1), "minute": Decimal(60)}

# The model-specific fields of Charge, with the models each one belongs to.
FIELD_MODELS: dict[str, tuple[str, ...]] = {
    "price": ("flat_fee", "per_unit", "package", "overage", "duration"),
    "tiers": ("tiered", "volume", "duration"),
    "included_quantity": ("overage",),
    "package_size": ("package",),
    "free_units": ("package", "percentage"),
    "percentage_rate": ("percentage",),
    "fixed_fee_per_transaction": ("percentage",),
    "free_events": ("percentage",),
    "per_transaction_min": ("percentage",),
    "per_transaction_max": ("percentage",),
    "rating_unit": ("duration",),
    "setup_fee": ("duration",),
    "price_table": ("per_unit", "package", "overage", "duration"),
}
REQUIRED = {"package": "package_size", "overage": "included_quantity", "percentage": "percentage_rate",
            "duration": "rating_unit"}


@dataclass(frozen=True)
class Priced:
    quantity: Decimal  # what the line shows: the quantity priced; flat_fee 1; percentage transactions; duration units
    amount: Decimal  # exact, NOT rounded: the caller rounds once per line
    unit_price: Decimal  # see PRICING.md "Unit price shown"
    details: tuple[str, ...]  # human-readable breakdown


# -- quantities ------------------------------------------------------------------------------------------

def price_quantity(charge: Charge, quantity: Decimal, unit_price: Decimal | None = None) -> Priced:
    """Price `quantity` with a flat_fee, per_unit, tiered, volume, package or overage charge.

    `unit_price` overrides `charge.price` (a contract override, a price segment or a lookup-table
    price) for flat_fee, per_unit, package and overage. Tiers have no single price to override:
    passing one that differs from `charge.price` to a tiered or volume charge is refused.
    """
    _check_charge(charge, "charge")
    if charge.model not in QUANTITY_MODELS:
        use = "price_transactions" if charge.model == "percentage" else "price_durations"
        raise ValidationError(f"a {charge.model} charge is priced with {use}, not from a quantity",
                              param="charge.model")
    quantity = _decimal(quantity, "quantity")
    price = charge.price if unit_price is None else _non_negative(_decimal(unit_price, "unit_price"), "unit_price")
    if charge.model in ("tiered", "volume"):
        if price != charge.price:
            raise ValidationError(f"a {charge.model} charge is priced by its tiers; a unit price override "
                                  f"({_f(price)}) cannot apply", param="unit_price")
        return (_graduated if charge.model == "tiered" else _volume)(charge.tiers, quantity)
    if charge.model == "flat_fee":
        return Priced(Decimal(1), price, price, (f"flat fee: {_f(price)}",))
    if charge.model == "per_unit":
        amount = quantity * price
        return Priced(quantity, amount, price, (f"{_f(quantity)} x {_f(price)} = {_f(amount)}",))
    if charge.model == "package":
        return _package(charge, quantity, price)
    return _overage(charge, quantity, price)


def tier_label(tiers: list[Tier], index: int) -> str:
    """'0 to 100', '101 to 200', '201 and above'; 'above 0.1 to 1' when a bound is fractional."""
    up = tiers[index].up_to
    if index == 0:
        return "0 and above" if up is None else f"0 to {_f(up)}"
    lower = tiers[index - 1].up_to
    whole = _is_integral(lower) and (up is None or _is_integral(up))
    start = f"{_f(lower + 1)}" if whole else f"above {_f(lower)}"
    if up is None:
        return f"{start} and above" if whole else start
    return f"{start} to {_f(up)}"


def _graduated(tiers: list[Tier], quantity: Decimal) -> Priced:
    """Each tier's units at its unit price, plus the flat price of every tier reached."""
    amount, details, rates = ZERO, [], []
    lower = ZERO
    for index, tier in enumerate(tiers):
        if index > 0 and quantity <= lower:
            break
        units = (quantity if tier.up_to is None else min(quantity, tier.up_to)) - lower
        tier_amount = units * tier.unit_price + tier.flat_price
        amount += tier_amount
        rates.append(tier.unit_price)
        details.append(_tier_line(tier_label(tiers, index), units, tier, tier_amount))
        if tier.up_to is None:
            break
        lower = tier.up_to
    return Priced(quantity, amount, _shown_unit_price(amount, quantity, rates), tuple(details))


def _volume(tiers: list[Tier], quantity: Decimal) -> Priced:
    """All units at the unit price of the tier the whole quantity falls in, plus that tier's flat price."""
    index = next(i for i, t in enumerate(tiers) if t.up_to is None or quantity <= t.up_to)
    tier = tiers[index]
    amount = quantity * tier.unit_price + tier.flat_price
    line = _tier_line(tier_label(tiers, index), quantity, tier, amount)
    return Priced(quantity, amount, _shown_unit_price(amount, quantity, [tier.unit_price]), (line,))


def _tier_line(label: str, units: Decimal, tier: Tier, amount: Decimal) -> str:
    flat = f" + flat {_f(tier.flat_price)}" if tier.flat_price else ""
    return f"{label}: {_f(units)} x {_f(tier.unit_price)}{flat} = {_f(amount)}"


def _package(charge: Charge, quantity: Decimal, price: Decimal) -> Priced:
    paid = max(quantity - charge.free_units, ZERO)
    packages = _ceil_div(paid, charge.package_size)
    amount = packages * price
    free = f", {_f(min(quantity, charge.free_units))} free" if charge.free_units else ""
    detail = (f"{_f(quantity)} units{free}: {_f(packages)} packages of {_f(charge.package_size)} "
              f"x {_f(price)} = {_f(amount)}")
    return Priced(quantity, amount, price, (detail,))


def _overage(charge: Charge, quantity: Decimal, price: Decimal) -> Priced:
    included = charge.included_quantity
    over = max(quantity - included, ZERO)
    amount = over * price
    detail = f"{_f(quantity)} units, {_f(included)} included: {_f(over)} x {_f(price)} = {_f(amount)}"
    return Priced(quantity, amount, price, (detail,))


# -- transactions (percentage) ------------------------------------------------------------------------------

def price_transactions(charge: Charge, amounts: Iterable[Decimal]) -> Priced:
    """Lago's percentage model over transaction amounts, in event order, consumed once (streaming).

    Free allowance: the first `free_events` transactions and the first `free_units` of amount,
    ending as soon as either runs out. A transaction fully covered is free (no fee at all); the
    one that exhausts the free amount pays on its excess. Every other transaction pays
    `amount x rate% + fixed_fee_per_transaction`, clamped to [per_transaction_min, per_transaction_max].
    """
    _check_charge(charge, "charge")
    if charge.model != "percentage":
        raise ValidationError(f"price_transactions prices percentage charges, not {charge.model}",
                              param="charge.model")
    rate, fixed = charge.percentage_rate, charge.fixed_fee_per_transaction
    low, high = charge.per_transaction_min, charge.per_transaction_max
    free_events_left, free_amount_left = charge.free_events, charge.free_units
    in_allowance = free_events_left > 0 or free_amount_left > 0
    count = free_count = paid_count = 0
    total = charged_total = fees = adjustment = ZERO
    for index, value in enumerate(amounts):
        value = _decimal(value, f"amounts[{index}]")
        count += 1
        total += value
        charged = value
        if in_allowance:
            if charge.free_events:
                free_events_left -= 1
                in_allowance = free_events_left > 0
            if not charge.free_units:
                free_count += 1
                continue
            if value <= free_amount_left:
                free_amount_left -= value
                in_allowance = in_allowance and free_amount_left > 0
                free_count += 1
                continue
            charged = value - free_amount_left
            free_amount_left = ZERO
            in_allowance = False
        paid_count += 1
        charged_total += charged
        fee = charged * rate / 100 + fixed
        clamped = max(fee, low) if low is not None else fee
        clamped = min(clamped, high) if high is not None else clamped
        adjustment += clamped - fee
        fees += clamped
    quantity = Decimal(count)
    details = [f"{count} transactions totalling {_f(total)}"]
    if total != charged_total or free_count:
        details.append(f"free: {free_count} transactions, {_f(total - charged_total)} of amount")
    details.append(f"{_f(rate)}% of {_f(charged_total)} = {_f(charged_total * rate / 100)}")
    if fixed:
        details.append(f"fixed fee {_f(fixed)} x {paid_count} transactions = {_f(fixed * paid_count)}")
    if adjustment:
        details.append(f"per-transaction minimum/maximum: {_f(adjustment)}")
    return Priced(quantity, fees, _shown_unit_price(fees, quantity, []), tuple(details))


# -- durations (seed 003 rating functions) ------------------------------------------------------------------

def price_durations(charge: Charge, durations: Iterable[Decimal], unit_price: Decimal | None = None) -> Priced:
    """Seed 003's time-based rating over event durations in seconds, consumed once (streaming).

    Each duration is rounded up to the charge's `rating_unit`. Without tiers the units are
    priced at `price` (linear function; `unit_price` overrides it, e.g. a tariff zone's price);
    with tiers each event goes through them as time ranges within that one event (graduated,
    e.g. first 15 minutes flat 1.00, then 0.10 a minute). `setup_fee` is added per event.
    """
    _check_charge(charge, "charge")
    if charge.model != "duration":
        raise ValidationError(f"price_durations prices duration charges, not {charge.model}", param="charge.model")
    price = charge.price if unit_price is None else _non_negative(_decimal(unit_price, "unit_price"), "unit_price")
    if charge.tiers and price != charge.price:
        raise ValidationError("a tiered duration charge is priced by its tiers; a unit price override "
                              f"({_f(price)}) cannot apply", param="unit_price")
    step = SECONDS_PER[charge.rating_unit]
    tiers = charge.tiers
    tier_units = [ZERO] * len(tiers)
    tier_events = [0] * len(tiers)
    events, units_total, amount = 0, ZERO, ZERO
    for index, seconds in enumerate(durations):
        units = _ceil_div(_decimal(seconds, f"durations[{index}]"), step)
        events += 1
        units_total += units
        if not tiers:
            amount += units * price
            continue
        lower = ZERO
        for position, tier in enumerate(tiers):
            if position > 0 and units <= lower:
                break
            in_tier = (units if tier.up_to is None else min(units, tier.up_to)) - lower
            tier_units[position] += in_tier
            tier_events[position] += 1
            amount += in_tier * tier.unit_price + tier.flat_price
            if tier.up_to is None:
                break
            lower = tier.up_to
    setup = charge.setup_fee * events
    amount += setup
    unit = charge.rating_unit
    details = [f"{events} events, {_f(units_total)} {unit}s (each rounded up to the {unit})"]
    if tiers:
        for position, tier in enumerate(tiers):
            if tier_events[position]:
                flat = f" + {tier_events[position]} x flat {_f(tier.flat_price)}" if tier.flat_price else ""
                subtotal = tier_units[position] * tier.unit_price + tier.flat_price * tier_events[position]
                details.append(f"{tier_label(tiers, position)} {unit}s of each event: "
                               f"{_f(tier_units[position])} x {_f(tier.unit_price)}{flat} = {_f(subtotal)}")
        shown = _shown_unit_price(amount, units_total, [t.unit_price for t in tiers])
    else:
        details.append(f"{_f(units_total)} x {_f(price)} = {_f(units_total * price)}")
        shown = price
    if charge.setup_fee:
        details.append(f"setup fee {_f(charge.setup_fee)} x {events} events = {_f(setup)}")
    return Priced(units_total, amount, shown, tuple(details))


# -- lookup tables ---------------------------------------------------------------------------------------------

def unit_price_for_group(charge: Charge, group: str, param: str = "group") -> Decimal:
    """The unit price of a group value (e.g. a tariff zone) in the charge's `price_table`."""
    if group in charge.price_table:
        return charge.price_table[group]
    known = ", ".join(sorted(charge.price_table)) or "none"
    raise ValidationError(f"charge '{charge.code}' has no price for group '{group}' (known groups: {known})",
                          param=param)


# -- validation --------------------------------------------------------------------------------------------------

def validate_charge(charge: Charge, currency: str, param: str = "charge") -> None:
    """Everything a plan's charge must satisfy for its model; the error's `param` names the field."""
    check_currency(currency)
    _check_charge(charge, param)
    if charge.type != "usage" and charge.model in USAGE_ONLY_MODELS:
        raise ValidationError(f"a {charge.model} charge prices usage: its type must be 'usage', not "
                              f"'{charge.type}'", param=f"{param}.type")
    if charge.type == "usage" and not charge.metric_code:
        raise ValidationError("a usage charge needs the metric it prices", param=f"{param}.metric_code")
    # Whole minor units where an amount is charged as such; unit prices may be finer (0.0015 a call).
    if charge.model == "flat_fee":
        parse_amount(charge.price, currency, f"{param}.price")
    for index, tier in enumerate(charge.tiers):
        parse_amount(tier.flat_price, currency, f"{param}.tiers[{index}].flat_price")


def _check_charge(charge: Charge, param: str) -> None:
    """The model's own rules (no currency, no plan context): what pricing needs to be well defined."""
    model = charge.model
    defaults = Charge.model_fields
    for name, models in FIELD_MODELS.items():
        if model not in models and getattr(charge, name) != defaults[name].get_default(call_default_factory=True):
            raise ValidationError(f"{name} does not apply to a {model} charge", param=f"{param}.{name}")
    if model in REQUIRED and getattr(charge, REQUIRED[model]) is None:
        raise ValidationError(f"a {model} charge needs {REQUIRED[model]}", param=f"{param}.{REQUIRED[model]}")
    if model in ("tiered", "volume") and not charge.tiers:
        raise ValidationError(f"a {model} charge needs at least one tier", param=f"{param}.tiers")
    if model == "duration" and charge.tiers and charge.price:
        raise ValidationError("a duration charge with tiers is priced by them; price must be 0",
                              param=f"{param}.price")
    if model == "duration" and charge.tiers and charge.price_table:
        raise ValidationError("a duration charge with tiers is priced by them; it cannot have a price table",
                              param=f"{param}.price_table")
    for name in ("price", "included_quantity", "free_units", "fixed_fee_per_transaction", "per_transaction_min",
                 "per_transaction_max", "setup_fee"):
        value = getattr(charge, name)
        if value is not None:
            _non_negative(value, f"{param}.{name}")
    for group, value in charge.price_table.items():
        if not group:
            raise ValidationError("a price table group value cannot be empty", param=f"{param}.price_table")
        _non_negative(value, f"{param}.price_table.{group}")
    if charge.package_size is not None and not (_finite(charge.package_size) and charge.package_size > 0):
        raise ValidationError("package_size must be greater than 0", param=f"{param}.package_size")
    if charge.free_events < 0:
        raise ValidationError("free_events cannot be negative", param=f"{param}.free_events")
    rate = charge.percentage_rate
    if rate is not None and not (_finite(rate) and 0 <= rate <= 100):
        raise ValidationError("percentage_rate is a percent between 0 and 100", param=f"{param}.percentage_rate")
    low, high = charge.per_transaction_min, charge.per_transaction_max
    if low is not None and high is not None and low > high:
        raise ValidationError(f"per_transaction_min ({_f(low)}) exceeds per_transaction_max ({_f(high)})",
                              param=f"{param}.per_transaction_min")
    _check_tiers(charge.tiers, f"{param}.tiers")


def _check_tiers(tiers: list[Tier], param: str) -> None:
    previous: Decimal | None = None
    for index, tier in enumerate(tiers):
        path = f"{param}[{index}]"
        _non_negative(tier.unit_price, f"{path}.unit_price")
        _non_negative(tier.flat_price, f"{path}.flat_price")
        last = index == len(tiers) - 1
        if tier.up_to is None:
            if not last:
                raise ValidationError("only the last tier can be open (up_to null)", param=f"{path}.up_to")
            continue
        if last:
            raise ValidationError("the last tier must be open (up_to null): quantities above it would be unpriced",
                                  param=f"{path}.up_to")
        _non_negative(tier.up_to, f"{path}.up_to")
        if previous is not None and tier.up_to <= previous:
            raise ValidationError(f"tiers ascend: up_to {_f(tier.up_to)} must exceed the previous {_f(previous)}",
                                  param=f"{path}.up_to")
        previous = tier.up_to


# -- helpers -----------------------------------------------------------------------------------------------------

def _decimal(value: object, param: str) -> Decimal:
    """A non-negative finite Decimal (ints accepted); floats and booleans refused."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ValidationError(f"'{value}' is not a decimal quantity", param=param)
    return _non_negative(Decimal(value), param)


def _non_negative(value: Decimal, param: str) -> Decimal:
    if not _finite(value) or value < 0:
        raise ValidationError(f"{value} is not a finite, non-negative number", param=param)
    return value


def _finite(value: Decimal) -> bool:
    return isinstance(value, Decimal) and value.is_finite()


def _ceil_div(value: Decimal, step: Decimal) -> Decimal:
    """How many started steps `value` covers (exact: divmod, no rounding of a quotient)."""
    whole, rest = divmod(value, step)
    return whole + 1 if rest else whole


def _shown_unit_price(amount: Decimal, quantity: Decimal, rates: list[Decimal]) -> Decimal:
    """A rate that explains the amount exactly when there is one, else the average (12 decimals); 0 for no quantity."""
    if not quantity:
        return ZERO
    for rate in rates:
        if rate * quantity == amount:
            return rate
    with localcontext() as context:
        context.prec = 60
        average = (amount / quantity).quantize(Decimal(1).scaleb(-UNIT_PRICE_DECIMALS), rounding=ROUND_HALF_UP)
    return average.normalize() if average.normalize().as_tuple().exponent <= 0 else average.quantize(Decimal(1))


def _is_integral(value: Decimal) -> bool:
    return value == value.to_integral_value()


def _f(value: Decimal) -> str:
    return format(value, "f")
