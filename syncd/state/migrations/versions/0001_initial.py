"""The first tables: links, runs and the change journal.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "department_links",
        sa.Column("hr_id", sa.String(64), primary_key=True),
        sa.Column("organization_code", sa.String(64), nullable=False, unique=True),
        sa.Column("parent_hr_id", sa.String(64)),
        sa.Column("pushed", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "person_links",
        sa.Column("employee_id", sa.String(64), primary_key=True),
        sa.Column("employee_code", sa.String(64), nullable=False, unique=True),
        sa.Column("account_id", sa.Integer),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("organization_code", sa.String(64), nullable=False),
        sa.Column("pushed", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("frozen", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.String(16)),
        sa.Column("counts", sa.JSON, nullable=False),
    )
    op.create_table(
        "journal",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("change", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error_category", sa.String(32)),
        sa.Column("error_message", sa.Text),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.Date, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_journal_run_id", "journal", ["run_id"])
    op.create_index("ix_journal_state", "journal", ["state"])
    op.create_index("ix_journal_subject", "journal", ["subject"])


def downgrade() -> None:
    op.drop_table("journal")
    op.drop_table("runs")
    op.drop_table("person_links")
    op.drop_table("department_links")
