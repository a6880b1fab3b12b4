"""The SQL jobboard: jobs and their claim history.

Revision ID: ng0002
Revises: ng0001
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = 'ng0002'
down_revision = 'ng0001'
branch_labels = None
depends_on = None


# MySQL: any text, compared exactly (owner names are case sensitive).
_MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4',
          'mysql_collate': 'utf8mb4_bin'}


def upgrade() -> None:
    op.create_table(
        'taskflow_ng_jobs',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer, 'sqlite'),
                  primary_key=True, autoincrement=True),
        sa.Column('uuid', sa.String(36), nullable=False, unique=True),
        sa.Column('board', sa.String(255), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('priority', sa.SmallInteger, nullable=False),
        sa.Column('details', sa.Text, nullable=True),
        sa.Column('book_uuid', sa.String(36), nullable=True),
        sa.Column('book_name', sa.String(255), nullable=True),
        sa.Column('created_on', sa.Double, nullable=False),
        sa.Column('last_modified', sa.Double, nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('owner', sa.String(255), nullable=True),
        sa.Column('token', sa.BigInteger, nullable=False),
        sa.Column('claimed_until', sa.Double, nullable=True),
        **_MYSQL,
    )
    op.create_index('taskflow_ng_jobs_listing', 'taskflow_ng_jobs',
                    ['board', 'status', 'priority', 'id'])
    op.create_table(
        'taskflow_ng_job_attempts',
        sa.Column('job_uuid', sa.String(36), primary_key=True),
        sa.Column('token', sa.BigInteger, primary_key=True,
                  autoincrement=False),
        sa.Column('who', sa.String(255), nullable=False),
        sa.Column('claimed_at', sa.Double, nullable=False),
        sa.Column('ended_at', sa.Double, nullable=True),
        sa.Column('outcome', sa.String(16), nullable=True),
        sa.Column('reason', sa.Text, nullable=True),
        **_MYSQL,
    )


def downgrade() -> None:
    op.drop_table('taskflow_ng_job_attempts')
    op.drop_index('taskflow_ng_jobs_listing', 'taskflow_ng_jobs')
    op.drop_table('taskflow_ng_jobs')
