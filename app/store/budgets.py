"""Budgets of ICE calls shared by every icehook process: ICE limits an account, not a
process (docs/ice.md, Limits).

One row per budget holds the time its next call may go (the generic cell rate algorithm
with no burst): taking a slot moves it on by one interval in one statement, so processes
on one database are spaced as if they were one, whatever their number.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

# The slot reserved is max(next_at, now); the answer is how long until it, in seconds.
TAKE = sa.text(
    """
    INSERT INTO ice_budgets AS budget (name, next_at)
    VALUES (:name, clock_timestamp() + make_interval(secs => CAST(:interval AS float8)))
    ON CONFLICT (name) DO UPDATE SET next_at =
        greatest(budget.next_at, clock_timestamp())
        + make_interval(secs => CAST(:interval AS float8))
    RETURNING CAST(extract(epoch FROM budget.next_at - clock_timestamp()) AS float8)
        - CAST(:interval AS float8)
    """
)


async def take(connection: AsyncConnection, name: str, interval: float) -> float:
    """Reserve the next slot of budget ``name`` (one call every ``interval`` seconds across
    all processes) and commit (nothing to do on an autocommit connection); the seconds until
    the slot (0 or less: now)."""
    wait = (await connection.execute(TAKE, {"name": name, "interval": interval})).scalar_one()
    await connection.commit()
    return float(wait)
