"""Lambda dispatch: moto's invoke runs the real handler from the repo, in-process.

`LambdaFunction._invoke_lambda` is the one point every path goes through (the Invoke API,
Step Functions tasks, EventBridge and Scheduler targets, the SQS pollers, the HTTP adapter).
Errors come back as the Python runtime reports them: the payload's `errorType` is the
exception's class name, which is what Step Functions `Retry`/`Catch` match.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
import uuid
from typing import Any

from moto.awslambda.models import LambdaFunction

_applied = False


def apply(repo_root: str) -> None:
    global _applied
    if repo_root not in sys.path:
        sys.path.insert(0, repo_root)
    if _applied:
        return
    _applied = True
    moto_invoke = LambdaFunction.invoke

    def invoke(self, body, request_headers, response_headers):
        payload = moto_invoke(self, body, request_headers, response_headers)
        if "x-amz-function-error" in response_headers:
            response_headers["x-amz-function-error"] = "Unhandled"  # as AWS reports exceptions
        return payload

    LambdaFunction._invoke_lambda = _invoke_lambda
    LambdaFunction.invoke = invoke


class LambdaContext:
    """The attributes of the Python runtime's context object that handlers use."""

    def __init__(self, fn: LambdaFunction):
        self.function_name = fn.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = fn.function_arn
        self.memory_limit_in_mb = int(fn.memory_size)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{fn.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + float(fn.timeout)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def handler_name(fn: LambdaFunction) -> str | None:
    """`module.function` from Handler, or from the image's command for container images."""
    return fn.handler or next(iter(fn.image_config.cmd), None)


def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    """Replaces moto's Docker run: returns (payload, errored, log tail)."""
    if event is None or event == "{}":  # moto passes "{}" for an empty payload
        event = {}
    context = LambdaContext(self)
    try:
        result = _resolve(handler_name(self))(event, context)
    except Exception as error:
        return _error(error, context), True, traceback.format_exc()
    try:
        return json.dumps(result), False, ""
    except (TypeError, ValueError) as error:
        error.error_type = "Runtime.MarshalError"
        return _error(error, context), True, traceback.format_exc()


class _RuntimeFault(Exception):
    """What the Python runtime reports before the handler runs (awslambdaric's names)."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type


def _resolve(name: str | None):
    module, _, function = (name or "").rpartition(".")
    if not module:
        raise _RuntimeFault("Runtime.MalformedHandlerName", f"Bad handler '{name}'")
    try:
        loaded = importlib.import_module(module)
    except ImportError as error:
        raise _RuntimeFault("Runtime.ImportModuleError",
                            f"Unable to import module '{module}': {error}") from error
    except SyntaxError as error:
        raise _RuntimeFault("Runtime.UserCodeSyntaxError", str(error)) from error
    try:
        return getattr(loaded, function)
    except AttributeError as error:
        raise _RuntimeFault("Runtime.HandlerNotFound",
                            f"Handler '{function}' missing on module '{module}'") from error


def _error(error: Exception, context: LambdaContext) -> str:
    return json.dumps({
        "errorMessage": str(error),
        "errorType": getattr(error, "error_type", type(error).__name__),
        "requestId": context.aws_request_id,
        "stackTrace": traceback.format_tb(error.__traceback__),
    })
