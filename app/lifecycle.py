"""Stopping in bounded time, and knowing whether the long-running parts still make progress.

``Shutdown``: the first SIGTERM or SIGINT asks every part to finish what it holds, within
``ICEHOOK_SHUTDOWN_TIMEOUT_SECONDS``; at that deadline, or at a second signal, what still runs
is cancelled (a cancelled job or delivery keeps its lease, which expires, and another worker
takes it up: nothing acknowledged is lost). A second signal also starts a watchdog that ends
the process outright a few seconds later, whatever it is blocked on.

``Watch``: a part that can wedge (the callback writer, a worker pass, the delivery loop) runs
each step inside ``busy()``; ``stalled()`` says so when a step has run longer than it ever
may. ``/readyz`` reports every stalled watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
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


class Watch:
    """How long one step of a part may run (``allowed_seconds``) before it counts as wedged."""

    def __init__(
        self, name: str, allowed_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.allowed_seconds = allowed_seconds
        self._clock = clock
        self._since: float | None = None

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        self._since = self._clock()
        try:
            yield
        finally:
            self._since = None

    def progress(self) -> None:
        """A long step (a sweep over many jobs) moved on: its time counts from now again."""
        if self._since is not None:
            self._since = self._clock()

    def stalled(self) -> str | None:
        """Why this part counts as wedged (None: it does not)."""
        if self._since is None:
            return None
        running = self._clock() - self._since
        if running <= self.allowed_seconds:
            return None
        allowed = self.allowed_seconds
        return f"{self.name}: one step has run for {running:.0f} s (at most {allowed:g})"


class Health:
    """Every ``Watch`` of a process, for ``/readyz``."""

    def __init__(self) -> None:
        self._watches: list[Watch] = []

    def watch(self, name: str, allowed_seconds: float) -> Watch:
        watch = Watch(name, allowed_seconds)
        self._watches.append(watch)
        return watch

    def problems(self) -> list[str]:
        return [problem for watch in self._watches if (problem := watch.stalled())]
