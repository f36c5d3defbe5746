"""One error hierarchy for the whole platform.

The class name is what Step Functions `Retry`/`Catch` match, so names are part of the
contract: `RetryableError` is retried by the state machines, the others are not.
"""

from __future__ import annotations


class BillingError(Exception):
    status = 500
    type = "api_error"
    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code:
            self.code = code

    def to_dict(self) -> dict:
        return {"type": self.type, "code": self.code, "message": self.message, "param": self.param}


class ValidationError(BillingError):
    """Bad input: names the field (`param`), writes nothing."""

    status = 422
    type = "invalid_request_error"
    code = "validation_failed"


class NotFoundError(BillingError):
    status = 404
    type = "invalid_request_error"
    code = "resource_missing"


class ConflictError(BillingError):
    """The request is well formed but the object's state or a rule forbids it."""

    status = 409
    type = "invalid_request_error"
    code = "conflict"


class AuthenticationError(BillingError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(BillingError):
    status = 403
    type = "permission_error"
    code = "forbidden"


class RetryableError(BillingError):
    """A transient failure (throttling, a lost race, a provider timeout): try again."""

    status = 503
    type = "api_error"
    code = "retryable"


class NonRetryableError(BillingError):
    """A failure that will not heal by retrying (bad stored data, a broken rule)."""

    status = 500
    type = "api_error"
    code = "non_retryable"
