"""callbacks.signed: whether a callback's X-ICE-SIGNATURE was verified

True: verified against a configured AuthKey. False: AuthKeys are configured but the callback
carried no signature; it is kept as a hint (icehook confirms every callback with ICE).
NULL: no AuthKey configured, nothing to check.

Revision ID: 20261203_0002
Revises: 20261203_0001
Create Date: 2026-12-03 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261203_0002"
down_revision: str | None = "20261203_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("callbacks", sa.Column("signed", sa.Boolean(), nullable=True))


def downgrade() -> None:
    op.drop_column("callbacks", "signed")
