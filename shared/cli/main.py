"""`billing`: the staff CLI and the local platform.

Staff commands call the same service layer with the same pydantic validation as the API,
against the local platform (its runtime file) or a deployed stack (`--stack`, read from
CloudFormation outputs with the caller's AWS credentials).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from pydantic import ValidationError as PydanticValidationError

from shared.billing.errors import BillingError

STACK_OUTPUT_ENV = {
    "BillingTableName": "BILLING_TABLE",
    "CountersTableName": "COUNTERS_TABLE",
    "IdempotencyTableName": "IDEMPOTENCY_TABLE",
    "DocumentsBucketName": "DOCUMENTS_BUCKET",
    "ExportsBucketName": "EXPORTS_BUCKET",
    "EventBusName": "EVENT_BUS_NAME",
    "BillRunStateMachineArn": "BILL_RUN_STATE_MACHINE_ARN",
}


def connect(args) -> None:
    """Point this process at the platform: the local runtime's file, or a deployed stack."""
    if args.stack:
        import boto3

        outputs = boto3.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0]["Outputs"]
        for output in outputs:
            if output["OutputKey"] in STACK_OUTPUT_ENV:
                os.environ[STACK_OUTPUT_ENV[output["OutputKey"]]] = output["OutputValue"]
        return
    from shared.local.cli import home

    runtime_file = Path(args.runtime or home() / "runtime.json")
    if not runtime_file.exists():
        raise SystemExit(f"no local platform found at {runtime_file}: start one with `billing local up` "
                         "or name a deployed stack with --stack")
    runtime = json.loads(runtime_file.read_text())
    os.environ.update(runtime["env"])
    os.environ.update({  # the local platform's AWS endpoint and clock; moto takes any credentials
        "AWS_ENDPOINT_URL": runtime["aws_endpoint"], "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
        "BILLING_CLOCK_FILE": runtime["clock_file"]})


def staff_context(args):
    from shared.services.context import Actor
    from shared.services.wiring import build_ports

    connect(args)
    return build_ports(), Actor(f"cli:{getpass.getuser()}", args.role)


def emit(obj) -> None:
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump(mode="json")
    print(json.dumps(obj, indent=2, default=str))


def body_from(args, fields: list[str]) -> dict:
    """A request body from --json/--file, with explicit flags taking precedence."""
    body = json.loads(args.json) if getattr(args, "json", None) else {}
    if getattr(args, "file", None):
        body.update(json.loads(Path(args.file).read_text()))
    for name in fields:
        value = getattr(args, name, None)
        if value is not None:
            body[name] = value
    return body


# commands ---------------------------------------------------------------------------
def cmd_customers_create(args):
    from shared.services import catalog
    from shared.services.requests.catalog import CustomerCreate

    ports, actor = staff_context(args)
    fields = ["name", "email", "country", "region", "currency", "language", "external_id",
              "billing_entity", "tax_id", "timezone"]
    emit(catalog.create_customer(ports, actor, CustomerCreate.model_validate(body_from(args, fields))))


def cmd_customers_list(args):
    ports, _ = staff_context(args)
    data, more = ports.repo.list_customers(args.limit, args.starting_after)
    emit({"data": [c.model_dump(mode="json") for c in data], "has_more": more})


def cmd_plans_create(args):
    from shared.services import catalog
    from shared.services.requests.catalog import PlanCreate

    ports, actor = staff_context(args)
    emit(catalog.create_plan(ports, actor, PlanCreate.model_validate(body_from(args, []))))


def cmd_entities_create(args):
    from shared.services import catalog
    from shared.services.requests.catalog import BillingEntityCreate

    ports, actor = staff_context(args)
    emit(catalog.create_entity(ports, actor, BillingEntityCreate.model_validate(body_from(args, []))))


def cmd_entities_verify_chain(args) -> int:
    """Recompute the hash chain of each series; exit 1 when a link is broken."""
    from shared.services import invoice_lifecycle

    ports, actor = staff_context(args)
    actor.require("read")
    series = args.series or ["invoice", "credit_note"]
    results = [invoice_lifecycle.verify_chain(ports, args.entity, kind) for kind in series]
    emit(results)
    return 0 if all(result["ok"] for result in results) else 1


def cmd_subscriptions_create(args):
    from shared.services import subscriptions
    from shared.services.requests.contracts import SubscriptionCreate

    ports, actor = staff_context(args)
    body = body_from(args, ["customer_id", "plan_code", "external_id", "start_date", "end_date",
                            "billing_alignment", "billing_day", "term_months", "termination_month", "setup_fee",
                            "early_termination_fee"])
    for override in args.price or []:
        code, _, price = override.partition("=")
        body.setdefault("price_overrides", {})[code] = price
    emit(subscriptions.create_subscription(ports, actor, SubscriptionCreate.model_validate(body)))


def cmd_subscriptions_show(args):
    from shared.services import subscriptions

    ports, _ = staff_context(args)
    emit(subscriptions.get_subscription(ports, args.id))


def cmd_subscriptions_terminate(args):
    from shared.services import subscriptions
    from shared.services.requests.contracts import TerminateRequest

    ports, actor = staff_context(args)
    body = TerminateRequest.model_validate(body_from(args, ["effective", "date", "month", "refund", "reason"]))
    emit(subscriptions.terminate_subscription(ports, actor, args.id, body))


# contract actions: (service function, request schema, flags), the same as the API's
CONTRACT_ACTIONS = {
    "pause": ("pause", "PauseRequest", ["start", "end", "reason"], "pause invoicing (V5-2779)"),
    "resume": ("resume", "ResumeRequest", ["on"], "resume a paused contract"),
    "extend-trial": ("extend_trial", "TrialExtension", ["trial_end"], "extend a running trial (V5-3854)"),
    "regret": ("regret", "RegretRequest", ["reason"], "regret within the plan's window, all credited (V5-2713)"),
    "change": ("change_plan", "PlanChangeRequest", ["plan_code", "quantity", "timing", "date", "proration"],
               "upgrade, downgrade or change the quantity"),
    "transfer": ("transfer", "OwnershipTransfer", ["customer_id", "on"], "change of ownership (V5-371)"),
    "billing-day": ("change_billing_day", "BillingDayChange", ["billing_day", "billing_month", "billing_weekday"],
                    "change the billing day from the next period (V5-3687)"),
    "terms": ("change_terms", "TermsChange", ["auto_renew", "renew_months", "end_date"],
              "auto-renew on/off, renew, extend the term (V5-361)"),
    "bill-ahead": ("bill_ahead", "BillAhead", ["cycles"], "invoice upcoming cycles now (V5-3110)"),
    "add-charge": ("add_charge", "ContractChargeAdd",
                   ["code", "name", "price", "type", "billing_period", "start", "end", "reason"],
                   "add a contract charge (V5-2811)"),
}


def cmd_contract_action(args):
    from shared.services import contract_actions
    from shared.services.requests import contracts

    function, schema, fields, _ = CONTRACT_ACTIONS[args.action]
    ports, actor = staff_context(args)
    body = getattr(contracts, schema).model_validate(body_from(args, fields))
    emit(getattr(contract_actions, function)(ports, actor, args.id, body))


def cmd_subscriptions_remove_charge(args):
    from shared.services import contract_actions
    from shared.services.requests.contracts import ContractChargeRemove

    ports, actor = staff_context(args)
    body = ContractChargeRemove.model_validate(body_from(args, ["on"]))
    emit(contract_actions.remove_charge(ports, actor, args.id, args.code, body))


def cmd_subscriptions_history(args):
    from shared.services import contract_actions

    ports, _ = staff_context(args)
    emit(contract_actions.history(ports, args.id))


def cmd_subscriptions_upcoming(args):
    from shared.services import preview

    ports, _ = staff_context(args)
    emit([invoice.model_dump(mode="json") for invoice in preview.upcoming(ports, args.id, args.periods)])


def cmd_subscriptions_list(args):
    from shared.services import subscriptions

    ports, _ = staff_context(args)
    data, more = subscriptions.list_subscriptions(ports, args.limit, args.starting_after, args.customer_id,
                                                  args.status.split(",") if args.status else None,
                                                  args.include_churned)
    emit({"data": [s.model_dump(mode="json") for s in data], "has_more": more})


def cmd_bill_runs_start(args):
    from shared.services import bill_runs
    from shared.services.requests.bill_runs import BillRunCreate

    ports, actor = staff_context(args)
    emit(bill_runs.start_bill_run(ports, actor, BillRunCreate.model_validate(body_from(args, ["as_of"])),
                                  trigger="cli"))


def cmd_bill_runs_show(args):
    from shared.services import bill_runs

    ports, _ = staff_context(args)
    emit(bill_runs.get_bill_run(ports, args.id))


def cmd_invoices_list(args):
    from shared.services import invoices

    ports, _ = staff_context(args)
    data, more = invoices.list_invoices(ports, args.limit, args.starting_after, args.customer_id,
                                        args.subscription_id, args.status)
    emit({"data": [i.model_dump(mode="json") for i in data], "has_more": more})


def cmd_credit_notes_list(args):
    from shared.services import invoices

    ports, _ = staff_context(args)
    data, more = invoices.list_invoices(ports, args.limit, args.starting_after, args.customer_id,
                                        args.subscription_id, args.status, kind="credit_note",
                                        credit_note_of=args.invoice_id)
    emit({"data": [i.model_dump(mode="json") for i in data], "has_more": more})


def cmd_invoices_show(args):
    from shared.services import invoices

    ports, _ = staff_context(args)
    emit(invoices.get_invoice(ports, args.id))


def cmd_invoices_pdf(args):
    from shared.services import invoices

    ports, _ = staff_context(args)
    invoice, pdf = invoices.read_pdf(ports, args.id)
    out = Path(args.output or f"{invoice.number}.pdf")
    out.write_bytes(pdf)
    print(out)


def cmd_invoices_preview(args):
    from shared.documents.pdf import render_invoice_pdf  # rendered here: the CLI has weasyprint
    from shared.services import invoices

    ports, actor = staff_context(args)
    actor.require("read")
    mode = "proforma" if args.proforma else "preview"
    out = Path(args.output or f"{mode}-{args.id}.pdf")
    out.write_bytes(invoices.preview_pdf(ports, args.id, mode, render_invoice_pdf))
    print(out)


def cmd_invoices_merge(args):
    from shared.services import regrouping
    from shared.services.requests.invoices import InvoiceMerge

    ports, actor = staff_context(args)
    emit(regrouping.merge_drafts(ports, actor, InvoiceMerge(invoice_ids=args.ids)))


def cmd_invoices_split(args):
    from shared.services import regrouping
    from shared.services.requests.invoices import InvoiceSplit

    ports, actor = staff_context(args)
    body = InvoiceSplit(by=args.by, percentages=args.percentages.split(",") if args.percentages else None)
    emit({"data": [c.model_dump(mode="json") for c in regrouping.split_draft(ports, actor, args.id, body)]})


def cmd_invoices_rebill(args):
    from shared.services import regrouping
    from shared.services.requests.invoices import RebillRequest

    ports, actor = staff_context(args)
    note, draft = regrouping.rebill(ports, actor, args.id, RebillRequest(reason=args.reason))
    emit({"credit_note": note.model_dump(mode="json"), "draft": draft.model_dump(mode="json")})


def cmd_api_keys_create(args):
    from shared.services import auth
    from shared.services.requests.access import ApiKeyCreate

    ports, actor = staff_context(args)
    record, key = auth.create_api_key(ports, actor, ApiKeyCreate(name=args.name, role=args.key_role))
    emit({**record, "key": key})


def cmd_audit_list(args):
    ports, _ = staff_context(args)
    data, more = ports.repo.list_audit(args.limit, args.starting_after, args.object_id, args.actor, args.action)
    emit({"data": [e.model_dump(mode="json") for e in data], "has_more": more})


def cmd_design_check(args) -> int:
    """Seed 002 design check, offline: the same validation as POST /v1/designs/check."""
    from pydantic import TypeAdapter

    from shared.billing.design import CommercialTerm, parse_design
    from shared.billing.errors import ValidationError
    from shared.services.revenue import design_violations

    texts = {}
    for name in ("file", "ledger"):
        path = getattr(args, name)
        try:
            texts[name] = Path(path).read_bytes() if path else None
        except OSError as error:
            raise ValidationError(f"cannot read {path}: {error.strerror}", param=name) from None
    design = parse_design(texts["file"])
    ledger = TypeAdapter(list[CommercialTerm]).validate_json(texts["ledger"]) if texts["ledger"] else None
    violations = design_violations(design, ledger)
    emit({"valid": not violations, "violations": violations})
    return 1 if violations else 0


def cmd_demo(args):
    from shared.cli.demo import run_demo

    run_demo(Path(args.out), clock=args.clock)


# parser -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="billing", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def group(name: str, help_: str):
        return commands.add_parser(name, help=help_).add_subparsers(dest="action", required=True)

    def staff(sub, name: str, func, help_: str):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--stack", help="a deployed stack's name (default: the local platform)")
        p.add_argument("--runtime", help="the local platform's runtime.json")
        p.add_argument("--role", default=os.environ.get("BILLING_ROLE", "admin"),
                       choices=["admin", "cre", "finance"], help="act with this role's permissions")
        p.set_defaults(func=func)
        return p

    def paged(p):
        p.add_argument("--limit", type=int, default=20)
        p.add_argument("--starting-after", dest="starting_after")

    customers = group("customers", "billing accounts")
    p = staff(customers, "create", cmd_customers_create, "create a customer")
    for flag in ("name", "email", "country", "region", "currency", "language", "external-id",
                 "billing-entity", "tax-id", "timezone", "json", "file"):
        p.add_argument(f"--{flag}", dest=flag.replace("-", "_"))
    paged(staff(customers, "list", cmd_customers_list, "list customers"))

    plans = group("plans", "the catalog")
    p = staff(plans, "create", cmd_plans_create, "create a plan from JSON")
    p.add_argument("--json")
    p.add_argument("--file")

    entities = group("entities", "billing entities (sellers)")
    p = staff(entities, "create", cmd_entities_create, "create a billing entity from JSON")
    p.add_argument("--json")
    p.add_argument("--file")
    p = staff(entities, "verify-chain", cmd_entities_verify_chain,
              "recompute the documents' hash chain and name the first broken link (exit 1)")
    p.add_argument("entity", help="the billing entity's id or code")
    p.add_argument("--series", action="append", choices=["invoice", "credit_note"],
                   help="one series (repeatable); default: both")

    subs = group("subscriptions", "contracts")
    p = staff(subs, "create", cmd_subscriptions_create, "create a contract")
    for flag in ("customer-id", "plan-code", "external-id", "start-date", "end-date", "billing-alignment",
                 "billing-day", "term-months", "termination-month", "setup-fee", "early-termination-fee",
                 "json", "file"):
        p.add_argument(f"--{flag}", dest=flag.replace("-", "_"))
    p.add_argument("--price", action="append", metavar="CHARGE=AMOUNT", help="price override, repeatable")
    p = staff(subs, "show", cmd_subscriptions_show, "show a contract by id or contract ID")
    p.add_argument("id")
    p = staff(subs, "terminate", cmd_subscriptions_terminate, "terminate a contract (UC02)")
    p.add_argument("id")
    p.add_argument("--effective", choices=["immediately", "end_of_period", "on_date", "month"],
                   default="end_of_period")
    p.add_argument("--date")
    p.add_argument("--month", help="with --effective month (UC05): YYYY-MM")
    p.add_argument("--refund", choices=["none", "prorated"])
    p.add_argument("--reason")

    for name, (_, _, fields, help_) in CONTRACT_ACTIONS.items():
        p = staff(subs, name, cmd_contract_action, help_)
        p.add_argument("id")
        for field in [*fields, "json", "file"]:
            p.add_argument(f"--{field.replace('_', '-')}", dest=field)
    p = staff(subs, "remove-charge", cmd_subscriptions_remove_charge, "remove a contract charge (V5-2811)")
    p.add_argument("id")
    p.add_argument("code")
    p.add_argument("--on")
    p = staff(subs, "history", cmd_subscriptions_history, "who did what and when, refusals included (V5-3161)")
    p.add_argument("id")
    p = staff(subs, "upcoming", cmd_subscriptions_upcoming, "preview the next periods' invoices")
    p.add_argument("id")
    p.add_argument("--periods", type=int, default=3)
    p = staff(subs, "list", cmd_subscriptions_list, "list contracts (churned hidden unless asked)")
    paged(p)
    p.add_argument("--customer-id", dest="customer_id")
    p.add_argument("--status", help="comma-separated states")
    p.add_argument("--include-churned", dest="include_churned", action="store_true")

    runs = group("bill-runs", "bill runs")
    p = staff(runs, "start", cmd_bill_runs_start, "start a bill run")
    p.add_argument("--as-of", dest="as_of")
    p = staff(runs, "show", cmd_bill_runs_show, "show a bill run")
    p.add_argument("id")

    invoices = group("invoices", "invoices")
    p = staff(invoices, "list", cmd_invoices_list, "list invoices")
    paged(p)
    for flag in ("customer-id", "subscription-id", "status"):
        p.add_argument(f"--{flag}", dest=flag.replace("-", "_"))
    notes = group("credit-notes", "credit notes")
    p = staff(notes, "list", cmd_credit_notes_list, "list credit notes (--invoice-id: those of one invoice)")
    paged(p)
    for flag in ("customer-id", "subscription-id", "status", "invoice-id"):
        p.add_argument(f"--{flag}", dest=flag.replace("-", "_"))
    p = staff(invoices, "show", cmd_invoices_show, "show an invoice")
    p.add_argument("id")
    p = staff(invoices, "pdf", cmd_invoices_pdf, "download the PDF of record of an invoice or credit note")
    p.add_argument("id")
    p.add_argument("-o", "--output")
    p = staff(invoices, "preview", cmd_invoices_preview, "a draft as a PDF, watermarked or as a pro-forma")
    p.add_argument("id")
    p.add_argument("--proforma", action="store_true")
    p.add_argument("-o", "--output")
    p = staff(invoices, "merge", cmd_invoices_merge, "one customer's drafts as one draft")
    p.add_argument("ids", nargs="+")
    p = staff(invoices, "split", cmd_invoices_split, "a draft as several: --by ATTRIBUTE or --percentages 50,50")
    p.add_argument("id")
    p.add_argument("--by")
    p.add_argument("--percentages")
    p = staff(invoices, "rebill", cmd_invoices_rebill, "credit a finalized invoice in full and open a draft copy")
    p.add_argument("id")
    p.add_argument("--reason", required=True)

    keys = group("api-keys", "API access")
    p = staff(keys, "create", cmd_api_keys_create, "create an API key")
    p.add_argument("--name", required=True)
    p.add_argument("--key-role", required=True, choices=["admin", "cre", "finance"])

    audit = group("audit", "the audit log")
    p = staff(audit, "list", cmd_audit_list, "list audit events, newest first")
    paged(p)
    for flag in ("object-id", "actor", "action"):
        p.add_argument(f"--{flag}", dest=flag.replace("-", "_"))

    design = group("design", "seed 002 subscription designs")
    p = design.add_parser("check", help="report every violation of a design JSON (exit 1 when there are some)")
    p.add_argument("file", help="the design: seed 002's output JSON")
    p.add_argument("--ledger", help="the commercial terms ledger (JSON list) DS-008 checks prices against")
    p.set_defaults(func=cmd_design_check)

    demo = commands.add_parser("demo", help="run the whole platform locally and bill a sample book")
    demo.add_argument("--out", default="out/demo")
    demo.add_argument("--clock", default="2025-03-01T00:00:00Z")
    demo.set_defaults(func=cmd_demo)

    from shared.local.cli import add_local_commands

    add_local_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except BillingError as error:
        print(json.dumps({"error": error.to_dict()}, indent=2), file=sys.stderr)
        return 2
    except PydanticValidationError as error:
        first = error.errors()[0]
        from shared.services.requests.common import first_error_field

        param = first_error_field(tuple(first["loc"]))
        print(json.dumps({"error": {"type": "invalid_request_error", "code": "validation_failed",
                                    "message": f"{param}: {first['msg']}", "param": param}}, indent=2),
              file=sys.stderr)
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
