"""Waiting in tests: until a condition holds (within a bound), and how long something took."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

FINAL = frozenset({"succeeded", "failed", "finished", "rejected", "abandoned"})  # final statuses


async def eventually(
    check: Callable[[], Awaitable[bool]], seconds: float = 60, every: float = 0.1
) -> float:
    """Until ``check()`` is true; how long that took. ``TimeoutError`` after ``seconds``."""
    started = time.monotonic()
    async with asyncio.timeout(seconds):
        while not await check():
            await asyncio.sleep(every)
    return time.monotonic() - started


async def timed(awaitable: Awaitable[T]) -> tuple[T, float]:
    """What ``awaitable`` gives, and how long it took."""
    started = time.monotonic()
    result = await awaitable
    return result, time.monotonic() - started
