"""Budgets of ICE calls shared by every icehook process: ICE limits an account, not a
process (docs/ice.md, Limits).

One row per budget holds the time its next call may go (the generic cell rate algorithm
with no burst): taking slots moves it on by one interval each, in one statement, so
processes on one database are spaced as if they were one, whatever their number.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

# The first slot reserved is max(next_at, now), and :count of them one :interval apart are
# taken; the answer is how long until the first, in seconds.
TAKE = sa.text(
    """
    INSERT INTO ice_budgets AS budget (name, next_at)
    VALUES (:name, clock_timestamp() + make_interval(secs => CAST(:span AS float8)))
    ON CONFLICT (name) DO UPDATE SET next_at =
        greatest(budget.next_at, clock_timestamp()) + make_interval(secs => CAST(:span AS float8))
    RETURNING CAST(extract(epoch FROM budget.next_at - clock_timestamp()) AS float8)
        - CAST(:span AS float8)
    """
)


async def take(connection: AsyncConnection, name: str, interval: float, count: int = 1) -> float:
    """Reserve the next ``count`` slots of budget ``name`` (one call every ``interval``
    seconds across all processes) and commit (nothing to do on an autocommit connection);
    the seconds until the first slot (0 or less: now), the others following it one
    ``interval`` apart."""
    span = interval * count
    wait = (await connection.execute(TAKE, {"name": name, "span": span})).scalar_one()
    await connection.commit()
    return float(wait)
