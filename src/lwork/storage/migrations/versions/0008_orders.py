"""Payment orders (CONTRACT §8).

Revision ID: 0008
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("payid", sa.String(32), primary_key=True),
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("uuid_raw", sa.String(64), nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("pay_type", sa.String(16), nullable=False),
        sa.Column("money", sa.BigInteger, nullable=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("trade_no", sa.String(128), nullable=True),
        sa.Column("note", sa.String(200), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("paid_at", sa.Float, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_orders_uuid", "orders", ["uuid", "state", "paid_at"])
    op.create_index("ix_orders_open", "orders", ["state", "expires_at"])


def downgrade() -> None:
    op.drop_table("orders")
