"""Balances, the ledger of every change to them, and call detail records.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "balances",
        sa.Column("uuid", sa.String(64), primary_key=True),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("gift_coins", sa.BigInteger, nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("ref", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("gift_coins", sa.BigInteger, nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.Column("forgiven", sa.BigInteger, nullable=False),
        sa.Column("note", sa.String(200), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_ledger_uuid", "ledger", ["uuid", "created_at"])
    op.create_table(
        "cdrs",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("callee", sa.String(64), nullable=False),
        sa.Column("answered_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.Column("cost", sa.BigInteger, nullable=False),
        sa.Column("end_reason", sa.String(64), nullable=False),
    )
    op.create_index("ix_cdrs_uuid", "cdrs", ["uuid", "answered_at"])


def downgrade() -> None:
    op.drop_table("cdrs")
    op.drop_table("ledger")
    op.drop_table("balances")
