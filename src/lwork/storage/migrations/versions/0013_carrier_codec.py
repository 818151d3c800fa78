"""Call records say which codec the carrier leg used (AMR, PCMA, PCMU; the app leg is always
AMR, CONTRACT §6.4).

Revision ID: 0013
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0009"


def upgrade() -> None:
    with op.batch_alter_table("cdrs") as batch:
        batch.add_column(sa.Column("carrier_codec", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cdrs") as batch:
        batch.drop_column("carrier_codec")
