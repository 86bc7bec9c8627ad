"""Webhook subscriptions: created, listed, changed, rotated and deleted (their history kept)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.statuses import DeliveryStatus
from app.store import tables
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
    session: AsyncSession, subscription_id: uuid.UUID, values: Mapping[str, Any]
) -> RowMapping:
    """Change ``values`` (its columns); enabling it clears why it was disabled, and wakes the
    delivery workers for its held deliveries."""
    if values.get("enabled"):
        values = {**values, "disabled_reason": None, "failing_since": None}
    changed = await session.execute(
        sa.update(SUBSCRIPTION)
        .where(SUBSCRIPTION.c.id == subscription_id)
        .values(**values, updated_at=sa.func.now())
        .returning(*SUBSCRIPTION.c)
    )
    if values.get("enabled"):
        await session.execute(sa.select(notify(DELIVERIES)))
    return changed.mappings().one()


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
