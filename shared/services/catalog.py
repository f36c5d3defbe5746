"""Billing entities, customers and plans."""

from __future__ import annotations

from shared.billing.errors import ConflictError, NotFoundError
from shared.billing.models import BillingEntity, Customer, Plan
from shared.services.context import SYSTEM, Actor, Ports
from shared.services.ids import new_id
from shared.services.schemas import BillingEntityCreate, CustomerCreate, PlanCreate

DEFAULT_ENTITY = BillingEntityCreate(
    code="default",
    name="Billing Platform Inc.",
    country="US",
    currency="USD",
    invoice_prefix="INV",
    address_lines=["1 Main Street", "Wilmington, DE 19801"],
)


# billing entities -------------------------------------------------------------
def create_entity(ports: Ports, actor: Actor, body: BillingEntityCreate) -> BillingEntity:
    actor.require("entities:write")
    if ports.repo.resolve_alias("entity", body.code):
        raise ConflictError(f"a billing entity with code '{body.code}' exists", param="code")
    entity = BillingEntity(id=new_id("ent"), created_at=ports.clock.now(), **body.model_dump())
    try:
        ports.repo.create_entity(entity, ports.audit(actor, "billing_entity.created", "billing_entity",
                                                     entity.id, after=entity))
    except ConflictError:
        raise ConflictError(f"a billing entity with code '{body.code}' exists", param="code") from None
    ports.publish(actor, "billing_entity.created", {"billing_entity": entity.model_dump(mode="json")})
    return entity


def default_entity(ports: Ports) -> BillingEntity:
    """The entity customers bill from unless they name one; created on first use."""
    entity_id = ports.repo.resolve_alias("entity", DEFAULT_ENTITY.code)
    if entity_id is None:
        try:
            return create_entity(ports, SYSTEM, DEFAULT_ENTITY)
        except ConflictError:  # created concurrently
            entity_id = ports.repo.resolve_alias("entity", DEFAULT_ENTITY.code)
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
    data = body.model_dump(exclude={"billing_entity"})
    customer = Customer(id=new_id("cus"), billing_entity=entity.id, created_at=ports.clock.now(), **data)
    try:
        ports.repo.create_customer(customer, ports.audit(actor, "customer.created", "customer",
                                                         customer.id, after=customer))
    except ConflictError:
        raise ConflictError(f"a customer with external_id '{body.external_id}' exists",
                            param="external_id") from None
    ports.publish(actor, "customer.created", {"customer": customer.model_dump(mode="json")})
    return customer


def get_customer(ports: Ports, customer_id: str, param: str = "id") -> Customer:
    if not customer_id.startswith("cus_"):
        customer_id = ports.repo.resolve_alias("customer", customer_id) or customer_id
    customer = ports.repo.get_customer(customer_id)
    if customer is None:
        raise NotFoundError(f"no customer '{customer_id}'", param=param)
    return customer


# plans --------------------------------------------------------------------------
def create_plan(ports: Ports, actor: Actor, body: PlanCreate) -> Plan:
    actor.require("contracts:write")
    if ports.repo.get_plan(body.code):
        raise ConflictError(f"a plan with code '{body.code}' exists", param="code")
    plan = Plan(created_at=ports.clock.now(), **body.model_dump())
    try:
        ports.repo.create_plan(plan, ports.audit(actor, "plan.created", "plan", plan.code, after=plan))
    except ConflictError:
        raise ConflictError(f"a plan with code '{body.code}' exists", param="code") from None
    ports.publish(actor, "plan.created", {"plan": plan.model_dump(mode="json")})
    return plan


def get_plan(ports: Ports, code: str, param: str = "code") -> Plan:
    plan = ports.repo.get_plan(code)
    if plan is None:
        raise NotFoundError(f"no plan '{code}'", param=param)
    return plan
