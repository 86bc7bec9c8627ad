"""The audit reads: jobs and their timelines, callbacks, deliveries, and the counts the
metrics show. The HTTP API and the operator commands (``icehook jobs ...``) both use them.

A list answers one page of rows, newest first (``core.queries``), and whether more follow.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.parsing import storable
from app.core.queries import CallbackQuery, DeliveryQuery, JobQuery, user_data_values
from app.core.statuses import DeliveryStatus, JobKind
from app.store import counts as status_counts
from app.store import retention, tables

JOB, CALLBACK, DELIVERY = tables.jobs, tables.callbacks, tables.deliveries
# What the audit shows of a callback: how it was judged, not its body or headers.
CALLBACK_COLUMNS = tuple(
    CALLBACK.c[name]
    for name in (
        "id",
        "job_id",
        "received_at",
        "processed_at",
        "event_type",
        "ice_job_id",
        "ice_status",
        "outcome",
        "detail",
        "peer",
        "request_id",
        "signed",
    )
)
DELIVERY_COLUMNS = (*DELIVERY.c, tables.outbox.c.event_id)


@dataclass(frozen=True)
class Page:
    rows: list[RowMapping]
    more: bool  # whether another page follows the last of ``rows``


@dataclass(frozen=True)
class Timeline:
    events: list[RowMapping]
    callbacks: list[RowMapping]
    deliveries: list[RowMapping]
    horizons: Mapping[str, datetime]  # how far retention has purged (store.retention)


async def find_job(
    session: AsyncSession, raw: str, kind: JobKind | None = None
) -> RowMapping | None:
    """The job ``raw`` names: icehook's id or ICE's JobId."""
    if not storable(raw):
        return None  # no id holds what PostgreSQL text cannot
    condition = _names_job(raw)
    if kind is not None:
        condition = sa.and_(condition, JOB.c.kind == kind)
    return (await session.execute(sa.select(JOB).where(condition))).mappings().one_or_none()


def _names_job(raw: str) -> sa.ColumnElement[bool]:
    """Whether a job is the one ``raw`` names: icehook's id or ICE's JobId."""
    condition = JOB.c.ice_job_id == raw
    with contextlib.suppress(ValueError):
        # ICE's JobIds are 32 hex digits, which also parse as a UUID: look for both.
        condition = sa.or_(condition, JOB.c.id == uuid.UUID(raw))
    return condition


async def timeline(session: AsyncSession, job_id: uuid.UUID) -> Timeline:
    """A job's events, the callbacks received for it and its deliveries, each oldest first,
    and how far retention has purged such records."""
    events = tables.job_events
    found = [
        list((await session.execute(statement)).mappings())
        for statement in (
            sa.select(events).where(events.c.job_id == job_id).order_by(events.c.id),
            sa.select(*CALLBACK_COLUMNS).where(CALLBACK.c.job_id == job_id).order_by(CALLBACK.c.id),
            _deliveries().where(DELIVERY.c.job_id == job_id).order_by(DELIVERY.c.id),
        )
    ]
    events_found, callbacks_found, deliveries_found = found
    return Timeline(
        events_found, callbacks_found, deliveries_found, await retention.horizons(session)
    )


async def sub_jobs(session: AsyncSession, batch_id: uuid.UUID) -> list[RowMapping]:
    rows = await session.execute(
        sa.select(JOB).where(JOB.c.batch_id == batch_id).order_by(JOB.c.created_at)
    )
    return list(rows.mappings())


async def jobs(session: AsyncSession, query: JobQuery) -> Page:
    """A page of jobs. With ``query.text``, the job it names by id or ICE JobId if there is
    one (a page of it alone), else the jobs of the project it names: two narrow lookups,
    each on its own index, rather than one that sorts every job of a large project."""
    if query.text is None:
        return await _jobs(session, query, [])
    if query.cursor is None:  # a later page is always of a project: one job fits a page
        found = await _jobs(session, query, [_names_job(query.text)])
        if found.rows:
            return found
    return await _jobs(session, query, [JOB.c.project_id == query.text])


# A UserData search (``_by_user_data``): how many matching jobs in all make a value rare,
# and how many of the newest jobs it reads in order for a common one (about 5 ms).
RARE_MATCHES = 200
NEWEST_WINDOW = 10_000


async def _jobs(session: AsyncSession, query: JobQuery, more: list[sa.ColumnElement[bool]]) -> Page:
    conditions = more + _equal(
        (JOB.c.status, query.status),
        (JOB.c.ice_job_id, query.ice_job_id),
        (JOB.c.project_id, query.project_id),
        (JOB.c.batch_id, query.batch_id),
    )
    if query.created_after is not None:
        conditions.append(JOB.c.created_at >= query.created_after)
    if query.created_before is not None:
        conditions.append(JOB.c.created_at < query.created_before)
    if query.cursor is not None:
        conditions.append(sa.tuple_(JOB.c.created_at, JOB.c.id) < sa.tuple_(*query.cursor))
    if query.user_data:
        return await _by_user_data(session, query, conditions)
    statement = sa.select(JOB).where(*conditions).order_by(*NEWEST)
    return await _page(session, statement, query.limit)


NEWEST = (JOB.c.created_at.desc(), JOB.c.id.desc())


async def _by_user_data(
    session: AsyncSession, query: JobQuery, conditions: list[sa.ColumnElement[bool]]
) -> Page:
    """A page of the jobs with the UserData values ``query`` asks for.

    A value may belong to one job or to one in ten, and PostgreSQL cannot tell which: its
    estimate for jsonb containment was off a hundredfold for some values in bench.audit,
    and the plan it then chose took 100 ms to 1 s. So, whatever it would guess: (1) the
    index on user_data, for at most ``RARE_MATCHES`` jobs: fewer, and they are all of them,
    sorted here; (2) else the newest ``NEWEST_WINDOW`` jobs in order, filtered, which fill
    a page of a common value; (3) else, for a value between, every match through the index,
    sorted (as many rows as it has matches)."""
    matching = _user_data_matches(JOB.c.user_data, query.user_data)
    await _bitmap_only(session, True)
    some = sa.select(JOB).where(*conditions, *matching).limit(RARE_MATCHES).subquery()
    seen = sa.func.count().over().label("matches_seen")
    first = sa.select(some, seen).order_by(some.c.created_at.desc(), some.c.id.desc())
    found = await _page(session, first, query.limit)
    await _bitmap_only(session, False)
    if not found.rows or found.rows[0]["matches_seen"] < RARE_MATCHES:
        return found
    recent = sa.select(JOB).where(*conditions).order_by(*NEWEST).limit(NEWEST_WINDOW).subquery()
    in_window = _user_data_matches(recent.c.user_data, query.user_data)
    newest_first = (recent.c.created_at.desc(), recent.c.id.desc())
    found = await _page(
        session, sa.select(recent).where(*in_window).order_by(*newest_first), query.limit
    )
    if found.more:
        return found
    await _bitmap_only(session, True)
    found = await _page(
        session, sa.select(JOB).where(*conditions, *matching).order_by(*NEWEST), query.limit
    )
    await _bitmap_only(session, False)
    return found


async def _bitmap_only(session: AsyncSession, only: bool) -> None:
    """Whether this transaction's statements may read tables only through bitmaps of their
    indexes (here: the index on user_data), neither in an index's order nor whole. A
    failure aborts the transaction, whose end undoes it."""
    value = "off" if only else "on"
    await session.execute(sa.text(f"SET LOCAL enable_indexscan = {value}"))
    await session.execute(sa.text(f"SET LOCAL enable_seqscan = {value}"))


def _user_data_matches(
    column: sa.ColumnElement[Any], wanted: tuple[tuple[str, str], ...]
) -> list[sa.ColumnElement[bool]]:
    """Each (key, value): the UserData's ``key`` is the string ``value`` or a number equal
    to it, as containment, which the GIN index on user_data answers (jsonb_path_ops)."""
    return [
        sa.or_(*(column.contains({key: match}) for match in user_data_values(value)))
        for key, value in wanted
    ]


async def callbacks(session: AsyncSession, query: CallbackQuery) -> Page:
    conditions = _equal((CALLBACK.c.outcome, query.outcome), (CALLBACK.c.job_id, query.job_id))
    if query.received_after is not None:
        conditions.append(CALLBACK.c.received_at >= query.received_after)
    if query.received_before is not None:
        conditions.append(CALLBACK.c.received_at < query.received_before)
    if query.before_id is not None:
        conditions.append(CALLBACK.c.id < query.before_id)
    statement = sa.select(*CALLBACK_COLUMNS).where(*conditions).order_by(CALLBACK.c.id.desc())
    return await _page(session, statement, query.limit)


async def deliveries(session: AsyncSession, query: DeliveryQuery) -> Page:
    conditions = _equal(
        (DELIVERY.c.subscription_id, query.subscription_id),
        (DELIVERY.c.job_id, query.job_id),
        (DELIVERY.c.event_type, query.event_type),
    )
    if query.status is not None:
        conditions.append(tables.is_literally(DELIVERY.c.status, query.status))
    if query.before_id is not None:
        conditions.append(DELIVERY.c.id < query.before_id)
    statement = _deliveries().where(*conditions).order_by(DELIVERY.c.id.desc())
    return await _page(session, statement, query.limit)


async def delivery(
    session: AsyncSession, delivery_id: int
) -> tuple[RowMapping, list[RowMapping]] | None:
    """One delivery and every attempt at it, oldest first; None if there is no such."""
    row = (
        (await session.execute(_deliveries().where(DELIVERY.c.id == delivery_id)))
        .mappings()
        .one_or_none()
    )
    if row is None:
        return None
    attempts = tables.delivery_attempts
    logged = await session.execute(
        sa.select(attempts).where(attempts.c.delivery_id == delivery_id).order_by(attempts.c.id)
    )
    return row, list(logged.mappings())


async def attempts(session: AsyncSession, delivery_ids: list[int]) -> dict[int, list[RowMapping]]:
    """Every attempt at each of ``delivery_ids``, oldest first, by delivery."""
    found: dict[int, list[RowMapping]] = {delivery_id: [] for delivery_id in delivery_ids}
    if delivery_ids:
        table = tables.delivery_attempts
        logged = await session.execute(
            sa.select(table)
            .where(table.c.delivery_id.in_(delivery_ids))
            .order_by(table.c.delivery_id, table.c.id)
        )
        for row in logged.mappings():
            found[row["delivery_id"]].append(row)
    return found


async def finished_per_hour(session: AsyncSession, since: datetime) -> list[RowMapping]:
    """How many jobs reached each final status in each hour from ``since`` (through the
    index on ``completed_at``): rows of ``hour`` (UTC, without a zone), ``status``, ``n``."""
    # In UTC whatever the session's TimeZone: an hour of a +05:30 zone is not a UTC hour.
    hour = sa.func.date_trunc("hour", JOB.c.completed_at.op("AT TIME ZONE")("UTC")).label("hour")
    statement = (
        sa.select(hour, JOB.c.status, sa.func.count().label("n"))
        .where(JOB.c.completed_at >= since)
        .group_by(hour, JOB.c.status)
    )
    return list((await session.execute(statement)).mappings())


async def callbacks_judged(session: AsyncSession, since: datetime) -> dict[str, int]:
    """How many callbacks received from ``since`` were judged each way."""
    statement = (
        sa.select(CALLBACK.c.outcome, sa.func.count())
        .where(CALLBACK.c.received_at >= since)
        .group_by(CALLBACK.c.outcome)
    )
    return {str(outcome): int(n) for outcome, n in await session.execute(statement)}


@dataclass(frozen=True)
class Counts:
    jobs: Mapping[str, int]  # by status
    pending_deliveries: int
    oldest_pending: datetime | None  # when the oldest pending delivery was created
    fate_unknown: int  # submissions ICE cannot show whether it has
    subscriptions: Mapping[str, int]  # not deleted, by state: enabled, failing, disabled


async def counts(session: AsyncSession) -> Counts:
    """What the metrics read from the database at each scrape, none of it by counting a
    table: the totals kept by triggers (``store.counts``), the oldest pending delivery (the
    first entry of ``ix_deliveries_status_created_at``) and the submissions of unknown fate
    (``ix_jobs_fate_unknown_since`` holds just those)."""
    by_status = await status_counts.by_status(session)
    oldest = await session.scalar(
        sa.select(sa.func.min(DELIVERY.c.created_at)).where(
            tables.is_literally(DELIVERY.c.status, DeliveryStatus.PENDING)
        )
    )
    unknown = await session.scalar(
        sa.select(sa.func.count()).where(JOB.c.fate_unknown_since.is_not(None))
    )
    pending = by_status["deliveries"].get(DeliveryStatus.PENDING, 0)
    return Counts(by_status["jobs"], pending, oldest, unknown or 0, await _subscriptions(session))


SUBSCRIPTION = tables.subscriptions
SUBSCRIPTION_STATE = sa.case(
    (sa.not_(SUBSCRIPTION.c.enabled), "disabled"),
    (SUBSCRIPTION.c.failing_since.is_not(None), "failing"),
    else_="enabled",
)


async def _subscriptions(session: AsyncSession) -> dict[str, int]:
    """Subscriptions in use by state (a small table, counted)."""
    rows = await session.execute(
        sa.select(SUBSCRIPTION_STATE, sa.func.count())
        .where(SUBSCRIPTION.c.deleted_at.is_(None))
        .group_by(SUBSCRIPTION_STATE)
    )
    return {state: count for state, count in rows}


def _deliveries() -> sa.Select[Any]:
    return sa.select(*DELIVERY_COLUMNS).join(
        tables.outbox, tables.outbox.c.id == DELIVERY.c.message_id
    )


def _equal(*pairs: tuple[sa.ColumnElement[Any], object]) -> list[sa.ColumnElement[bool]]:
    """A list query's equality filters: one condition per value that was given."""
    return [column == value for column, value in pairs if value is not None]


async def _page(session: AsyncSession, statement: sa.Select[Any], limit: int) -> Page:
    """``limit`` rows of ``statement`` (ordered newest first), and whether more follow."""
    rows = (await session.execute(statement.limit(limit + 1))).mappings().all()
    return Page(list(rows[:limit]), len(rows) > limit)
