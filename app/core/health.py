"""Whether a long-running part still makes progress.

A part that can wedge (the callback writer, a worker pass, the webhook claims) runs each
step inside ``Watch.busy()``; ``stalled()`` says so when a step has run longer than it
ever may, given every deadline it waits on. ``Health`` holds a process's watches for
``/readyz``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator


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
