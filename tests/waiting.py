"""Waiting in tests: for a condition, with a generous ceiling, never for a fixed time.

A busy machine (another suite beside this one, 2 cores) makes everything slower; a wait that returns
as soon as the condition holds costs nothing when the machine is idle and does not fail when it is not.
`BILLING_TEST_WAIT` (seconds) overrides the ceiling.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
CEILING_SECONDS = float(os.environ.get("BILLING_TEST_WAIT") or 120)


def wait_for(condition: Callable[[], T], timeout: float | None = None, interval: float = 0.05,
             what: str = "the condition") -> T:
    """Polls `condition` until it returns something truthy and returns that; AssertionError naming
    `what` after `timeout` seconds (default: the generous ceiling)."""
    ceiling = CEILING_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + ceiling
    while True:
        if result := condition():
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not met after {ceiling:.0f} s")
        time.sleep(interval)
