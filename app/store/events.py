"""The events as recorded, oldest first: what ``GET /v1/events`` pages through.

An event is its outbox message: its ``event_id`` is the ``webhook-id`` its webhooks carry,
its ``payload`` their body. Nothing here joins the jobs, so an event without a job reads
the same as one with.

A consumer reads on from the id of the last event it got, so it must never be handed an
event while one with a smaller id may yet be committed: it would never see that one.
Ids are taken from the identity's sequence when a message is inserted, but transactions
commit in their own order, so for a moment the table can hold 7 and 9 while 8 is still
being written. A page therefore stops before the first event that follows a missing id
and was recorded less than ``SETTLE`` ago: the missing one is either still being written
(and the page reaches it once it is committed) or gone for good (a transaction rolled
back, or retention purged it), which is taken as certain once its successor is older than
``SETTLE``. That holds as long as no transaction that records events lasts longer than
half of ``SETTLE`` (they last milliseconds; each statement gives up after 5 s), and as long
as the sequence hands out its ids one at a time (an identity's default ``CACHE 1``). Both
the limit and the rows are read by one statement, so from one snapshot. Finding the limit
reads the events of the last ``SETTLE`` alone, each with an index lookup of its predecessor.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.queries import EventQuery
from app.store import tables
from app.store.fanout import WANTS

OUTBOX = tables.outbox
SETTLE = timedelta(seconds=60)
# Above any id: the limit of a page when no missing id holds it back.
NO_LIMIT = sa.literal(2**63 - 1, sa.BigInteger)
# The identity's first value: the one id that follows no other.
FIRST_ID = 1


async def page(
    session: AsyncSession, query: EventQuery, settle: timedelta = SETTLE
) -> list[RowMapping]:
    """Up to ``query.limit`` events after ``query.after_id`` that ``query`` wants, oldest
    first, none past an id that may still be being written (the module's docstring): each
    with its ``id``, ``event_id`` and ``payload``."""
    conditions: list[sa.ColumnElement[bool] | sa.TextClause] = [
        OUTBOX.c.id > query.after_id,
        OUTBOX.c.id < sa.func.coalesce(_first_unsettled(query.after_id, settle), NO_LIMIT),
    ]
    if query.job_id is not None:
        conditions.append(OUTBOX.c.job_id == query.job_id)
    if query.types:
        wanted = WANTS.format(patterns="CAST(:types AS text[])", event="outbox.event_type")
        conditions.append(sa.text(wanted).bindparams(types=list(query.types)))
    statement = (
        sa.select(OUTBOX.c.id, OUTBOX.c.event_id, OUTBOX.c.payload)
        .where(*conditions)
        .order_by(OUTBOX.c.id)
        .limit(query.limit)
    )
    return list((await session.execute(statement)).mappings())


def _first_unsettled(after_id: int, settle: timedelta) -> sa.ScalarSelect[int]:
    """The first event after ``after_id`` that follows a missing id and is younger than
    ``settle`` (NULL if none): found among the recent events alone (``ix_outbox_created_at``),
    each looking its predecessor up by id."""
    recent, earlier = OUTBOX.alias("recent"), OUTBOX.alias("earlier")
    return (
        sa.select(sa.func.min(recent.c.id))
        .where(
            recent.c.id > after_id,
            recent.c.id > FIRST_ID,
            recent.c.created_at > sa.func.now() - settle,
            ~sa.exists().where(earlier.c.id == recent.c.id - 1),
        )
        .scalar_subquery()
    )
