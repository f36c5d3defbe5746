"""The real platform (the CDK app's own stack) on the local runtime, driven over HTTP."""

from __future__ import annotations

import json

import pytest

from shared.cli.client import ApiClient
from shared.local.runtime import LocalRuntime


@pytest.fixture(scope="module")
def platform(tmp_path_factory, monkeypatch_module):
    home = tmp_path_factory.mktemp("billing-home")
    runtime = LocalRuntime(clock="2025-03-01T00:00:00Z", api_key="sk_local_e2e", time_scale=0.01).start()
    try:  # whatever fails from here on, the runtime stops: the next module can start its own
        (home / "runtime.json").write_text(json.dumps(runtime.info()))
        monkeypatch_module.setenv("BILLING_HOME", str(home))
        yield runtime
    finally:
        runtime.stop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def api(platform) -> ApiClient:
    return ApiClient(platform.api_url, platform.api_key)


def key_for(api: ApiClient, role: str) -> ApiClient:
    created = api.ok(api.post("/api-keys", {"name": f"e2e-{role}", "role": role}))
    return ApiClient(api.base_url, created["key"])
