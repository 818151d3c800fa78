"""The CDR webhook's outbox: each record closed while ``boss.cdr_webhook_url`` is set waits here,
written in the transaction that closes it, until the BOSS acknowledges it.

Revision ID: 0012
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"


def upgrade() -> None:
    op.create_table(
        "cdr_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cdr_id", sa.String(200), nullable=False),
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.String(200), nullable=True),
    )
    op.create_index("ix_cdr_outbox_next", "cdr_outbox", ["next_at"])


def downgrade() -> None:
    op.drop_index("ix_cdr_outbox_next", table_name="cdr_outbox")
    op.drop_table("cdr_outbox")
