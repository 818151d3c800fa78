"""Orders' indexes that a settlement leaves alone: each index whose columns a paid
notification changes is a B-tree entry deleted and another inserted, pages written at every
commit, on the hot path of every payment.

- ``ix_orders_uuid`` (uuid, state, paid_at) becomes ``ix_orders_account`` (uuid, created_at):
  every query by account (its paid orders, its expired ones, the console's latest, listings)
  reads a handful of rows found by the account, and the new key never changes;
- ``ix_orders_open`` (state, expires_at), read only by reconciliation's orders still
  ``created`` oldest first, becomes ``ix_orders_waiting`` (created_at) over ``created`` orders
  only: small, what that query reads, and a paid order only leaves it;
- ``ix_orders_trade`` (pay_type, trade_no) keeps only orders with a trade number (it is looked up
  by one): a paid order enters it, no entry for NULL leaves it.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"

_CREATED = sa.text("state = 'created'")
_TRADED = sa.text("trade_no IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_orders_uuid", table_name="orders")
    op.drop_index("ix_orders_open", table_name="orders")
    op.drop_index("ix_orders_trade", table_name="orders")
    op.create_index("ix_orders_account", "orders", ["uuid", "created_at"])
    op.create_index("ix_orders_waiting", "orders", ["created_at"],
                    sqlite_where=_CREATED, postgresql_where=_CREATED)  # fmt: skip
    op.create_index("ix_orders_trade", "orders", ["pay_type", "trade_no"],
                    sqlite_where=_TRADED, postgresql_where=_TRADED)  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_orders_trade", table_name="orders")
    op.drop_index("ix_orders_waiting", table_name="orders")
    op.drop_index("ix_orders_account", table_name="orders")
    op.create_index("ix_orders_trade", "orders", ["pay_type", "trade_no"])
    op.create_index("ix_orders_open", "orders", ["state", "expires_at"])
    op.create_index("ix_orders_uuid", "orders", ["uuid", "state", "paid_at"])
