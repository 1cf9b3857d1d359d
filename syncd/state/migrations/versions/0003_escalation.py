"""The escalation engine's records: problems administrators were told of, and every notice sent.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "problems",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("subjects", sa.JSON, nullable=False),
        sa.Column("title", sa.String(128), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_notice_at", sa.DateTime(timezone=True)),
        sa.Column("reminders", sa.Integer, nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_by", sa.String(128)),
        sa.Column("escalated_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
    )
    # A key names at most one open problem; resolved ones keep theirs (a problem may come back).
    op.create_index("uq_problems_open_key", "problems", ["key"], unique=True,
                    sqlite_where=sa.text("resolved_at IS NULL"), postgresql_where=sa.text("resolved_at IS NULL"))
    op.create_index("ix_problems_resolved_at", "problems", ["resolved_at"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("problem_id", sa.Integer, sa.ForeignKey("problems.id"), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("notice_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_notices_problem_id", "notices", ["problem_id"])
    op.create_index("ix_notices_notice_id", "notices", ["notice_id"])


def downgrade() -> None:
    op.drop_index("ix_notices_notice_id", "notices")
    op.drop_index("ix_notices_problem_id", "notices")
    op.drop_table("notices")
    op.drop_index("ix_problems_resolved_at", "problems")
    op.drop_index("uq_problems_open_key", "problems")
    op.drop_table("problems")
