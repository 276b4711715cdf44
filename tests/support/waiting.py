"""Waiting for a condition with a deadline: the one home for it in the tests (never a bare sleep)."""

import time
from collections.abc import Callable
from typing import Any

import pytest

WAIT_SECONDS = 30.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Poll `condition` until it returns something true, and return that; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)
    return result
