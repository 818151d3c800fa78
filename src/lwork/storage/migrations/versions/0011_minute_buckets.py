"""Dated package minutes: one bucket per period (CONTRACT §8, §9 ``package``).

The plain minute counter of each balance becomes one bucket that never expires, granted by a
``migrated:0011:<uuid>`` reference, and the counter is set to 0 (unused from now on). Down, the
minutes left in every bucket (dates are lost) go back into the counter.

Revision ID: 0011
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0013"


def upgrade() -> None:
    op.create_table(
        "minute_buckets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("ref", sa.String(200), nullable=False),
        sa.Column("granted", sa.Integer, nullable=False),
        sa.Column("minutes_left", sa.Integer, nullable=False),
        sa.Column("valid_from", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=True),
    )
    op.create_index("ix_minute_buckets_uuid", "minute_buckets", ["uuid", "expires_at"])
    op.create_index("ix_minute_buckets_ref", "minute_buckets", ["ref"])
    op.execute(
        "INSERT INTO minute_buckets (uuid, ref, granted, minutes_left, valid_from, expires_at) "
        "SELECT uuid, 'migrated:0011:' || uuid, minutes, minutes, updated_at, NULL "
        "FROM balances WHERE minutes > 0"
    )
    op.execute("UPDATE balances SET minutes = 0")


def downgrade() -> None:
    op.execute(
        "UPDATE balances SET minutes = (SELECT COALESCE(SUM(b.minutes_left), 0) "
        "FROM minute_buckets b WHERE b.uuid = balances.uuid AND b.minutes_left > 0)"
    )
    op.drop_index("ix_minute_buckets_ref", "minute_buckets")
    op.drop_index("ix_minute_buckets_uuid", "minute_buckets")
    op.drop_table("minute_buckets")
