"""Which database errors are worth retrying: classified in one place.

Every error a database operation raises is one of:

``TRANSIENT``
    Running the same transaction again may work: the connection was lost or
    could not be made (server restarting, network down, our own timeouts
    cut a hung connection), a deadlock, a serialization failure, a lock or
    statement timeout, SQLite's "database is locked", no free connection in
    the pool. Retried with back-off (see ``retrying``).
``UNSTORABLE``
    The database refused a *value* and always will: a MySQL packet over
    ``max_allowed_packet``, data too long for its column, a string the
    column's character set cannot hold, JSON PostgreSQL does not accept
    (``NaN``). Raised as ``exceptions.UnstorableValue`` by writes, never
    retried.
``FATAL``
    Anything else (integrity errors, a missing table, bad SQL...): raised at
    once as ``StorageFailure``, never retried.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from sqlalchemy import exc as sa_exc

__all__ = ['FATAL', 'TRANSIENT', 'UNSTORABLE', 'classify', 'column_of',
           'describe']

TRANSIENT = 'transient'
UNSTORABLE = 'unstorable'
FATAL = 'fatal'

# PostgreSQL SQLSTATEs (classes are their first two characters).
_PG_TRANSIENT_CLASSES = frozenset([
    '08',   # connection exception
])
_PG_TRANSIENT = frozenset([
    '40001',  # serialization_failure
    '40P01',  # deadlock_detected
    '55P03',  # lock_not_available (lock_timeout)
    '57014',  # query_canceled (statement_timeout)
    '57P01',  # admin_shutdown (pg_terminate_backend, server stopping)
    '57P02',  # crash_shutdown
    '57P03',  # cannot_connect_now (starting up, recovering)
    '53300',  # too_many_connections
])
_PG_UNSTORABLE_CLASSES = frozenset([
    '22',   # data exception (invalid JSON text, value too long...)
    '54',   # program limit exceeded (a value too large)
])

# MySQL / MariaDB error numbers.
_MYSQL_TRANSIENT = frozenset([
    1040,  # too many connections
    1053,  # server shutdown in progress
    1205,  # lock wait timeout exceeded
    1213,  # deadlock found
    1317,  # query execution was interrupted (KILL QUERY)
    1927,  # connection was killed (MariaDB)
    1969,  # max_statement_time exceeded (MariaDB)
    2003,  # can't connect
    2006,  # server has gone away
    2013,  # lost connection during query (and PyMySQL's read timeout)
    2055,  # lost connection (system error)
    3024,  # max_execution_time exceeded (MySQL)
    4031,  # disconnected by the server for inactivity (MySQL 8)
])
_MYSQL_UNSTORABLE = frozenset([
    1118,  # row size too large
    1153,  # packet bigger than max_allowed_packet
    1264,  # out of range value
    1265,  # data truncated
    1292,  # incorrect value
    1301,  # result larger than max_allowed_packet
    1366,  # incorrect string value (character set)
    1406,  # data too long for column
    3140,  # invalid JSON text
])

# SQLite primary result codes.
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_TOOBIG = 18

_COLUMN = re.compile(r"column '([A-Za-z_]+)'")


def classify(error: BaseException | None) -> str:
    """``TRANSIENT``, ``UNSTORABLE`` or ``FATAL`` for an error raised by
    SQLAlchemy (or the driver under it)."""
    if isinstance(error, (sa_exc.TimeoutError, sa_exc.DisconnectionError)):
        return TRANSIENT  # no pooled connection in time; a dead connection
    if not isinstance(error, sa_exc.DBAPIError):
        return FATAL
    if error.connection_invalidated:
        return TRANSIENT
    orig = error.orig
    if isinstance(orig, sqlite3.Error):
        return _classify_sqlite(orig)
    sqlstate = getattr(orig, 'sqlstate', None) or getattr(orig, 'pgcode',
                                                          None)
    if sqlstate:
        return _classify_sqlstate(str(sqlstate))
    code = _mysql_code(orig)
    if code is not None:
        if code in _MYSQL_TRANSIENT:
            return TRANSIENT
        if code in _MYSQL_UNSTORABLE:
            return UNSTORABLE
        return FATAL
    # No code at all: a client side failure (connection refused or cut,
    # a timeout) is an OperationalError; anything else is not transient.
    if isinstance(error, sa_exc.OperationalError):
        return TRANSIENT
    return FATAL


def _classify_sqlite(orig: sqlite3.Error) -> str:
    code = getattr(orig, 'sqlite_errorcode', None)
    if code is None:  # an old sqlite3 module: go by the text
        text = str(orig)
        if 'locked' in text or 'busy' in text:
            return TRANSIENT
        return UNSTORABLE if 'too big' in text else FATAL
    primary = code & 0xff
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return TRANSIENT
    if primary == _SQLITE_TOOBIG:
        return UNSTORABLE
    return FATAL


def _classify_sqlstate(sqlstate: str) -> str:
    if sqlstate in _PG_TRANSIENT or sqlstate[:2] in _PG_TRANSIENT_CLASSES:
        return TRANSIENT
    if sqlstate[:2] in _PG_UNSTORABLE_CLASSES:
        return UNSTORABLE
    return FATAL


def _mysql_code(orig: Any) -> int | None:
    args = getattr(orig, 'args', ())
    if args and isinstance(args[0], int) and not isinstance(args[0], bool):
        return args[0]
    return None


def describe(error: BaseException) -> str:
    """The first line of the driver's message (never the SQL statement or
    its parameters, which SQLAlchemy's own message carries)."""
    orig = getattr(error, 'orig', None) or error
    args: tuple = getattr(orig, 'args', ())
    if len(args) >= 2 and isinstance(args[0], int):
        text = '(%s) %s' % (args[0], args[1])  # PyMySQL: (code, message)
    else:
        text = str(orig)
    lines = text.strip().splitlines()
    return '%s: %s' % (type(orig).__name__, lines[0] if lines else '')


def column_of(error: BaseException) -> str | None:
    """The column a MySQL data error names ("Data too long for column
    'results'"), if any."""
    match = _COLUMN.search(describe(error))
    return match.group(1) if match else None
