"""Per-dialect setup of the SQLAlchemy engine (SQLite pragmas and
transactions, MySQL ``sql_mode``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

__all__ = ['DEFAULT_MYSQL_SQL_MODE', 'DEFAULT_SQLITE_BUSY_TIMEOUT',
           'DEFAULT_SQLITE_SYNCHRONOUS', 'is_memory_sqlite', 'setup_mysql',
           'setup_sqlite']

DEFAULT_SQLITE_SYNCHRONOUS = 'NORMAL'
DEFAULT_SQLITE_BUSY_TIMEOUT = 30.0
DEFAULT_MYSQL_SQL_MODE = 'TRADITIONAL'


def is_memory_sqlite(url: sa.URL) -> bool:
    return (url.get_backend_name() == 'sqlite'
            and url.database in (None, '', ':memory:'))


def setup_sqlite(engine: sa.Engine, conf: dict) -> None:
    memory = is_memory_sqlite(engine.url)
    synchronous = str(conf.get('sqlite_synchronous',
                               DEFAULT_SQLITE_SYNCHRONOUS)).upper()
    if synchronous not in ('OFF', 'NORMAL', 'FULL', 'EXTRA'):
        raise ValueError("sqlite_synchronous must be OFF, NORMAL, FULL or"
                         " EXTRA, not %r" % (conf['sqlite_synchronous'],))
    busy_ms = int(float(conf.get('sqlite_busy_timeout',
                                 DEFAULT_SQLITE_BUSY_TIMEOUT)) * 1000)

    @event.listens_for(engine, 'connect')
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions
        # would start writers as deferred and fail with 'database is locked'
        # instead of waiting).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute('PRAGMA busy_timeout = %d' % busy_ms)
            if not memory:
                cursor.execute('PRAGMA journal_mode = WAL')
                cursor.execute('PRAGMA synchronous = %s' % synchronous)
        finally:
            cursor.close()

    @event.listens_for(engine, 'begin')
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get('taskflow_write'):
            conn.exec_driver_sql('BEGIN IMMEDIATE')
        else:
            conn.exec_driver_sql('BEGIN')


def setup_mysql(engine: sa.Engine, conf: dict) -> None:
    sql_mode = conf.get('mysql_sql_mode', DEFAULT_MYSQL_SQL_MODE)
    if not sql_mode:
        return

    @event.listens_for(engine, 'connect')
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute('SET SESSION sql_mode = %s', (sql_mode,))
        finally:
            cursor.close()
