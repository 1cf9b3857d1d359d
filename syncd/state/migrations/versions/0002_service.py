"""The daemon's tables: queued manual resyncs, and small service state (source change tokens, decisions).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resync_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64)),
        sa.Column("full", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("run_id", sa.String(32)),
        sa.Column("outcome", sa.String(32)),
        sa.Column("exit_code", sa.Integer),
        sa.Column("message", sa.Text),
    )
    op.create_index("ix_resync_requests_status", "resync_requests", ["status"])
    op.create_table(
        "service_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_journal_kind_subject", "journal", ["kind", "subject"])
    # A scoped resync plans only part of the unit: overdue changes are read from whole-unit runs.
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("scope", sa.String(80), nullable=False, server_default="all"))
    op.create_index("ix_runs_started_at", "runs", ["started_at"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("scope")
    op.drop_index("ix_runs_started_at", "runs")
    op.drop_index("ix_journal_kind_subject", "journal")
    op.drop_table("service_state")
    op.drop_index("ix_resync_requests_status", "resync_requests")
    op.drop_table("resync_requests")
