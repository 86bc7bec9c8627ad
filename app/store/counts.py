"""Jobs and deliveries by status, without counting the tables.

Triggers (migration ``20261204_0001``) record every change of a job's or a delivery's
status as rows of ``status_count_changes``: +1 for the status it entered, -1 for the one
it left. ``fold`` moves those rows into the totals of ``status_counts`` in one statement;
``by_status`` reads the totals plus what is not folded yet, in one snapshot. Either costs
what changed since the last fold, never the size of the tables: the ``/metrics`` scrape
folds and reads, and each worker folds once a minute so that the changes stay few when
nobody scrapes. Two folds at once do not count a change twice: the second waits for the
first's deleted rows and skips them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

# Totals are upserted in (kind, status) order, so concurrent folds lock them in one order.
FOLD = sa.text(
    """
    WITH taken AS (DELETE FROM status_count_changes RETURNING kind, status, n)
    INSERT INTO status_counts AS total (kind, status, n)
    SELECT kind, status, sum(n) FROM taken GROUP BY kind, status ORDER BY kind, status
    ON CONFLICT (kind, status) DO UPDATE SET n = total.n + excluded.n
    """
)
BY_STATUS = sa.text(
    """
    SELECT kind, status, CAST(sum(n) AS bigint) AS n
    FROM (SELECT kind, status, n FROM status_counts
          UNION ALL SELECT kind, status, n FROM status_count_changes) AS every
    GROUP BY kind, status
    """
)


async def fold(session: AsyncSession) -> None:
    """Fold the recorded changes into the totals. The caller commits."""
    await session.execute(FOLD)


async def by_status(session: AsyncSession) -> dict[str, dict[str, int]]:
    """For ``jobs`` and ``deliveries``, how many rows are in each status now."""
    found: dict[str, dict[str, int]] = {"jobs": {}, "deliveries": {}}
    for kind, status, n in await session.execute(BY_STATUS):
        found.setdefault(kind, {})[status] = int(n)
    return found
