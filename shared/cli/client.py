"""A small HTTP client for the platform's REST API (demo, end-to-end tests, benchmarks)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


# Seconds a request may take before the client gives up: generous, because a local platform on a busy
# machine (tests beside another suite) answers slowly, and a timeout there is a false failure.
TIMEOUT_ENV = "BILLING_API_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 120.0


def default_timeout() -> float:
    """`BILLING_API_TIMEOUT` (seconds) when set, else 120."""
    return float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_SECONDS)


class ApiClient:
    def __init__(self, base_url: str, api_key: str, timeout: float | None = None):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = default_timeout() if timeout is None else timeout

    def request(self, method: str, path: str, body=None, headers: dict | None = None,
                params: dict | None = None) -> ApiResponse:
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return ApiResponse(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return ApiResponse(error.code, dict(error.headers), error.read())

    def get(self, path: str, **params) -> ApiResponse:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body=None, **headers) -> ApiResponse:
        return self.request("POST", path, body, headers=headers)

    def ok(self, response: ApiResponse, expected=(200, 201, 202)) -> dict:
        if response.status not in expected:
            raise RuntimeError(f"{response.status}: {response.body.decode(errors='replace')}")
        return response.json()
