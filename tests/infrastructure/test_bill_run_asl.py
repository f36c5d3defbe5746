"""Static checks of statemachines/bill_run.asl.json (no synthesis).

moto and cfn-lint accept a dangling `Next` and unknown error names, so they are checked here.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from stacks.constructs.workflows import (
    ASL_PATH,
    FUNCTION_PLACEHOLDERS,
)

pytestmark = pytest.mark.infra

REPO_ROOT = Path(__file__).resolve().parents[2]
ERRORS_FILE = REPO_ROOT / "shared" / "billing" / "errors.py"
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "RetryableError",
}
# Fields AccountFailed may read: present in every iteration's state whatever task failed.
ALWAYS_PRESENT = {"$.customer_id", "$.bill_run_id", "$.as_of", "$.error.Error", "$.error.Cause"}


@pytest.fixture(scope="module")
def text() -> str:
    return ASL_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def asl(text: str) -> dict:
    return json.loads(text)


def scopes(machine: dict, path: str = "") -> Iterator[tuple[str, dict]]:
    """Every (path, {StartAt, States}) scope: the machine and each Map/Parallel body."""
    yield path or "<root>", machine
    for name, state in machine["States"].items():
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from scopes(state[key], f"{path}/{name}")
        for index, branch in enumerate(state.get("Branches", [])):
            yield from scopes(branch, f"{path}/{name}[{index}]")


def all_states(machine: dict) -> Iterator[tuple[str, dict]]:
    for _, scope in scopes(machine):
        yield from scope["States"].items()


def targets(state: dict) -> list[str]:
    names = [state[k] for k in ("Next", "Default") if k in state]
    names += [choice["Next"] for choice in state.get("Choices", [])]
    names += [catcher["Next"] for catcher in state.get("Catch", [])]
    return names


def test_placeholders_match_the_substitutions_cdk_passes(text: str) -> None:
    # Given the ASL file and the substitutions stacks/constructs/workflows.py passes
    expected = set(FUNCTION_PLACEHOLDERS)
    # Then the file uses exactly those placeholders
    assert set(PLACEHOLDER.findall(text)) == expected


def test_every_transition_names_a_state_of_its_scope(asl: dict) -> None:
    for where, scope in scopes(asl):
        names = set(scope["States"])
        assert scope["StartAt"] in names, f"{where}: StartAt {scope['StartAt']!r} is missing"
        for name, state in scope["States"].items():
            for target in targets(state):
                assert target in names, f"{where}/{name} -> {target!r}: no such state"


def test_every_state_is_reachable_and_every_path_terminates(asl: dict) -> None:
    for where, scope in scopes(asl):
        seen, todo = set(), [scope["StartAt"]]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(targets(scope["States"][name]))
        assert seen == set(scope["States"]), f"{where}: unreachable {set(scope['States']) - seen}"
        for name, state in scope["States"].items():
            terminal = state["Type"] in {"Succeed", "Fail"} or state.get("End") is True
            assert terminal or "Next" in state or state["Type"] == "Choice", f"{where}/{name}"


def test_error_names_exist_in_the_error_hierarchy_or_aws(asl: dict) -> None:
    if not ERRORS_FILE.exists():
        pytest.skip("shared/billing/errors.py is not written yet")
    classes = {
        node.name
        for node in ast.walk(ast.parse(ERRORS_FILE.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
    }
    for name, state in all_states(asl):
        for rule in [*state.get("Retry", []), *state.get("Catch", [])]:
            for error in rule["ErrorEquals"]:
                known = error in classes or error.startswith(("Lambda.", "States."))
                assert known, f"{name}: {error!r} is neither in errors.py nor an AWS error"


def test_lambda_tasks_resolve_to_the_five_function_placeholders(asl: dict) -> None:
    resources = {
        state["Resource"]
        for _, state in all_states(asl)
        if state["Type"] == "Task" and "::" not in state["Resource"]
    }
    assert resources == {f"${{{key}}}" for key in FUNCTION_PLACEHOLDERS}


def test_every_task_retries_transient_errors_with_backoff(asl: dict) -> None:
    for name, state in all_states(asl):
        if state["Type"] != "Task":
            continue
        retry = state.get("Retry", [])
        assert retry, f"{name} has no Retry"
        assert TRANSIENT <= set(retry[0]["ErrorEquals"]), name
        assert (retry[0]["IntervalSeconds"], retry[0]["MaxAttempts"], retry[0]["BackoffRate"]) == (
            1,
            3,
            2,
        )


def test_one_account_failure_never_fails_the_map(asl: dict) -> None:
    # Given the per-account iteration
    body = asl["States"]["InvoiceAccounts"]["ItemProcessor"]
    states = body["States"]
    # Then every task catches everything into AccountFailed, keeping its input under $.error
    for name, state in states.items():
        if state["Type"] == "Task":
            assert state["Catch"] == [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "AccountFailed"}
            ], name
    # And AccountFailed builds its record only from fields that are always there
    failed = states["AccountFailed"]
    assert failed["Type"] == "Pass" and failed.get("End") is True
    paths = {v for k, v in failed["Parameters"].items() if k.endswith(".$")}
    assert paths <= ALWAYS_PRESENT, paths - ALWAYS_PRESENT
    assert failed["Parameters"]["status"] == "failed"


def test_map_shape(asl: dict) -> None:
    invoice_accounts = asl["States"]["InvoiceAccounts"]
    assert invoice_accounts["ItemsPath"] == "$.accounts"
    assert invoice_accounts["MaxConcurrency"] == 4
    assert invoice_accounts["ResultPath"] == "$.results"
    assert "ItemSelector" not in invoice_accounts  # ListDue emits self-contained items
    assert invoice_accounts["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}
    assert asl["States"]["Complete"].get("End") is True


def test_invoice_finalized_is_not_left_to_a_step_after_delivery(asl: dict, text: str) -> None:
    # invoice.finalized is committed with the invoice (the outbox, finalize_document): announced before
    # the PDF is rendered and the e-mail sent, so a failed Deliver cannot leave the invoice unannounced.
    states = asl["States"]["InvoiceAccounts"]["ItemProcessor"]["States"]
    assert states["Deliver"]["Next"] == "AccountDone"
    assert "events:putEvents" not in text and "PublishFinalized" not in states


def test_uses_only_what_moto_executes(text: str, asl: dict) -> None:
    # moto's executor lacks ItemBatcher and JSONata; Wait really sleeps.
    assert "ItemBatcher" not in text
    assert "JSONata" not in text and "QueryLanguage" not in text
    for name, state in all_states(asl):
        assert state["Type"] != "Wait", name
        assert not isinstance(state.get("ToleratedFailurePercentage"), int), name
