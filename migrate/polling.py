"""Waiting for a condition with a deadline, for tests, benchmarks and tools that
watch processes they do not own: a slow machine makes them slower, not wrong."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

__all__ = ["wait_for"]

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, what: str,
             interval: float = 0.1) -> T:
    """Polls ``condition`` until it is truthy and returns its value; TimeoutError
    naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
