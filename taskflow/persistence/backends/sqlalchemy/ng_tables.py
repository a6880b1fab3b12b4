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

__all__ = ['VERSION_TABLE', 'flow_leases', 'metadata']

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
