"""Accounts, sessions, SMS codes, push registrations, provisioning, app versions.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("uuid", sa.String(64), primary_key=True),
        sa.Column("uuid_raw", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), unique=True, nullable=True),
        sa.Column("pwd_hash", sa.String(256), nullable=False),
        sa.Column("group_id", sa.String(16), nullable=False),
        sa.Column("info", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("os_type", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
    )
    op.create_index("ix_sessions_uuid", "sessions", ["uuid"])
    op.create_index("ix_sessions_device", "sessions", ["device_id"])
    op.create_table(
        "sms_codes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("phone", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("client_ip", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("used", sa.Boolean, nullable=False),
    )
    op.create_index("ix_sms_codes_phone", "sms_codes", ["phone", "created_at"])
    op.create_index("ix_sms_codes_ip", "sms_codes", ["client_ip", "created_at"])
    op.create_table(
        "push_registrations",
        sa.Column("uuid", sa.String(64), primary_key=True),
        sa.Column("device_id", sa.String(128), primary_key=True),
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("token", sa.String(512), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "provisioning",
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("group_id", sa.String(16), nullable=False),
        sa.Column("pwd_hash", sa.String(256), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("did", sa.String(64), unique=True, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "app_versions",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("version_no", sa.String(64), nullable=False),
        sa.Column("version_path", sa.String(512), nullable=False),
        sa.Column("version_info", sa.Text, nullable=False),
        sa.Column("i_version_no", sa.String(64), nullable=False),
        sa.Column("i_version_path", sa.String(512), nullable=False),
        sa.Column("i_version_info", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "app_versions",
        "provisioning",
        "push_registrations",
        "sms_codes",
        "sessions",
        "accounts",
    ):
        op.drop_table(table)
