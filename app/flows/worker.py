"""``Worker``: the background work of icehook, in ``serve`` or in ``icehook worker``.

Three loops. The first judges the callbacks that arrived and sweeps stale jobs, pass after
pass; between passes it sleeps until NOTIFY on ``WORK`` (or, in ``serve``, the intake in
the same process) wakes it, or one poll interval passes. While work keeps coming, passes
start at most every ``PASS_GAP_SECONDS``, so that each one takes what arrived meanwhile in
one go rather than one callback at a time. The second is the ``Deliverer``, which sends
webhooks as they become due. The third, the ``Housekeeper``, purges once a minute what
retention lets go and folds the status counts. ``stop`` lets each finish what it holds:
nothing claimed is left half done (and a killed worker's leases simply expire). Each pass
runs inside a ``Watch``, so that ``/readyz`` says when one has run longer than any ever
may.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.core.health import Watch
from app.flows.deliver import ERROR_PAUSE_SECONDS, Deliverer
from app.flows.housekeeping import Housekeeper
from app.flows.judge import CallbackJudge
from app.flows.reporting import log_failure
from app.flows.sweep import Sweeper
from app.store.notify import Waker

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
# Batching against latency: a callback waits for the next pass, which takes everything that
# arrived meanwhile. 20 ms halved bench.delivery's p50 against 50 ms (commit d468f03).
PASS_GAP_SECONDS = 0.02


class Worker:
    """Uses: the ``CallbackJudge``, the ``Sweeper``, the ``Deliverer`` and the ``Housekeeper``,
    the waker of the first loop, the watch over its passes, and the database URL and
    statement timeout for its LISTEN connection."""

    def __init__(
        self,
        judge: CallbackJudge,
        sweeper: Sweeper,
        deliverer: Deliverer,
        housekeeper: Housekeeper,
        waker: Waker,
        watch: Watch,
        *,
        database_url: str,
        statement_seconds: float,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.judge = judge
        self.sweeper = sweeper
        self.deliverer = deliverer
        self.housekeeper = housekeeper
        self.waker = waker
        self.watch = watch
        self.database_url = database_url
        self.statement_seconds = statement_seconds
        self.poll_seconds = poll_seconds
        self._stopping = False
        self._stopped = asyncio.Event()  # set with _stopping, for the loops that sleep long
        self._sweep_at = 0.0  # the event loop's time from which the next pass sweeps

    async def run_once(self) -> int:
        """One pass; returns how many jobs it handled (0: nothing was due).

        A pass sweeps if the last sweep found work or at least one poll interval has
        passed: while callbacks keep passes frequent, stale jobs are looked for once a poll.
        """
        with self.watch.busy():
            handled = await self.judge.run_once()
            now = asyncio.get_running_loop().time()
            if now >= self._sweep_at:
                swept = await self.sweeper.run_once()
                self._sweep_at = now if swept else now + self.poll_seconds
                handled += swept
        return handled

    async def run(self) -> None:
        """Until ``stop``: the three loops."""
        await asyncio.gather(
            self._passes(),
            self.deliverer.run(lambda: self._stopping, self.poll_seconds),
            self.housekeeper.run(self._stopped),
        )

    async def _passes(self) -> None:
        """Pass after pass, sleeping while there is nothing to do."""
        listener = asyncio.create_task(
            self.waker.listen(self.database_url, lambda: self._stopping, self.statement_seconds)
        )
        try:
            loop = asyncio.get_running_loop()
            while not self._stopping:
                started = loop.time()
                try:
                    handled = await self.run_once()
                except Exception:
                    log_failure(logger, "worker pass failed; trying again shortly")
                    await asyncio.sleep(ERROR_PAUSE_SECONDS)
                    continue
                if self._stopping:
                    break
                if handled:
                    await asyncio.sleep(max(0.0, started + PASS_GAP_SECONDS - loop.time()))
                else:
                    await self.waker.wait(self.poll_seconds)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    def stop(self) -> None:
        self._stopping = True
        self._stopped.set()
        self.waker.wake()
        self.deliverer.waker.wake()
