"""Call records for every leg, opened at answer with a heartbeat and the SIP dialog, and the
balance reservations of live paid calls.

Revision ID: 0004
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0006"

NEW_COLUMNS = (
    ("caller", sa.String(64)),
    ("caller_id", sa.String(64)),
    ("started_at", sa.Float),
    ("billsec", sa.Integer),
    ("charge_coins", sa.BigInteger),
    ("charge_gift_coins", sa.BigInteger),
    ("charge_minutes", sa.Integer),
    ("forgiven", sa.BigInteger),
    ("sip_status", sa.Integer),
    ("mos", sa.Float),
    ("loss", sa.Float),
    ("jitter_ms", sa.Float),
    ("rtt_ms", sa.Float),
    ("node", sa.String(64)),
    ("owner", sa.String(96)),
    ("heartbeat_at", sa.Float),
    ("dialog", sa.Text),
)


def upgrade() -> None:
    # batch mode: SQLite cannot drop NOT NULL in place (it copies the table); PostgreSQL alters.
    with op.batch_alter_table("cdrs") as batch:
        for name, type_ in NEW_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
        batch.alter_column("answered_at", existing_type=sa.Float, nullable=True)
        batch.alter_column("ended_at", existing_type=sa.Float, nullable=True)
    # Records written before 0004 were answered outbound legs: they started when answered.
    # Whole seconds, rounded down on both (SQLite's CAST truncates, PostgreSQL's rounds).
    seconds = "ended_at - answered_at"
    if op.get_bind().dialect.name == "postgresql":
        seconds = f"FLOOR({seconds})"
    op.execute(
        f"UPDATE cdrs SET started_at = answered_at, billsec = CAST({seconds} AS INTEGER) "
        "WHERE started_at IS NULL"
    )
    op.create_index("ix_cdrs_started", "cdrs", ["uuid", "started_at"])
    op.create_index("ix_cdrs_owner", "cdrs", ["owner", "ended_at"])
    op.create_index("ix_cdrs_open", "cdrs", ["ended_at", "heartbeat_at"])
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("cents", sa.BigInteger, nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(96), nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )
    op.create_index("ix_reservations_uuid", "reservations", ["uuid"])
    op.create_index("ix_reservations_owner", "reservations", ["owner"])


def downgrade() -> None:
    op.drop_table("reservations")
    op.drop_index("ix_cdrs_open", "cdrs")
    op.drop_index("ix_cdrs_owner", "cdrs")
    op.drop_index("ix_cdrs_started", "cdrs")
    op.execute("DELETE FROM cdrs WHERE answered_at IS NULL OR ended_at IS NULL")
    with op.batch_alter_table("cdrs") as batch:
        batch.alter_column("answered_at", existing_type=sa.Float, nullable=False)
        batch.alter_column("ended_at", existing_type=sa.Float, nullable=False)
        for name, _ in reversed(NEW_COLUMNS):
            batch.drop_column(name)
