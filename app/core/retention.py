"""Retention: what is old enough to purge, and what a purge removed.

Two windows (docs/operations.md, Retention). ``ICEHOOK_RETENTION`` bounds the bulky,
short-lived records: each callback as received (body, headers and how it was judged), and
each webhook message with its deliveries and their attempt logs. ``ICEHOOK_HISTORY_RETENTION``
bounds the history itself: a finished job (with its sub-jobs, events, callbacks and
webhooks) once it finished that long ago. Nothing still in flight is ever purged: not a
pending callback, not a message with a pending delivery, not a job or batch that has not
finished.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


class Purgeable(enum.StrEnum):
    """What is purged, each with its own horizon, in the order a purge takes them."""

    JOBS = "jobs"  # finished jobs and everything of theirs (the history window)
    CALLBACKS = "callbacks"  # received before the horizon
    WEBHOOKS = "webhooks"  # messages created before the horizon, deliveries and attempts


# What one record of each kind is, as ``icehook purge`` counts them.
PURGED_MEANING = {
    Purgeable.JOBS: "finished jobs and batches (with sub-jobs, events, callbacks, webhooks)",
    Purgeable.CALLBACKS: "callbacks as received",
    Purgeable.WEBHOOKS: "webhook messages (with their deliveries and attempt logs)",
}


@dataclass(frozen=True)
class Cutoffs:
    """The time before which each kind of record may go; None: kept forever."""

    jobs: datetime | None
    callbacks: datetime | None
    webhooks: datetime | None

    def items(self) -> list[tuple[Purgeable, datetime]]:
        """The kinds that are purged at all, in purging order, with their cutoff."""
        given = {
            Purgeable.JOBS: self.jobs,
            Purgeable.CALLBACKS: self.callbacks,
            Purgeable.WEBHOOKS: self.webhooks,
        }
        return [(kind, before) for kind, before in given.items() if before is not None]


def cutoffs(now: datetime, retention_seconds: float, history_seconds: float) -> Cutoffs:
    """The cutoffs at ``now`` for the two windows (``math.inf``: forever)."""

    def before(seconds: float) -> datetime | None:
        return None if math.isinf(seconds) else now - timedelta(seconds=seconds)

    raw = before(retention_seconds)
    return Cutoffs(jobs=before(history_seconds), callbacks=raw, webhooks=raw)


def purged_for_job(
    created_at: datetime, horizons: Mapping[str, datetime]
) -> dict[str, datetime | None]:
    """What a job's audit view says was purged: for its callbacks and its webhooks, the
    horizon before which they were removed, if the job is old enough for that to touch it
    (``horizons``: the horizon recorded for each ``Purgeable``)."""

    def touched(kind: Purgeable) -> datetime | None:
        horizon = horizons.get(kind)
        return horizon if horizon is not None and created_at < horizon else None

    return {
        "callbacks_before": touched(Purgeable.CALLBACKS),
        "webhooks_before": touched(Purgeable.WEBHOOKS),
    }
