"""personal API tokens of signed-in users (issue 15)

Revision ID: issue15_api_tokens
Revises: 0003_command_claims
"""

import sqlalchemy as sa
from alembic import op

revision = "issue15_api_tokens"
down_revision = "0003_command_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("forge", sa.String(length=32), nullable=False),
        sa.Column("instance", sa.String(length=255), nullable=False),
        sa.Column("login", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    op.create_index(op.f("ix_api_tokens_login"), "api_tokens", ["login"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_tokens_login"), table_name="api_tokens")
    op.drop_table("api_tokens")
