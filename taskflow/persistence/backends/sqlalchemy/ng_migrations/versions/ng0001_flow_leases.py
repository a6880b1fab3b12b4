"""Flow leases: one owner per flow, with fencing tokens.

Revision ID: ng0001
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = 'ng0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'taskflow_ng_flow_leases',
        sa.Column('flow_uuid', sa.String(64), primary_key=True),
        sa.Column('owner', sa.String(255), nullable=False),
        sa.Column('token', sa.BigInteger, nullable=False),
        sa.Column('claim_token', sa.BigInteger, nullable=True),
        sa.Column('expires_at', sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table('taskflow_ng_flow_leases')
