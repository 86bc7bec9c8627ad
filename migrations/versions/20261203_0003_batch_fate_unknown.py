"""jobs.fate_unknown_since and jobs.last_sent_at, and the status 'abandoned'

A batch whose submission's answer was lost, and that ICE's list cannot show (ICE may not list
scene batches), has an unknown fate: ``fate_unknown_since`` says since when, until a callback
settles it or an operator resolves it; abandoning it is the status ``abandoned``.
``last_sent_at`` is when a submission was last sent, from which ICE's list is given its grace
(NULL on rows from before: their ``created_at`` stands in).

Revision ID: 20261203_0003
Revises: 20261203_0002
Create Date: 2026-12-03 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261203_0003"
down_revision: str | None = "20261203_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = (
    "submitting",
    "submitted",
    "queuing",
    "processing",
    "succeeded",
    "failed",
    "finished",
    "rejected",
)
COLUMNS = (("jobs", "status"), ("job_events", "from_status"), ("job_events", "to_status"))


def _check(statuses: Sequence[str]) -> None:
    # NOT VALID: the rows there already meet either set, and checking them would hold each
    # table's exclusive lock while it scans.
    listed = ", ".join(f"'{status}'" for status in statuses)
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT ck_{table}_{column}")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT ck_{table}_{column} "
            f"CHECK ({column} IN ({listed})) NOT VALID"
        )


def upgrade() -> None:
    _check((*BEFORE, "abandoned"))
    op.add_column("jobs", sa.Column("fate_unknown_since", sa.DateTime(timezone=True)))
    op.add_column("jobs", sa.Column("last_sent_at", sa.DateTime(timezone=True)))
    op.alter_column("jobs", "last_sent_at", server_default=sa.func.now())
    op.create_index(
        "ix_jobs_fate_unknown_since",
        "jobs",
        ["fate_unknown_since"],
        postgresql_where=sa.text("fate_unknown_since IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_fate_unknown_since", table_name="jobs")
    op.drop_column("jobs", "last_sent_at")
    op.drop_column("jobs", "fate_unknown_since")
    op.execute("UPDATE jobs SET status = 'rejected' WHERE status = 'abandoned'")
    op.execute("UPDATE job_events SET to_status = 'rejected' WHERE to_status = 'abandoned'")
    _check(BEFORE)
