"""Orders found by the provider's trade number: the App Store announces a refund by its
transaction id, not by our payid.

Revision ID: 0014
Revises: 0012
"""

from alembic import op

revision = "0014"
down_revision = "0012"


def upgrade() -> None:
    op.create_index("ix_orders_trade", "orders", ["pay_type", "trade_no"])


def downgrade() -> None:
    op.drop_index("ix_orders_trade", table_name="orders")
