"""Alembic environment for taskflow-ng's own tables (see ``ng_tables``).

Their revision is kept in ``taskflow_ng_alembic_version``, never in the
original's ``alembic_version``. ``migration.upgrade()`` passes an open
connection in ``config.attributes['connection']``.
"""

from alembic import context

from taskflow.persistence.backends.sqlalchemy import ng_tables

config = context.config
connection = config.attributes['connection']
context.configure(connection=connection, target_metadata=None,
                  version_table=ng_tables.VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
