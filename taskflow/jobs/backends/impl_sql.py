"""A jobboard in an SQL database (SQLite, PostgreSQL, MySQL/MariaDB).

The board lives in the same database as the SQL persistence backend, so a
deployment needs no other service: its two tables (``taskflow_ng_jobs``,
``taskflow_ng_job_attempts``, see ``ng_tables``) are created by
``SQLAlchemyBackend.upgrade()`` (Alembic revision ``ng0002``; SQLite's
``create_all``) or by ``connect()`` when they are missing.

Configuration (a dict, or a URI string whose scheme picks this board)::

    {'board': 'sql', 'connection': 'postgresql+psycopg://u:p@host/db',
     'namespace': 'taskflow'}
    'sqlite:////var/lib/app/tf.db?namespace=orders'

``connection`` (or the URI itself) is an SQLAlchemy URL; the engine is made
exactly as the persistence backend makes its own (same bounded waits and
engine options, see ``SQLAlchemyBackend``). Without a ``connection``, the
engine of the ``persistence=`` backend is shared (with its retry limits).
``namespace`` (default ``'taskflow'``) separates boards sharing a database.
``poll_interval`` (seconds, default 0.1) bounds how long ``wait()`` sleeps
between looks where there is no ``LISTEN/NOTIFY``. ``max_retries`` (default
3) and ``max_retry_time`` (default 10 s) bound the retries of an operation
after a transient database error (lost connection, deadlock, busy SQLite).
``synchronous_commit`` (PostgreSQL, a board with its own engine): the
board's sessions' ``synchronous_commit`` (``'off'`` trades the durability
of its last writes on a database crash for throughput).

Semantics:

* claims expire (``claim(job, who, expiry=...)``, default
  ``base.DEFAULT_CLAIM_EXPIRY``); expiry is compared with the **database's
  clock**, so machines with skewed clocks agree. An expired claim reads as
  unclaimed, and its holder can no longer renew, consume, abandon or trash;
* claiming locks the job's row with ``SELECT ... FOR UPDATE SKIP LOCKED``
  on PostgreSQL and MariaDB (a claimer never waits on another's lock: a
  row being claimed is reported as unclaimable) and runs in a single-writer
  transaction (``BEGIN IMMEDIATE``) on SQLite; the same transaction
  increments the job's ``token`` (the claim token, strictly increasing per
  job) and records the attempt;
* renew/consume/abandon/trash are conditional statements matching the
  owner, an unexpired claim and (when this ``Job`` object made the claim)
  its token;
* consumed jobs are deleted with their history; trashed jobs stay in the
  table (status ``'trashed'``) with their history: ``iter_trashed``;
* on PostgreSQL (psycopg 3) a listener thread (``_sql_notify``, started by
  the first ``notifier`` callback or ``wait()``) hears every board's posts
  by ``LISTEN/NOTIFY``: ``notifier`` announces ``POSTED`` for them (an idle
  conductor claims a new job at once) and ``wait()`` wakes on them. Other
  databases poll: ``POSTED`` is announced for this process's own posts
  only, and ``wait()`` looks every ``poll_interval``;
* on PostgreSQL (psycopg 3) every operation is one statement committed on
  its own, the hot ones prepared on raw connections (``_sql_pg``).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import threading
import time
import types
import uuid as uuidlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from taskflow import exceptions as exc
from taskflow import logging
from taskflow.jobs import base
from taskflow.jobs.backends import _notifier
from taskflow.jobs.backends import _sql_notify
from taskflow.jobs.backends import _sql_pg
from taskflow.jobs.backends import _sql_statements as _st
from taskflow.persistence.backends import impl_sqlalchemy
from taskflow.persistence.backends.sqlalchemy import migration
from taskflow.persistence.backends.sqlalchemy import ng_tables

__all__ = ['SQLJob', 'SQLJobBoard']

LOG = logging.getLogger(__name__)

T = TypeVar('T')

DEFAULT_NAMESPACE = 'taskflow'
DEFAULT_POLL_INTERVAL = 0.1
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_RETRY_TIME = 10.0
# Longest single wait on a notification (re-checks the deadline and stop).
_MAX_LISTEN_SLICE = 1.0

# Board options that may ride in a URI's query but are not the database's.
_BOARD_OPTIONS = frozenset(['namespace', 'poll_interval', 'max_retries',
                            'max_retry_time', 'retry_backoff'])

_RANK = {p: r for r, p in enumerate(base._ORDER)}
_PRIORITY = dict(enumerate(base._ORDER))


def _datetime(epoch: float | None) -> datetime.datetime | None:
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(float(epoch),
                                           datetime.timezone.utc)


class SQLJob(base.Job):
    """A job on an :class:`SQLJobBoard` (its state is read from the database)."""

    def __init__(self, board: SQLJobBoard, name: str, uuid: str,
                 last_modified: datetime.datetime | None = None,
                 **kwargs: Any) -> None:
        super().__init__(board, name, uuid, **kwargs)
        self._last_modified = last_modified

    @property
    def last_modified(self) -> datetime.datetime | None:
        return self._last_modified

    @property
    def state(self) -> str:
        board = cast(SQLJobBoard, self._board)
        return board._state_of(self)


class SQLJobBoard(base.NotifyingJobBoard):
    """Jobs in an SQL database (see the module doc for the configuration)."""

    def __init__(self, name: str, conf: dict[str, Any] | None = None,
                 persistence: Any = None, engine: sa.Engine | None = None
                 ) -> None:
        conf = dict(conf or {})
        super().__init__(name, conf)
        self._persistence = persistence
        self._namespace = str(conf.get('namespace') or DEFAULT_NAMESPACE)
        self._poll_interval = float(conf.get('poll_interval',
                                             DEFAULT_POLL_INTERVAL))
        if self._poll_interval <= 0:
            raise ValueError('poll_interval of jobboard %r must be > 0, not'
                             ' %r' % (name, conf.get('poll_interval')))
        self._given_engine = engine
        self._backend: impl_sqlalchemy.SQLAlchemyBackend | None = None
        self._owns_backend = False
        self._st: _st.Statements | None = None
        # PostgreSQL through psycopg 3: single statements on raw connections.
        self._pg: _sql_pg.PgStatements | None = None
        self._fast: _sql_pg.Connections | None = None
        self._autocommit: sa.Engine | None = None
        self._synchronous_commit = _check_synchronous_commit(
            name, conf.get('synchronous_commit'))
        self._listener: _sql_notify.Listener | None = None
        self._listener_lock = threading.Lock()
        self._channel = _sql_notify.channel_for(self._namespace)
        # POSTED reaches registered callbacks from the LISTEN thread on
        # PostgreSQL (posts of every board on the namespace), started when
        # the first callback registers.
        self.notifier = _notifier.WatchedNotifier(self._want_events)
        self._events_wanted = False
        self._connected = False
        self._entities: dict[str, Any] = {}

    def __repr__(self) -> str:
        where = self._backend.masked_url if self._backend else '?'
        return '<%s %r namespace=%r url=%s>' % (
            type(self).__name__, self._name, self._namespace, where)

    @property
    def namespace(self) -> str:
        """The namespace separating this board's jobs from other boards'."""
        return self._namespace

    # -- connecting ----------------------------------------------------------

    def _connection_url(self) -> str | None:
        url = self._conf.get('connection')
        if not url:
            board = self._conf.get('board')
            if isinstance(board, str) and '://' in board:
                url = board
        if not url:
            return None
        parsed = _installed_driver(sa.engine.make_url(url))
        # Board options in a URI query are not the database driver's.
        return parsed.difference_update_query(
            [k for k in parsed.query if k in _BOARD_OPTIONS]
        ).render_as_string(hide_password=False)

    def _make_backend(self) -> tuple[impl_sqlalchemy.SQLAlchemyBackend, bool]:
        url = self._connection_url()
        persistence = self._persistence
        if self._given_engine is not None:
            conf = {k: v for k, v in self._conf.items() if k != 'board'}
            return impl_sqlalchemy.SQLAlchemyBackend(
                conf, engine=self._given_engine), True
        if url is None:
            if isinstance(persistence, impl_sqlalchemy.SQLAlchemyBackend):
                return persistence, False  # share the persistence's engine
            raise ValueError('Jobboard %r needs a connection URL (conf'
                             " 'connection') or an SQL persistence backend"
                             % self._name)
        conf = {k: v for k, v in self._conf.items()
                if k not in ('board', 'namespace', 'poll_interval')}
        conf['connection'] = url
        conf.setdefault('max_retries', DEFAULT_MAX_RETRIES)
        conf.setdefault('max_retry_time', DEFAULT_MAX_RETRY_TIME)
        return impl_sqlalchemy.SQLAlchemyBackend(conf), True

    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        """Make the engine and create the board's tables if missing."""
        if self._connected:
            return
        try:
            backend, owned = self._make_backend()
        except sa_exc.ArgumentError as e:
            raise exc.JobFailure('Jobboard %r has an invalid connection URL:'
                                 ' %s' % (self._name, e), e) from e
        self._backend, self._owns_backend = backend, owned
        try:
            self._st = _st.Statements(backend.engine.dialect.name)
            if backend.engine.dialect.name == 'postgresql':
                self._autocommit = backend._read_engine.execution_options(
                    isolation_level='AUTOCOMMIT')
                if self._synchronous_commit is not None:
                    self._set_synchronous_commit(backend, owned)
                if _sql_notify.supported(backend.engine):
                    self._pg = _sql_pg.PgStatements()
                    self._fast = _sql_pg.Connections(
                        backend.engine, _read_timeout(backend),
                        backend.masked_url, idle_timeout=float(
                            backend._conf.get(
                                'idle_timeout',
                                impl_sqlalchemy.DEFAULT_IDLE_TIMEOUT)))
            self._run('connecting', self._ensure_tables)
        except BaseException:
            self._close_backend()
            raise
        self._connected = True
        if self._events_wanted:
            self._start_listener()

    def _set_synchronous_commit(self, backend: Any, owned: bool) -> None:
        value = self._synchronous_commit
        if not owned:
            raise ValueError('synchronous_commit of jobboard %r needs an engine'
                             ' of its own (give a connection URL)' % self._name)

        @sa.event.listens_for(backend.engine, 'connect')
        def _on_connect(dbapi_connection: Any, record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SET synchronous_commit = '%s'" % value)
            finally:
                cursor.close()
            dbapi_connection.commit()

    def _ensure_tables(self) -> None:
        backend = self._require()
        with backend._lock, backend._write_engine.connect() as conn:
            if sa.inspect(conn).has_table(ng_tables.jobs.name):
                return
            conn.rollback()
            # Alembic is not thread safe, and boards of other processes may
            # be creating the tables right now: one at a time.
            with _MIGRATING, _server_lock(conn):
                if not sa.inspect(conn).has_table(ng_tables.jobs.name):
                    conn.rollback()
                    migration.upgrade_ng(conn)

    def close(self) -> None:
        """Drop the board's connections (its claims stay until they expire)."""
        self._connected = False
        with self._listener_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self._close_backend()

    def _close_backend(self) -> None:
        backend, self._backend = self._backend, None
        fast, self._fast = self._fast, None
        self._st = self._pg = self._autocommit = None
        if fast is not None:
            fast.close()
        if backend is not None and self._owns_backend:
            backend.close()

    @property
    def _stmts(self) -> _st.Statements:
        statements = self._st
        if statements is None:
            raise exc.JobFailure('Jobboard %r is not connected' % self._name)
        return statements

    def _require(self) -> impl_sqlalchemy.SQLAlchemyBackend:
        backend = self._backend
        if backend is None:
            raise exc.JobFailure('Jobboard %r is not connected' % self._name)
        return backend

    # -- hearing about posts (PostgreSQL) ---------------------------------------

    def _want_events(self) -> None:
        """A callback registered on :attr:`notifier`: listen (if we can)."""
        self._events_wanted = True
        if self._connected:
            self._start_listener()

    def _start_listener(self) -> _sql_notify.Listener | None:
        """The running listener (started now if needed), or ``None`` where
        there is no LISTEN/NOTIFY (the board polls)."""
        with self._listener_lock:
            listener = self._listener
            backend = self._backend
            if listener is None and backend is not None and \
                    _sql_notify.supported(backend.engine):
                listener = self._listener = _sql_notify.Listener(
                    backend.engine, self._channel, self._name,
                    self._on_notified, self._on_resync)
        if listener is not None:
            # Until LISTEN is in place a post could go unheard: wait for the
            # first attempt (bounded; the thread keeps trying after).
            listener.start()
        return listener

    def _on_notified(self, payloads: list[str]) -> None:
        """Announce the jobs whose posting we heard of (listener thread):
        from the row a payload carries, else (a bare uuid: a large job, or
        a board of an earlier version) as read from the table."""
        if not self.notifier.has_listeners(base.POSTED):
            return
        uuids = []
        for payload in payloads:
            if not payload.startswith('{'):
                uuids.append(payload)
                continue
            try:
                row = types.SimpleNamespace(**json.loads(payload))
                job = self._job_from_row(row)
            except (ValueError, TypeError, KeyError, AttributeError):
                LOG.debug('Jobboard %r: unreadable notification %r',
                          self._name, payload[:200], exc_info=True)
                continue
            self.notifier.notify(base.POSTED, {'job': job})
        if not uuids:
            return
        st = self._stmts
        wanted = sorted(set(uuids))
        pg = self._pg

        def select() -> Any:
            if pg is not None:
                return self._single(pg.by_uuids, {'b_uuids': wanted})
            with self._reading() as conn:
                return list(conn.execute(st.by_uuids, {'b_uuids': wanted}))

        # Jobs already gone (claimed and consumed meanwhile) are not
        # announced; the others in the board's order.
        for row in self._run('reading posted jobs', select):
            self.notifier.notify(base.POSTED, {'job': self._job_from_row(row)})

    def _on_resync(self) -> None:
        """Listening again after a lost connection: announce the unclaimed
        jobs, as posts made meanwhile were not heard."""
        if self.notifier.has_listeners(base.POSTED):
            for job in self._list(True, _st.POSTED):
                self.notifier.notify(base.POSTED, {'job': job})

    # -- running statements --------------------------------------------------

    def _run(self, operation: str, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` (one transaction), retried after transient errors;
        database errors become ``JobFailure`` naming the board (cause kept)."""
        backend = self._require()

        def attempt() -> T:
            try:
                return func(*args)
            except (sa_exc.SQLAlchemyError, OSError) as e:
                raise exc.StorageFailure('%s failed' % operation, e) from e

        try:
            return backend._retrying.call(operation, attempt)
        except exc.StorageFailure as e:
            cause = e.cause if e.cause is not None else e
            raise exc.JobFailure('Jobboard %r: %s failed: %s' % (
                self._name, operation,
                _describe(cause)), cause) from cause

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        backend = self._require()
        with backend._lock, backend._write_engine.begin() as conn:
            yield conn

    def _single(self, sql: str, params: dict[str, Any]) -> Any:
        """The rows of ``sql``, one statement committed on its own
        (PostgreSQL's single-statement operations, see ``_sql_pg``)."""
        fast = self._fast
        if fast is None:
            raise exc.JobFailure('Jobboard %r is not connected' % self._name)
        return fast.execute(sql, params)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        backend = self._require()
        # PostgreSQL: reads in autocommit too (no BEGIN/ROLLBACK round trips).
        engine = self._autocommit or backend._read_engine
        with backend._lock, engine.connect() as conn:
            yield conn

    # -- jobs ----------------------------------------------------------------

    def _job_from_row(self, row: Any) -> SQLJob:
        details = json.loads(row.details) if row.details else {}
        book_data = {}
        if row.book_uuid is not None:
            book_data = {'uuid': row.book_uuid, 'name': row.book_name}
        return SQLJob(self, row.name, row.uuid,
                      last_modified=_datetime(row.last_modified),
                      details=details, backend=self._persistence,
                      book_data=book_data, priority=_PRIORITY[row.priority],
                      sequence=int(row.id),
                      created_on=_datetime(row.created_on))

    def post(self, name: str, book: Any = None,
             details: dict[str, Any] | None = None,
             priority: base.JobPriority | str = base.JobPriority.NORMAL
             ) -> SQLJob:
        """Post a job (only the book's name and uuid are stored)."""
        priority = base.JobPriority.convert(priority)
        details = dict(details or {})
        try:
            encoded = json.dumps(details) if details else None
        except (TypeError, ValueError) as e:
            raise exc.JobFailure('Cannot post job %r on jobboard %r: its'
                                 ' details are not JSON serializable (%s)'
                                 % (name, self._name, e), e) from e
        job_uuid = str(uuidlib.uuid4())
        params = {'b_uuid': job_uuid, 'b_board': self._namespace,
                  'b_name': name, 'b_priority': _RANK[priority],
                  'b_details': encoded,
                  'b_book_uuid': getattr(book, 'uuid', None),
                  'b_book_name': getattr(book, 'name', None)}
        st = self._stmts
        pg = self._pg

        def insert() -> Any:
            if pg is not None:
                params['b_channel'] = self._channel
                return self._single(pg.post, params)[0][0]
            with self._writing() as conn:
                key = conn.execute(st.insert, params).inserted_primary_key
            assert key is not None
            return key[0]

        sequence = self._run('posting job %r' % name, insert)
        now = datetime.datetime.now(datetime.timezone.utc)
        job = SQLJob(self, name, job_uuid, last_modified=now, details=details,
                     backend=self._persistence, book=book,
                     book_data={'uuid': params['b_book_uuid'],
                                'name': params['b_book_name']}
                     if book is not None else None,
                     priority=priority, sequence=int(sequence),
                     created_on=now)
        listener = self._listener
        if listener is None or not listener.listening:
            # (A listening board hears its own posts like everyone's.)
            self.notifier.notify(base.POSTED, {'job': job})
        return job

    def _list(self, only_unclaimed: bool, status: str) -> list[SQLJob]:
        st = self._stmts
        query = st.list_unclaimed if only_unclaimed else st.list_all
        pg = self._pg

        def select() -> Any:
            if pg is not None:
                return self._single(
                    pg.list_unclaimed if only_unclaimed else pg.list_all,
                    {'b_board': self._namespace, 'b_status': status})
            with self._reading() as conn:
                return list(conn.execute(query, {'b_board': self._namespace,
                                                 'b_status': status}))

        rows = self._run('listing jobs', select)
        return [self._job_from_row(row) for row in rows]

    def iterjobs(self, only_unclaimed: bool = False,
                 ensure_fresh: bool = False) -> Iterator[SQLJob]:
        """The board's jobs, highest priority first, oldest first within a
        priority (always read fresh from the database)."""
        return iter(self._list(only_unclaimed, _st.POSTED))

    def iter_trashed(self) -> Iterator[SQLJob]:
        """The trashed jobs (the dead-letter), oldest first."""
        return iter(self._list(False, _st.TRASHED))

    @property
    def job_count(self) -> int:
        def count() -> int:
            with self._reading() as conn:
                return int(conn.execute(
                    self._stmts.count, {'b_board': self._namespace}).scalar_one())
        return self._run('counting jobs', count)

    def wait(self, timeout: float | None = None) -> Iterator[SQLJob]:
        """Block until a job is on the board (``NotFound`` after ``timeout``
        seconds); woken by ``NOTIFY`` on PostgreSQL, else polling."""
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        listener = self._start_listener()
        while True:
            # Read before looking, so a post in between still wakes us.
            generation = None
            if listener is not None and listener.listening:
                generation = listener.generation
            jobs = self._list(False, _st.POSTED)
            if jobs:
                return iter(jobs)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise base.expired_waiting(time.monotonic() - started)
            if generation is not None:
                assert listener is not None
                listener.wait_for_notification(
                    generation, _MAX_LISTEN_SLICE if left is None
                    else min(left, _MAX_LISTEN_SLICE))
            else:  # no LISTEN (now): poll
                time.sleep(self._poll_interval if left is None
                           else min(left, self._poll_interval))

    # -- ownership -----------------------------------------------------------

    def _read_owner(self, job: base.Job) -> Any:
        def select() -> Any:
            with self._reading() as conn:
                return conn.execute(self._stmts.owner,
                                    {'b_uuid': job.uuid}).first()
        return self._run('reading the owner of job %r' % job.name, select)

    def find_owner(self, job: base.Job) -> str | None:
        row = self._read_owner(job)
        if row is None or row.status != _st.POSTED:
            return None
        return None if row.owner is None else str(row.owner)

    def _state_of(self, job: base.Job) -> str:
        def select() -> Any:
            with self._reading() as conn:
                return conn.execute(self._stmts.state,
                                    {'b_uuid': job.uuid}).first()
        row = self._run('reading the state of job %r' % job.name, select)
        if row is None or row.status != _st.POSTED:
            return 'COMPLETE'
        return 'CLAIMED' if row.held else 'UNCLAIMED'

    def claim(self, job: base.Job, who: str, expiry: float | None = None
              ) -> None:
        """Claim ``job`` for ``who`` for ``expiry`` seconds (see the module
        doc); sets ``job.claim_token``."""
        base.check_who(who)
        expiry = _check_expiry(expiry, job)
        st = self._stmts

        pg = self._pg

        def take_pg() -> tuple[str, Any]:
            row = self._single(pg.claim, {  # type: ignore[union-attr]
                'b_uuid': job.uuid, 'b_who': who, 'b_expiry': expiry})[0]
            if row.token is not None:
                return 'claimed', row.token
            if row.status is None:
                return 'missing', None
            if row.status != _st.POSTED:
                return 'gone', row
            if row.owner is not None:
                return 'owned', row
            return 'locked', row

        def take() -> tuple[str, Any]:
            with self._writing() as conn:
                row = conn.execute(st.lock, {'b_uuid': job.uuid}).first()
                if row is None:
                    return 'locked', None
                if row.status != _st.POSTED:
                    return 'gone', row
                if row.owner is not None and row.claimed_until is not None \
                        and row.claimed_until > row.now:
                    return 'owned', row
                params = {'b_uuid': job.uuid, 'b_who': who,
                          'b_now': row.now, 'b_expiry': expiry,
                          'b_token': row.token + 1}
                conn.execute(st.take, params)
                conn.execute(st.add_attempt, params)
                return 'claimed', row.token + 1

        outcome, value = self._run('claiming job %r' % job.name,
                                   take_pg if pg is not None else take)
        if outcome == 'claimed':
            job.claim_token = int(value)
            return
        if outcome == 'owned':
            raise exc.UnclaimableJob('Job %s already claimed by %r'
                                     % (job.uuid, value.owner))
        if outcome == 'gone':
            raise exc.NotFound('Job %s not found on jobboard %r (%s)'
                               % (job.uuid, self._name, value.status))
        # No row, or a row another claimer holds locked right now (on
        # PostgreSQL the claim statement saw the row: no second look).
        if outcome == 'locked' and value is not None:
            raise exc.UnclaimableJob('Job %s is being claimed by another'
                                     ' claimer' % job.uuid)
        row = self._read_owner(job) if outcome != 'missing' else None
        if row is None or row.status != _st.POSTED:
            raise exc.NotFound('Job %s not found on jobboard %r'
                               % (job.uuid, self._name))
        raise exc.UnclaimableJob('Job %s is being claimed by another'
                                 ' claimer%s' % (job.uuid, ' (%r)' % row.owner
                                                 if row.owner else ''))

    def _held(self, job: base.Job, who: str) -> dict[str, Any]:
        params: dict[str, Any] = {'b_uuid': job.uuid, 'b_who': who}
        if job.claim_token is not None:
            params['b_token'] = job.claim_token
        return params

    def _not_held(self, job: base.Job, who: str, action: str) -> exc.TaskFlowException:
        """The error for ``who`` not holding ``job``'s claim."""
        row = self._read_owner(job)
        if row is None or row.status != _st.POSTED:
            return exc.NotFound('Cannot %s job %s on jobboard %r: it is not'
                                ' there' % (action, job.uuid, self._name))
        if row.owner is None:
            if row.holder == who:
                return exc.JobFailure('Cannot %s job %s: the claim of %r'
                                      ' expired' % (action, job.uuid, who))
            return exc.JobFailure('Cannot %s job %s: it is not claimed (%r'
                                  ' does not hold it)' % (action, job.uuid, who))
        if row.owner == who:
            return exc.JobFailure('Cannot %s job %s: the claim of %r moved on'
                                  ' (token %s, not %s)' % (
                                      action, job.uuid, who, row.token,
                                      job.claim_token))
        return exc.JobFailure('Cannot %s job %s: it is claimed by %r, not %r'
                              % (action, job.uuid, row.owner, who))

    def renew_claim(self, job: base.Job, who: str,
                    expiry: float | None = None) -> None:
        """Extend ``who``'s unexpired claim of ``job`` by ``expiry`` seconds
        from now (``JobFailure`` if ``who`` no longer holds it)."""
        base.check_who(who)
        expiry = _check_expiry(expiry, job)
        params = self._held(job, who)
        params['b_expiry'] = expiry
        known = 'b_token' in params
        statement = self._stmts.renew[known]
        pg = self._pg

        def renew() -> int:
            if pg is not None:
                return len(self._single(pg.renew[known], params))
            with self._writing() as conn:
                return conn.execute(statement, params).rowcount

        if not self._run('renewing the claim of job %r' % job.name, renew):
            raise self._not_held(job, who, 'renew the claim of')

    def _end(self, job: base.Job, who: str, action: str, outcome: str,
             reason: str | None, main: dict[bool, Any],
             extra: dict[str, Any]) -> None:
        base.check_who(who)
        params = self._held(job, who)
        params.update(extra, b_outcome=outcome, b_reason=reason)
        known = 'b_token' in params
        statement = main[known]
        st = self._stmts
        pg = self._pg

        def end_pg() -> bool:
            single = (pg.consume if outcome == 'consumed'  # type: ignore[union-attr]
                      else pg.release)[known]  # type: ignore[union-attr]
            return bool(self._single(single, params)[0][0])

        def end() -> bool:
            with self._writing() as conn:
                if outcome == 'consumed':
                    if not conn.execute(statement, params).rowcount:
                        return False
                    conn.execute(st.delete_attempts, params)
                    return True
                if not conn.execute(statement, params).rowcount:
                    return False
                conn.execute(st.end_attempt_token if known
                             else st.end_attempt, params)
                return True

        if not self._run('%s job %r' % (action, job.name),
                         end_pg if pg is not None else end):
            raise self._not_held(job, who, action)

    def consume(self, job: base.Job, who: str) -> None:
        """``who`` is done with ``job``: it leaves the board (with its
        history)."""
        self._end(job, who, 'consume', 'consumed', None, self._stmts.delete, {})
        self.notifier.notify(base.REMOVAL, {'job': job})

    def abandon(self, job: base.Job, who: str, reason: str | None = None
                ) -> None:
        """``who`` gives ``job`` back, unclaimed."""
        self._end(job, who, 'abandon', 'abandoned', reason, self._stmts.release,
                  {'b_status': _st.POSTED})

    def trash(self, job: base.Job, who: str, reason: str | None = None
              ) -> None:
        """``job`` moves to the dead-letter (``iter_trashed``) with its
        history."""
        self._end(job, who, 'trash', 'trashed', reason, self._stmts.release,
                  {'b_status': _st.TRASHED})
        self.notifier.notify(base.REMOVAL, {'job': job})

    def history(self, job: base.Job) -> list[base.Attempt]:
        """Every claim of ``job``, oldest first."""
        pg = self._pg

        def select() -> Any:
            if pg is not None:
                return self._single(pg.history, {'b_uuid': job.uuid})
            with self._reading() as conn:
                return list(conn.execute(self._stmts.history,
                                         {'b_uuid': job.uuid}))
        rows = self._run('reading the history of job %r' % job.name, select)
        return base.lost_attempts([
            base.Attempt(row.who, float(row.claimed_at), int(row.token),
                         None if row.ended_at is None else float(row.ended_at),
                         row.outcome, row.reason) for row in rows])

    def register_entity(self, entity: Any) -> None:
        """Remember ``entity`` (kept in this process only)."""
        self._entities[entity.name] = entity

    # -- maintenance -----------------------------------------------------------

    def clear(self) -> None:
        """Delete every job of this board's namespace, trashed ones too."""
        def delete() -> None:
            with self._writing() as conn:
                for statement in self._stmts.clear_board:
                    conn.execute(statement, {'b_board': self._namespace})
        self._run('clearing the board', delete)


# A URL without a driver names SQLAlchemy's default one; when only the
# driver taskflow-ng installs is there, use it (``postgresql://`` works with
# psycopg 3 alone).
_FALLBACK_DRIVERS = {'postgresql': ('psycopg2', 'psycopg'),
                     'mysql': ('MySQLdb', 'pymysql')}


def _installed_driver(url: sa.URL) -> sa.URL:
    import importlib.util

    if url.drivername not in _FALLBACK_DRIVERS:
        return url
    default, fallback = _FALLBACK_DRIVERS[url.drivername]
    if importlib.util.find_spec(default) is None and \
            importlib.util.find_spec(fallback) is not None:
        return url.set(drivername='%s+%s' % (url.drivername, fallback))
    return url


def _read_timeout(backend: impl_sqlalchemy.SQLAlchemyBackend) -> float | None:
    """The watchdog's limit on the backend's connections (``None`` when it
    watches none: an engine the caller made)."""
    from taskflow.persistence.backends.sqlalchemy import engines as _engines
    if not backend._owns_engine:
        return None
    return _engines.Timeouts(backend._conf).read


def _check_synchronous_commit(name: str, value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).lower()
    if text not in ('on', 'off', 'local', 'remote_write', 'remote_apply'):
        raise ValueError('synchronous_commit of jobboard %r must be one of'
                         ' on, off, local, remote_write, remote_apply, not %r'
                         % (name, value))
    return text


_MIGRATING = threading.Lock()
_LOCK_NAME = 'taskflow_ng_jobboard_migration'


@contextlib.contextmanager
def _server_lock(conn: sa.Connection) -> Iterator[None]:
    """Hold a database-wide lock (PostgreSQL advisory lock, MySQL
    ``GET_LOCK``) while creating the tables; SQLite needs none."""
    dialect = conn.dialect.name
    if dialect == 'postgresql':
        key = sa.func.hashtext(_LOCK_NAME)
        conn.execute(sa.select(sa.func.pg_advisory_lock(key)))
        conn.commit()
        try:
            yield
        finally:
            conn.rollback()
            conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
            conn.commit()
    elif dialect in ('mysql', 'mariadb'):
        conn.execute(sa.select(sa.func.get_lock(_LOCK_NAME, 60)))
        conn.commit()
        try:
            yield
        finally:
            conn.rollback()
            conn.execute(sa.select(sa.func.release_lock(_LOCK_NAME)))
            conn.commit()
    else:
        yield


def _check_expiry(expiry: float | None, job: base.Job) -> float:
    if expiry is None:
        return base.DEFAULT_CLAIM_EXPIRY
    try:
        seconds = float(expiry)
    except (TypeError, ValueError):
        raise ValueError('Claim expiry of job %s must be a number of seconds,'
                         ' not %r' % (job.uuid, expiry)) from None
    if not 0 < seconds < math.inf:
        raise ValueError('Claim expiry of job %s must be > 0 seconds (and'
                         ' finite), not %r' % (job.uuid, expiry))
    return seconds


def _describe(error: BaseException) -> str:
    from taskflow.persistence.backends.sqlalchemy import errors as _errors
    return _errors.describe(error)

