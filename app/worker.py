"""``Worker``: the background work of icehook, in ``serve`` or in ``icehook worker``.

Two loops. The first confirms the jobs that have pending callbacks and sweeps stale jobs,
pass after pass; between passes it sleeps until NOTIFY on ``queue.WORK`` (or, in
``serve``, the intake in the same process) wakes it, or one poll interval passes. While
work keeps coming, passes start at most every ``PASS_GAP_SECONDS``, so that each one
takes what arrived meanwhile in one go rather than one callback at a time. The second is
the ``Deliverer``, which sends webhooks as they become due (NOTIFY on ``queue.DELIVERIES``).
``stop`` lets both finish what they hold: nothing claimed is left half done (and a killed
worker's leases simply expire). Each pass runs inside a ``lifecycle.Watch``, so that
``/readyz`` says when one has run longer than any ever may (``reconcile.lease_seconds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from app import inbox, reconcile
from app.errors import log_failure
from app.ice import RateLimiter
from app.outbox import ERROR_PAUSE_SECONDS, Deliverer
from app.reconcile import Sweeper

if TYPE_CHECKING:
    from app.main import Runtime

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
# Batching against latency: a callback waits for the next pass, which takes everything that
# arrived meanwhile. 20 ms halved bench.delivery's p50 against 50 ms (commit d468f03).
PASS_GAP_SECONDS = 0.02


class Worker:
    def __init__(self, rt: Runtime, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.rt = rt
        self.poll_seconds = poll_seconds
        self.watch = rt.health.watch("worker pass", reconcile.lease_seconds(rt) + poll_seconds)
        self.sweeper = Sweeper(
            rt, RateLimiter(rt.settings.sweep_qps, sleep=asyncio.sleep), progress=self.watch
        )
        self.deliverer = Deliverer(rt)
        self._stopping = False
        self._sweep_at = 0.0  # the event loop's time from which the next pass sweeps

    async def run_once(self) -> int:
        """One pass; returns how many jobs it handled (0: nothing was due).

        A pass sweeps if the last sweep found work or at least one poll interval has
        passed: while callbacks keep passes frequent, stale jobs are looked for once a poll.
        """
        with self.watch.busy():
            handled = await inbox.process(self.rt)
            now = asyncio.get_running_loop().time()
            if now >= self._sweep_at:
                swept = await self.sweeper.run_once()
                self._sweep_at = now if swept else now + self.poll_seconds
                handled += swept
        return handled

    async def run(self) -> None:
        """Until ``stop``: both loops."""
        await asyncio.gather(
            self._confirm(), self.deliverer.run(lambda: self._stopping, self.poll_seconds)
        )

    async def _confirm(self) -> None:
        """Pass after pass, sleeping while there is nothing to do."""
        waker = self.rt.work_waker
        assert self.rt.settings.database_url is not None
        listener = asyncio.create_task(
            waker.listen(
                self.rt.settings.database_url,
                lambda: self._stopping,
                self.rt.settings.database_timeout_seconds,
            )
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
                    await waker.wait(self.poll_seconds)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    def stop(self) -> None:
        self._stopping = True
        self.rt.work_waker.wake()
        self.rt.delivery_waker.wake()
