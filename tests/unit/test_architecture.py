"""The import rules of DESIGN.md, checked by walking every module's imports."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


RULES = [
    ("shared/billing", ("boto3", "botocore", "stripe", "weasyprint", "aws_lambda_powertools", "moto",
                        "shared.adapters", "shared.services", "shared.local", "shared.cli", "functions",
                        "stacks", "requests", "urllib")),
    ("shared/services", ("shared.local", "shared.cli", "functions", "stacks", "moto", "weasyprint")),
    ("shared/adapters", ("shared.services", "shared.local", "shared.cli", "functions", "stacks", "moto")),
    ("functions", ("shared.adapters", "shared.local", "shared.cli", "stacks", "moto", "aws_cdk")),
]


@pytest.mark.parametrize(("folder", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_imports_run_one_way(folder, forbidden):
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules(folder)
        for name in imports_of(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]
    assert offenders == []


def test_the_core_reads_no_clock():
    offenders = [str(p.relative_to(ROOT)) for p in modules("shared/billing")
                 if "datetime.now" in p.read_text() or "date.today" in p.read_text()]
    assert offenders == []


def test_only_the_renderer_imports_weasyprint():
    offenders = [str(p.relative_to(ROOT)) for p in modules("functions")
                 if "weasyprint" in {n.split(".")[0] for n in imports_of(p)}]
    assert offenders == []



def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def targets_of(path: Path, known: set[str]) -> set[str]:
    """Our modules that `path` imports; `from a.b import c` counts as a.b.c when c is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                      for alias in node.names}
    return (found & known) - {module_name(path)}


def test_no_import_cycles():
    """Every import counts, also one inside a function: a lazy import hides a cycle, it does not remove it."""
    paths = modules("shared") + modules("functions")
    known = {module_name(p) for p in paths}
    graph = {module_name(p): targets_of(p, known) for p in paths}
    cycles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_request_models_stay_split_by_capability():
    """No single module for every request body again: one module per capability under services/requests."""
    assert not (ROOT / "shared/services/schemas.py").exists()
    requests = sorted((ROOT / "shared/services/requests").glob("*.py"))
    assert len(requests) > 1
    too_long = [f"{p.relative_to(ROOT)}: {n} lines" for p in requests if (n := len(p.read_text().splitlines())) >= 400]
    assert too_long == []
