"""Retention's SQL: choosing, counting and deleting what is old enough (``core.retention``),
and the horizons an audit view reports.

Each purge step deletes at most ``limit`` rows in its own short transaction, found through
an index on their time (``ix_jobs_created_at_id``, ``ix_callbacks_received_at_id``,
``ix_outbox_created_at``), so its cost follows the rows it removes, not the size of the
table, and it holds row locks only on rows nothing else uses any more. Rows another purger
holds are skipped (``SKIP LOCKED``), so purgers in several workers share the work instead of
queueing behind one another. Deleting a webhook message deletes its deliveries and their
attempts (``ON DELETE CASCADE``); deleting a job deletes its events and messages the same
way, and its callbacks and sub-jobs here, first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.retention import Purgeable
from app.store import tables

# A batch or a job that is no sub-job, finished before :before with all its sub-jobs, none
# of them with a pending callback or delivery.
_FINISHED_JOBS = """
    FROM jobs
    WHERE jobs.created_at < :before AND jobs.completed_at < :before AND jobs.batch_id IS NULL
      AND NOT EXISTS (
          SELECT FROM jobs AS member
          WHERE (member.id = jobs.id OR member.batch_id = jobs.id)
            AND (member.completed_at IS NULL OR member.completed_at >= :before
                 OR EXISTS (SELECT FROM callbacks
                            WHERE callbacks.job_id = member.id AND callbacks.outcome = 'pending')
                 OR EXISTS (SELECT FROM deliveries
                            WHERE deliveries.job_id = member.id AND deliveries.status = 'pending'))
      )
"""
# Callbacks received before :before that are judged (a pending one waits for its worker).
_OLD_CALLBACKS = """
    FROM callbacks
    WHERE callbacks.received_at < :before AND callbacks.outcome <> 'pending'
"""
# Webhook messages created before :before none of whose deliveries is still pending.
_OLD_MESSAGES = """
    FROM outbox
    WHERE outbox.created_at < :before
      AND NOT EXISTS (SELECT FROM deliveries
                      WHERE deliveries.message_id = outbox.id AND deliveries.status = 'pending')
"""
# Each kind: its table, which of its records may go, and the indexed time they go by.
_KINDS = {
    Purgeable.JOBS: ("jobs", _FINISHED_JOBS, "created_at"),
    Purgeable.CALLBACKS: ("callbacks", _OLD_CALLBACKS, "received_at"),
    Purgeable.WEBHOOKS: ("outbox", _OLD_MESSAGES, "created_at"),
}
COUNT = {kind: sa.text(f"SELECT count(*) {where}") for kind, (_, where, _) in _KINDS.items()}
CHOOSE = {
    kind: sa.text(
        f"SELECT {table}.id {where} ORDER BY {table}.{time} LIMIT :limit "
        f"FOR UPDATE OF {table} SKIP LOCKED"
    )
    for kind, (table, where, time) in _KINDS.items()
}
DELETE = {
    Purgeable.JOBS: (
        # Callbacks first: left behind, they would lose their job and read as unmatched.
        sa.text(
            "DELETE FROM callbacks WHERE job_id IN (SELECT id FROM jobs "
            "WHERE id = ANY(CAST(:ids AS uuid[])) OR batch_id = ANY(CAST(:ids AS uuid[])))"
        ),
        sa.text("DELETE FROM jobs WHERE batch_id = ANY(CAST(:ids AS uuid[]))"),
        sa.text("DELETE FROM jobs WHERE id = ANY(CAST(:ids AS uuid[]))"),
    ),
    Purgeable.CALLBACKS: (sa.text("DELETE FROM callbacks WHERE id = ANY(CAST(:ids AS bigint[]))"),),
    Purgeable.WEBHOOKS: (sa.text("DELETE FROM outbox WHERE id = ANY(CAST(:ids AS bigint[]))"),),
}
MARK = sa.text(
    """
    INSERT INTO purge_horizons AS horizon (kind, purged_before) VALUES (:kind, :before)
    ON CONFLICT (kind) DO UPDATE
    SET purged_before = greatest(horizon.purged_before, excluded.purged_before),
        updated_at = now()
    """
)
HORIZONS = tables.purge_horizons


async def count(session: AsyncSession, kind: Purgeable, before: datetime) -> int:
    """How many records of ``kind`` a purge with this cutoff would remove now (for a job:
    jobs and batches, each with its sub-jobs)."""
    return int((await session.execute(COUNT[kind], {"before": before})).scalar_one())


async def mark(session: AsyncSession, kind: Purgeable, before: datetime) -> None:
    """Record that records of ``kind`` before ``before`` may be gone from now on."""
    await session.execute(MARK, {"kind": kind.value, "before": before})


async def purge_some(session: AsyncSession, kind: Purgeable, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` records of ``kind`` older than ``before``, oldest first; how
    many. The caller commits (one short transaction per call)."""
    chosen = await session.execute(CHOOSE[kind], {"before": before, "limit": limit})
    ids = list(chosen.scalars())
    if ids:
        for statement in DELETE[kind]:
            await session.execute(statement, {"ids": ids})
    return len(ids)


async def horizons(session: AsyncSession) -> Mapping[str, datetime]:
    """For each kind purged so far, the time before which its records may be gone."""
    rows = await session.execute(sa.select(HORIZONS.c.kind, HORIZONS.c.purged_before))
    return {kind: before for kind, before in rows}
