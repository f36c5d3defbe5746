"""The CDK app: `python -m stacks.app` synthesizes it (cdk.json's "app")."""

from __future__ import annotations

import json
import os
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.billing_stack import STACK_NAME, BillingStack
from stacks.config import REPO_ROOT

CDK_JSON = REPO_ROOT / "cdk.json"


def default_context() -> dict[str, Any]:
    """cdk.json's context (our keys + feature flags), also when synthesized without the CLI."""
    return dict(json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {}))


def build_app(context: dict[str, Any] | None = None, *, outdir: str | None = None) -> cdk.App:
    """Build (not synthesize) the app.

    Context precedence: `context` (the caller) > the CDK CLI (`-c`, cdk.context.json) >
    cdk.json. Pass `{"aws:cdk:bundling-stacks": []}` to synthesize without building the
    dependencies layer (tests, the local runtime). cdk-nag's AwsSolutions pack runs as a
    validation plugin: `synth()` raises on any unacknowledged error.
    """
    app = cdk.App(
        context=default_context(),
        post_cli_context=dict(context or {}),
        outdir=outdir,
    )
    BillingStack(app, STACK_NAME, description="Serverless billing platform")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    # The CDK CLI passes CDK_OUTDIR; run directly, write to ./cdk.out like the CLI would.
    build_app(outdir=os.environ.get("CDK_OUTDIR", str(REPO_ROOT / "cdk.out"))).synth()
