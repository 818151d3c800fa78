"""Limits that hold across nodes. SMS caps: each code row records its sender's limit key (IPv6
/64) and number prefix; a lock row serialises the cap checks of concurrent sends. Password
guesses: failures per (account, address) and each account's budget for strangers.

Revision ID: 0007
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("sms_codes") as batch:
        batch.add_column(sa.Column("ip_key", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("prefix", sa.String(16), nullable=False, server_default=""))
    op.create_index("ix_sms_codes_ip_key", "sms_codes", ["ip_key", "created_at"])
    op.create_index("ix_sms_codes_prefix", "sms_codes", ["prefix", "created_at"])
    op.create_index("ix_sms_codes_created", "sms_codes", ["created_at"])
    locks = op.create_table(
        "limit_locks",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("taken_at", sa.Float, nullable=False),
    )
    op.bulk_insert(locks, [{"name": "sms_send", "taken_at": 0.0}])
    op.create_table(
        "guess_pairs",
        sa.Column("account", sa.String(80), primary_key=True),
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("blocked_until", sa.Float, nullable=False),
        sa.Column("seen", sa.Float, nullable=False),
        sa.Column("known", sa.Boolean, nullable=False),
    )
    op.create_index("ix_guess_pairs_seen", "guess_pairs", ["seen"])
    op.create_table(
        "guess_budgets",
        sa.Column("account", sa.String(80), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("guess_budgets")
    op.drop_table("guess_pairs")
    op.drop_table("limit_locks")
    op.drop_index("ix_sms_codes_created", "sms_codes")
    op.drop_index("ix_sms_codes_prefix", "sms_codes")
    op.drop_index("ix_sms_codes_ip_key", "sms_codes")
    with op.batch_alter_table("sms_codes") as batch:
        batch.drop_column("prefix")
        batch.drop_column("ip_key")
