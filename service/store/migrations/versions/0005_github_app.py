"""GitHub App: installations and their repositories, check-run ids on jobs, API budgets (issue 14)

Revision ID: issue14_github_app
Revises: issue15_api_tokens
"""

import sqlalchemy as sa
from alembic import op

revision = "issue14_github_app"
down_revision = "issue15_api_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "github_installations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance", sa.String(length=255), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("account", sa.String(length=255), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("repository_selection", sa.String(length=16), nullable=False),
        sa.Column("suspended", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("instance", "installation_id", name="uq_github_installation"),
    )
    op.create_table(
        "github_installation_repos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance", sa.String(length=255), nullable=False),
        sa.Column("repo", sa.String(length=255), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("instance", "repo", name="uq_github_installation_repo"),
    )
    with op.batch_alter_table("github_installation_repos", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_github_installation_repos_installation_id"), ["installation_id"], unique=False
        )
    op.create_table(
        "forge_budgets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("forge", sa.String(length=32), nullable=False),
        sa.Column("instance", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.Column("reset_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("forge", "instance", "key", name="uq_forge_budget"),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("check_run_id", sa.String(length=32), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("check_run_id")
    op.drop_table("forge_budgets")
    with op.batch_alter_table("github_installation_repos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_github_installation_repos_installation_id"))
    op.drop_table("github_installation_repos")
    op.drop_table("github_installations")
