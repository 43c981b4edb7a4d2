"""leases and retention: who holds a delivery, and indexes for forgetting old rows

Revision ID: issue18_leases_and_retention
Revises: issue18_replays
"""

import sqlalchemy as sa
from alembic import op

revision = "issue18_leases_and_retention"
down_revision = "issue18_replays"
branch_labels = None
depends_on = None

KEPT = "body IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("sent_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("leased_by", sa.String(length=255), nullable=False, server_default=""))
    op.create_index(
        "ix_deliveries_body_kept",
        "deliveries",
        ["received_at"],
        postgresql_where=sa.text(KEPT),
        sqlite_where=sa.text(KEPT),
    )
    op.create_index("ix_runs_delivery_pk", "runs", ["delivery_pk"])


def downgrade() -> None:
    op.drop_index("ix_runs_delivery_pk", table_name="runs")
    op.drop_index("ix_deliveries_body_kept", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("leased_by")
        batch.drop_column("lease_until")
        batch.drop_column("sent_at")
