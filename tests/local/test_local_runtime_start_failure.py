"""A runtime whose start fails stops everything it started, so the next one starts in the same process.

Under load a start-up step can fail (a timeout); the runtime then stayed registered and every later
test of the process failed with "a LocalRuntime is already running in this process".
"""

from __future__ import annotations

import os
import threading

import pytest
import requests

from shared.local import runtime as runtime_module
from shared.local.http import HttpAdapter
from shared.local.runtime import LocalRuntime
from tests.local.conftest import start_runtime


class Injected(Exception):
    pass


def fail(*args, **kwargs):
    raise Injected("injected start-up failure")


def local_threads() -> list[str]:
    return [t.name for t in threading.enumerate()
            if t.is_alive() and t.name.startswith(("sqs-poller-", "http-adapter", "local-async"))]


def assert_nothing_left(endpoint_before: str | None, threads_before: list[str], endpoint: str | None) -> None:
    assert LocalRuntime._active is None
    assert os.environ.get("AWS_ENDPOINT_URL") == endpoint_before
    assert local_threads() == threads_before
    if endpoint:
        with pytest.raises(requests.ConnectionError):
            requests.get(endpoint, timeout=30)


@pytest.mark.parametrize("step", [
    "aws patches",       # moto's server is up, the environment set, the async pool made
    "REST API",          # everything else is up: the stack deployed, pollers running
    "aws patches and the teardown",  # the teardown fails too: the runtime is still unregistered
])
def test_a_failed_start_tears_down_and_a_new_runtime_starts(step, monkeypatch):
    endpoint_before, threads_before = os.environ.get("AWS_ENDPOINT_URL"), local_threads()
    started: list[LocalRuntime] = []
    original_start_aws = LocalRuntime._start_aws

    def start_aws(self):
        started.append(self)
        original_start_aws(self)

    monkeypatch.setattr(LocalRuntime, "_start_aws", start_aws)
    if step.startswith("aws patches"):
        monkeypatch.setattr(runtime_module.dispatch, "apply", fail)
    if step == "aws patches and the teardown":
        monkeypatch.setattr(runtime_module.events, "clear", fail)
    adapters: list[HttpAdapter] = []
    if step == "REST API":
        def start_http(self):
            adapters.append(self)  # its port is bound: the teardown must close it
            fail()

        monkeypatch.setattr(HttpAdapter, "start", start_http)

    with pytest.raises(Injected):
        start_runtime(clock="2025-04-01T00:00:00Z")
    monkeypatch.undo()

    (failed,) = started
    assert_nothing_left(endpoint_before, threads_before, getattr(failed, "endpoint", None))
    for adapter in adapters:  # closed: refused at once, not accepted and left unanswered
        with pytest.raises(requests.ConnectionError):
            requests.get(adapter.url, timeout=30)

    again = start_runtime(clock="2025-04-01T00:00:00Z")
    try:
        assert LocalRuntime._active is again
        assert again.clients("dynamodb").list_tables()["TableNames"]
        clock = requests.get(f"{again.http.url}/v1/clock", timeout=120,
                             headers={"Authorization": f"Bearer {again.api_key}"})
        assert clock.status_code == 200
    finally:
        again.stop()
    assert LocalRuntime._active is None
