"""Synthesize the CDK app and deploy its template into moto through CloudFormation.

The template is the only description of the platform: every resource the runtime knows
about (functions, queues, mappings, schedules, tables, buckets) is read back from it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
QUALIFIER = "hnb659fds"
# no Docker bundling; path metadata names each resource's construct (e.g. "api")
SYNTH_CONTEXT = {"aws:cdk:bundling-stacks": [], "ephemeral": "true",
                 "aws:cdk:enable-path-metadata": True}


@dataclass
class Resource:
    logical_id: str
    type: str
    properties: dict
    construct_id: str  # the CDK construct id, e.g. "api" for BillingStack/api/Resource
    physical_id: str | None = None


@dataclass
class Deployment:
    stack_name: str
    resources: dict[str, Resource] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type == resource_type]


def synthesize(build_app: Callable, stack_name: str) -> tuple[dict, dict, Path]:
    """The stack's template, its asset manifest and the cloud assembly directory."""
    assembly = build_app(dict(SYNTH_CONTEXT)).synth()
    out = Path(assembly.directory)
    template = json.loads((out / f"{stack_name}.template.json").read_text())
    manifest_path = out / f"{stack_name}.assets.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    return template, manifest, out


def publish_assets(s3, ssm, manifest: dict, assembly: Path) -> None:
    """What `cdk deploy` does before CloudFormation: bootstrap version + file assets."""
    ssm.put_parameter(Name=f"/cdk-bootstrap/{QUALIFIER}/version", Value="30", Type="String",
                      Overwrite=True)
    for asset in manifest.get("files", {}).values():
        source = assembly / asset["source"]["path"]
        body = _zip(source) if asset["source"].get("packaging") == "zip" else source.read_bytes()
        for dest in asset["destinations"].values():
            bucket = _pseudo(dest["bucketName"])
            s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key=_pseudo(dest["objectKey"]), Body=body)


def prepare(template: dict) -> dict:
    """The template as moto's CloudFormation can create it (a copy; the original stays).

    Types moto cannot create (SES identities, alarms, API Gateway stages, queue policies)
    stay in: moto skips them and reports them complete; the runtime stands in after the
    deploy where it matters (SES identities are verified).
    """
    template = json.loads(json.dumps(template))
    for res in template["Resources"].values():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Lambda::Function" and props.get("PackageType") == "Image":
            # moto's CloudFormation model drops ImageConfig: the command names the handler
            props["Handler"] = props.get("ImageConfig", {}).get("Command", [None])[0]
    return template


def deploy(cfn, stack_name: str, template: dict) -> Deployment:
    cfn.create_stack(StackName=stack_name, TemplateBody=json.dumps(prepare(template)),
                     Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"{stack_name}: {stack['StackStatus']} {stack.get('StackStatusReason')}")
    deployment = Deployment(stack_name)
    for logical_id, res in template["Resources"].items():
        path = res.get("Metadata", {}).get("aws:cdk:path", logical_id)
        parts = path.split("/")
        if parts[-1] in ("Resource", "Default") and len(parts) > 2:
            parts.pop()
        construct = parts[-1]
        deployment.resources[logical_id] = Resource(logical_id, res["Type"],
                                                    res.get("Properties", {}), construct)
    paginator = cfn.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_name):
        for summary in page["StackResourceSummaries"]:
            if summary["LogicalResourceId"] in deployment.resources:
                resource = deployment.resources[summary["LogicalResourceId"]]
                resource.physical_id = summary.get("PhysicalResourceId")
    deployment.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return deployment


def _pseudo(text: str) -> str:
    return (text.replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", REGION)
            .replace("${AWS::Partition}", "aws"))


def _zip(directory: Path) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return Path(shutil.make_archive(f"{tmp}/asset", "zip", directory)).read_bytes()
