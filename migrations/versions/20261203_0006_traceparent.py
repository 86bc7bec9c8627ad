"""traceparent: carry a trace from a callback to its confirmation and webhooks

A pending callback keeps the W3C traceparent of the request that brought it, and an event
(its outbox message) that of the work that recorded it; both stay NULL while tracing is
off (app/telemetry/tracing.py).

Revision ID: 20261203_0006
Revises: 20261203_0005
Create Date: 2026-12-03 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261203_0006"
down_revision: str | None = "20261203_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: PostgreSQL adds the column without rewriting the table.
    op.add_column("callbacks", sa.Column("traceparent", sa.Text()))
    op.add_column("outbox", sa.Column("traceparent", sa.Text()))


def downgrade() -> None:
    op.drop_column("outbox", "traceparent")
    op.drop_column("callbacks", "traceparent")
