"""replays: a delivery's signed body is remembered while the replay window is open

Revision ID: issue18_replays
Revises: issue14_github_app
"""

import sqlalchemy as sa
from alembic import op

revision = "issue18_replays"
down_revision = "issue14_github_app"
branch_labels = None
depends_on = None

OPEN = "replay_key IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("replay_key", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_delivery_replay", ["forge", "instance", "replay_key"])
    op.create_index(
        "ix_deliveries_replay_open",
        "deliveries",
        ["received_at"],
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_replay_open", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_delivery_replay", type_="unique")
        batch.drop_column("replay_key")
