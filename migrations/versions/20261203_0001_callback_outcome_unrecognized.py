"""callbacks.outcome may be 'unrecognized': a callback reporting a Status icehook does not know

Revision ID: 20261203_0001
Revises: 20261130_0001
Create Date: 2026-12-03 12:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261203_0001"
down_revision: str | None = "20261130_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = (
    "pending",
    "applied",
    "duplicate",
    "stale",
    "unmatched",
    "ignored",
    "malformed",
    "rejected",
)


def _check(outcomes: Sequence[str]) -> None:
    # NOT VALID: checking every stored row would hold the table's exclusive lock while it
    # scans (the intake would wait); the rows there already meet either set.
    listed = ", ".join(f"'{outcome}'" for outcome in outcomes)
    op.execute("ALTER TABLE callbacks DROP CONSTRAINT ck_callbacks_outcome")
    op.execute(
        f"ALTER TABLE callbacks ADD CONSTRAINT ck_callbacks_outcome "
        f"CHECK (outcome IN ({listed})) NOT VALID"
    )


def upgrade() -> None:
    _check((*BEFORE, "unrecognized"))


def downgrade() -> None:
    op.execute("UPDATE callbacks SET outcome = 'duplicate' WHERE outcome = 'unrecognized'")
    _check(BEFORE)
