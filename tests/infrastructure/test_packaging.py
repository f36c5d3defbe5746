"""What the function code asset leaves out must not be imported by what it ships."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.infra

REPO_ROOT = Path(__file__).resolve().parents[2]
NOT_SHIPPED = ("shared.local", "shared.cli")


def shipped_modules() -> list[Path]:
    files = list((REPO_ROOT / "functions").rglob("*.py"))
    for path in (REPO_ROOT / "shared").rglob("*.py"):
        relative = path.relative_to(REPO_ROOT / "shared").parts
        if relative[0] not in {"local", "cli"}:
            files.append(path)
    return files


def test_shipped_code_never_imports_the_local_runtime_or_the_cli() -> None:
    offenders = []
    for path in shipped_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{path.relative_to(REPO_ROOT)}: {name}"
                for name in names
                if name.startswith(NOT_SHIPPED)
            ]
    assert offenders == []
