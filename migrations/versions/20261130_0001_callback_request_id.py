"""callbacks.request_id: the id of the HTTP request that delivered each callback

Revision ID: 20261130_0001
Revises: 20261122_0001
Create Date: 2026-11-30 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261130_0001"
down_revision: str | None = "20261122_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("callbacks", sa.Column("request_id", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("callbacks", "request_id")
