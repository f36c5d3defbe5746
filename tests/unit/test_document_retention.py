"""Finalized documents are never deleted: the code has no path that could (the bucket's Object
Lock and its deny-delete policy are checked in tests/infrastructure/test_delivery_stack.py)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from shared.adapters.aws import S3Documents
from shared.services.context import Documents

ROOT = Path(__file__).resolve().parents[2]
S3_DELETES = {"delete_object", "delete_objects", "delete_bucket", "put_bucket_lifecycle_configuration",
              "put_object_retention", "put_object_lock_configuration"}


def public_methods(cls) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls, callable) if not name.startswith("_")}


def test_the_documents_adapter_and_port_only_put_and_get():
    assert public_methods(S3Documents) == {"put", "get"}
    assert public_methods(Documents) == {"put", "get"}


def test_no_handler_or_service_calls_an_s3_delete():
    calls = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.func.attr}"
        for folder in ("shared", "functions")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "shared/local" not in path.as_posix()  # the local runtime's own moto housekeeping
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in S3_DELETES
    ]
    assert calls == []
