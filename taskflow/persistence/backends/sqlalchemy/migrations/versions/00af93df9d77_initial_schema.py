"""Create logbooks, flowdetails and atomdetails.

The revision id is the original TaskFlow's head revision: a database the
original created and migrated to its head is recognised as up to date (its
``upgrade()`` is a no-op here), and a database created here is at the head the
original expects. The schema created is the original's final schema.
Databases left by the original at an *older* revision are not supported.

Revision ID: 00af93df9d77
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision = '00af93df9d77'
down_revision = None
branch_labels = None
depends_on = None


def _json_type() -> sa.types.TypeEngine:
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        return postgresql.JSON()
    if dialect == 'mysql':
        return mysql.LONGTEXT()
    return sa.Text()


def _table_args() -> dict:
    return {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'}


def upgrade() -> None:
    json_type = _json_type()
    op.create_table(
        'logbooks',
        sa.Column('created_at', sa.DateTime),
        sa.Column('updated_at', sa.DateTime),
        sa.Column('meta', json_type),
        sa.Column('name', sa.String(255)),
        sa.Column('uuid', sa.String(64), primary_key=True, nullable=False),
        **_table_args())
    op.create_index('logbook_uuid_idx', 'logbooks', ['uuid'], unique=True)
    op.create_table(
        'flowdetails',
        sa.Column('created_at', sa.DateTime),
        sa.Column('updated_at', sa.DateTime),
        sa.Column('parent_uuid', sa.String(64),
                  sa.ForeignKey('logbooks.uuid', ondelete='CASCADE',
                                name='flowdetails_ibfk_1')),
        sa.Column('meta', json_type),
        sa.Column('state', sa.String(255)),
        sa.Column('name', sa.String(255)),
        sa.Column('uuid', sa.String(64), primary_key=True, nullable=False),
        **_table_args())
    op.create_index('flowdetails_uuid_idx', 'flowdetails', ['uuid'],
                    unique=True)
    op.create_table(
        'atomdetails',
        sa.Column('created_at', sa.DateTime),
        sa.Column('updated_at', sa.DateTime),
        sa.Column('parent_uuid', sa.String(64),
                  sa.ForeignKey('flowdetails.uuid', ondelete='CASCADE',
                                name='atomdetails_ibfk_1')),
        sa.Column('meta', json_type),
        sa.Column('name', sa.String(255)),
        sa.Column('results', json_type),
        sa.Column('version', sa.String(64)),
        sa.Column('state', sa.String(255)),
        sa.Column('uuid', sa.String(64), primary_key=True, nullable=False),
        sa.Column('failure', json_type),
        sa.Column('atom_type', sa.Enum('RETRY_DETAIL', 'TASK_DETAIL',
                                       name='atom_types')),
        sa.Column('intention', sa.Enum('EXECUTE', 'IGNORE', 'REVERT', 'RETRY',
                                       name='intention_type'),
                  server_default='EXECUTE'),
        sa.Column('revert_results', json_type),
        sa.Column('revert_failure', json_type),
        **_table_args())
    op.create_index('atomdetails_uuid_idx', 'atomdetails', ['uuid'],
                    unique=True)


def downgrade() -> None:
    op.drop_table('atomdetails')
    op.drop_table('flowdetails')
    op.drop_table('logbooks')
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        sa.Enum(name='intention_type').drop(bind, checkfirst=True)
        sa.Enum(name='atom_types').drop(bind, checkfirst=True)
