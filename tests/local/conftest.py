"""One local runtime per test module, on the small fixture stack (tests/local/fixtures)."""

from __future__ import annotations

import pytest

from shared.local.runtime import LocalRuntime
from tests.local.fixtures.app import build_app

# AWS's waits at 1/100: a 30 s visibility timeout passes in 0.3 s
TIME_SCALE = 0.01


def start_runtime(**kwargs) -> LocalRuntime:
    return LocalRuntime(app_factory=build_app, register_api_key=False, time_scale=TIME_SCALE,
                        api_key="sk_local_test", **kwargs).start()


@pytest.fixture(scope="module")
def runtime():
    rt = start_runtime(clock="2025-04-01T00:00:00Z")
    try:
        yield rt
    finally:
        rt.stop()
