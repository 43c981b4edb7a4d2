"""command claims: when a worker last took a command on (a lease, so a duplicate delivery of a
comment never handles a command another worker is still handling)

Revision ID: 0003_command_claims
Revises: issue16_schedules
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_command_claims"
down_revision = "issue16_schedules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("commands") as batch:
        batch.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("commands") as batch:
        batch.drop_column("claimed_at")
