"""subscription shaping: limits, filters, headers, signature scheme, operational events

Each subscription gets its own limits (requests in flight across all workers, requests a
second, paced by ``paced_until``), a filter on the events it receives, static headers, and
the scheme it is signed with (``v1`` HMAC or ``v1a`` ed25519). ``disabled_at`` says since
when a subscription is disabled, ``queue_until`` until when its events are still queued
for it. Operational events
(``subscription.disabled``/``enabled``) belong to no job, so an outbox message and its
deliveries may have no job.

Revision ID: 20261204_0005
Revises: 20261204_0004
Create Date: 2026-12-04 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "20261204_0005"
down_revision: str | None = "20261204_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add = op.add_column
    add(
        "subscriptions", sa.Column("max_in_flight", sa.Integer, nullable=False, server_default="16")
    )
    add("subscriptions", sa.Column("max_per_second", sa.Float))
    add("subscriptions", sa.Column("paced_until", sa.DateTime(timezone=True)))
    add("subscriptions", sa.Column("filter", JSONB))
    add("subscriptions", sa.Column("headers", JSONB))
    add(
        "subscriptions",
        sa.Column("signature_scheme", sa.Text, nullable=False, server_default="v1"),
    )
    add("subscriptions", sa.Column("disabled_at", sa.DateTime(timezone=True)))
    add("subscriptions", sa.Column("queue_until", sa.DateTime(timezone=True)))
    op.create_check_constraint(
        op.f("ck_subscriptions_signature_scheme"),
        "subscriptions",
        "signature_scheme IN ('v1', 'v1a')",
    )
    op.create_check_constraint(
        op.f("ck_subscriptions_limits"),
        "subscriptions",
        "max_in_flight >= 1 AND (max_per_second IS NULL OR max_per_second >= 0.01)",
    )
    op.execute("UPDATE subscriptions SET disabled_at = updated_at WHERE NOT enabled")
    op.alter_column("outbox", "job_id", nullable=True)
    op.alter_column("deliveries", "job_id", nullable=True)
    # The claim counts each subscription's requests in flight (leased, still pending) and
    # takes each subscription's earliest due deliveries.
    op.create_index(
        "ix_deliveries_leased",
        "deliveries",
        ["subscription_id"],
        postgresql_where=sa.text("status = 'pending' AND lease_until IS NOT NULL"),
    )
    op.create_index(
        "ix_deliveries_due_by_subscription",
        "deliveries",
        ["subscription_id", "next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_deliveries_due", table_name="deliveries")


def downgrade() -> None:
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_deliveries_due_by_subscription", table_name="deliveries")
    op.drop_index("ix_deliveries_leased", table_name="deliveries")
    op.execute("DELETE FROM outbox WHERE job_id IS NULL")
    op.alter_column("deliveries", "job_id", nullable=False)
    op.alter_column("outbox", "job_id", nullable=False)
    op.drop_constraint(op.f("ck_subscriptions_limits"), "subscriptions")
    op.drop_constraint(op.f("ck_subscriptions_signature_scheme"), "subscriptions")
    for column in (
        "queue_until",
        "disabled_at",
        "signature_scheme",
        "headers",
        "filter",
        "paced_until",
        "max_per_second",
        "max_in_flight",
    ):
        op.drop_column("subscriptions", column)
