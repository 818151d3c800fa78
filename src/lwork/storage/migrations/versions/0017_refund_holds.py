"""Cumulative refund notices held while a refund of ours on the same order has no answer: what
the provider told it refunded in all, taken back once ours is decided.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"


def upgrade() -> None:
    op.create_table(
        "refund_holds",
        sa.Column("payid", sa.String(32), primary_key=True),
        sa.Column("refunded", sa.BigInteger, nullable=False),
        sa.Column("provider_refund_no", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("refund_holds")
