"""Seed 002's design shape: a subscription and its POB mappings, as a solution architect writes them.

- `parse_design(text)` / `dump_design(design)`: the JSON (subscription, rate_plans with charges,
  usage, charge_pob_map, assumptions, open_questions, mapping_notes). Numbers are read as exact
  decimals and written as JSON numbers; keys the shape does not name are kept as they are.
- `check_design(design, ledger)`: every violation, each with its rule (`POB`, `DS-006`, `DS-008`,
  `DS-009`) and the JSON path of the offending element (`$.rate_plans[0].charges[1].sellPrice`).
- `design_to_billing(...)` / `billing_to_design(...)`: to and from our Plan / Charge / Subscription.

Dates: the design's end dates are inclusive (seed 002: "start: 01/01/2026, end: 03/31/2026"; a
usage record "2026-01-01" to "2026-01-31"); ours are exclusive, so ours = theirs + 1 day.

Bundles: seed 002 lists a bundle's components in `assumptions`. We read and write one line per
bundle charge, in this form (prices are standalone selling prices):
    Bundle explosion applies: <charge name> -> <component> (<POB identifier>, SSP <price>); <component> (...)

What maps to our objects (anything else raises ValidationError naming the JSON path):
- all rate plans' charges go into one Plan; every charge starts on the subscription start;
- consecutive Recurring charges of the same shape whose windows follow each other by whole months
  are one Charge with price segments (seed 002: "$15 for months 1-3, $20 for months 4-12"); the
  last one ends with the subscription;
- `chargeFunction` "Prepayment" (units `prepaymentUnits`) and "Drawdown" (the prepayment with the
  same UOM: https://docs.zuora.com/en/zuora-billing/bill-your-customer/usage-billing/prepaid-with-drawdown/drawdown-charge);
- a Usage charge's UOM is its metric code; one quantity for every PerUnit recurring charge (ours
  is on the subscription); Tiered and Volume need a tier table the shape does not carry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer
from pydantic import ValidationError as PydanticValidationError

from shared.billing.errors import ValidationError
from shared.billing.models import BundleComponent, Charge, Metric, Plan, PriceSegment, Subscription, UsageEvent
from shared.billing.money import ZERO, check_currency
from shared.billing.periods import add_months
from shared.billing.revrec import POB_TEMPLATES, PobTemplate, default_pob, template_fits

RuleId = Literal["POB", "DS-006", "DS-008", "DS-009"]
NEEDS_CLARIFICATION = "NEEDS_CLARIFICATION"


def _decimal(value: object) -> object:
    """JSON numbers as exact decimals: a float goes through its shortest repr (15.5 -> "15.5")."""
    if isinstance(value, bool):
        raise ValueError("a number, not a boolean")
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _json_number(value: Decimal) -> int | float | str:
    """A decimal as a JSON number when it survives the trip, else as a string."""
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else format(value, "f")


Number = Annotated[Decimal, BeforeValidator(_decimal), PlainSerializer(_json_number, when_used="json")]
Price = Annotated[Decimal | Literal["NEEDS_CLARIFICATION"], BeforeValidator(_decimal),
                  PlainSerializer(lambda v: v if isinstance(v, str) else _json_number(v), when_used="json")]


class DesignModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class DesignSubscription(DesignModel):
    name: str
    termType: Literal["TERMED", "EVERGREEN"] = "TERMED"
    status: str | None = None
    currency: str
    contractEffectiveDate: date | None = None
    serviceActivationDate: date | None = None
    customerAcceptanceDate: date | None = None
    subscriptionStartDate: date
    subscriptionEndDate: date | None = None  # inclusive
    initialTerm: int | None = None
    initialTermPeriodType: str | None = None
    renewalTerm: int | None = None
    renewalTermPeriodType: str | None = None
    autoRenew: bool = False


class DesignCharge(DesignModel):
    name: str
    type: Literal["Recurring", "OneTime", "Usage"]
    model: Literal["FlatFee", "PerUnit", "Volume", "Tiered", "Overage"] = "FlatFee"
    uom: str | None = None
    billingPeriod: Literal["Month", "Quarter", "Semi-Annual", "Annual"] | None = None
    billingTiming: Literal["InAdvance", "InArrears"] | None = None
    billingDay: int | str | None = None
    billingPeriodAlignment: str | None = None
    listPriceBase: str | None = None
    triggerEvent: str | None = "ContractEffective"
    specificTriggerDate: date | None = None
    endDateCondition: str | None = None
    specificEndDate: date | None = None
    quantity: Number | None = None
    listPrice: Price | None = None
    sellPrice: Price | None = None
    price: Price | None = None
    effectiveStartDate: date
    effectiveEndDate: date | None = None  # inclusive
    chargeFunction: str | None = None
    isAllocationEligible: bool | None = None
    drawdownType: str | None = None
    commitmentType: str | None = None
    prepaymentUOM: str | None = None
    prepaymentUnits: Number | None = None
    validityPeriod: str | None = None

    @property
    def is_prepayment(self) -> bool:
        return self.chargeFunction == "Prepayment" or self.prepaymentUnits is not None


class DesignRatePlan(DesignModel):
    productName: str | None = None
    ratePlanName: str | None = None
    charges: list[DesignCharge] = Field(default_factory=list)


class DesignUsage(DesignModel):
    chargeName: str
    startDate: date
    endDate: date  # inclusive
    quantity: Number
    uom: str | None = None


class RecognitionWindow(DesignModel):
    start: date | None = None
    end: date | None = None  # inclusive


class PobMapping(DesignModel):
    chargeName: str
    productName: str | None = None
    ratePlanName: str | None = None
    pob_identifier: str
    pob_name: str | None = None
    ratable_method: str | None = None
    release_event: str | None = None
    recognition_window: RecognitionWindow | None = None
    rationale: str | None = None
    confidence: float | None = None
    alternatives: list[Any] = Field(default_factory=list)


class Design(DesignModel):
    subscription: DesignSubscription
    rate_plans: list[DesignRatePlan] = Field(default_factory=list)
    usage: list[DesignUsage] = Field(default_factory=list)
    charge_pob_map: list[PobMapping] = Field(default_factory=list)
    assumptions: list[str] = Field(default_factory=list)
    open_questions: list[str] = Field(default_factory=list)
    mapping_notes: list[str] = Field(default_factory=list)


class CommercialTerm(BaseModel):
    """One line of the commercial terms ledger (DS-008): a contracted price for a period (inclusive)."""

    model_config = ConfigDict(extra="forbid")

    chargeName: str
    price: Annotated[Decimal, BeforeValidator(_decimal)]
    effectiveStart: date | None = None
    effectiveEnd: date | None = None
    chargeType: Literal["Recurring", "OneTime", "Usage"] | None = None
    billingPeriod: str | None = None
    source: str | None = None  # where the contract states it


@dataclass(frozen=True)
class Violation:
    rule: RuleId
    path: str  # JSON path of the offending element
    message: str


_UNION_MEMBERS = {"decimal", "str", "int", "float", "bool", "date", "datetime", "none"}


def _path(location: Iterable[object]) -> str:
    """A pydantic error location as a field path, without the union member it tried ("decimal")."""
    text = ""
    for part in location:
        if isinstance(part, str) and (part in _UNION_MEMBERS or "[" in part):
            continue
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def parse_design(text: str | bytes) -> Design:
    """A design from its JSON text, numbers read as exact decimals."""
    try:
        raw = json.loads(text, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValidationError(f"not JSON: {error}", param="design") from None
    return load_design(raw)


def load_design(raw: object) -> Design:
    try:
        return Design.model_validate(raw)
    except PydanticValidationError as error:
        first = error.errors()[0]
        raise ValidationError(f"{first['msg']}", param=_path(first["loc"]) or "design") from None


def dump_design(design: Design) -> str:
    return design.model_dump_json(indent=2) + "\n"


# ---------------------------------------------------------------------------------------------- bundles

_BUNDLE_LINE = re.compile(r"^\s*Bundle explosion applies:\s*(?P<charge>.+?)\s*->\s*(?P<parts>.+?)\s*$")
_BUNDLE_PART = re.compile(
    r"^\s*(?P<name>.+?)\s*\(\s*(?P<pob>[A-Z0-9_-]+)\s*,\s*SSP\s+(?P<price>-?\d+(\.\d+)?)\s*\)\s*$")


def bundle_components(design: Design) -> dict[str, tuple[int, list[BundleComponent]]]:
    """Bundle charge name -> (index of its assumption line, components) from the assumptions."""
    bundles = {}
    for index, line in enumerate(design.assumptions):
        match = _BUNDLE_LINE.match(line)
        if not match:
            continue
        components = []
        for part in match["parts"].split(";"):
            found = _BUNDLE_PART.match(part)
            if not found:
                raise ValidationError(f"'{part.strip()}' is not written 'component (POB identifier, SSP price)'",
                                      param=f"assumptions[{index}]")
            components.append(BundleComponent(name=found["name"], standalone_price=Decimal(found["price"]),
                                              pob_identifier=found["pob"]))
        bundles[match["charge"]] = (index, components)
    return bundles


def bundle_assumption(charge_name: str, components: Sequence[BundleComponent]) -> str:
    parts = "; ".join(f"{c.name} ({c.pob_identifier}, SSP {format(c.standalone_price, 'f')})" for c in components)
    return f"Bundle explosion applies: {charge_name} -> {parts}"


# ---------------------------------------------------------------------------------------------- the check

_TYPES = {"Recurring": "recurring", "OneTime": "one_time", "Usage": "usage"}


def _charges(design: Design) -> list[tuple[str, DesignRatePlan, DesignCharge]]:
    return [(f"$.rate_plans[{i}].charges[{j}]", plan, charge)
            for i, plan in enumerate(design.rate_plans) for j, charge in enumerate(plan.charges)]


def _matches(mapping: PobMapping, plan: DesignRatePlan, charge: DesignCharge) -> bool:
    return (mapping.chargeName == charge.name
            and mapping.productName in (None, plan.productName)
            and mapping.ratePlanName in (None, plan.ratePlanName))


def _design_template(charge: DesignCharge) -> str:
    """The matrix's default for a design charge (the rule DS-006 applies when its POB is unknown)."""
    if charge.type == "Usage":
        return "EVT-PIT-CONSUMP-USAGE" if charge.chargeFunction == "Drawdown" else "BL-PIT-CONSUMP-PAYGO"
    if charge.is_prepayment:
        return "EVT-PIT-CONSUMP-USAGE"
    if charge.type == "OneTime":
        return "BK-PIT-STARTDATE"
    return "BK-OT-RATABLE" if charge.billingTiming != "InArrears" else "BL-OT-INVRATABLE"


def expected_window(charge: DesignCharge, template: PobTemplate,
                    subscription: DesignSubscription) -> tuple[date, date | None]:
    """DS-006: the charge's service window (ratable, consumption) or its delivery day (point in time)."""
    if template.method == "point_in_time":
        return charge.effectiveStartDate, charge.effectiveStartDate
    return charge.effectiveStartDate, charge.effectiveEndDate or subscription.subscriptionEndDate


def _check_window(violations: list[Violation], path: str, charge_path: str, charge: DesignCharge,
                  template: PobTemplate, design: Design, window: RecognitionWindow | None) -> None:
    if template.method == "point_in_time" and charge.effectiveEndDate not in (None, charge.effectiveStartDate):
        violations.append(Violation("DS-006", f"{charge_path}.effectiveEndDate",
                                    f"a point-in-time charge is delivered on one day, not {charge.effectiveStartDate}"
                                    f" to {charge.effectiveEndDate}: make the dates one day or use an over-time POB"))
    if window is None:
        violations.append(Violation("DS-006", f"{path}.recognition_window", "no recognition window"))
        return
    start, end = expected_window(charge, template, design.subscription)
    point = template.method == "point_in_time"
    if window.start != start:
        expected = f"the delivery date is {start}" if point else f"the charge starts {start}"
        violations.append(Violation("DS-006", f"{path}.recognition_window.start",
                                    f"window starts {window.start}; {expected}"))
    if window.end != end:
        expected = f"the delivery date is {end}" if point else f"the charge ends {end or 'never (open end)'}"
        violations.append(Violation("DS-006", f"{path}.recognition_window.end",
                                    f"window ends {window.end}; {expected}"))
    term_end = design.subscription.subscriptionEndDate
    if term_end and window.end and window.end > term_end and window.end == end:
        violations.append(Violation("DS-006", f"{path}.recognition_window.end",
                                    f"window ends {window.end}, after the term ends on {term_end}"))


def _sell_price(charge: DesignCharge) -> Decimal | str | None:
    return charge.sellPrice if charge.sellPrice is not None else charge.price


def _check_price(violations: list[Violation], path: str, charge: DesignCharge, design: Design,
                 ledger: Sequence[CommercialTerm]) -> None:
    price = _sell_price(charge)
    if price is None:
        violations.append(Violation("DS-008", f"{path}.sellPrice", "no sellPrice"))
        return
    if price == NEEDS_CLARIFICATION:
        violations.append(Violation("DS-008", f"{path}.sellPrice",
                                    "price needs clarification: not billable until the contract states it"))
        return
    if charge.sellPrice is not None and charge.price is not None and charge.price != charge.sellPrice:
        violations.append(Violation("DS-008", f"{path}.price",
                                    f"price {charge.price} differs from sellPrice {charge.sellPrice}"))
    terms = [t for t in ledger if t.chargeName == charge.name]
    if not terms:
        violations.append(Violation("DS-008", f"{path}.name",
                                    f"'{charge.name}' is not in the commercial terms ledger: do not add it"))
        return
    start = charge.effectiveStartDate
    end = charge.effectiveEndDate or design.subscription.subscriptionEndDate
    covering = [t for t in terms
                if (t.effectiveStart is None or t.effectiveStart <= start)
                and (t.effectiveEnd is None or (end is not None and end <= t.effectiveEnd))
                and (t.chargeType is None or t.chargeType == charge.type)]
    if price not in {t.price for t in covering}:
        stated = ", ".join(f"{t.price} ({t.effectiveStart or '...'} to {t.effectiveEnd or '...'})" for t in terms)
        violations.append(Violation("DS-008", f"{path}.sellPrice",
                                    f"{price} from {start} to {end or '...'} is not a contracted price "
                                    f"for '{charge.name}'; the ledger states {stated}"))


def _record_fits(record: DesignUsage, charge: DesignCharge, term_end: date | None) -> bool:
    end = charge.effectiveEndDate or term_end
    return (record.chargeName == charge.name and (charge.uom is None or record.uom in (None, charge.uom))
            and charge.effectiveStartDate <= record.startDate and (end is None or record.endDate <= end))


def check_design(
    design: Design,
    ledger: Sequence[CommercialTerm] | None = None,
    templates: Mapping[str, PobTemplate] = POB_TEMPLATES,
) -> list[Violation]:
    """Every violation of the design: the charges', then the mappings', then the usage records',
    each in document order. DS-008 is checked only with a ledger.

    POB: a charge with no mapping or several; a mapping to no charge; an identifier not on the
    list; a template the selection matrix does not give to the charge's type; a bundle component
    with an unknown identifier, or a bundle line naming no charge.
    DS-006: a recognition window other than the charge's service window (ratable, consumption:
    effective dates, the open end being the term's end) or its delivery day (point in time).
    DS-008: a charge or segment whose sellPrice the ledger does not state for its whole period.
    DS-009: a Usage quantity other than the sum of its usage records, a quantity set without
    records, a usage record no Usage charge accounts for.
    """
    violations: list[Violation] = []
    charges = _charges(design)
    term_end = design.subscription.subscriptionEndDate
    try:
        bundles = bundle_components(design)
    except ValidationError as error:
        violations.append(Violation("POB", f"$.{error.param}", error.message))
        bundles = {}

    for path, plan, charge in charges:
        mapped = [k for k, m in enumerate(design.charge_pob_map) if _matches(m, plan, charge)]
        if not mapped:
            violations.append(Violation("POB", path, f"'{charge.name}' has no charge_pob_map entry"))
        for k in mapped[1:]:
            violations.append(Violation("POB", f"$.charge_pob_map[{k}]",
                                        f"'{charge.name}' is mapped more than once"))
        if ledger is not None:
            _check_price(violations, path, charge, design, ledger)
        if charge.type == "Usage":
            records = [r for r in design.usage if _record_fits(r, charge, term_end)]
            total = sum((r.quantity for r in records), ZERO)
            if records and charge.quantity != total:
                violations.append(Violation("DS-009", f"{path}.quantity",
                                            f"quantity {charge.quantity} differs from the {len(records)} usage "
                                            f"records' total {total}"))
            if not records and charge.quantity is not None:
                violations.append(Violation("DS-009", f"{path}.quantity",
                                            f"quantity {charge.quantity} with no usage records: omit it"))
        if charge.name in bundles:
            index, components = bundles[charge.name]
            for component in components:
                if component.pob_identifier not in templates:
                    violations.append(Violation("POB", f"$.assumptions[{index}]",
                                                f"bundle component '{component.name}': '{component.pob_identifier}'"
                                                " is not on the POB template list"))

    names = {c.name for _, _, c in charges}
    for name, (index, _) in bundles.items():
        if name not in names:
            violations.append(Violation("POB", f"$.assumptions[{index}]", f"a bundle of no charge '{name}'"))

    for k, mapping in enumerate(design.charge_pob_map):
        path = f"$.charge_pob_map[{k}]"
        owners = [(p, c) for p, plan, c in charges if _matches(mapping, plan, c)]
        if not owners:
            violations.append(Violation("POB", f"{path}.chargeName", f"no charge '{mapping.chargeName}' to map"))
            continue
        charge_path, charge = owners[0]
        template = templates.get(mapping.pob_identifier)
        if template is None:
            violations.append(Violation("POB", f"{path}.pob_identifier",
                                        f"'{mapping.pob_identifier}' is not on the POB template list"))
        elif not template_fits(template, _TYPES[charge.type], charge.is_prepayment):
            violations.append(Violation("POB", f"{path}.pob_identifier",
                                        f"{mapping.pob_identifier} is not a template for {charge.type} charges"))
        rule_template = template or templates.get(_design_template(charge)) or POB_TEMPLATES[_design_template(charge)]
        _check_window(violations, path, charge_path, charge, rule_template, design, mapping.recognition_window)

    for u, record in enumerate(design.usage):
        if not any(c.type == "Usage" and _record_fits(record, c, term_end) for _, _, c in charges):
            violations.append(Violation("DS-009", f"$.usage[{u}]",
                                        f"no Usage charge '{record.chargeName}' ({record.uom}) covers "
                                        f"{record.startDate} to {record.endDate}"))
    return violations


# ---------------------------------------------------------------------------------------------- to billing

_MODELS = {"FlatFee": "flat_fee", "PerUnit": "per_unit", "Volume": "volume", "Tiered": "tiered", "Overage": "overage"}
_PERIODS = {"Month": "month", "Quarter": "quarter", "Semi-Annual": "semi_annual", "Annual": "annual"}
_TIMINGS = {"InAdvance": "in_advance", "InArrears": "in_arrears"}


@dataclass(frozen=True)
class ImportedDesign:
    plan: Plan
    subscription: Subscription
    metrics: list[Metric]  # one per usage UOM: the sum of the events' "quantity"
    usage_events: list[UsageEvent]  # one per usage record, at its start date, its quantity in "quantity"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "charge"


def _months_between(start: date, end: date) -> int | None:
    """n such that add_months(start, n) == end, if there is one."""
    months = (end.year - start.year) * 12 + end.month - start.month
    return months if months > 0 and add_months(start, months) == end else None


def _common_name(names: Sequence[str]) -> str:
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    prefix = prefix.rstrip(" -–:(")
    return prefix or names[0]


def _shape(charge: DesignCharge) -> tuple:
    return charge.type, charge.model, charge.billingPeriod, charge.billingTiming, charge.uom, charge.quantity


Link = tuple[str, DesignRatePlan, DesignCharge]


def _chains(design: Design) -> list[list[Link]]:
    """Charges grouped: a chain of Recurring segments, or one charge."""
    start = design.subscription.subscriptionStartDate
    chains: list[list[Link]] = []
    for i, plan in enumerate(design.rate_plans):
        open_chains: list[list[Link]] = []
        for j, charge in sorted(enumerate(plan.charges), key=lambda jc: (jc[1].effectiveStartDate, jc[0])):
            path = f"rate_plans[{i}].charges[{j}]"
            follows = next((chain for chain in open_chains
                            if charge.type == "Recurring" and _shape(chain[-1][2]) == _shape(charge)
                            and chain[-1][2].effectiveEndDate is not None
                            and chain[-1][2].effectiveEndDate + timedelta(days=1) == charge.effectiveStartDate),
                           None)
            if follows is not None:
                follows.append((path, plan, charge))
                continue
            if charge.effectiveStartDate != start:
                raise ValidationError(f"'{charge.name}' starts on {charge.effectiveStartDate}; our subscriptions bill "
                                      f"every charge from the subscription start ({start}) unless it continues a "
                                      "segment of the same charge", param=f"{path}.effectiveStartDate")
            open_chains.append([(path, plan, charge)])
        chains.extend(open_chains)
    return chains


def _price(path: str, charge: DesignCharge) -> Decimal:
    price = _sell_price(charge)
    if price is None or price == NEEDS_CLARIFICATION:
        raise ValidationError(f"'{charge.name}' has no contracted price", param=f"{path}.sellPrice")
    return price


def design_to_billing(
    design: Design,
    *,
    plan_code: str,
    subscription_id: str,
    customer_id: str,
    created_at: datetime,
    external_id: str | None = None,
    templates: Mapping[str, PobTemplate] = POB_TEMPLATES,
) -> ImportedDesign:
    """Our Plan, Subscription and usage events for a design (see the module docstring for what maps)."""
    sub = design.subscription
    check_currency(sub.currency, "subscription.currency")
    term_end = sub.subscriptionEndDate + timedelta(days=1) if sub.subscriptionEndDate else None
    if term_end is not None and term_end <= sub.subscriptionStartDate:
        raise ValidationError("the subscription ends before it starts", param="subscription.subscriptionEndDate")
    bundles = bundle_components(design)
    charges: list[Charge] = []
    codes: set[str] = set()
    quantities: set[Decimal] = set()
    prepayments: dict[str | None, str] = {}
    drawdowns: list[tuple[str, int, str | None]] = []
    for chain in _chains(design):
        path, _, first = chain[0]
        last_path, _, last = chain[-1]
        chain_end = last.effectiveEndDate + timedelta(days=1) if last.effectiveEndDate else None
        if first.type != "OneTime" and chain_end != term_end:
            raise ValidationError(f"'{last.name}' ends on {last.effectiveEndDate}, not with the subscription "
                                  f"({sub.subscriptionEndDate}): our charges run for the whole subscription",
                                  param=f"{last_path}.effectiveEndDate")
        model = _MODELS[first.model]
        if model in ("tiered", "volume"):
            raise ValidationError(f"a {first.model} charge needs a tier table, which the design does not carry",
                                  param=f"{path}.model")
        identifiers = set()
        for segment_path, rate_plan, segment in chain:
            owner = next((m for m in design.charge_pob_map
                          if _matches(m, rate_plan, segment) and m.pob_identifier in templates), None)
            if owner is None:
                raise ValidationError(f"'{segment.name}' has no POB mapping on the template list",
                                      param=f"{segment_path}.name")
            identifiers.add(owner.pob_identifier)
        if len(identifiers) > 1:
            raise ValidationError(f"segments of '{first.name}' map to different POBs: {sorted(identifiers)}",
                                  param=f"{path}.name")
        name = _common_name([c.name for _, _, c in chain]) if len(chain) > 1 else first.name
        code = slug(name)
        while code in codes:
            code += "-2"
        codes.add(code)
        segments = []
        if len(chain) > 1:
            for (segment_path, _, segment), following in zip(chain, [*chain[1:], None], strict=True):
                months = None
                if following is not None:
                    months = _months_between(segment.effectiveStartDate, following[2].effectiveStartDate)
                    if months is None:
                        raise ValidationError(f"'{segment.name}' does not last a whole number of months",
                                              param=f"{segment_path}.effectiveEndDate")
                segments.append(PriceSegment(months=months, price=_price(segment_path, segment)))
        if model == "per_unit" and first.type == "Recurring" and first.quantity is not None:
            quantities.add(first.quantity)
        components = []
        if first.name in bundles:
            components = bundles[first.name][1]
        charge = Charge(
            code=code, name=name, type=_TYPES[first.type], model=model,
            billing_period=_PERIODS.get(first.billingPeriod or "Month", "month"),
            timing="in_arrears" if first.type == "Usage" else _TIMINGS.get(first.billingTiming or "InAdvance"),
            price=segments[0].price if segments else _price(path, first), pob_identifier=identifiers.pop(),
            metric_code=(first.uom or slug(first.name)) if first.type == "Usage" else None,
            segments=segments, components=components,
            prepaid_units=first.prepaymentUnits if first.is_prepayment else None,
        )
        if first.is_prepayment:
            if first.prepaymentUnits is None:
                raise ValidationError("a prepayment states its units", param=f"{path}.prepaymentUnits")
            prepayments[first.prepaymentUOM] = code
        if first.type == "Usage" and first.chargeFunction == "Drawdown":
            drawdowns.append((path, len(charges), first.uom))
        charges.append(charge)
    for path, index, uom in drawdowns:
        source = prepayments.get(uom) or (next(iter(prepayments.values())) if len(prepayments) == 1 else None)
        if source is None:
            raise ValidationError(f"no prepayment with UOM '{uom}' to draw down", param=f"{path}.uom")
        charges[index] = charges[index].model_copy(update={"drawdown_from": source})
    if len(quantities) > 1:
        raise ValidationError("PerUnit recurring charges with different quantities: ours is one per subscription",
                              param="rate_plans")
    plan = Plan(code=plan_code, name=sub.name, currency=sub.currency, charges=charges, created_at=created_at)
    subscription = Subscription(
        id=subscription_id, customer_id=customer_id, plan_code=plan_code, external_id=external_id,
        start_date=sub.subscriptionStartDate, end_date=term_end,
        quantity=quantities.pop() if quantities else Decimal(1),
        billing_day=sub.subscriptionStartDate.day, auto_renew=sub.autoRenew, created_at=created_at,
    )
    metric_of = {c.name: c.metric_code for c in charges if c.type == "usage"}
    for _, _, c in _charges(design):
        if c.type == "Usage":
            metric_of.setdefault(c.name, c.uom or slug(c.name))
    events = []
    for u, record in enumerate(design.usage):
        if record.chargeName not in metric_of:
            raise ValidationError(f"no Usage charge '{record.chargeName}'", param=f"usage[{u}].chargeName")
        events.append(UsageEvent(
            transaction_id=f"{subscription_id}-usage-{u}", subscription_id=subscription_id, customer_id=customer_id,
            metric_code=metric_of[record.chargeName], timestamp=datetime.combine(record.startDate, time(), UTC),
            properties={"quantity": format(record.quantity, "f"), "end_date": record.endDate.isoformat(),
                        "uom": record.uom or ""},
        ))
    metrics = [Metric(code=code, name=code, aggregation="sum", field="quantity")
               for code in sorted({c.metric_code for c in charges if c.metric_code})]
    return ImportedDesign(plan=plan, subscription=subscription, metrics=metrics, usage_events=events)


# ---------------------------------------------------------------------------------------------- from billing

_MODELS_BACK = {v: k for k, v in _MODELS.items()}
_PERIODS_BACK = {v: k for k, v in _PERIODS.items()}
_TYPES_BACK = {v: k for k, v in _TYPES.items()}


def _window(charge: DesignCharge, template: PobTemplate, subscription: DesignSubscription) -> RecognitionWindow:
    start, end = expected_window(charge, template, subscription)
    return RecognitionWindow(start=start, end=end)


def _pieces(charge: Charge, subscription: Subscription) -> list[tuple[str, Decimal, date, date | None]]:
    """(name, price, first day, last day) of each price segment, as rating.py applies them: from the
    contract's start, a segment of `months` after the previous one; after the last, nothing."""
    start, end = subscription.start_date, subscription.service_end
    if not charge.segments or charge.code in subscription.price_overrides:
        last = None if charge.type == "one_time" or end is None else end - timedelta(days=1)
        return [(charge.name, subscription.price_of(charge), start, last)]
    pieces, elapsed = [], 0
    for segment in charge.segments:
        first = add_months(start, elapsed)
        if end is not None and first >= end:
            break
        stop = add_months(start, elapsed + segment.months) if segment.months is not None else None
        if end is not None and (stop is None or stop > end):
            stop = end
        label = (f"months {elapsed + 1}-{elapsed + segment.months}" if segment.months is not None
                 else f"from month {elapsed + 1}")
        pieces.append((f"{charge.name} ({label})", segment.price, first, stop - timedelta(days=1) if stop else None))
        if segment.months is None:
            break
        elapsed += segment.months
    return pieces


def billing_to_design(
    plan: Plan,
    subscription: Subscription,
    *,
    usage: Sequence[DesignUsage] = (),
    templates: Mapping[str, PobTemplate] = POB_TEMPLATES,
) -> Design:
    """Seed 002's shape for one of our subscriptions: a rate plan with the plan's charges (a charge
    with segments becomes one charge per segment) and the POB mapping each charge resolves to."""
    start, end = subscription.start_date, subscription.service_end
    term_months = _months_between(start, end) if end else None
    design_sub = DesignSubscription(
        name=plan.name, termType="TERMED" if end else "EVERGREEN",
        status="Cancelled" if subscription.termination else "Active", currency=plan.currency,
        contractEffectiveDate=start, serviceActivationDate=start, customerAcceptanceDate=start,
        subscriptionStartDate=start, subscriptionEndDate=end - timedelta(days=1) if end else None,
        initialTerm=term_months, initialTermPeriodType="Month" if term_months else None,
        renewalTerm=term_months if subscription.auto_renew else None,
        renewalTermPeriodType="Month" if term_months and subscription.auto_renew else None,
        autoRenew=subscription.auto_renew,
    )
    uom_of_drawdown = {c.drawdown_from: c.metric_code for c in plan.charges if c.drawdown_from}
    charges, mappings, assumptions = [], [], []
    for charge in plan.charges:
        identifier = charge.pob_identifier or default_pob(charge)
        template = templates.get(identifier)
        if template is None:
            raise ValidationError(f"'{identifier}' is not a configured POB template",
                                  param=f"charges[{plan.charges.index(charge)}].pob_identifier")
        if charge.model not in _MODELS_BACK:
            raise ValidationError(f"the design shape has no {charge.model} charge model",
                                  param=f"charges[{plan.charges.index(charge)}].model")
        for name, price, piece_start, piece_end in _pieces(charge, subscription):
            usage_charge = charge.type == "usage"
            quantity = None if usage_charge else subscription.quantity if charge.model == "per_unit" else Decimal(1)
            if usage_charge:
                records = [r for r in usage if r.chargeName == name]
                quantity = sum((r.quantity for r in records), ZERO) if records else None
            design_charge = DesignCharge(
                name=name, type=_TYPES_BACK[charge.type], model=_MODELS_BACK[charge.model],
                uom=charge.metric_code if usage_charge else None,
                billingPeriod=None if charge.type == "one_time" else "Month" if usage_charge
                else _PERIODS_BACK[charge.billing_period],
                billingTiming=None if charge.type == "one_time" else "InArrears" if usage_charge
                else "InAdvance" if charge.timing == "in_advance" else "InArrears",
                quantity=quantity, listPrice=price, sellPrice=price, price=price,
                effectiveStartDate=piece_start, effectiveEndDate=piece_end,
                chargeFunction="Prepayment" if charge.prepaid_units is not None
                else "Drawdown" if charge.drawdown_from else None,
                prepaymentUOM=uom_of_drawdown.get(charge.code) if charge.prepaid_units is not None else None,
                prepaymentUnits=charge.prepaid_units,
            )
            charges.append(design_charge)
            mappings.append(PobMapping(
                chargeName=name, productName=plan.name, ratePlanName=plan.code, pob_identifier=identifier,
                pob_name=template.name, ratable_method=template.ratable_method, release_event=template.release_event,
                recognition_window=_window(design_charge, template, design_sub),
                rationale="set on the charge" if charge.pob_identifier else "default for its type and timing",
                confidence=1.0,
            ))
        if charge.components:
            assumptions.append(bundle_assumption(charge.name, [
                c.model_copy(update={"pob_identifier": c.pob_identifier or identifier}) for c in charge.components]))
    return Design(
        subscription=design_sub,
        rate_plans=[DesignRatePlan(productName=plan.name, ratePlanName=plan.code, charges=charges)],
        usage=list(usage), charge_pob_map=mappings, assumptions=assumptions,
    )
