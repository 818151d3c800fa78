"""SMS caps: each code row records its sender's limit key (IPv6 /64) and number prefix; a lock
row serialises the cap checks of concurrent sends on every node.

Revision ID: 0007
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0003"


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


def downgrade() -> None:
    op.drop_table("limit_locks")
    op.drop_index("ix_sms_codes_created", "sms_codes")
    op.drop_index("ix_sms_codes_prefix", "sms_codes")
    op.drop_index("ix_sms_codes_ip_key", "sms_codes")
    with op.batch_alter_table("sms_codes") as batch:
        batch.drop_column("prefix")
        batch.drop_column("ip_key")
