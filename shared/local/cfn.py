"""What moto's CloudFormation needs to deploy the CDK template faithfully.

Applied once per process (idempotent): a Ref to an event bus resolves to its name, state
machines get their substitutions and land in the executing backend, schedules have a model,
and generated physical names are stable across restarts (so `--data` restores by name).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel
from moto.events.models import EventBus
from moto.s3.models import s3_backends
from moto.scheduler.models import scheduler_backends
from moto.stepfunctions import responses as sfn_responses
from moto.stepfunctions.models import StateMachine

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    EventBus.physical_resource_id = property(lambda bus: bus.name)
    StateMachine.create_from_cloudformation_json = classmethod(_create_state_machine)
    parsing.generate_resource_name = _stable_name(parsing.generate_resource_name)
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()  # picks up ScheduleModel below


def _stable_name(generate):
    """AWS keeps a stack's physical names across updates; moto draws a new suffix per deploy."""

    def generate_resource_name(resource_type: str, stack_name: str, logical_id: str) -> str:
        digest = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()
        suffix = digest[:12].upper()
        original = parsing.random_suffix
        parsing.random_suffix = lambda: suffix
        try:
            return generate(resource_type, stack_name, logical_id)
        finally:
            parsing.random_suffix = original

    return generate_resource_name


def _create_state_machine(cls, resource_name: str, cloudformation_json: dict, account_id: str,
                          region_name: str, **kwargs: Any) -> StateMachine:
    props = cloudformation_json["Properties"]
    definition = props.get("DefinitionString") or props.get("Definition") or ""
    if location := props.get("DefinitionS3Location"):
        key = s3_backends[account_id]["aws"].get_object(location["Bucket"], location["Key"])
        definition = key.value.decode()
    if not isinstance(definition, str):
        definition = json.dumps(definition)
    subs = {k: str(v) for k, v in (props.get("DefinitionSubstitutions") or {}).items()}
    # only ${Key}: ASL's own $ and $$ paths stay as they are
    definition = re.sub(r"\$\{([\w.:-]+)\}", lambda m: subs.get(m[1], m[0]), definition)
    # the API's backend is the executing one once the config says so
    backend = sfn_responses.get_backend(account_id, region_name)
    return backend.create_state_machine(
        name=props.get("StateMachineName", resource_name),
        definition=definition,
        roleArn=props.get("RoleArn", ""),
        tags=[{"key": t["Key"], "value": t["Value"]} for t in props.get("Tags", [])],
        sm_type=props.get("StateMachineType", "STANDARD"),
    )


class ScheduleModel(CloudFormationModel):
    """AWS::Scheduler::Schedule, stored in moto's scheduler backend (which never fires it)."""

    def __init__(self, schedule):
        self.schedule = schedule

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Scheduler::Schedule"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict,
                                        account_id: str, region_name: str,
                                        **kwargs: Any) -> ScheduleModel:
        props = cloudformation_json["Properties"]
        schedule = scheduler_backends[account_id][region_name].create_schedule(
            description=props.get("Description"),
            end_date=props.get("EndDate"),
            flexible_time_window=props["FlexibleTimeWindow"],
            group_name=props.get("GroupName"),
            kms_key_arn=props.get("KmsKeyArn"),
            name=resource_name,
            schedule_expression=props["ScheduleExpression"],
            schedule_expression_timezone=props.get("ScheduleExpressionTimezone"),
            start_date=props.get("StartDate"),
            state=props.get("State"),
            target=props["Target"],
            action_after_completion=None,
        )
        return cls(schedule)

    @property
    def physical_resource_id(self) -> str:
        return self.schedule.name

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.schedule.arn
