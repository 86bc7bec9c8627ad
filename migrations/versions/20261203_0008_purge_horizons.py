"""purge_horizons: how far retention has purged each kind of record

Retention (app/core/retention.py) removes old callbacks and webhooks, and finished jobs
once their history window is set. A job's audit view must say plainly what was purged of
it, so each purge records, per kind, the time before which records may be gone.

Revision ID: 20261203_0008
Revises: 20261203_0007
Create Date: 2026-12-04 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261203_0008"
down_revision: str | None = "20261203_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "purge_horizons",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("purged_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_purge_horizons")),
    )


def downgrade() -> None:
    op.drop_table("purge_horizons")
