"""Typed view of the CDK context the app reads (see stacks/README.md for each key)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

REPO_ROOT = Path(__file__).resolve().parent.parent

_RETENTION = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}

_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _as_list(value: object) -> list[str]:
    """Accept a JSON list (cdk.json) or a comma-separated string (`-c ops_emails=a@x,b@y`)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return [str(v).strip() for v in json.loads(text) if str(v).strip()]
        return [part.strip() for part in text.split(",") if part.strip()]
    return [str(v).strip() for v in value if str(v).strip()]  # type: ignore[union-attr]


@dataclass(frozen=True)
class BillingConfig:
    mail_from: str = "billing@example.com"
    ops_emails: tuple[str, ...] = ()
    ephemeral: bool = False
    architecture: str = "arm64"
    log_retention_days: int = 90
    api_throttle_rate: int = 50
    api_throttle_burst: int = 100
    stage_name: str = "live"

    @classmethod
    def from_context(cls, scope: Construct) -> BillingConfig:
        node = scope.node

        def get(key: str, default: object) -> object:
            value = node.try_get_context(key)
            return default if value is None else value

        architecture = str(get("architecture", cls.architecture))
        if architecture not in _ARCHITECTURES:
            raise ValueError(f"context architecture must be one of {sorted(_ARCHITECTURES)}")
        return cls(
            mail_from=str(get("mail_from", cls.mail_from)),
            ops_emails=tuple(_as_list(get("ops_emails", []))),
            ephemeral=_as_bool(get("ephemeral", False)),
            architecture=architecture,
            log_retention_days=int(get("log_retention_days", cls.log_retention_days)),  # type: ignore[arg-type]
            api_throttle_rate=int(get("api_throttle_rate", cls.api_throttle_rate)),  # type: ignore[arg-type]
            api_throttle_burst=int(get("api_throttle_burst", cls.api_throttle_burst)),  # type: ignore[arg-type]
            stage_name=str(get("stage_name", cls.stage_name)),
        )

    @property
    def removal_policy(self) -> RemovalPolicy:
        """DESTROY for throw-away stacks (`-c ephemeral=true`), RETAIN otherwise."""
        return RemovalPolicy.DESTROY if self.ephemeral else RemovalPolicy.RETAIN

    @property
    def lambda_architecture(self) -> lambda_.Architecture:
        return _ARCHITECTURES[self.architecture]

    @property
    def pip_platform_arch(self) -> str:
        return "aarch64" if self.architecture == "arm64" else "x86_64"

    @property
    def log_retention(self) -> logs.RetentionDays:
        try:
            return _RETENTION[self.log_retention_days]
        except KeyError:
            raise ValueError(f"log_retention_days must be one of {sorted(_RETENTION)}") from None
