"""The BOSS interface: signatures seen (replay), request ids (idempotency), the audit trail,
and an index to stream every account's call records by start.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "boss_signatures",
        sa.Column("signature", sa.String(64), primary_key=True),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    op.create_index("ix_boss_signatures_seen", "boss_signatures", ["seen_at"])
    op.create_table(
        "boss_requests",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("answer", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "boss_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("account", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("result", sa.String(64), nullable=False),
    )
    op.create_index("ix_boss_audit_at", "boss_audit", ["at"])
    op.create_index("ix_boss_audit_account", "boss_audit", ["account", "at"])
    op.create_index("ix_cdrs_started_all", "cdrs", ["started_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_cdrs_started_all", "cdrs")
    op.drop_table("boss_audit")
    op.drop_table("boss_requests")
    op.drop_table("boss_signatures")
