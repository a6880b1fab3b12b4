"""Bringing a database schema up to date.

* PostgreSQL, MySQL/MariaDB (and any other server): Alembic, with the
  migrations shipped in ``migrations/versions``. The history ends at the
  original TaskFlow's head revision (``00af93df9d77``), so databases created
  by either implementation are at head for both.
* SQLite: ``MetaData.create_all`` (only missing tables are created) and no
  ``alembic_version`` table, exactly as the original does on SQLite; an
  SQLite file is therefore interchangeable both ways too.

taskflow-ng's own tables (``ng_tables``) are brought up to date the same
way, with their own migration history (``ng_migrations``) recorded in their
own version table, so the original never sees a revision it does not know.
"""

from __future__ import annotations

import os

import sqlalchemy as sa

from taskflow.persistence.backends.sqlalchemy import ng_tables
from taskflow.persistence.backends.sqlalchemy import tables as _tables

__all__ = ['HEAD_REVISION', 'alembic_config', 'current_revision', 'upgrade']

HEAD_REVISION = '00af93df9d77'
SCRIPT_LOCATION = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               'migrations')
NG_SCRIPT_LOCATION = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  'ng_migrations')


def alembic_config(connection: sa.Connection | None = None,  # type: ignore[no-untyped-def]
                   script_location: str = SCRIPT_LOCATION):
    """An Alembic ``Config`` for the shipped migrations (no ini file)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option('script_location', script_location)
    if connection is not None:
        config.attributes['connection'] = connection
    return config


def upgrade(connection: sa.Connection) -> None:
    """Create or migrate the schema on ``connection`` (idempotent; commits)."""
    if connection.dialect.name == 'sqlite':
        _tables.make_tables('sqlite').metadata.create_all(connection)
        ng_tables.metadata.create_all(connection)
        connection.commit()
        return
    from alembic import command

    command.upgrade(alembic_config(connection), 'head')
    connection.commit()
    upgrade_ng(connection)


def upgrade_ng(connection: sa.Connection) -> None:
    """Create or migrate only taskflow-ng's own tables (idempotent; commits)."""
    if connection.dialect.name == 'sqlite':
        ng_tables.metadata.create_all(connection)
    else:
        from alembic import command

        command.upgrade(alembic_config(connection, NG_SCRIPT_LOCATION), 'head')
    connection.commit()


def current_revision(connection: sa.Connection) -> str | None:
    """The revision recorded in ``alembic_version`` (``None`` if none)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
