"""jobs.sub_jobs_succeeded and jobs.sub_jobs_failed: a batch's outcome by its sub-jobs

ICE may call a batch ``Finished`` however many of its sub-jobs failed, so a subscriber is
told how many succeeded and failed. NULL for jobs, and for batches until ICE lists their
sub-jobs (those finished before this migration among them).

Revision ID: 20261203_0004
Revises: 20261203_0003
Create Date: 2026-12-03 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261203_0004"
down_revision: str | None = "20261203_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("sub_jobs_succeeded", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("sub_jobs_failed", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "sub_jobs_failed")
    op.drop_column("jobs", "sub_jobs_succeeded")
