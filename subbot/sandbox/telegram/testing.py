"""Helpers for tests that drive the sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01) -> T:  # noqa: ASYNC109
    """Poll a synchronous ``predicate`` until it returns something truthy; return that value.

    Raises ``TimeoutError`` after ``timeout`` seconds. Use it instead of fixed sleeps.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() >= deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
