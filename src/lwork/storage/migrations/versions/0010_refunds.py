"""Refunds of paid orders: our refund number (the provider's idempotency key), what the ledger
took back, and the shortfall when the account had already spent it.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0011"


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("refund_no", sa.String(40), primary_key=True),
        sa.Column("payid", sa.String(32), nullable=False),
        sa.Column("money", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("provider_refund_no", sa.String(128), nullable=True),
        sa.Column("failure", sa.String(200), nullable=True),
        sa.Column("coins_taken", sa.BigInteger, nullable=False),
        sa.Column("minutes_taken", sa.Integer, nullable=False),
        sa.Column("coins_short", sa.BigInteger, nullable=False),
        sa.Column("minutes_short", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_refunds_payid", "refunds", ["payid"])
    op.create_index("ix_orders_created", "orders", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_orders_created", "orders")
    op.drop_index("ix_refunds_payid", "refunds")
    op.drop_table("refunds")
