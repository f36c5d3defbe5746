"""The domain vocabulary (see README.md beside this file). Pure data, validated by pydantic.

Money fields are `Decimal` and serialize as strings; floats are refused at the edge.
Dates are `date`; every `*_end` / `end_date` is exclusive (the first day without service).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema


def _no_float(value: object) -> object:
    if isinstance(value, float | bool):
        raise ValueError("money and quantities are decimal strings such as \"1250.00\", not numbers")
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["1250.00"]}),
]

ChargeType = Literal["recurring", "one_time", "usage"]
ChargeModel = Literal["flat_fee", "per_unit", "tiered", "volume", "package", "percentage", "overage", "duration"]
Aggregation = Literal["sum", "count", "max", "min", "average", "unique_count", "latest"]
BillingPeriod = Literal["week", "two_weeks", "month", "quarter", "semi_annual", "annual", "two_years", "three_years"]
Timing = Literal["in_advance", "in_arrears"]
Role = Literal["admin", "cre", "finance"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Logo(Model):
    """An entity's logo, stored once in the documents bucket under its SHA-256 (never overwritten)."""

    key: str
    sha256: str
    media_type: Literal["image/png", "image/jpeg", "image/svg+xml"]
    size: int


class Branding(Model):
    """How an entity's documents look; snapshotted onto each invoice so it re-renders the same."""

    accent_color: str = "#1f4e79"  # #RRGGBB: title, rules, the amount-due band
    logo: Logo | None = None


class BillingEntity(Model):
    id: str
    code: str
    name: str
    country: str
    region: str | None = None
    tax_registrations: dict[str, str] = Field(default_factory=dict)
    currency: str
    invoice_prefix: str
    address_lines: list[str] = Field(default_factory=list)
    email: str | None = None
    number_format: str = "{prefix}-{number:06d}"  # str.format with prefix and number
    revenue_convention: Literal["daily", "monthly"] = "daily"  # ratable recognition by day or by month
    credit_note_prefix: str | None = None  # default: "<invoice_prefix>-CN"
    tax_providers: dict[str, str] = Field(default_factory=dict)  # jurisdiction -> provider (services/taxes.py)
    usage_charge_limit: Amount | None = None  # default per customer and usage period (V5-4180)
    usage_limits: dict[str, Amount] = Field(default_factory=dict)  # default: metric -> quantity per period
    japan_consumption_tax: bool = True  # seed 000 leaves Japan's rule open: switchable
    upcoming_bill_notice_days: int | None = None  # V5-4247: e-mail customers this many days before a bill
    branding: Branding = Field(default_factory=Branding)
    created_at: datetime
    version: int = 1


class Customer(Model):
    id: str
    external_id: str | None = None
    name: str
    email: str
    cc_emails: list[str] = Field(default_factory=list)
    bcc_emails: list[str] = Field(default_factory=list)
    country: str
    region: str | None = None
    address_lines: list[str] = Field(default_factory=list)
    customer_type: Literal["business", "individual"] = "business"
    tax_id: str | None = None
    tax_exempt: bool = False
    currency: str
    language: str = "en"
    billing_entity: str
    timezone: str = "UTC"
    net_terms_days: int = 30
    usage_charge_limit: Amount | None = None  # overrides the entity's (V5-4180)
    usage_limits: dict[str, Amount] = Field(default_factory=dict)  # overrides the entity's, per metric
    invoice_grouping: Literal["customer", "subscription"] = "customer"  # one invoice per period, or one per contract
    document_format: Literal["pdf", "facturx"] = "pdf"  # facturx: the PDF of record carries its CII XML
    # owed to the customer, by currency: credits beyond what was left to pay, used on the next invoices
    credit_balance: dict[str, Amount] = Field(default_factory=dict)
    created_at: datetime
    version: int = 1


class Tier(Model):
    """One row of a tier table. `up_to` is the tier's inclusive upper bound; None: no limit."""

    up_to: Amount | None = None
    unit_price: Amount = Decimal("0")
    flat_price: Amount = Decimal("0")


class PriceSegment(Model):
    """A price that lasts `months` billing months from the end of the previous segment
    (None: until the contract ends). Seed 002: "first 3 months 15, then 20"."""

    months: int | None = None
    price: Amount


class BundleComponent(Model):
    """A part of a bundle charge: listed under its line, its share of revenue by standalone price."""

    name: str
    standalone_price: Amount
    pob_identifier: str | None = None


class Charge(Model):
    """A price in the catalog. Which fields apply depends on `model` (see pricing.py)."""

    code: str
    name: str
    type: ChargeType = "recurring"
    model: ChargeModel = "flat_fee"
    billing_period: BillingPeriod = "month"
    timing: Timing = "in_advance"
    price: Amount = Decimal("0")  # flat fee, unit price, package price or overage unit price
    proration: Literal["daily", "none"] = "daily"
    show_monthly: bool = False  # annual pre-pay (seed 000 §6.3): months between renewals show the service at 0
    gl_code: str | None = None
    tax_code: str | None = None
    description: str | None = None
    translations: dict[str, str] = Field(default_factory=dict)  # language (BCP 47) -> name on invoices
    pob_identifier: str | None = None
    # usage
    metric_code: str | None = None
    tiers: list[Tier] = Field(default_factory=list)
    included_quantity: Amount | None = None  # overage: the allowance before `price` per unit
    package_size: Amount | None = None
    free_units: Amount = Decimal("0")  # package: free units; percentage: free amount
    percentage_rate: Amount | None = None  # percent, "2.9" is 2.9%
    fixed_fee_per_transaction: Amount = Decimal("0")
    free_events: int = 0
    per_transaction_min: Amount | None = None
    per_transaction_max: Amount | None = None
    rating_unit: Literal["second", "minute"] | None = None  # duration: round each event up to it
    setup_fee: Amount = Decimal("0")  # duration: per event
    price_table: dict[str, Amount] = Field(default_factory=dict)  # unit price per group value
    drawdown_from: str | None = None  # usage: consume the prepaid units of this charge first
    # recurring / one-time
    segments: list[PriceSegment] = Field(default_factory=list)
    includes: dict[str, Amount] = Field(default_factory=dict)  # bundle: metric -> free quantity per period
    components: list[BundleComponent] = Field(default_factory=list)
    prepaid_units: Amount | None = None  # prepayment: units of `drawdown_from` usage bought


class UsageDiscount(Model):
    """Seed 003: a discount computed from a bundle indicator (e.g. total minutes above 1,000)."""

    code: str
    name: str
    metric_code: str
    threshold: Amount  # the indicator must exceed this in the period
    percent_off: Amount
    applies_to: list[str] = Field(default_factory=list)  # charge codes; empty: all usage charges


class Commitment(Model):
    """Seed 003: a minimum spend on usage charges per period; a true-up line makes up a shortfall."""

    amount: Amount
    name: str = "Minimum commitment true-up"
    gl_code: str | None = None
    tax_code: str | None = None


class Metric(Model):
    """How usage events become a quantity: aggregate `field` of the events that match `filters`."""

    code: str
    name: str
    aggregation: Aggregation = "sum"
    field: str | None = None  # the event property aggregated; count needs none
    filters: dict[str, list[str]] = Field(default_factory=dict)  # property -> accepted values
    group_by: str | None = None  # one line per value of this property (e.g. tariff zone)
    created_at: datetime | None = None
    version: int = 1


class UsageEvent(Model):
    transaction_id: str
    subscription_id: str
    customer_id: str
    metric_code: str
    timestamp: datetime
    properties: dict[str, str] = Field(default_factory=dict)
    received_at: datetime | None = None


class ContractRules(Model):
    """What a subscription on this plan may do (V5-2779 pauses, V5-2713 regret, V5-2729 trials, V5-3687)."""

    regret_days: int = Field(default=0, ge=0, le=365)  # 0: a subscription cannot be regretted
    pause_max_times_per_year: int | None = Field(default=None, ge=0)  # None: unlimited
    pause_max_days_per_year: int | None = Field(default=None, ge=0)
    pause_min_days: int = Field(default=1, ge=1)
    pause_max_days: int | None = Field(default=None, ge=1)
    trial_once_per_customer: bool = False  # a customer gets one trial across all its subscriptions
    billing_day_change: Literal["next_period", "never"] = "next_period"


class Plan(Model):
    code: str
    name: str
    currency: str
    description: str | None = None
    charges: list[Charge]
    refund_policy: Literal["none", "prorated"] = "none"
    trial_days: int = 0
    rules: ContractRules = Field(default_factory=ContractRules)
    kind: Literal["base", "add_on"] = "base"  # an add-on plan is subscribed on top of a base subscription
    commitment: Commitment | None = None
    usage_discounts: list[UsageDiscount] = Field(default_factory=list)
    plan_version: int = 1  # a price change makes a new version; subscriptions keep theirs
    status: Literal["current", "legacy"] = "current"
    created_at: datetime
    version: int = 1

    def charge(self, code: str) -> Charge:
        for charge in self.charges:
            if charge.code == code:
                return charge
        raise KeyError(code)


class Termination(Model):
    effective: Literal["immediately", "end_of_period", "on_date", "month", "regret", "change", "transfer"]
    service_end: date  # exclusive
    requested_at: datetime
    requested_by: str
    reason: str | None = None
    refund: Literal["none", "prorated", "full"] = "none"  # credit for service billed in advance past the end


class Pause(Model):
    """Invoicing pauses over [start, end); the configuration stays (seed 000 §6.7, V5-2779)."""

    start: date
    end: date | None = None  # exclusive; None: until resumed
    requested_at: datetime
    requested_by: str
    reason: str | None = None


class ContractCharge(Model):
    """A charge of this contract alone, over [start, end): a setup fee at activation, an early-termination
    fee, or a recurring charge one event adds and another removes (V5-2811)."""

    charge: Charge
    start: date
    end: date | None = None  # exclusive
    reason: str | None = None


class PlanChange(Model):
    """From `effective` on, periods that start on or after it use `plan_version` (grandfathering ends)."""

    effective: date
    plan_version: int
    requested_by: str | None = None


class Coupon(Model):
    """A discount a subscription can redeem: percent or amount off, once, for N cycles or forever."""

    code: str
    name: str
    percent_off: Amount | None = None
    amount_off: Amount | None = None
    currency: str | None = None  # with amount_off
    duration: Literal["once", "repeating", "forever"] = "once"
    duration_in_cycles: int | None = None  # with repeating
    max_redemptions: int | None = None
    redeem_by: date | None = None
    applies_to: list[str] = Field(default_factory=list)  # charge codes; empty: every charge
    times_redeemed: int = 0
    created_at: datetime | None = None
    version: int = 1


class CouponRedemption(Model):
    """A coupon's terms as redeemed (copied: later changes to the coupon do not apply)."""

    code: str
    name: str
    percent_off: Amount | None = None
    amount_off: Amount | None = None
    duration: Literal["once", "repeating", "forever"]
    duration_in_cycles: int | None = None
    applies_to: list[str] = Field(default_factory=list)
    redeemed_on: date


class Subscription(Model):
    id: str
    customer_id: str
    plan_code: str
    plan_version: int = 1
    parent_id: str | None = None  # the base subscription of an add-on: same customer, cycle and end
    external_id: str | None = None
    start_date: date
    end_date: date | None = None  # exclusive
    price_overrides: dict[str, Amount] = Field(default_factory=dict)
    quantity: Amount = Decimal("1")
    billing_alignment: Literal["anniversary", "calendar"] = "anniversary"
    billing_day: int
    billing_month: int | None = None  # cycles of a year or more: the month of the billing day (V5-4469)
    billing_weekday: int | None = None  # weekly cycles: ISO weekday, 1 = Monday (V5-4469)
    auto_renew: bool = True
    termination: Termination | None = None
    next_bill_date: date | None = None
    plan_changes: list[PlanChange] = Field(default_factory=list)
    coupons: list[CouponRedemption] = Field(default_factory=list)
    prepaid_balance: dict[str, Amount] = Field(default_factory=dict)  # drawdown units left, by usage charge
    usage_billed_until: date | None = None  # usage before this day is invoiced: later events are late
    trial_end: date | None = None  # exclusive: recurring and one-time charges are free before it
    pauses: list[Pause] = Field(default_factory=list)
    contract_charges: list[ContractCharge] = Field(default_factory=list)
    term_months: int | None = None  # the committed term; with auto_renew the end moves by it
    early_termination_fee: Amount | None = None  # charged when the contract ends before its end_date
    replaces: str | None = None  # the subscription this one continues (plan change, change of ownership)
    replaced_by: str | None = None
    recheck_from: date | None = None  # billed periods ending after this day are re-checked (credits, proration)
    created_at: datetime
    version: int = 1

    def plan_version_on(self, day: date) -> int:
        """The plan version for a period starting on `day`."""
        version = self.plan_version
        for change in sorted(self.plan_changes, key=lambda c: c.effective):
            if change.effective <= day:
                version = change.plan_version
        return version

    @property
    def service_end(self) -> date | None:
        """Exclusive end of service: the earlier of the contract end and a termination."""
        ends = [d for d in (self.end_date, self.termination and self.termination.service_end) if d]
        return min(ends) if ends else None

    def status_on(self, today: date) -> str:
        if today < self.start_date:
            return "pending"
        end = self.service_end
        if end is not None and today >= end:
            return "terminated"
        if any(p.start <= today < (p.end or date.max) for p in self.pauses):
            return "paused"
        if self.trial_end is not None and today < self.trial_end:
            return "trialing"
        if self.termination is not None:
            return "pending_termination"
        return "active"

    def price_of(self, charge: Charge) -> Decimal:
        return self.price_overrides.get(charge.code, charge.price)


class Attachment(Model):
    """A file that goes with an invoice (a timesheet, a usage report): stored beside its PDF and e-mailed
    with it. Added after finalization too, so it is outside the content hash; its SHA-256 is audited."""

    id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    key: str
    added_at: datetime
    added_by: str


class InvoiceLine(Model):
    kind: Literal["recurring", "one_time", "usage", "late_usage", "discount", "commitment", "adjustment",
                  "credit", "manual", "proration"] = "recurring"
    credited_line: int | None = None  # a credit note's line: the index of the invoice line it credits
    description: str
    charge_code: str | None = None
    quantity: Amount
    unit_price: Amount
    amount: Amount
    currency: str
    period_start: date | None = None
    period_end: date | None = None  # exclusive
    subscription_id: str | None = None
    external_id: str | None = None
    gl_code: str | None = None
    tax_code: str | None = None
    proration: str | None = None  # the rule, stated: "prorated by day: 17/31 days"
    item_key: str | None = None  # what this line bills, unique per subscription/charge/period
    metric_code: str | None = None
    group: str | None = None  # the group value of a grouped metric (e.g. a tariff zone)
    usage_records: int | None = None  # DS-009: how many usage records the quantity comes from
    details: list[str] = Field(default_factory=list)  # tier breakdown, bundle components, rules applied
    pob_identifier: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)  # e.g. project, po_number: what a split groups by


class TaxLine(Model):
    name: str
    jurisdiction: str
    rate: Amount  # a fraction: 0.2 is 20%
    taxable_amount: Amount
    amount: Amount
    category: str = "S"  # UNCL5305: S standard, Z zero, E exempt, AE reverse charge, K intra-EU, O outside scope
    exemption_reason: str | None = None  # the legal mention printed for a 0% category
    exemption_code: str | None = None  # VATEX code for e-invoices (BT-121)


class PartySnapshot(Model):
    """Seller or buyer as printed on a finalized document (copied, so it never changes)."""

    name: str
    email: str | None = None
    address_lines: list[str] = Field(default_factory=list)
    country: str
    region: str | None = None
    tax_id: str | None = None


class DocumentLink(Model):
    """Where a document comes from (seed 001 §1.2): the invoice a credit note corrects, the drafts a
    merge combined, the invoice a split or a re-bill came from."""

    relation: Literal["corrects", "merged_from", "split_from", "rebill_of"]
    id: str
    number: str | None = None  # None for a draft (drafts have no number)
    issue_date: date | None = None
    share: str | None = None  # a split by percentage: this child's percent of the parent


class Invoice(Model):
    """An invoice, or a credit note (`kind`), numbered in its own gapless series at finalization.

    Everything but the fields in invoicing.HASHED_FIELDS_EXCLUDED (status, payments, delivery,
    storage keys) is covered by `content_hash`, chained to the previous document of the series.
    """

    id: str
    kind: Literal["invoice", "credit_note"] = "invoice"
    number: str | None = None
    sequence: int | None = None  # its place in the series (1, 2, ...): the number before formatting
    status: Literal["draft", "finalized", "paid", "void", "uncollectible"]
    credit_note_of: str | None = None  # a credit note: the invoice it corrects
    reason: str | None = None  # a credit note's or a void's reason
    customer_id: str
    billing_entity_id: str
    bill_run_id: str | None = None
    currency: str
    language: str = "en"
    issue_date: date
    due_date: date
    lines: list[InvoiceLine]
    tax_lines: list[TaxLine] = Field(default_factory=list)
    subtotal: Amount
    tax_total: Amount
    total: Amount
    amount_due: Amount  # as issued; what is left after payments and credits: amount_remaining
    balance_applied: Amount | None = None  # the customer's credit balance used on it (total - balance = due)
    balance_credited: Amount | None = None  # put on the customer's credit balance: a negative total, or a
    # credit note's part beyond what was left to pay on its invoice
    amount_paid: Amount = Decimal("0")
    amount_credited: Amount = Decimal("0")
    amount_remaining: Amount | None = None
    credits: list[dict] = Field(default_factory=list)  # credit notes issued against it: id, number, lines
    status_history: list[dict] = Field(default_factory=list)  # {status, at, by, reason}
    notes: list[str] = Field(default_factory=list)
    custom_fields: dict[str, str] = Field(default_factory=dict)  # e.g. PO number, project code
    tax_provider: str | None = None
    tax_rounding: str | None = None  # the rule applied, stated
    exchange_rate: dict[str, str] | None = None  # the ECB reference rate to the seller's currency, at creation
    memo_lines: list[str] = Field(default_factory=list)  # e.g. MXN amounts on a USD invoice for Mexico
    seller: PartySnapshot
    buyer: PartySnapshot
    template_version: str = "invoice_v3"
    branding: Branding | None = None  # the seller's branding when issued
    related: list[DocumentLink] = Field(default_factory=list)
    replaced_by: list[str] = Field(default_factory=list)  # documents issued in its place (a re-bill)
    content_hash: str | None = None
    previous_hash: str | None = None
    pdf_key: str | None = None
    delivery_status: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    created_at: datetime
    finalized_at: datetime | None = None
    version: int = 1

    @property
    def subscription_ids(self) -> list[str]:
        return sorted({line.subscription_id for line in self.lines if line.subscription_id})

    def left_to_pay(self) -> Decimal:
        """What is left to pay: after payments, credit notes and the credit balance (a draft: its amount due)."""
        return self.amount_remaining if self.amount_remaining is not None else self.amount_due


class BillRun(Model):
    id: str
    as_of: date
    trigger: Literal["api", "schedule", "cli"] = "api"
    status: Literal["pending", "running", "succeeded", "completed_with_failures", "failed"]
    accounts: int = 0
    invoices: int = 0
    nothing_due: int = 0
    failed: int = 0
    failures: list[dict] = Field(default_factory=list)
    invoice_ids: list[str] = Field(default_factory=list)
    created_at: datetime
    completed_at: datetime | None = None
    created_by: str | None = None
    version: int = 1


class AuditEvent(Model):
    id: str
    occurred_at: datetime
    actor: str
    role: str
    action: str
    object_type: str
    object_id: str
    before: dict | None = None
    after: dict | None = None
    correlation_id: str | None = None
