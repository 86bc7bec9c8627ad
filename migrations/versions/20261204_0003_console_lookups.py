"""console lookups: jobs by UserData value and by when they finished

The console's search box and the API find jobs by a UserData value (a tenant, an order
id); without an index that reads every job. ``jsonb_path_ops`` answers containment
(``@>``), the only question asked, with one hash per value. The console's overview counts
the jobs finished in each hour of the last day, which ``completed_at`` indexed finds
without reading older jobs (and so does the purge of jobs past their history retention).

Building them reads ``jobs`` and blocks writes to it meanwhile: on a large database, build
them first by hand with ``CREATE INDEX CONCURRENTLY ix_jobs_user_data ON jobs USING gin
(user_data jsonb_path_ops)`` and ``CREATE INDEX CONCURRENTLY ix_jobs_completed_at ON jobs
(completed_at) WHERE completed_at IS NOT NULL``; this migration then finds them.

Revision ID: 20261204_0003
Revises: 20261204_0002
Create Date: 2026-12-04 03:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261204_0003"
down_revision: str | None = "20261204_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_user_data",
        "jobs",
        ["user_data"],
        postgresql_using="gin",
        postgresql_ops={"user_data": "jsonb_path_ops"},
        if_not_exists=True,
    )
    op.create_index(
        "ix_jobs_completed_at",
        "jobs",
        ["completed_at"],
        postgresql_where=sa.text("completed_at IS NOT NULL"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_completed_at", table_name="jobs")
    op.drop_index("ix_jobs_user_data", table_name="jobs")
