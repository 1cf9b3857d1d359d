"""Notice identity that survives a restore: each problem keeps a random token its notice ids derive from.

Revision ID: 0004_notice_identity
Revises: 0003
Create Date: 2026-12-04

Problems made before this revision keep no token: their notices went out under ids derived from
the row id, and keep them, so that an open problem's notices are not sent a second time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_notice_identity"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("problems") as batch:
        batch.add_column(sa.Column("token", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("problems") as batch:
        batch.drop_column("token")
