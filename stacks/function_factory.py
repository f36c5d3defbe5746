"""The one place that decides how a Lambda function is built.

Every function gets: Python 3.12, one architecture for the whole app (arm64 by default: Graviton
is about 20 % cheaper per GB-second, and every dependency ships manylinux aarch64 wheels, so the
layer is cross-installed by pip without emulation), X-Ray active tracing, the Powertools
environment, its own log group with a retention, its own IAM role (no managed policies; only the
log-group write grant here, the rest granted by the construct that wires the function), the
shared code asset (`shared/` + `functions/` of the repository) and the dependencies layer.
The PDF renderer is the exception: a container image with weasyprint and Pango.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, Duration, IgnoreMode, ILocalBundling
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks import nag
from stacks.config import REPO_ROOT, BillingConfig

RUNTIME = lambda_.Runtime.PYTHON_3_12
PYTHON_VERSION = "3.12"

# Glob patterns, last match wins (CDK matches bare names against every path segment).
# Start from "nothing", re-include the two packages the functions import, then drop what the
# functions never import (`shared/local` is the local runtime, `shared/cli` the staff CLI) and
# build debris. Tests, .venv, cdk.out, .git, events/, stacks/, layers/ never ship.
CODE_EXCLUDE: list[str] = [
    "*",
    ".*",
    "!shared",
    "!shared/**",
    "!functions",
    "!functions/**",
    "shared/local",
    "shared/cli",
    "__pycache__",
    "*.pyc",
    "*.md",
    "tests",
]

# The renderer image additionally needs its Dockerfile and the requirements it installs.
IMAGE_EXCLUDE: list[str] = [
    *CODE_EXCLUDE,
    "!layers",
    "!layers/renderer",
    "!layers/renderer/Dockerfile",
    "!layers/dependencies",
    "!layers/dependencies/requirements.txt",
]

# Packages the Lambda Python runtime already provides; shipping them would shadow it with a
# mismatched botocore (aws-xray-sdk pulls botocore in transitively).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")


@dataclass(frozen=True)
class FunctionSpec:
    timeout_seconds: int
    memory_mb: int
    description: str


FUNCTIONS: dict[str, FunctionSpec] = {
    # API Gateway's REST integration gives up after 29 s.
    "api": FunctionSpec(29, 1024, "Public REST API (/v1/...), Bearer API keys"),
    "billrun_list_due": FunctionSpec(120, 512, "BillRun: list the accounts due at as_of"),
    "billrun_invoice_account": FunctionSpec(120, 512, "BillRun: invoice one account"),
    "invoice_render_pdf": FunctionSpec(120, 2048, "BillRun: render the invoice PDF (weasyprint)"),
    "invoice_deliver": FunctionSpec(60, 512, "BillRun: e-mail the invoice (SES)"),
    "document_issue": FunctionSpec(120, 2048, "Credit notes, manual invoices: PDF of record and e-mail"),
    # the API waits for it: within API Gateway's 29 s
    "document_preview": FunctionSpec(25, 2048, "Draft preview or pro-forma PDF for the API (weasyprint)"),
    "billrun_complete": FunctionSpec(60, 512, "BillRun: record the bill run's outcome"),
    "webhooks_dispatch": FunctionSpec(60, 512, "Deliver billing events to webhook endpoints"),
    "outbox_publish": FunctionSpec(60, 256, "Publish committed events (outbox entries) to the billing bus"),
    "delivery_events": FunctionSpec(30, 256, "Append SES delivery events to the invoice's delivery log"),
    # Lambda's maximum: a file is ingested 1,000 rows per request, a large one takes minutes.
    "usage_import": FunctionSpec(900, 1024, "Import usage files dropped in UsageImportBucket"),
    "fx_rates_fetch": FunctionSpec(60, 512, "Daily copy of ECB's euro reference rates to ExportsBucket"),
    "revenue_schedules": FunctionSpec(60, 512, "Revenue schedules of finalized invoices; terminations"),
    # reads every schedule of a billing entity once a month
    "finance_exports": FunctionSpec(300, 1024, "Finance exports and the reconciliation checks"),
    # reads every subscription once a day
    "contract_calendar": FunctionSpec(300, 512, "Daily: activations, scheduled terminations, renewals, notices"),
}


def handler_string(name: str) -> str:
    return f"functions.{name}.handler.handler"


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Builds the dependencies layer with the synthesizing Python's pip (no Docker).

    Returns False (so CDK falls back to the Docker image) only when pip itself fails.
    """

    def __init__(self, requirements: Path, platform_arch: str) -> None:
        self._requirements = requirements
        self._arch = platform_arch

    def command(self, output_dir: str) -> list[str]:
        return [
            sys.executable, "-m", "pip", "install",
            "-r", str(self._requirements),
            "-t", str(Path(output_dir) / "python"),
            "--platform", f"manylinux2014_{self._arch}",
            "--platform", f"manylinux_2_28_{self._arch}",
            "--only-binary=:all:",
            "--implementation", "cp",
            "--python-version", PYTHON_VERSION,
            "--no-compile",
            "--disable-pip-version-check",
            "--quiet",
        ]  # fmt: skip

    def try_bundle(self, output_dir: str, *_args: object, **_options: object) -> bool:
        try:
            subprocess.run(self.command(output_dir), check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"local pip bundling failed ({exc}); trying Docker", file=sys.stderr)
            return False
        prune_runtime_provided(Path(output_dir) / "python")
        return True


def prune_runtime_provided(site_packages: Path) -> None:
    for entry in site_packages.iterdir():
        stem = entry.name.split("-")[0].lower()
        if stem in RUNTIME_PROVIDED and entry.is_dir():
            shutil.rmtree(entry)


class FunctionFactory:
    """Creates the app's functions; `functions` maps folder name -> function."""

    def __init__(
        self, scope: Construct, *, config: BillingConfig, environment: Mapping[str, str]
    ) -> None:
        self._scope = scope
        self._config = config
        self._environment = dict(environment)
        self.functions: dict[str, lambda_.Function] = {}
        self.code = lambda_.Code.from_asset(
            str(REPO_ROOT), exclude=CODE_EXCLUDE, ignore_mode=IgnoreMode.GLOB
        )
        self.layer = self._dependencies_layer(scope)

    def _dependencies_layer(self, scope: Construct) -> lambda_.LayerVersion:
        folder = REPO_ROOT / "layers" / "dependencies"
        arch = self._config.pip_platform_arch
        prune = " ".join(
            f"/asset-output/python/{p} /asset-output/python/{p}-*" for p in RUNTIME_PROVIDED
        )
        return lambda_.LayerVersion(
            scope,
            "DependenciesLayer",
            description="Third-party Python dependencies (layers/dependencies/requirements.txt)",
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[self._config.lambda_architecture],
            code=lambda_.Code.from_asset(
                str(folder),
                bundling=BundlingOptions(
                    image=RUNTIME.bundling_image,
                    platform=f"linux/{self._config.architecture.replace('x86_64', 'amd64')}",
                    command=[
                        "bash", "-c",
                        "pip install --no-cache-dir -r requirements.txt -t /asset-output/python"
                        f" && rm -rf {prune}",
                    ],
                    local=PipLocalBundling(folder / "requirements.txt", arch),
                ),
            ),
        )  # fmt: skip

    # -- building blocks -------------------------------------------------------------------

    def _role_and_logs(self, scope: Construct, name: str) -> tuple[iam.Role, logs.LogGroup]:
        role = iam.Role(
            scope,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of the {name} function (least privilege)",
        )
        log_group = logs.LogGroup(
            scope,
            f"{name}Logs",
            retention=self._config.log_retention,
            removal_policy=self._config.removal_policy,
        )
        log_group.grant_write(role)
        nag.acknowledge_wildcards(
            role,
            ["Resource::*"],
            "X-Ray active tracing: xray:PutTraceSegments/PutTelemetryRecords support no "
            "resource-level permissions.",
        )
        return role, log_group

    def _common(self, name: str, environment: Mapping[str, str] | None) -> dict:
        spec = FUNCTIONS[name]
        return {
            "architecture": self._config.lambda_architecture,
            "timeout": Duration.seconds(spec.timeout_seconds),
            "memory_size": spec.memory_mb,
            "description": spec.description,
            "tracing": lambda_.Tracing.ACTIVE,
            "environment": {**self._environment, **(environment or {})},
        }

    # -- public API --------------------------------------------------------------------------

    def function(
        self, scope: Construct, name: str, *, environment: Mapping[str, str] | None = None
    ) -> lambda_.Function:
        """A zip function running `functions.<name>.handler.handler` with the layer."""
        role, log_group = self._role_and_logs(scope, name)
        fn = lambda_.Function(
            scope,
            name,
            runtime=RUNTIME,
            handler=handler_string(name),
            code=self.code,
            layers=[self.layer],
            role=role,
            log_group=log_group,
            **self._common(name, environment),
        )
        nag.acknowledge(
            fn,
            "AwsSolutions-L1",
            "Pinned to python3.12 on purpose: the dependencies layer is built for cp312 "
            "(--python-version 3.12) and the renderer image is lambda/python:3.12.",
        )
        self.functions[name] = fn
        return fn

    def image_function(
        self, scope: Construct, name: str, *, environment: Mapping[str, str] | None = None
    ) -> lambda_.DockerImageFunction:
        """A container-image function built from layers/renderer/Dockerfile at deploy time."""
        role, log_group = self._role_and_logs(scope, name)
        platform = (
            ecr_assets.Platform.LINUX_ARM64
            if self._config.architecture == "arm64"
            else ecr_assets.Platform.LINUX_AMD64
        )
        fn = lambda_.DockerImageFunction(
            scope,
            name,
            code=lambda_.DockerImageCode.from_image_asset(
                str(REPO_ROOT),
                file="layers/renderer/Dockerfile",
                cmd=[handler_string(name)],
                exclude=IMAGE_EXCLUDE,
                ignore_mode=IgnoreMode.GLOB,
                platform=platform,
            ),
            role=role,
            log_group=log_group,
            **self._common(name, environment),
        )
        self.functions[name] = fn
        return fn
