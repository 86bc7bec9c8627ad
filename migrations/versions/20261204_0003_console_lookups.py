"""user data search: a GIN index on jobs.user_data for GET /v1/jobs?user_data.KEY=VALUE

The console's search box and the API find jobs by a UserData value (a tenant, an order
id); without an index that reads every job. ``jsonb_path_ops`` answers containment
(``@>``), the only question asked, with one hash per value.

Building it reads ``jobs`` once and blocks writes to it meanwhile: on a large database,
build it first by hand with ``CREATE INDEX CONCURRENTLY ix_jobs_user_data ON jobs USING
gin (user_data jsonb_path_ops)``; this migration then finds it and does nothing.

Revision ID: 20261204_0003
Revises: 20261204_0002
Create Date: 2026-12-04 03:30:00.000000
"""

from collections.abc import Sequence

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


def downgrade() -> None:
    op.drop_index("ix_jobs_user_data", table_name="jobs")
