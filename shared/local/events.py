"""EventBridge rules deliver to Lambda and Step Functions targets (moto delivers the rest).

Delivery is asynchronous, as on AWS: `PutEvents` returns before the targets run. A Lambda
target is invoked with the event invocation type and retried twice on a function error
(AWS waits about 1 and 2 minutes; the runtime's time scale shortens that).
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Callable

from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp
from moto.events.models import Rule
from moto.events.utils import EventTemplateParser
from moto.utilities.arns import parse_arn

log = logging.getLogger("shared.local")

OURS = ("lambda", "states")
ASYNC_RETRY_DELAYS = (60, 120)  # seconds between the attempts of an async Lambda invoke

# Set by the running LocalRuntime: submit(fn) runs fn in its pool; wait(seconds) -> stopped?
_delivery: dict = {}


def apply(clients, submit: Callable, wait: Callable, time_scale: float) -> None:
    _delivery.update(clients=clients, submit=submit, wait=wait, scale=time_scale)
    if getattr(Rule.send_to_targets, "local_patch", False):
        return
    moto_send = Rule.send_to_targets

    def send_to_targets(self: Rule, original_event: dict, transform_input: bool = True) -> None:
        ours = [t for t in self.targets if parse_arn(t["Arn"]).service in OURS]
        if len(ours) < len(self.targets):
            rest = copy.copy(self)
            rest.targets = [t for t in self.targets if t not in ours]
            moto_send(rest, original_event, transform_input)
        submit = _delivery.get("submit")  # None once the runtime stops
        if not ours or not submit or not self.event_pattern.matches_event(original_event):
            return
        for target in ours:
            event = _target_input(target, original_event, transform_input)
            submit(lambda t=target, e=event: _deliver(t, e))

    send_to_targets.local_patch = True
    Rule.send_to_targets = send_to_targets


def clear() -> None:
    _delivery.clear()


def _target_input(target: dict, event: dict, transform_input: bool):
    if "Input" in target:
        return json.loads(target["Input"])
    if not transform_input:
        return copy.deepcopy(event)
    if "InputPath" in target:
        from jsonpath_ng.ext import parse

        matches = parse(target["InputPath"]).find(event)
        return matches[0].value if matches else None
    transformer = target.get("InputTransformer", {})
    result = EventTemplateParser.parse(input_template=transformer.get("InputTemplate"),
                                       input_paths_map=transformer.get("InputPathsMap", {}),
                                       event=event)
    if not transformer and isinstance(result, dict):
        result["account"] = event["account"]
        result["time"] = iso_8601_datetime_without_milliseconds(
            utcfromtimestamp(float(event["time"])))
    return result


def _deliver(target: dict, event) -> None:
    clients, arn = _delivery.get("clients"), target["Arn"]
    if clients is None:  # the runtime stopped meanwhile
        return
    try:
        if parse_arn(arn).service == "states":
            clients("stepfunctions").start_execution(
                stateMachineArn=arn, name=str(uuid.uuid4()), input=json.dumps(event))
            return
        for attempt, delay in enumerate((*ASYNC_RETRY_DELAYS, None), start=1):
            response = clients("lambda").invoke(FunctionName=arn, Payload=json.dumps(event))
            if "FunctionError" not in response:
                return
            log.warning("EventBridge -> %s failed (attempt %d): %s", arn, attempt,
                        response["Payload"].read().decode()[:500])
            wait = _delivery.get("wait")
            if delay is None or wait is None or wait(delay * _delivery["scale"]):
                return
    except Exception:  # nobody awaits this thread: say it here
        log.exception("EventBridge could not deliver to %s", arn)
