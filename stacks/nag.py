"""cdk-nag (v3) acknowledgments: every suppression carries a written reason.

cdk-nag 3 runs as a CDK policy-validation plugin (`Validations.of(app).add_plugins(...)`) and
is suppressed with `Validations.of(construct).acknowledge(...)`, which covers the construct and
its children. IAM5 findings are acknowledged one by one (`AwsSolutions-IAM5[Resource::...]`):
there is no blanket IAM5 suppression, so a new wildcard fails synthesis until it is reviewed.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import Construct, IConstruct

PLUGIN = "AwsSolutions"


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge cdk-nag rule ``rule_id`` (e.g. ``AwsSolutions-S1``) on ``scope`` and below."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PLUGIN}::{rule_id}", reason=reason))


def acknowledge_wildcards(scope: IConstruct, findings: list[str], reason: str) -> None:
    """Acknowledge the given IAM5 findings (e.g. ``Resource::*``) on ``scope``."""
    for finding in findings:
        acknowledge(scope, f"AwsSolutions-IAM5[{finding}]", reason)


def arn_of(resource: Construct, attribute: str = "Arn") -> str:
    """How cdk-nag prints ``Fn::GetAtt`` of ``resource`` inside an IAM5 finding."""
    element = resource if isinstance(resource, CfnElement) else resource.node.default_child
    logical_id = Stack.of(resource).get_logical_id(element)  # type: ignore[arg-type]
    return f"<{logical_id}.{attribute}>"


def acknowledge_table_access(grantee: IConstruct, table: Construct) -> None:
    acknowledge_wildcards(
        grantee,
        [f"Resource::{arn_of(table)}/index/*"],
        "Table grants cover the table's own GSIs (<table arn>/index/*) so queries on "
        "gsi1/gsi2/due work; no other table is reachable.",
    )


def acknowledge_bucket_access(grantee: IConstruct, bucket: Construct, *, write: bool) -> None:
    actions = ["s3:GetObject*", "s3:GetBucket*", "s3:List*"]
    if write:
        actions += ["s3:DeleteObject*", "s3:Abort*"]
    acknowledge_wildcards(
        grantee,
        [f"Resource::{arn_of(bucket)}/*", *(f"Action::{a}" for a in actions)],
        "Object-level access to this one bucket (<bucket arn>/*) through the CDK grant's "
        "action groups (get/list objects and versions"
        + (", put/delete/abort uploads" if write else "")
        + "); no other bucket is reachable.",
    )
