"""schedules: each branch's on.schedule crons, recorded when its pushes are processed (issue 16)

Revision ID: issue16_schedules
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "issue16_schedules"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("forge", sa.String(length=32), nullable=False),
        sa.Column("instance", sa.String(length=255), nullable=False),
        sa.Column("repo", sa.String(length=255), nullable=False),
        sa.Column("branch", sa.String(length=255), nullable=False),
        sa.Column("cron", sa.String(length=255), nullable=False),
        sa.Column("repository_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("forge", "instance", "repo", "branch", "cron", name="uq_schedule"),
    )


def downgrade() -> None:
    op.drop_table("schedules")
