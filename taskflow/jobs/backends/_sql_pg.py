"""PostgreSQL: every board operation in one statement, in autocommit, on
psycopg directly.

On PostgreSQL a write's cost is its round trips plus one WAL flush per
commit, so each operation is a single statement (data-modifying CTEs)
committed on its own: no ``BEGIN``/``COMMIT`` round trips, one flush.

* ``post``: the ``INSERT`` selects from a subquery calling ``pg_notify``,
  so the notification goes out with (and only with) the committed row;
* ``claim``: ``SELECT ... FOR UPDATE SKIP LOCKED`` of a claimable row (a
  claimer never waits on another's row lock), the ``UPDATE`` incrementing
  its token, the ``INSERT`` of the attempt ``RETURNING`` the new token, and
  the row as it was (to say why a failed claim failed);
* ``consume``: the job's ``DELETE`` and its attempts' in one statement;
* ``abandon``/``trash``: the conditional ``UPDATE`` of the job and of its
  current attempt.

Times are the database's clock, read once per statement.

The hot operations (those above, renewals and listings) skip SQLAlchemy's
execution machinery, which costs several times the client CPU of the
statement itself: :class:`Connections` keeps a few psycopg connections of
the engine (made by ``engine.raw_connection()``, so with its connect
arguments and ``connect`` events) and runs server-side prepared statements
on them. Errors are raised as SQLAlchemy's (``DBAPIError.instance``), so
the board's retries treat them as before; a lost connection drops every
idle one (like SQLAlchemy's pool), and the watchdog bounds a hung server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from taskflow.persistence.backends.sqlalchemy import watchdog as _watchdog

__all__ = ['Connections', 'PgStatements']

# The backend's watchdog (one thread for every engine): our connections are
# outside SQLAlchemy's events, so they are armed here.
_WATCHDOG = _watchdog._WATCHDOG

#: Bytes of the longest notification payload sent (PostgreSQL's limit: 8000).
MAX_PAYLOAD = 7900
_NOW = 'extract(epoch from clock_timestamp())::float8'
_JOBS = 'taskflow_ng_jobs'
_ATTEMPTS = 'taskflow_ng_job_attempts'
_HELD = ("uuid = %(b_uuid)s AND status = 'posted' AND owner = %(b_who)s"
         ' AND claimed_until > {now}')
_LISTING = ('id, uuid, name, priority, details, book_uuid, book_name,'
            ' created_on, last_modified')
_LIVE = 'owner IS NOT NULL AND claimed_until > {now}'


def _sql(text: str) -> str:
    """``text`` with ``{now}``, ``{jobs}``, ``{attempts}`` filled in
    (``%(name)s`` are psycopg's parameters)."""
    return text.format(now=_NOW, jobs=_JOBS, attempts=_ATTEMPTS,
                       listing=_LISTING, live=_LIVE.format(now=_NOW),
                       max_payload=MAX_PAYLOAD)


def _held(known_token: bool) -> str:
    return _HELD + (' AND token = %(b_token)s' if known_token else '')


class PgStatements:
    """The single-statement operations of a board on PostgreSQL."""

    def __init__(self) -> None:
        # The notification carries the new row as JSON (what a listener
        # announces, without reading it back), or only its uuid when that
        # would not fit in a NOTIFY payload (< 8000 bytes).
        self.post = _sql(
            'WITH i AS (INSERT INTO {jobs} (uuid, board, name, priority,'
            ' details, book_uuid, book_name, created_on, last_modified,'
            ' status, token)'
            ' SELECT %(b_uuid)s, %(b_board)s, %(b_name)s, %(b_priority)s,'
            ' %(b_details)s, %(b_book_uuid)s, %(b_book_name)s, n.now, n.now,'
            " 'posted', 0 FROM (SELECT {now} AS now) AS n"
            ' RETURNING {listing})'
            ' SELECT i.id, pg_notify(%(b_channel)s, CASE WHEN'
            ' octet_length(p.payload) < {max_payload} THEN p.payload'
            ' ELSE i.uuid END)'
            ' FROM i, LATERAL (SELECT row_to_json(i)::text AS payload) AS p')
        self.claim = _sql(
            'WITH c AS (SELECT uuid, {now} AS now FROM {jobs}'
            " WHERE uuid = %(b_uuid)s AND status = 'posted'"
            ' AND (owner IS NULL OR claimed_until IS NULL'
            ' OR claimed_until <= {now})'
            ' FOR UPDATE SKIP LOCKED),'
            ' t AS (UPDATE {jobs} AS j SET owner = %(b_who)s,'
            ' token = j.token + 1,'
            ' claimed_until = c.now + %(b_expiry)s, last_modified = c.now'
            ' FROM c WHERE j.uuid = c.uuid RETURNING j.token, c.now),'
            ' i AS (INSERT INTO {attempts} (job_uuid, token, who, claimed_at)'
            ' SELECT %(b_uuid)s, t.token, %(b_who)s, t.now FROM t'
            ' RETURNING token)'
            # With the outcome, what the row held before this statement: why
            # a claim that took nothing failed, without another round trip.
            ' SELECT (SELECT token FROM i) AS token, j.status,'
            ' CASE WHEN j.claimed_until > {now} THEN j.owner END AS owner'
            ' FROM (SELECT 1) AS one LEFT JOIN {jobs} AS j'
            ' ON j.uuid = %(b_uuid)s')
        self.renew = {
            known: _sql(
                'UPDATE {jobs} SET claimed_until = {now} + %(b_expiry)s,'
                ' last_modified = {now} WHERE ' + _held(known) + ' RETURNING 1')
            for known in (True, False)}
        self.consume = {
            known: _sql(
                'WITH d AS (DELETE FROM {jobs} WHERE ' + _held(known) +
                ' RETURNING uuid),'
                ' x AS (DELETE FROM {attempts} WHERE job_uuid IN'
                ' (SELECT uuid FROM d))'
                ' SELECT count(*) FROM d')
            for known in (True, False)}
        self.release = {
            known: _sql(
                'WITH u AS (UPDATE {jobs} SET owner = NULL,'
                ' claimed_until = NULL, last_modified = {now},'
                ' status = %(b_status)s WHERE ' + _held(known) +
                ' RETURNING uuid, token, last_modified),'
                ' x AS (UPDATE {attempts} AS a SET ended_at = u.last_modified,'
                ' outcome = %(b_outcome)s, reason = %(b_reason)s FROM u'
                ' WHERE a.job_uuid = u.uuid AND a.token = u.token)'
                ' SELECT count(*) FROM u')
            for known in (True, False)}
        on_board = 'board = %(b_board)s AND status = %(b_status)s'
        self.list_all = _sql(
            'SELECT {listing}, CASE WHEN {live} THEN owner END AS owner'
            ' FROM {jobs} WHERE ' + on_board + ' ORDER BY priority, id')
        self.list_unclaimed = _sql(
            'SELECT {listing}, NULL AS owner FROM {jobs} WHERE ' + on_board +
            ' AND NOT ({live}) ORDER BY priority, id')
        self.history = _sql(
            'SELECT who, claimed_at, token, ended_at, outcome, reason'
            ' FROM {attempts} WHERE job_uuid = %(b_uuid)s ORDER BY token')
        self.by_uuids = _sql(
            'SELECT {listing} FROM {jobs} WHERE uuid = ANY(%(b_uuids)s)'
            " AND status = 'posted' ORDER BY priority, id")


class Connections:
    """A few psycopg connections of ``engine``, in autocommit, running
    prepared statements (see the module doc).

    :param read_timeout: the watchdog's limit per statement (``None``: no
        watchdog, as for an engine the caller made).
    :param keep: idle connections kept (more are closed when returned).
    :param idle_timeout: seconds after which an idle connection is replaced
        (as the engine's ``pool_recycle``).
    """

    def __init__(self, engine: sa.Engine, read_timeout: float | None,
                 what: str, keep: int = 8,
                 idle_timeout: float | None = None) -> None:
        import psycopg
        from psycopg import rows

        self._engine = engine
        self._read_timeout = read_timeout
        self._what = what
        self._keep = keep
        self._idle_timeout = idle_timeout
        self._idle: list[tuple[Any, float]] = []  # (connection, since)
        self._lock = threading.Lock()
        self._closed = False
        self._error = psycopg.Error
        self._row_factory = rows.namedtuple_row

    def _take(self) -> Any:
        stale = []
        try:
            with self._lock:
                if self._closed:
                    raise sa_exc.ResourceClosedError('The board is closed')
                while self._idle:
                    conn, since = self._idle.pop()
                    if self._idle_timeout is None or \
                            time.monotonic() - since < self._idle_timeout:
                        return conn
                    # Idle too long: a firewall may have dropped it.
                    stale.append(conn)
        finally:
            for old in stale:
                _close(old)
        return self._new()

    def _new(self) -> Any:
        raw = self._engine.raw_connection()
        try:
            conn: Any = raw.driver_connection
            raw.detach()  # ours: never back in (or closed by) the pool
            conn.rollback()
            conn.autocommit = True
            conn.row_factory = self._row_factory
        except BaseException:
            raw.invalidate()
            raise
        return conn

    def _give_back(self, conn: Any) -> None:
        with self._lock:
            if not self._closed and not conn.closed and \
                    len(self._idle) < self._keep:
                self._idle.append((conn, time.monotonic()))
                return
        _close(conn)

    def execute(self, sql: str, params: dict[str, Any]) -> Sequence[Any]:
        """Run ``sql`` (one statement, committed on its own); its rows."""
        conn = self._take()
        limit = self._read_timeout
        watched = limit is not None
        try:
            if limit is not None:
                _WATCHDOG.arm(conn, limit, self._what)
            cursor = conn.execute(sql, params, prepare=True)
            result = cursor.fetchall() if cursor.description else []
        except self._error as error:
            broken = bool(conn.closed or conn.broken)
            if broken:
                # The server went away (or was restarted): its siblings are
                # as dead; drop them all, like SQLAlchemy's pool does.
                _close(conn)
                self.drop_idle()
            else:
                self._give_back(conn)
            raise sa_exc.DBAPIError.instance(
                sql, params, error, self._error,
                connection_invalidated=broken,
                dialect=self._engine.dialect) from error
        except BaseException:
            _close(conn)
            raise
        finally:
            if watched:
                _WATCHDOG.disarm(conn)
        self._give_back(conn)
        return result

    def drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _since in idle:
            _close(conn)

    def close(self) -> None:
        """Close the idle connections (busy ones are closed when returned)."""
        with self._lock:
            self._closed = True
        self.drop_idle()


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # already broken
        pass
