"""Per-device mailboxes of push events; the time of each session's last long poll.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "mailbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(40), nullable=False, unique=True),
        sa.Column("device_key", sa.String(200), nullable=False),
        sa.Column("call_id", sa.String(128), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_mailbox_device", "mailbox", ["device_key", "id"])
    op.create_index("ix_mailbox_call", "mailbox", ["call_id"])
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("last_poll", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("last_poll")
    op.drop_table("mailbox")
