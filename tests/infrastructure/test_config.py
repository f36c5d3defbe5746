"""Context parsing (no synthesis): the flags that change what the stack retains or builds."""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from stacks.config import BillingConfig

pytestmark = pytest.mark.infra


def config(**context: object) -> BillingConfig:
    return BillingConfig.from_context(cdk.App(context=context))


def test_defaults_retain_everything() -> None:
    default = config()
    assert default.mail_from == "billing@example.com"
    assert default.ops_emails == ()
    assert default.removal_policy == cdk.RemovalPolicy.RETAIN
    assert default.lambda_architecture.name == "arm64"


@pytest.mark.parametrize("value", [True, "true", "1", "yes"])
def test_ephemeral_destroys(value: object) -> None:
    assert config(ephemeral=value).removal_policy == cdk.RemovalPolicy.DESTROY


@pytest.mark.parametrize(
    "value",
    [
        ["a@example.com", "b@example.com"],
        "a@example.com,b@example.com",
        '["a@example.com","b@example.com"]',
    ],
)
def test_ops_emails_from_cdk_json_or_command_line(value: object) -> None:
    assert config(ops_emails=value).ops_emails == ("a@example.com", "b@example.com")


def test_unknown_architecture_or_retention_is_refused() -> None:
    with pytest.raises(ValueError):
        config(architecture="sparc")
    with pytest.raises(ValueError):
        _ = config(log_retention_days=42).log_retention
