"""ice_budgets: ICE call budgets shared by every icehook process

ICE limits an account (30 submits a second), not a process; each row holds when the next
call of one budget may go (app/store/budgets.py).

Revision ID: 20261203_0005
Revises: 20261203_0004
Create Date: 2026-12-03 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261203_0005"
down_revision: str | None = "20261203_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ice_budgets",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ice_budgets")
