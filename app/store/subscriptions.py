"""Webhook subscriptions: created, listed, changed, disabled and enabled (each told to the
subscriptions that want operational events), rotated and deleted (their history kept)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.events import (
    SUBSCRIPTION_DISABLED,
    SUBSCRIPTION_ENABLED,
    new_event_id,
    subscription_event_body,
)
from app.core.statuses import DeliveryStatus
from app.store import tables
from app.store.fanout import receives
from app.store.notify import DELIVERIES, notify

SUBSCRIPTION = tables.subscriptions


async def create(session: AsyncSession, values: Mapping[str, Any], secret: str) -> RowMapping:
    """A new subscription with ``values`` (its columns) and its first ``secret``."""
    inserted = await session.execute(
        sa.insert(SUBSCRIPTION)
        .values(id=uuid.uuid4(), secret=secret, **values)
        .returning(*SUBSCRIPTION.c)
    )
    return inserted.mappings().one()


async def in_use(session: AsyncSession) -> list[RowMapping]:
    """Every subscription that is not deleted, oldest first."""
    rows = await session.execute(
        sa.select(SUBSCRIPTION)
        .where(SUBSCRIPTION.c.deleted_at.is_(None))
        .order_by(SUBSCRIPTION.c.created_at, SUBSCRIPTION.c.id)
    )
    return list(rows.mappings())


async def find(session: AsyncSession, subscription_id: uuid.UUID) -> RowMapping | None:
    """The subscription, unless it does not exist or was deleted."""
    row = await session.execute(
        sa.select(SUBSCRIPTION).where(
            SUBSCRIPTION.c.id == subscription_id, SUBSCRIPTION.c.deleted_at.is_(None)
        )
    )
    return row.mappings().one_or_none()


async def change(
    session: AsyncSession,
    subscription_id: uuid.UUID,
    values: Mapping[str, Any],
    queue_disabled_for: float,
) -> RowMapping:
    """Change ``values`` (its columns); ``enabled`` disables (``disable``) or enables it
    (``enable``) if it is not so already. A new ``max_per_second`` starts a new pace."""
    values = dict(values)
    enabled = values.pop("enabled", None)
    if "max_per_second" in values:
        values["paced_until"] = None
    changed = await session.execute(
        sa.update(SUBSCRIPTION)
        .where(SUBSCRIPTION.c.id == subscription_id)
        .values(**values, updated_at=sa.func.now())
        .returning(*SUBSCRIPTION.c)
    )
    row = changed.mappings().one()
    if enabled is False:
        row = (
            await disable(session, subscription_id, "disabled by an operator", queue_disabled_for)
            or row
        )
    elif enabled is True:
        row = await enable(session, subscription_id) or row
    return row


async def disable(
    session: AsyncSession, subscription_id: uuid.UUID, reason: str, queue_for: float
) -> RowMapping | None:
    """Disable the subscription for ``reason``, its events still queued for it for
    ``queue_for`` seconds, and announce it (``subscription.disabled``); None if it was not
    enabled (then nothing changes)."""
    disabled = await session.execute(
        sa.update(SUBSCRIPTION)
        .where(SUBSCRIPTION.c.id == subscription_id, SUBSCRIPTION.c.enabled)
        .values(
            enabled=False,
            disabled_reason=reason,
            disabled_at=sa.func.now(),
            queue_until=sa.func.now() + timedelta(seconds=queue_for),
            updated_at=sa.func.now(),
        )
        .returning(*SUBSCRIPTION.c)
    )
    row = disabled.mappings().one_or_none()
    if row is not None:
        await announce(session, SUBSCRIPTION_DISABLED, row)
    return row


async def enable(session: AsyncSession, subscription_id: uuid.UUID) -> RowMapping | None:
    """Enable a disabled subscription (why it was disabled cleared; its pending deliveries,
    the events queued for it meanwhile among them, due now) and announce it
    (``subscription.enabled``); None if it was not disabled."""
    enabled = await session.execute(
        sa.update(SUBSCRIPTION)
        .where(
            SUBSCRIPTION.c.id == subscription_id,
            sa.not_(SUBSCRIPTION.c.enabled),
            SUBSCRIPTION.c.deleted_at.is_(None),
        )
        .values(
            enabled=True,
            disabled_reason=None,
            failing_since=None,
            disabled_at=None,
            queue_until=None,
            updated_at=sa.func.now(),
        )
        .returning(*SUBSCRIPTION.c)
    )
    row = enabled.mappings().one_or_none()
    if row is not None:
        # What waited for it is due now, each with a fresh schedule: a delivery that was
        # between retries (up to a day apart) would hold its job's later events back.
        await session.execute(
            sa.update(tables.deliveries)
            .where(
                tables.deliveries.c.subscription_id == subscription_id,
                tables.is_literally(tables.deliveries.c.status, DeliveryStatus.PENDING),
                tables.deliveries.c.next_attempt_at > sa.func.now(),
            )
            .values(attempts=0, next_attempt_at=sa.func.now())
        )
        await announce(session, SUBSCRIPTION_ENABLED, row)
        await session.execute(sa.select(notify(DELIVERIES)))
    return row


# An operational event: its outbox message (no job) and its deliveries to the other
# subscriptions that receive it; the delivery workers are woken at commit if there is any.
ANNOUNCE = sa.text(
    f"""
    WITH message AS (
        INSERT INTO outbox (event_id, event_type, payload)
        VALUES (:event_id, :event_type, CAST(:payload AS jsonb))
        RETURNING id, job_id, event_type
    ), fanned AS (
        INSERT INTO deliveries (message_id, subscription_id, job_id, event_type, status)
        SELECT message.id, subscriptions.id, NULL, message.event_type, 'pending'
        FROM message LEFT JOIN jobs ON jobs.id = message.job_id JOIN subscriptions
          ON {receives(subscription="subscriptions", job="jobs", event="message.event_type")}
         AND subscriptions.id <> :subject
        RETURNING id
    )
    SELECT pg_notify('{DELIVERIES}', '') WHERE EXISTS (SELECT FROM fanned)
    """
)


async def announce(session: AsyncSession, event: str, row: Mapping[Any, Any]) -> None:
    """Record the operational ``event`` about the subscription ``row`` and queue it for
    the other subscriptions that want it."""
    await session.execute(
        ANNOUNCE,
        {
            "event_id": new_event_id(),
            "event_type": event,
            "payload": json.dumps(subscription_event_body(event, row)),
            "subject": row["id"],
        },
    )


async def rotate(
    session: AsyncSession, subscription_id: uuid.UUID, secret: str, overlap: timedelta
) -> RowMapping:
    """Sign with ``secret`` from now on; the old secret also signs for ``overlap``."""
    rotated = await session.execute(
        sa.update(SUBSCRIPTION)
        .where(SUBSCRIPTION.c.id == subscription_id)
        .values(
            previous_secret=SUBSCRIPTION.c.secret,
            previous_secret_until=sa.func.now() + overlap,
            secret=secret,
            updated_at=sa.func.now(),
        )
        .returning(*SUBSCRIPTION.c)
    )
    return rotated.mappings().one()


async def delete(session: AsyncSession, subscription_id: uuid.UUID) -> bool:
    """Delete a subscription (its history is kept; its undelivered events become dead);
    False if there is no such subscription."""
    deleted = await session.execute(
        sa.update(SUBSCRIPTION)
        .where(SUBSCRIPTION.c.id == subscription_id, SUBSCRIPTION.c.deleted_at.is_(None))
        .values(enabled=False, deleted_at=sa.func.now(), updated_at=sa.func.now())
        .returning(SUBSCRIPTION.c.id)
    )
    if deleted.one_or_none() is None:
        return False
    await session.execute(
        sa.update(tables.deliveries)
        .where(
            tables.deliveries.c.subscription_id == subscription_id,
            tables.is_literally(tables.deliveries.c.status, DeliveryStatus.PENDING),
        )
        .values(status=DeliveryStatus.DEAD, last_error="the subscription was deleted")
    )
    return True
