"""lease_owner: which process holds a job's lease

Leases are short and renewed by their holder's heartbeat (app/flows/leasing.py); a holder
that could not renew in time may find its job taken by another process, and then must not
record its answer. Each process has an id of its own, kept with the leases it takes.

Revision ID: 20261203_0007
Revises: 20261203_0006
Create Date: 2026-12-03 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "20261203_0007"
down_revision: str | None = "20261203_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("lease_owner", UUID(as_uuid=True)))


def downgrade() -> None:
    op.drop_column("jobs", "lease_owner")
