"""Stopping in bounded time.

The first SIGTERM or SIGINT asks every part to finish what it holds, within
``ICEHOOK_SHUTDOWN_TIMEOUT_SECONDS``; at that deadline, or at a second signal, what still
runs is cancelled (a cancelled job or delivery keeps its lease, which expires, and another
worker takes it up: nothing acknowledged is lost). A second signal also starts a watchdog
that ends the process outright a few seconds later, whatever it is blocked on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 5.0  # for cancelled work to unwind


FORCED_EXIT_SECONDS = 5.0  # after a second signal, the process ends within this


EXIT_FORCED = 130


class Shutdown:
    """The stop of one process: ``begin`` (first signal), ``force`` (second), and ``finish``,
    which gives a task the rest of the time and then cancels it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.begun = asyncio.Event()
        self.forced = asyncio.Event()
        self._deadline: float | None = None

    def signal(self) -> None:
        """A signal: the first begins the stop, the second forces it."""
        if self.begun.is_set():
            self.force()
        else:
            self.begin()

    def begin(self) -> None:
        if not self.begun.is_set():
            self._deadline = time.monotonic() + self.seconds
            self.begun.set()

    def force(self) -> None:
        if not self.forced.is_set():
            logger.warning("stopping now: what still runs is cancelled")
            self.forced.set()
            watchdog = threading.Timer(FORCED_EXIT_SECONDS, os._exit, args=(EXIT_FORCED,))
            watchdog.daemon = True
            watchdog.start()

    def remaining(self) -> float:
        """Seconds left before the deadline (counted from ``begin``, or from now)."""
        if self._deadline is None:
            self._deadline = time.monotonic() + self.seconds
        return 0.0 if self.forced.is_set() else max(0.0, self._deadline - time.monotonic())

    async def finish(self, task: asyncio.Future[Any], what: str) -> None:
        """Wait for ``task`` until the deadline or ``force``; then cancel it and give it
        ``CANCEL_GRACE_SECONDS`` to unwind."""
        forced = asyncio.ensure_future(self.forced.wait())
        try:
            await asyncio.wait(
                [task, forced], timeout=self.remaining(), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            forced.cancel()
        if not task.done():
            logger.warning("stopping: %s did not finish in time; cancelled", what)
            task.cancel()
            await asyncio.wait([task], timeout=CANCEL_GRACE_SECONDS)
