"""Per-dialect setup of the SQLAlchemy engine: bounded waits, SQLite
durability and transactions, MySQL ``sql_mode``.

Every wait on a database is bounded by default (each limit is a backend
option in seconds; ``0`` or ``None`` turns it off):

=====================  =======  ============================================
option                 default  what it bounds
=====================  =======  ============================================
``connect_timeout``    10       making a connection (libpq / PyMySQL)
``statement_timeout``  30       one statement, on the server (PostgreSQL
                                ``statement_timeout``; MariaDB
                                ``max_statement_time``)
``lock_timeout``       10       waiting for a row lock (PostgreSQL
                                ``lock_timeout``; MySQL
                                ``innodb_lock_wait_timeout``)
``read_timeout``       40       waiting for any answer from the server, on
                                the client: PyMySQL's read and write
                                timeouts; for PostgreSQL a watchdog cuts a
                                connection that waited that long
                                (``watchdog``), since libpq has none
``keepalive_idle``,    30, 10,  TCP keepalives (a dead peer or route is
``keepalive_interval``, 3       noticed after idle + interval * count
``keepalive_count``             seconds; also PostgreSQL's
                                ``tcp_user_timeout``)
``pool_timeout``       30       waiting for a free connection in the pool
``sqlite_busy_timeout`` 30      waiting for another SQLite writer
=====================  =======  ============================================

Settings a connection URL already carries (``?connect_timeout=5``) or that
``engine_args['connect_args']`` gives win over these defaults.

SQLite: a file database runs in WAL mode with ``synchronous=FULL`` by
default, so a committed change survives power loss (as the original's
default rollback journal does); ``sqlite_synchronous='NORMAL'`` is faster
(no fsync per commit) and still survives the process being killed, but the
last commits may be lost when the machine loses power.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from taskflow.persistence.backends.sqlalchemy import watchdog as _watchdog

__all__ = ['DEFAULT_MYSQL_SQL_MODE', 'DEFAULT_POOL_TIMEOUT',
           'DEFAULT_SQLITE_BUSY_TIMEOUT', 'DEFAULT_SQLITE_SYNCHRONOUS',
           'Timeouts', 'connect_args', 'is_memory_sqlite', 'setup_mysql',
           'setup_postgresql', 'setup_sqlite']

DEFAULT_SQLITE_SYNCHRONOUS = 'FULL'
DEFAULT_SQLITE_BUSY_TIMEOUT = 30.0
DEFAULT_MYSQL_SQL_MODE = 'TRADITIONAL'
DEFAULT_POOL_TIMEOUT = 30

_DEFAULTS = {
    'connect_timeout': 10.0,
    'statement_timeout': 30.0,
    'lock_timeout': 10.0,
    'read_timeout': 40.0,
    'keepalive_idle': 30.0,
    'keepalive_interval': 10.0,
    'keepalive_count': 3,
}
_PG_DRIVERS = ('psycopg', 'psycopg2', 'psycopg2cffi')
_MYSQL_DRIVERS = ('pymysql', 'mysqldb')


def _seconds(conf: Mapping[str, Any], key: str) -> float | None:
    value = conf.get(key, _DEFAULTS[key])
    if value is None or (isinstance(value, str)
                         and value.strip().lower() in ('', 'none', 'off')):
        return None
    seconds = float(value)
    if seconds < 0:
        raise ValueError('%s must be >= 0 seconds, not %r' % (key, value))
    return seconds or None


class Timeouts:
    """The limits of one backend, in seconds (``None``: no limit)."""

    __slots__ = ('connect', 'statement', 'lock', 'read', 'keepalive_idle',
                 'keepalive_interval', 'keepalive_count')

    def __init__(self, conf: Mapping[str, Any]) -> None:
        self.connect = _seconds(conf, 'connect_timeout')
        self.statement = _seconds(conf, 'statement_timeout')
        self.lock = _seconds(conf, 'lock_timeout')
        self.read = _seconds(conf, 'read_timeout')
        self.keepalive_idle = _seconds(conf, 'keepalive_idle')
        self.keepalive_interval = _seconds(conf, 'keepalive_interval')
        count = _seconds(conf, 'keepalive_count')
        self.keepalive_count = int(count) if count else None

    @property
    def keepalive_total(self) -> float | None:
        """Seconds after which keepalives declare a silent peer dead."""
        if not (self.keepalive_idle and self.keepalive_interval
                and self.keepalive_count):
            return None
        return self.keepalive_idle + self.keepalive_interval * \
            self.keepalive_count


def _whole(seconds: float, minimum: int = 1) -> int:
    return max(minimum, int(math.ceil(seconds)))


def connect_args(url: sa.URL, timeouts: Timeouts,
                 given: Mapping[str, Any]) -> dict[str, Any]:
    """DBAPI ``connect()`` arguments bounding waits for ``url``'s driver,
    without overriding what the URL query or ``given`` already set."""
    driver = url.get_driver_name()
    args: dict[str, Any] = {}
    if driver in _PG_DRIVERS:
        if timeouts.connect:
            args['connect_timeout'] = _whole(timeouts.connect, 2)
        if timeouts.keepalive_total:
            args.update(keepalives=1,
                        keepalives_idle=_whole(timeouts.keepalive_idle or 0),
                        keepalives_interval=_whole(
                            timeouts.keepalive_interval or 0),
                        keepalives_count=timeouts.keepalive_count,
                        tcp_user_timeout=int(timeouts.keepalive_total * 1000))
        options = []
        if timeouts.statement:
            options.append('-c statement_timeout=%d'
                           % int(timeouts.statement * 1000))
        if timeouts.lock:
            options.append('-c lock_timeout=%d' % int(timeouts.lock * 1000))
        if options and 'options' not in url.query and 'options' not in given:
            args['options'] = ' '.join(options)
    elif driver in _MYSQL_DRIVERS:
        if timeouts.connect:
            args['connect_timeout'] = _whole(timeouts.connect)
        if timeouts.read:
            args['read_timeout'] = _whole(timeouts.read)
            args['write_timeout'] = _whole(timeouts.read)
    return {key: value for key, value in args.items()
            if key not in url.query and key not in given}


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


def setup_postgresql(engine: sa.Engine, timeouts: Timeouts,
                     name: str) -> None:
    if timeouts.read and engine.url.get_driver_name() in _PG_DRIVERS:
        _watchdog.install(engine, timeouts.read, name)


def setup_mysql(engine: sa.Engine, conf: dict, timeouts: Timeouts) -> None:
    sql_mode = conf.get('mysql_sql_mode', DEFAULT_MYSQL_SQL_MODE)
    keepalive = timeouts.keepalive_total is not None

    @event.listens_for(engine, 'connect')
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        if keepalive:
            _set_keepalive(getattr(dbapi_connection, '_sock', None),
                           timeouts)
        settings, values = [], []
        if sql_mode:
            settings.append('sql_mode = %s')
            values.append(sql_mode)
        if timeouts.lock:
            settings.append('innodb_lock_wait_timeout = %d'
                            % _whole(timeouts.lock))
        if timeouts.statement and _is_mariadb(dbapi_connection):
            settings.append('max_statement_time = %f' % timeouts.statement)
        if not settings:
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute('SET SESSION ' + ', '.join(settings),
                           tuple(values))
        finally:
            cursor.close()


def _is_mariadb(dbapi_connection: Any) -> bool:
    try:
        return 'mariadb' in dbapi_connection.get_server_info().lower()
    except Exception:  # another driver: no server-side statement limit
        return False


def _set_keepalive(sock: Any, timeouts: Timeouts) -> None:
    if not isinstance(sock, socket.socket) or sock.family not in (
            socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (('TCP_KEEPIDLE', timeouts.keepalive_idle),
                          ('TCP_KEEPINTVL', timeouts.keepalive_interval),
                          ('TCP_KEEPCNT', timeouts.keepalive_count)):
        if value and hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option),
                            _whole(value))
