"""artifact retention: when the sweep removed a local run's kept artifacts

Revision ID: issue16_artifact_retention
Revises: issue18_leases_and_retention
"""

import sqlalchemy as sa
from alembic import op

revision = "issue16_artifact_retention"
down_revision = "issue18_leases_and_retention"
branch_labels = None
depends_on = None

KEPT = "artifacts_expired_at IS NULL AND executor = 'local'"


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("artifacts_expired_at", sa.DateTime(), nullable=True))
    op.create_index(
        "ix_runs_artifacts_kept",
        "runs",
        ["created_at"],
        postgresql_where=sa.text(KEPT),
        sqlite_where=sa.text(KEPT),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_artifacts_kept", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("artifacts_expired_at")
