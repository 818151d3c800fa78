"""Toll-fraud controls: per-account overrides set by the operator, and velocity alarms.

Revision ID: 0006
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "fraud_overrides",
        sa.Column("uuid", sa.String(64), primary_key=True),
        sa.Column("daily_cap", sa.BigInteger, nullable=True),
        sa.Column("allow_prefixes", sa.Text, nullable=False),
        sa.Column("deny_prefixes", sa.Text, nullable=False),
        sa.Column("callback_local", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "fraud_alarms",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("facts", sa.String(300), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("blocked_until", sa.Float, nullable=False),
    )
    op.create_index("ix_fraud_alarms_subject", "fraud_alarms", ["subject", "blocked_until"])
    op.create_index("ix_fraud_alarms_created", "fraud_alarms", ["created_at"])


def downgrade() -> None:
    op.drop_table("fraud_alarms")
    op.drop_table("fraud_overrides")
