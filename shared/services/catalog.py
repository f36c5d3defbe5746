"""Billing entities, customers and plans."""

from __future__ import annotations

import hashlib
import re

from pydantic import ValidationError as PydanticValidationError

from shared.adapters.dynamodb import Put
from shared.billing.errors import ConflictError, NotFoundError, ValidationError
from shared.billing.models import BillingEntity, Coupon, Customer, Logo, Metric, Plan
from shared.billing.tax import check_taxable
from shared.services.attachments import decoded_upload
from shared.services.context import SYSTEM, Actor, Ports, as_updated
from shared.services.ids import new_id
from shared.services.requests.catalog import (
    BillingEntityCreate,
    BillingEntityUpdate,
    CouponCreate,
    CustomerCreate,
    CustomerUpdate,
    LogoUpload,
    MetricCreate,
    PlanBody,
    PlanCreate,
)

DEFAULT_ENTITY = BillingEntityCreate(
    code="default",
    name="Billing Platform Inc.",
    country="US",
    currency="USD",
    invoice_prefix="INV",
    address_lines=["1 Main Street", "Wilmington, DE 19801"],
    tax_providers={"US": "not_collected"},  # locally no tax engine: stated on each US invoice
)


# billing entities -------------------------------------------------------------
def create_entity(ports: Ports, actor: Actor, body: BillingEntityCreate) -> BillingEntity:
    actor.require("entities:write")
    if ports.repo.resolve_alias("entity", body.code):
        raise ConflictError(f"a billing entity with code '{body.code}' exists", param="code")
    entity = BillingEntity(id=new_id("ent"), created_at=ports.clock.now(), **body.model_dump())
    try:
        ports.repo.create_entity(entity, ports.audit(actor, "billing_entity.created", "billing_entity",
                                                     entity.id, after=entity),
                                 [ports.event(actor, "billing_entity.created",
                                              {"billing_entity": entity.model_dump(mode="json")})])
    except ConflictError:
        raise ConflictError(f"a billing entity with code '{body.code}' exists", param="code") from None
    return entity


LOGO_MAX_BYTES = 512 * 1024
LOGO_SIGNATURES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
LOGO_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}


def update_entity(ports: Ports, actor: Actor, entity_ref: str, body: BillingEntityUpdate) -> BillingEntity:
    """Change an entity's name, address, e-mail, notice days or accent colour; documents issued
    before keep what they were issued with (they carry a snapshot)."""
    actor.require("entities:write")
    entity = get_entity(ports, entity_ref)
    before = entity.model_copy(deep=True)
    changes = body.model_dump(exclude_unset=True)
    if "accent_color" in changes:
        entity.branding = entity.branding.model_copy(update={"accent_color": changes.pop("accent_color")})
    for name, value in changes.items():
        if value is None and name in ("name", "address_lines"):
            raise ValidationError(f"{name} cannot be removed", param=name)
        setattr(entity, name, value)
    return _save_entity(ports, actor, entity, before, "billing_entity.updated")


def set_entity_logo(ports: Ports, actor: Actor, entity_ref: str, body: LogoUpload) -> BillingEntity:
    """Store the logo under its SHA-256 in the documents bucket (never overwritten) and brand the
    entity's next documents with it."""
    actor.require("entities:write")
    entity = get_entity(ports, entity_ref)
    content = decoded_upload(body.content_base64, LOGO_MAX_BYTES, "a logo")
    _check_logo(content, body.content_type)
    digest = hashlib.sha256(content).hexdigest()
    key = f"branding/{entity.id}/{digest}.{LOGO_EXTENSIONS[body.content_type]}"
    ports.documents.put(key, content, body.content_type)
    before = entity.model_copy(deep=True)
    entity.branding = entity.branding.model_copy(update={"logo": Logo(
        key=key, sha256=digest, media_type=body.content_type, size=len(content))})
    return _save_entity(ports, actor, entity, before, "billing_entity.logo_set")


def _check_logo(content: bytes, content_type: str) -> None:
    signature = LOGO_SIGNATURES.get(content_type)
    if signature is not None:
        if not content.startswith(signature):
            raise ValidationError(f"the file is not a {content_type} image", param="content_base64")
        return
    try:  # SVG: an <svg> root, no script, nothing fetched from elsewhere
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("an SVG logo is UTF-8 text", param="content_base64") from None
    lowered = text.lower()
    if "<svg" not in lowered[:2048]:
        raise ValidationError("the file is not an SVG image (no <svg> element)", param="content_base64")
    if "<script" in lowered or re.search(r"""(?:href|src)\s*=\s*["']\s*(?:https?:|//|file:)""", lowered):
        raise ValidationError("an SVG logo may not contain scripts or links to other files",
                              param="content_base64")


def _save_entity(ports: Ports, actor: Actor, entity: BillingEntity, before: BillingEntity,
                 action: str) -> BillingEntity:
    try:
        ports.repo.update_entity(entity, ports.audit(actor, action, "billing_entity", entity.id, before, entity),
                                 [ports.event(actor, action, {"billing_entity": as_updated(entity)})])
    except ConflictError:
        raise ConflictError(f"billing entity {entity.code} changed meanwhile; read it again and retry",
                            code="concurrent_modification") from None
    return entity


def default_entity(ports: Ports) -> BillingEntity:
    """The entity customers bill from unless they name one; created on first use."""
    entity_id = ports.repo.resolve_alias("entity", DEFAULT_ENTITY.code)
    if entity_id is None:
        try:
            return create_entity(ports, SYSTEM, DEFAULT_ENTITY)
        except ConflictError:  # created concurrently, or another write won: then the caller retries
            entity_id = ports.repo.resolve_alias("entity", DEFAULT_ENTITY.code)
            if entity_id is None:
                raise
    return get_entity(ports, entity_id)


def get_entity(ports: Ports, id_or_code: str, param: str = "id") -> BillingEntity:
    entity_id = id_or_code if id_or_code.startswith("ent_") else ports.repo.resolve_alias("entity", id_or_code)
    entity = ports.repo.get_entity(entity_id) if entity_id else None
    if entity is None:
        raise NotFoundError(f"no billing entity '{id_or_code}'", param=param)
    return entity


# customers ----------------------------------------------------------------------
def create_customer(ports: Ports, actor: Actor, body: CustomerCreate) -> Customer:
    actor.require("contracts:write")
    entity = (get_entity(ports, body.billing_entity, param="billing_entity")
              if body.billing_entity else default_entity(ports))
    if body.external_id and ports.repo.resolve_alias("customer", body.external_id):
        raise ConflictError(f"a customer with external_id '{body.external_id}' exists", param="external_id")
    check_taxable(body.country, body.region, body.customer_type, body.tax_id)
    data = body.model_dump(exclude={"billing_entity"})
    customer = Customer(id=new_id("cus"), billing_entity=entity.id, created_at=ports.clock.now(), **data)
    try:
        ports.repo.create_customer(customer, ports.audit(actor, "customer.created", "customer",
                                                         customer.id, after=customer),
                                   [ports.event(actor, "customer.created",
                                                {"customer": customer.model_dump(mode="json")})])
    except ConflictError:
        if body.external_id and ports.repo.resolve_alias("customer", body.external_id):
            raise ConflictError(f"a customer with external_id '{body.external_id}' exists",
                                param="external_id") from None
        raise  # another write won (concurrent_modification): the client retries
    return customer


def update_customer(ports: Ports, actor: Actor, customer_ref: str, body: CustomerUpdate) -> Customer:
    """Change contact details, language, payment terms, invoice grouping or document format.
    Invoices already issued keep the buyer they were issued to (a snapshot)."""
    actor.require("contracts:write")
    customer = get_customer(ports, customer_ref)
    before = customer.model_copy(deep=True)
    changes = body.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None and name not in ("cc_emails", "bcc_emails"):
            raise ValidationError(f"{name} cannot be removed", param=name)
    merged = {**customer.model_dump(include=set(CustomerCreate.model_fields) - {"billing_entity"}), **{
        k: v if v is not None else [] for k, v in changes.items()}}
    try:
        checked = CustomerCreate.model_validate(merged)  # the rules of a new customer, one place
    except PydanticValidationError as error:
        first = error.errors()[0]
        raise ValidationError(first["msg"], param=".".join(str(p) for p in first["loc"])) from None
    for name in changes:
        setattr(customer, name, getattr(checked, name))
    try:
        ports.repo.update_customer(customer, ports.audit(actor, "customer.updated", "customer", customer.id,
                                                         before, customer),
                                   [ports.event(actor, "customer.updated", {"customer": as_updated(customer)})])
    except ConflictError:
        raise ConflictError(f"customer {customer.id} changed meanwhile; read it again and retry",
                            code="concurrent_modification") from None
    return customer


def get_customer(ports: Ports, customer_id: str, param: str = "id") -> Customer:
    if not customer_id.startswith("cus_"):
        customer_id = ports.repo.resolve_alias("customer", customer_id) or customer_id
    customer = ports.repo.get_customer(customer_id)
    if customer is None:
        raise NotFoundError(f"no customer '{customer_id}'", param=param)
    return customer


# plans --------------------------------------------------------------------------
def _check_metrics(ports: Ports, body: PlanBody) -> None:
    """Usage charges and discounts must name stored metrics; bundles include stored metrics."""
    wanted: dict[str, str] = {}
    for index, charge in enumerate(body.charges):
        if charge.metric_code:
            wanted.setdefault(charge.metric_code, f"charges[{index}].metric_code")
        for metric_code in charge.includes:
            wanted.setdefault(metric_code, f"charges[{index}].includes.{metric_code}")
    for index, discount in enumerate(body.usage_discounts):
        wanted.setdefault(discount.metric_code, f"usage_discounts[{index}].metric_code")
    found = ports.repo.get_metrics(set(wanted))
    for code, param in wanted.items():
        if code not in found:
            raise ValidationError(f"no billable metric '{code}'; create it with POST /v1/metrics", param=param)
    for index, charge in enumerate(body.charges):
        metric = found.get(charge.metric_code or "")
        if charge.price_table and metric and not metric.group_by:
            raise ValidationError(f"metric '{metric.code}' has no group_by, so a price table cannot apply",
                                  param=f"charges[{index}].price_table")
        if metric and metric.group_by and charge.model in ("percentage", "duration"):
            raise ValidationError(f"a {charge.model} charge cannot use the grouped metric '{metric.code}'",
                                  param=f"charges[{index}].metric_code")


def create_plan(ports: Ports, actor: Actor, body: PlanCreate) -> Plan:
    actor.require("contracts:write")
    if ports.repo.get_plan(body.code):
        raise ConflictError(f"a plan with code '{body.code}' exists", param="code")
    _check_metrics(ports, body)
    plan = Plan(created_at=ports.clock.now(), **body.model_dump())
    try:
        ports.repo.create_plan(plan, ports.audit(actor, "plan.created", "plan", plan.code, after=plan),
                               [ports.event(actor, "plan.created", {"plan": plan.model_dump(mode="json")})])
    except ConflictError:
        raise ConflictError(f"a plan with code '{body.code}' exists", param="code") from None
    return plan


def get_plan(ports: Ports, code: str, param: str = "code") -> Plan:
    plan = ports.repo.get_plan(code)
    if plan is None:
        raise NotFoundError(f"no plan '{code}'", param=param)
    return plan


def add_plan_version(ports: Ports, actor: Actor, code: str, body: PlanBody) -> Plan:
    """A price change: a new current version. Subscriptions keep the version they have until moved."""
    actor.require("contracts:write")
    current = get_plan(ports, code)
    if body.currency != current.currency:
        raise ValidationError(f"a new version keeps the plan's currency {current.currency}", param="currency")
    periods = {c.code: (c.type, c.billing_period) for c in current.charges}
    for index, charge in enumerate(body.charges):
        if charge.code in periods and periods[charge.code] != (charge.type, charge.billing_period):
            raise ValidationError(
                f"charge '{charge.code}' keeps its type and billing period across versions; add a new charge code",
                param=f"charges[{index}].billing_period")
    _check_metrics(ports, body)
    plan = Plan(code=code, created_at=ports.clock.now(), plan_version=current.plan_version + 1,
                version=current.version, **body.model_dump())
    audit = ports.audit(actor, "plan.version_created", "plan", code, before=current, after=plan)
    try:
        ports.repo.add_plan_version(plan, current.version, audit,
                                    [ports.event(actor, "plan.version_created", {"plan": as_updated(plan)})])
    except ConflictError:
        raise ConflictError(f"plan '{code}' changed meanwhile; read it again", param="code") from None
    plan.version = current.version + 1
    return plan


def plan_versions(ports: Ports, code: str) -> list[Plan]:
    """Every version, oldest first; all but the current one are `legacy` (grandfathered subscriptions keep them)."""
    current = get_plan(ports, code)
    versions = ports.repo.plan_versions(code)
    for plan in versions:
        plan.status = "current" if plan.plan_version == current.plan_version else "legacy"
    return versions


# metrics and coupons ----------------------------------------------------------------
def _create_coded(ports: Ports, actor: Actor, obj: Metric | Coupon, item, kind: str):
    """Write a catalog object keyed by its code, once: a second one with the code is a 409."""
    actor.require("contracts:write")
    try:
        ports.repo.store.transact([Put(item)], [ports.audit(actor, f"{kind}.created", kind, obj.code, after=obj)])
    except ConflictError:
        raise ConflictError(f"a {kind} with code '{obj.code}' exists", param="code") from None
    return obj


def create_metric(ports: Ports, actor: Actor, body: MetricCreate) -> Metric:
    metric = Metric(created_at=ports.clock.now(), **body.model_dump())
    return _create_coded(ports, actor, metric, ports.repo.metric_item(metric), "metric")


def get_metric(ports: Ports, code: str, param: str = "code") -> Metric:
    metric = ports.repo.get_metrics({code}).get(code)
    if metric is None:
        raise NotFoundError(f"no billable metric '{code}'", param=param)
    return metric


def create_coupon(ports: Ports, actor: Actor, body: CouponCreate) -> Coupon:
    coupon = Coupon(created_at=ports.clock.now(), **body.model_dump())
    return _create_coded(ports, actor, coupon, ports.repo.coupon_item(coupon), "coupon")


def get_coupon(ports: Ports, code: str, param: str = "code") -> Coupon:
    coupon = ports.repo.get_coupon(code)
    if coupon is None:
        raise NotFoundError(f"no coupon '{code}'", param=param)
    return coupon
