"""Alembic environment for the taskflow persistence schema.

``migration.upgrade()`` passes an open SQLAlchemy connection in
``config.attributes['connection']``; the ``sqlalchemy.url`` option is only
used when running the ``alembic`` command line by hand.
"""

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get('connection')
    if connection is not None:
        _run(connection)
        return
    engine = engine_from_config(config.get_section(config.config_ini_section)
                                or {},
                                prefix='sqlalchemy.', poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)


if context.is_offline_mode():
    context.configure(url=config.get_main_option('sqlalchemy.url'),
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
