"""narrower indexes: index only the deliveries each query looks for

Bytes per job (python -m bench.retention) were about 11 KB, a fifth of it in indexes that
held every row where their queries only ever look for a few:

- deliveries by (subscription, job, message) serve the claim's "no earlier undone event"
  check, which only looks for pending ones: now partial, pending only;
- deliveries by (status, created_at) served the oldest pending delivery and lists by
  status; now the pending ones by creation and the dead ones by id, each partial (a list
  of delivered ones reads the primary key backwards, almost every row matching);
- job_events by (job_id, id) repeated the unique (job_id, to_status), which serves every
  lookup of a job's events as well (a job has at most nine).

Building the partial indexes reads ``deliveries`` once.

Revision ID: 20261204_0002
Revises: 20261204_0001
Create Date: 2026-12-04 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261204_0002"
down_revision: str | None = "20261204_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.drop_index("ix_job_events_job_id_id", table_name="job_events")
    op.drop_index("ix_deliveries_subscription_id_job_id_message_id", table_name="deliveries")
    op.drop_index("ix_deliveries_status_created_at", table_name="deliveries")
    op.create_index(
        "ix_deliveries_pending_order",
        "deliveries",
        ["subscription_id", "job_id", "message_id"],
        postgresql_where=PENDING,
    )
    op.create_index(
        "ix_deliveries_pending_created_at", "deliveries", ["created_at"], postgresql_where=PENDING
    )
    op.create_index(
        "ix_deliveries_dead_id", "deliveries", ["id"], postgresql_where=sa.text("status = 'dead'")
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_dead_id", table_name="deliveries")
    op.drop_index("ix_deliveries_pending_created_at", table_name="deliveries")
    op.drop_index("ix_deliveries_pending_order", table_name="deliveries")
    op.create_index("ix_deliveries_status_created_at", "deliveries", ["status", "created_at"])
    op.create_index(
        "ix_deliveries_subscription_id_job_id_message_id",
        "deliveries",
        ["subscription_id", "job_id", "message_id"],
    )
    op.create_index("ix_job_events_job_id_id", "job_events", ["job_id", "id"])
