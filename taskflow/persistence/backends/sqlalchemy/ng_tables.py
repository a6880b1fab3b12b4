"""taskflow-ng's own tables, beside the original's three.

They live in the same database but outside the original's migration
history: their Alembic migrations (``ng_migrations``) record their revision
in a table of their own (``taskflow_ng_alembic_version``), so a database
stays at the original's head revision for the original TaskFlow, which
ignores these tables. To add a table: define it here, then add a revision
under ``ng_migrations/versions`` whose ``down_revision`` is the latest one
(SQLite gets every table here from ``create_all``).

``taskflow_ng_flow_leases``
    one row per flow detail that was ever owned (see
    ``taskflow.persistence.ownership``): owner, fencing token, the jobboard
    claim token it was taken under, and when it expires (seconds since the
    epoch, by the database's clock).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ['VERSION_TABLE', 'flow_leases', 'job_attempts', 'jobs', 'metadata']

VERSION_TABLE = 'taskflow_ng_alembic_version'

metadata = sa.MetaData()

flow_leases = sa.Table(
    'taskflow_ng_flow_leases', metadata,
    sa.Column('flow_uuid', sa.String(64), primary_key=True),
    sa.Column('owner', sa.String(255), nullable=False),
    sa.Column('token', sa.BigInteger, nullable=False),
    sa.Column('claim_token', sa.BigInteger, nullable=True),
    sa.Column('expires_at', sa.Double, nullable=False),
)

# -- the SQL jobboard (taskflow.jobs.backends.impl_sql) -----------------------
#
# ``taskflow_ng_jobs``: one row per job posted on a board (``board`` is the
# board's namespace), until it is consumed (deleted) or trashed (kept, with
# ``status`` 'trashed': the dead-letter). ``token`` is incremented by every
# claim (the fencing token); ``claimed_until`` is the claim's expiry in
# seconds since the epoch by the database's clock. ``priority`` is a rank
# (0 = VERY_HIGH ... 4 = VERY_LOW) so that ``ORDER BY priority, id`` lists
# the highest priority first, oldest first.
#
# ``taskflow_ng_job_attempts``: one row per claim of a job (its history).

# MySQL: any text, compared exactly (owner names are case sensitive).
_MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4',
          'mysql_collate': 'utf8mb4_bin'}

jobs = sa.Table(
    'taskflow_ng_jobs', metadata,
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
    sa.Index('taskflow_ng_jobs_listing', 'board', 'status', 'priority', 'id'),
    **_MYSQL,
)

job_attempts = sa.Table(
    'taskflow_ng_job_attempts', metadata,
    sa.Column('job_uuid', sa.String(36), primary_key=True),
    sa.Column('token', sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column('who', sa.String(255), nullable=False),
    sa.Column('claimed_at', sa.Double, nullable=False),
    sa.Column('ended_at', sa.Double, nullable=True),
    sa.Column('outcome', sa.String(16), nullable=True),
    sa.Column('reason', sa.Text, nullable=True),
    **_MYSQL,
)
