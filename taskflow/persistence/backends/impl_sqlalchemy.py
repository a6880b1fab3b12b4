"""Persistence in an SQL database through SQLAlchemy 2 Core.

Backends: ``sqlite`` (embedded default), ``postgresql``, ``mysql``; the
schema (see ``sqlalchemy/tables.py``) is the original TaskFlow's, so either
implementation can use a database the other created.

Write path (the engine writes through on every atom state change):

* one SQLAlchemy engine (connection pool) per backend; statements are built
  once per backend and SQLAlchemy caches their compiled form;
* ``update_atom_details(ad)`` is one ``UPDATE`` in its own short transaction
  (it only matches a row of the same name and type; the merged copy it
  returns, as the original does, is built from ``ad`` without reading the
  row); values are encoded to JSON text before the transaction starts, so a
  value that cannot be serialised raises ``StorageFailure`` (its cause names
  the atom detail and the type) and leaves the stored row as it was;
* ``update_flow_details`` / ``save_logbook`` read only the uuids of the rows
  that already exist, then ``UPDATE`` those and ``INSERT`` the rest
  (``executemany``), all in one transaction. To return the original's merged
  copy they also read the stored children (every atom detail of the flow):
  the engine's storage calls ``_write_flow_details``, which skips that.

Limits (checked before anything is written): a value that can never be
stored raises ``exceptions.UnstorableValue`` naming the atom (or flow, book),
the field and why (cyclic, nested deeper than ``max_value_depth``, bytes
that are not UTF-8, an iterator or file, JSON text over ``max_value_size``
bytes -- see ``_serialize``; on MySQL also a row over the server's
``max_allowed_packet``); so does a value the database itself refuses (data
too long for its column...).

Bounded waits: connect, statement, lock, read (client side) and TCP
keepalive timeouts are set by default (see ``sqlalchemy/engines.py``), so
no call waits on a hung database forever.

SQLite durability: a file database runs in WAL mode with
``synchronous=FULL`` by default (option ``sqlite_synchronous``): every
committed change survives the process being killed and the machine losing
power, as with the original's defaults. ``sqlite_synchronous='NORMAL'``
skips the fsync of each commit (much faster): the file is never corrupt,
but after a power loss or an operating system crash the last few commits
may be rolled back. Write transactions start with ``BEGIN IMMEDIATE`` so
concurrent writers queue on the lock (up to ``sqlite_busy_timeout``
seconds, default 30) instead of failing.

Errors from the database become ``exceptions.StorageFailure`` with the
original's short message (``'Failed getting logbooks'``...); the database
error is chained and kept as ``cause``. Errors are classified in one place
(``sqlalchemy/errors.py``): an operation (one transaction) that hit a lost
connection, a deadlock, a serialization failure, a lock or statement
timeout or a busy SQLite database is run again with exponential back-off
and jitter, within ``max_retries`` retries and ``max_retry_time`` seconds
(``sqlalchemy/retrying.py``, which also keeps the log to a few lines per
outage); any other error is raised at once. Corrupt rows are refused on
reading (``_decode.CorruptRecord``, a ``StorageFailure``). Passwords in
connection URLs are masked in log lines and reprs.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, TypeVar, cast

from taskflow import exceptions as exc
from taskflow import logging
from taskflow.persistence import _decode
from taskflow.persistence import _serialize
from taskflow.persistence import base
from taskflow.persistence import models
from taskflow.persistence import ownership

try:
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import pool as sa_pool
except ImportError as _import_error:  # pragma: no cover - depends on extras
    raise ImportError(
        "The SQL persistence backends need SQLAlchemy and alembic: pip install"
        " 'taskflow-ng[sqlalchemy]' (plus '[postgresql]' or '[mysql]' for"
        " those servers)") from _import_error

from taskflow.persistence.backends.sqlalchemy import engines as _engines
from taskflow.persistence.backends.sqlalchemy import errors as _errors
from taskflow.persistence.backends.sqlalchemy import leases as _leases
from taskflow.persistence.backends.sqlalchemy import migration
from taskflow.persistence.backends.sqlalchemy import ng_tables
from taskflow.persistence.backends.sqlalchemy import retrying as _retrying
from taskflow.persistence.backends.sqlalchemy import rows as _rows
from taskflow.persistence.backends.sqlalchemy import statements as _stmts
from taskflow.persistence.backends.sqlalchemy import tables as _tables
from taskflow.persistence.backends.sqlalchemy import watchdog as _watchdog

__all__ = ['Connection', 'SQLAlchemyBackend']

LOG = logging.getLogger(__name__)

T = TypeVar('T')

DEFAULT_MAX_RETRIES = _retrying.DEFAULT_MAX_RETRIES
DEFAULT_IDLE_TIMEOUT = 3600
# SQLite limits bound parameters per statement (999 on old builds).
_IN_CHUNK = 500


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ('1', 'true', 'yes', 'on')
    return bool(value)


def _chunks(items: Sequence[T], size: int = _IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class SQLAlchemyBackend(base.Backend):
    """Persistence in a database reached through SQLAlchemy.

    ``conf['connection']`` is an SQLAlchemy URL (``'sqlite:///tf.db'``,
    ``'sqlite://'`` for in-memory, ``'postgresql://user:pw@host/db'``,
    ``'mysql+pymysql://...'``). Options: ``echo``, ``idle_timeout``,
    ``max_pool_size``, ``max_overflow``, ``pool_timeout``, ``isolation_level``,
    ``engine_args`` (dict passed to ``create_engine``), ``checkout_ping``,
    ``mysql_sql_mode``, ``sqlite_synchronous`` (default ``'FULL'``),
    ``sqlite_busy_timeout``; waits: ``connect_timeout``,
    ``statement_timeout``, ``lock_timeout``, ``read_timeout``,
    ``keepalive_idle``, ``keepalive_interval``, ``keepalive_count`` (see
    ``sqlalchemy/engines.py``); retries: ``max_retries`` (default 10),
    ``max_retry_time`` (seconds, default 30), ``retry_backoff`` (first
    delay, default 0.1 s); values: ``max_value_size`` (bytes of JSON per
    field, default 16 MiB), ``max_value_depth`` (default 200).
    An existing ``engine`` may be passed instead (it is not disposed on
    ``close()``, and keeps its own settings: no timeouts are added).
    """

    def __init__(self, conf: dict | None, engine: sa.Engine | None = None
                 ) -> None:
        super().__init__(conf)
        self._conf = dict(self._conf)
        if engine is not None:
            self._engine = engine
            self._owns_engine = False
        else:
            self._engine = self._create_engine(self._conf)
            self._owns_engine = True
        self._retrying = _retrying.Retrying(
            _retrying.OutageLog(self.masked_url),
            max_retries=int(self._conf.get('max_retries',
                                           _retrying.DEFAULT_MAX_RETRIES)),
            max_time=float(self._conf.get('max_retry_time',
                                          _retrying.DEFAULT_MAX_RETRY_TIME)),
            backoff=float(self._conf.get('retry_backoff',
                                         _retrying.DEFAULT_RETRY_BACKOFF)))
        self.encoder = _serialize.encoder_from_conf(self._conf)
        # MySQL refuses (and drops the connection on) a statement over its
        # max_allowed_packet: read on first connect, checked before writing.
        self._max_packet: int | None = None
        dialect = self._engine.dialect.name
        if dialect == 'mysql' and self._owns_engine:
            sa.event.listen(self._engine, 'first_connect',
                            self._read_max_packet)
        self._statements = _stmts.Statements(_tables.make_tables(dialect))
        self._leases = _leases.LeaseStatements(dialect)
        self._lease_table_ready = False
        # In-memory SQLite shares one DBAPI connection between all users:
        # serialise access to it.
        self._lock: contextlib.AbstractContextManager = (
            threading.RLock() if _engines.is_memory_sqlite(self._engine.url)
            else contextlib.nullcontext())
        # Our own operations run with these options: writes start with
        # BEGIN IMMEDIATE on SQLite; both are watched for a hung server.
        watched = {_watchdog.WATCHED: True}
        self._write_engine = self._engine.execution_options(
            taskflow_write=True, **watched)
        self._read_engine = self._engine.execution_options(**watched)
        LOG.debug('Created %r', self)

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (connection pool) of this backend."""
        return self._engine

    def __repr__(self) -> str:
        return '<%s url=%s>' % (type(self).__name__, self.masked_url)

    @property
    def masked_url(self) -> str:
        """The connection URL with its password replaced by ``***``."""
        return self._engine.url.render_as_string(hide_password=True)

    def get_connection(self) -> Connection:
        return Connection(self)

    def close(self) -> None:
        if self._owns_engine:
            self._engine.dispose()

    # -- engine creation ----------------------------------------------------

    def _read_max_packet(self, dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute('SELECT @@max_allowed_packet')
            self._max_packet = int(cursor.fetchone()[0])
        except Exception:  # not worth failing the connection over
            LOG.debug('Could not read max_allowed_packet', exc_info=True)
        finally:
            cursor.close()

    @classmethod
    def _create_engine(cls, conf: dict) -> sa.Engine:
        url = sa.engine.make_url(conf['connection'])
        timeouts = _engines.Timeouts(conf)
        args: dict[str, Any] = {
            'echo': _as_bool(conf.get('echo', False)),
            'hide_parameters': True,  # SQL errors and echo never quote stored values
        }
        if conf.get('isolation_level'):
            args['isolation_level'] = conf['isolation_level']
        if _as_bool(conf.get('checkout_ping', False)):
            args['pool_pre_ping'] = True
        backend = url.get_backend_name()
        if backend == 'sqlite':
            args['connect_args'] = {'check_same_thread': False}
            if _engines.is_memory_sqlite(url):
                args['poolclass'] = sa_pool.StaticPool
        else:
            args['pool_recycle'] = int(conf.get('idle_timeout',
                                                DEFAULT_IDLE_TIMEOUT))
            args['pool_timeout'] = _engines.DEFAULT_POOL_TIMEOUT
            for option, arg in (('max_pool_size', 'pool_size'),
                                ('max_overflow', 'max_overflow'),
                                ('pool_timeout', 'pool_timeout')):
                if conf.get(option) is not None:
                    args[arg] = int(conf[option])
        engine_args = dict(conf.get('engine_args') or {})
        given = dict(engine_args.pop('connect_args', None) or {})
        bounded = _engines.connect_args(url, timeouts, given)
        args['connect_args'] = {**args.get('connect_args', {}), **bounded,
                                **given}
        args.update(engine_args)
        engine = sa.create_engine(url, **args)
        name = url.render_as_string(hide_password=True)
        if backend == 'sqlite':
            _engines.setup_sqlite(engine, conf)
        elif backend == 'mysql':
            _engines.setup_mysql(engine, conf, timeouts)
        elif backend == 'postgresql':
            _engines.setup_postgresql(engine, timeouts, name)
        return engine


def _retry_transient(func: Callable[..., T]) -> Callable[..., T]:
    """Run ``func`` (one transaction) again after a transient database
    error, within the backend's retry limits (``sqlalchemy/retrying.py``);
    other errors are raised at once."""
    operation = func.__name__.lstrip('_')

    @functools.wraps(func)
    def wrapper(self: Connection, *args: Any, **kwargs: Any) -> T:
        return self._backend._retrying.call(
            operation, functools.partial(func, self, *args, **kwargs))

    return wrapper


class _StorageErrors:
    """Turns database (and encoding) errors into ``StorageFailure(message)``
    with the error as its cause, as the original does: ``str()`` shows the
    message, then the cause on its own line. (A class: it wraps every call,
    and is cheaper than a generator based context manager.)"""

    __slots__ = ('_message', '_written')

    def __init__(self, message: str, written: Any = None) -> None:
        self._message = message
        # What a write stores (an atom detail, flow detail or logbook):
        # named by UnstorableValue when the database refuses a value.
        self._written = written

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, error: Any, tb: Any
                 ) -> Literal[False]:
        if (isinstance(error, (sa_exc.SQLAlchemyError, OSError, ValueError))
                and not isinstance(error, exc.TaskFlowException)):
            if (self._written is not None
                    and _errors.classify(error) == _errors.UNSTORABLE):
                raise _refused(self._written, error) from error
            raise exc.StorageFailure(self._message, error) from error
        return False


def _refused(obj: Any, error: BaseException) -> exc.UnstorableValue:
    """``UnstorableValue`` for a value the database refused to store."""
    kind = _KINDS.get(type(obj), 'atom detail')
    column = _errors.column_of(error)
    field = "the '%s'" % column if column else 'a value'
    return exc.UnstorableValue("Cannot store %s of %s '%s' (uuid '%s'): the"
                               " database refused it (%s)"
                               % (field, kind, obj.name, obj.uuid,
                                  _errors.describe(error)))


_KINDS = {models.LogBook: 'logbook', models.FlowDetail: 'flow detail'}


def _merged_atom(atom_type: str, name: str, ad: models.AtomDetail
                 ) -> models.AtomDetail:
    """What merging ``ad`` into its stored copy (of ``atom_type``, named
    ``name``) gives: the merge takes every other field from ``ad``, so the
    stored values need not be read. A type mismatch raises
    ``NotImplementedError``, as the original's merge does."""
    if atom_type not in models.ATOM_TYPES:
        raise _decode.Record('atom detail', name, ad.uuid).corrupt(
            'type', "is an unknown atom type '%s'" % (atom_type,))
    return models.atom_detail_class(atom_type)(name, ad.uuid).merge(ad)


class Connection(base.Connection):
    """A connection to a :class:`SQLAlchemyBackend` (cheap: it borrows a
    pooled database connection per call)."""

    def __init__(self, backend: SQLAlchemyBackend) -> None:
        self._backend = backend
        self._st = backend._statements
        # The lease every write must hold (see taskflow.persistence.ownership).
        self.fence: ownership.Lease | None = None

    @property
    def backend(self) -> SQLAlchemyBackend:
        return self._backend

    def close(self) -> None:
        pass

    # -- plumbing -----------------------------------------------------------

    _errors = _StorageErrors

    @contextlib.contextmanager
    def _writing(self, message: str, written: Any = None
                 ) -> Iterator[sa.Connection]:
        with self._errors(message, written), self._backend._lock:
            with self._backend._write_engine.begin() as conn:
                yield conn

    @contextlib.contextmanager
    def _reading(self, message: str) -> Iterator[sa.Connection]:
        with self._errors(message), self._backend._lock:
            with self._backend._read_engine.connect() as conn:
                yield conn

    # -- leases (see taskflow.persistence.ownership) ---------------------------

    def _check_fence(self, conn: sa.Connection) -> None:
        if self.fence is not None:
            self._backend._leases.check_fence(conn, self.fence)

    def _ensure_lease_table(self) -> None:
        """Create the lease table in a database only the original upgraded."""
        backend = self._backend
        if backend._lease_table_ready:
            return
        with self._errors('Failed creating the flow lease table'), backend._lock:
            with backend._write_engine.connect() as conn:
                if not sa.inspect(conn).has_table(ng_tables.flow_leases.name):
                    migration.upgrade_ng(conn)
        backend._lease_table_ready = True

    @_retry_transient
    def acquire_flow_lease(self, flow_uuid: str, owner: str, ttl: float,
                           claim_token: int | None = None) -> ownership.Lease:
        """Take the lease of a flow detail (``FlowLeased`` if someone else holds it)."""
        ttl = ownership.check_ttl(ttl)
        self._ensure_lease_table()
        message = 'Failed taking the lease of flow detail %r' % (flow_uuid,)
        try:
            with self._writing(message) as conn:
                return self._backend._leases.acquire(conn, flow_uuid, owner, ttl,
                                                     claim_token)
        except exc.StorageFailure as e:
            if not isinstance(e.cause, sa_exc.IntegrityError):
                raise
        # Another owner inserted the first lease row meanwhile: now it exists.
        with self._writing(message) as conn:
            return self._backend._leases.acquire(conn, flow_uuid, owner, ttl, claim_token)

    @_retry_transient
    def renew_flow_lease(self, lease: ownership.Lease, ttl: float) -> ownership.Lease:
        ttl = ownership.check_ttl(ttl)
        with self._writing('Failed renewing the lease of flow detail %r'
                           % (lease.flow_uuid,)) as conn:
            return self._backend._leases.renew(conn, lease, ttl)

    @_retry_transient
    def release_flow_lease(self, lease: ownership.Lease) -> None:
        with self._writing('Failed releasing the lease of flow detail %r'
                           % (lease.flow_uuid,)) as conn:
            self._backend._leases.release(conn, lease)

    @_retry_transient
    def get_flow_lease(self, flow_uuid: str) -> ownership.Lease | None:
        self._ensure_lease_table()
        with self._reading('Failed reading the lease of flow detail %r'
                           % (flow_uuid,)) as conn:
            return self._backend._leases.read(conn, flow_uuid)

    # -- schema -------------------------------------------------------------

    @_retry_transient
    def upgrade(self) -> None:
        with self._errors('Failed upgrading database version'), \
                self._backend._lock:
            with self._backend._write_engine.connect() as conn:
                migration.upgrade(conn)

    @_retry_transient
    def validate(self) -> None:
        with self._reading('Failed to validate the database connection'
                           ) as conn:
            conn.exec_driver_sql('SELECT 1').scalar()

    @_retry_transient
    def clear_all(self) -> None:
        with self._writing('Failed clearing all entries') as conn:
            for statement in self._st.clear:
                conn.execute(statement)
            leases = self._backend._leases.table
            if self._backend._lease_table_ready or sa.inspect(conn).has_table(leases.name):
                conn.execute(leases.delete())

    # -- encoding -----------------------------------------------------------

    _JSON_PARAMS = ('b_meta', 'b_failure', 'b_results', 'b_revert_results',
                    'b_revert_failure')

    def _atom_params(self, ad: models.AtomDetail, now: datetime.datetime
                     ) -> dict[str, Any]:
        dump = functools.partial(_serialize.dump_field, 'atom detail', ad,
                                 encoder=self._backend.encoder)
        data = ad.to_dict()
        params = {
            'b_uuid': ad.uuid,
            'b_updated_at': now,
            'b_meta': dump('meta', data['meta']),
            'b_version': ad.version,
            'b_state': ad.state,
            'b_intention': ad.intention,
            'b_failure': dump('failure', data['failure']),
            'b_results': dump('results', data['results']),
            'b_revert_results': dump('revert_results', data['revert_results']),
            'b_revert_failure': dump('revert_failure', data['revert_failure']),
        }
        if self._backend._max_packet is not None:
            self._check_packet(ad, params, self._backend._max_packet)
        return params

    # Room for the rest of the statement (other columns, SQL text).
    _PACKET_MARGIN = 16 * 1024

    def _check_packet(self, ad: models.AtomDetail, params: dict[str, Any],
                      max_packet: int) -> None:
        """Refuse a row MySQL would refuse (and drop the connection for):
        a statement longer than max_allowed_packet."""
        texts = {key: params[key] for key in self._JSON_PARAMS
                 if params[key] is not None}
        room = max_packet - self._PACKET_MARGIN
        if 2 * sum(map(len, texts.values())) <= room:
            return  # even if every character needed escaping
        # PyMySQL sends values inline, escaping quotes and backslashes.
        sizes = {key: len(text) + text.count('"') + text.count('\\')
                 + text.count("'") for key, text in texts.items()}
        if sum(sizes.values()) > room:
            field = max(sizes, key=sizes.__getitem__)[2:]
            raise _serialize.unstorable(
                'atom detail', ad, field, 'the row would take %d bytes, over'
                " the MySQL server's max_allowed_packet of %d"
                % (sum(sizes.values()) + self._PACKET_MARGIN, max_packet))

    @staticmethod
    def _atom_insert_row(params: dict[str, Any], ad: models.AtomDetail,
                         parent_uuid: str) -> dict[str, Any]:
        row = {name: params['b_' + name]
               for name in _stmts.ATOM_UPDATE_COLUMNS}
        row.update(uuid=ad.uuid, name=ad.name, parent_uuid=parent_uuid,
                   atom_type=models.atom_detail_type(ad),
                   created_at=params['b_updated_at'], updated_at=None)
        return row

    def _flow_params(self, fd: models.FlowDetail, now: datetime.datetime
                     ) -> dict[str, Any]:
        return {'b_uuid': fd.uuid, 'b_state': fd.state, 'b_updated_at': now,
                'b_meta': _serialize.dump_field('flow detail', fd, 'meta',
                                                fd.meta,
                                                self._backend.encoder)}

    def _encode_flow(self, fd: models.FlowDetail, now: datetime.datetime
                     ) -> tuple[dict, list[tuple[models.AtomDetail, dict]]]:
        atoms = [(ad, self._atom_params(ad, now)) for ad in fd]
        return self._flow_params(fd, now), atoms

    # -- writing ------------------------------------------------------------

    def _existing(self, conn: sa.Connection, statement: Any, parent_uuid: str,
                  uuids: Sequence[str]) -> set[str]:
        """Which of ``uuids`` are stored under ``parent_uuid``."""
        found: set[str] = set()
        for chunk in _chunks(list(uuids)):
            found.update(conn.execute(statement, {'b_uuids': list(chunk),
                                                  'b_parent': parent_uuid})
                         .scalars())
        return found

    def _store_atoms(self, conn: sa.Connection, parent_uuid: str,
                     atoms: list[tuple[models.AtomDetail, dict]]) -> None:
        """UPDATE the atom details that exist, INSERT the others."""
        if not atoms:
            return
        existing = self._existing(conn, self._st.existing_atoms, parent_uuid,
                                  [ad.uuid for ad, _ in atoms])
        updates = [params for ad, params in atoms if ad.uuid in existing]
        inserts = [self._atom_insert_row(params, ad, parent_uuid)
                   for ad, params in atoms if ad.uuid not in existing]
        if updates:
            conn.execute(self._st.update_atom, updates)
        if inserts:
            conn.execute(self._st.insert_atom, inserts)

    def _store_flows(self, conn: sa.Connection, book_uuid: str,
                     flows: list[tuple[models.FlowDetail, dict, list]],
                     now: datetime.datetime) -> None:
        """Save the flow details of a book and their atom details."""
        existing = self._existing(conn, self._st.existing_flows, book_uuid,
                                  [fd.uuid for fd, _, _ in flows])
        updates = [params for fd, params, _ in flows if fd.uuid in existing]
        inserts = [{'uuid': fd.uuid, 'name': fd.name,
                    'parent_uuid': book_uuid, 'state': params['b_state'],
                    'meta': params['b_meta'], 'created_at': now,
                    'updated_at': None}
                   for fd, params, _ in flows if fd.uuid not in existing]
        if updates:
            conn.execute(self._st.update_flow, updates)
        if inserts:
            conn.execute(self._st.insert_flow, inserts)
        for fd, _, atoms in flows:
            self._store_atoms(conn, fd.uuid, atoms)

    # What the public writes return is the original's: the stored object
    # merged with the given one, holding all the stored children (built
    # before writing, so a merge error leaves the store as it was). A merge
    # takes every field but the name (and class) from the given atom
    # details, so only their names and types are read; stored children the
    # given object lacks are loaded in full. Finding those reads every child
    # of the flow (or book): the engine's storage, which needs no copy,
    # calls _write_flow_details instead.

    def _load_atoms(self, conn: sa.Connection, uuids: Sequence[str]
                    ) -> dict[str, models.AtomDetail]:
        loaded = {}
        for chunk in _chunks(uuids):
            for row in conn.execute(self._st.select_atoms_in,
                                    {'b_uuids': list(chunk)}):
                loaded[row.uuid] = _rows.atom_from_row(row)
        return loaded

    def _merged_flow(self, conn: sa.Connection, flow_row: Any,
                     fd: models.FlowDetail) -> models.FlowDetail:
        """The flow detail stored as ``flow_row`` merged with ``fd``: stored
        atoms first, then the new ones (the given objects themselves)."""
        merged = _rows.flow_from_row(flow_row, ()).merge(fd)
        given = {ad.uuid: ad for ad in fd}
        kinds = conn.execute(self._st.atom_kinds_of_flow,
                             {'b_parent': fd.uuid}).all()
        loaded = self._load_atoms(
            conn, [row.uuid for row in kinds if row.uuid not in given])
        for row in kinds:
            ad = given.get(row.uuid)
            merged.add(loaded[row.uuid] if ad is None
                       else _merged_atom(row.atom_type, row.name, ad))
        for ad in fd:
            if merged.find(ad.uuid) is None:
                merged.add(ad)
        return merged

    @_retry_transient
    def update_atom_details(self, atom_detail: models.AtomDetail
                            ) -> models.AtomDetail:
        """Save an existing atom detail; returns the stored one merged with
        it (a new object).

        One UPDATE in one short transaction when the stored row has the
        given name and type (always, for the engine); otherwise the row's
        name and type are read first.
        """
        message = ('Failed updating atom details with uuid %r'
                   % (atom_detail.uuid,))
        with self._errors(message):
            params = self._atom_params(atom_detail, _now())
        atom_type = models.atom_detail_type(atom_detail)
        params['b_name'] = atom_detail.name
        params['b_type'] = atom_type
        with self._writing(message, atom_detail) as conn:
            self._check_fence(conn)
            if conn.execute(self._st.update_atom_if_same, params).rowcount:
                return _merged_atom(atom_type, atom_detail.name, atom_detail)
            row = conn.execute(self._st.atom_kind,
                               {'b_uuid': atom_detail.uuid}).first()
            if row is None:
                raise exc.NotFound('No atom details found with uuid %r'
                                   % (atom_detail.uuid,))
            # Raises NotImplementedError (nothing saved) if the types differ.
            merged = _merged_atom(row.atom_type, row.name, atom_detail)
            params['b_name'] = row.name
            conn.execute(self._st.update_atom_if_same, params)
        return merged

    def update_flow_details(self, flow_detail: models.FlowDetail
                            ) -> models.FlowDetail:
        """Save an existing flow detail and its atom details (new atom
        details are inserted); returns the stored flow detail merged with
        it, holding all its atom details."""
        return cast(models.FlowDetail,
                    self._update_flow(flow_detail, merged=True))

    def _write_flow_details(self, flow_detail: models.FlowDetail) -> None:
        self._update_flow(flow_detail, merged=False)

    @_retry_transient
    def _update_flow(self, flow_detail: models.FlowDetail, merged: bool
                     ) -> models.FlowDetail | None:
        message = ('Failed updating flow details with uuid %r'
                   % (flow_detail.uuid,))
        with self._errors(message):
            flow_params, atoms = self._encode_flow(flow_detail, _now())
        with self._writing(message, flow_detail) as conn:
            self._check_fence(conn)
            result = None
            if merged:
                row = conn.execute(self._st.select_flow,
                                   {'b_uuid': flow_detail.uuid}).first()
                if row is not None:  # else NotFound below
                    result = self._merged_flow(conn, row, flow_detail)
            if conn.execute(self._st.update_flow, flow_params).rowcount == 0:
                raise exc.NotFound('No flow details found with uuid %r'
                                   % (flow_detail.uuid,))
            self._store_atoms(conn, flow_detail.uuid, atoms)
        return result

    def save_logbook(self, book: models.LogBook) -> models.LogBook:
        """Insert or update ``book`` with all its flow and atom details.

        Returns ``book`` itself when it was new, else the stored book merged
        with it, holding all its flow details (as the original does).
        """
        return cast(models.LogBook, self._save_book(book, merged=True))

    def _write_logbook(self, book: models.LogBook) -> None:
        self._save_book(book, merged=False)

    @_retry_transient
    def _save_book(self, book: models.LogBook, merged: bool
                   ) -> models.LogBook | None:
        message = 'Failed saving logbook %r' % (book.uuid,)
        now = _now()
        with self._errors(message):
            book_params = {
                'b_uuid': book.uuid, 'b_created_at': book.created_at,
                'b_updated_at': book.updated_at,
                'b_meta': _serialize.dump_field('logbook', book, 'meta',
                                                book.meta,
                                                self._backend.encoder),
            }
            flows = [(fd,) + self._encode_flow(fd, now) for fd in book]
        with self._writing(message, book) as conn:
            self._check_fence(conn)
            row = conn.execute(self._st.select_book,
                               {'b_uuid': book.uuid}).first()
            if row is None:
                conn.execute(self._st.insert_book, {
                    'uuid': book.uuid, 'name': book.name,
                    'meta': book_params['b_meta'],
                    'created_at': book.created_at,
                    'updated_at': book.updated_at})
                result: models.LogBook | None = book
            else:
                result = self._merged_book(conn, row, book) if merged else None
                conn.execute(self._st.update_book, book_params)
            self._store_flows(conn, book.uuid, flows, now)
        return result if merged else None

    def _merged_book(self, conn: sa.Connection, book_row: Any,
                     book: models.LogBook) -> models.LogBook:
        """The book stored as ``book_row`` merged with ``book``: stored flow
        details first (merged with the given ones), then the new ones."""
        result = _rows.book_from_row(book_row)
        stored = conn.execute(self._st.select_flows_of_book,
                              {'b_parent': book.uuid}).all()
        not_given = iter(self._flows_with_atoms(
            conn, [row for row in stored if book.find(row.uuid) is None]))
        for row in stored:
            fd = book.find(row.uuid)
            result.add(next(not_given) if fd is None
                       else self._merged_flow(conn, row, fd))
        result.merge(book)
        for fd in book:
            if result.find(fd.uuid) is None:
                result.add(fd)  # touches updated_at, as the original's does
        return result

    @_retry_transient
    def destroy_logbook(self, book_uuid: str) -> None:
        message = 'Failed destroying logbook %r' % (book_uuid,)
        with self._writing(message) as conn:
            params = {'b_parent': book_uuid}
            conn.execute(self._st.delete_atoms_of_book, params)
            conn.execute(self._st.delete_flows_of_book, params)
            deleted = conn.execute(self._st.delete_book,
                                   {'b_uuid': book_uuid}).rowcount
            if not deleted:
                raise exc.NotFound('No logbook found with uuid %r'
                                   % (book_uuid,))

    # -- reading ------------------------------------------------------------

    @_retry_transient
    def get_logbook(self, book_uuid: str, lazy: bool = False
                    ) -> models.LogBook:
        message = 'Failed getting logbook %r' % (book_uuid,)
        with self._reading(message) as conn:
            row = conn.execute(self._st.select_book,
                               {'b_uuid': book_uuid}).first()
            if row is None:
                raise exc.NotFound('No logbook found with uuid %r'
                                   % (book_uuid,))
            book = _rows.book_from_row(row)
            if not lazy:
                flows = conn.execute(self._st.select_flows_of_book,
                                     {'b_parent': book_uuid}).all()
                for fd in self._flows_with_atoms(conn, flows):
                    book.add(fd)
                book.updated_at = row.updated_at  # add() touched it
        return book

    @_retry_transient
    def get_logbooks(self, lazy: bool = False) -> Iterator[models.LogBook]:
        with self._reading('Failed getting logbooks') as conn:
            books = {row.uuid: _rows.book_from_row(row)
                     for row in conn.execute(self._st.select_books)}
            if not lazy and books:
                by_flow = _rows.group(conn.execute(self._st.select_atoms))
                updated = {uuid: book.updated_at
                           for uuid, book in books.items()}
                for row in conn.execute(self._st.select_flows):
                    book = books.get(row.parent_uuid)
                    if book is not None:
                        atoms = by_flow.get(row.uuid, ())
                        book.add(_rows.flow_from_row(row, atoms))
                for uuid, book in books.items():
                    book.updated_at = updated[uuid]  # add() touched it
        return iter(list(books.values()))

    def _flows_with_atoms(self, conn: sa.Connection,
                          flow_rows: Sequence[Any]) -> list[models.FlowDetail]:
        by_flow: dict[str, list] = {}
        uuids = [row.uuid for row in flow_rows]
        for chunk in _chunks(uuids):
            rows = conn.execute(self._st.select_atoms_of_flows,
                                {'b_parents': list(chunk)})
            for parent, atoms in _rows.group(rows).items():
                by_flow.setdefault(parent, []).extend(atoms)
        return [_rows.flow_from_row(row, by_flow.get(row.uuid, ()))
                for row in flow_rows]

    @_retry_transient
    def get_flows_for_book(self, book_uuid: str, lazy: bool = False
                           ) -> Iterator[models.FlowDetail]:
        message = 'Failed getting flow details in logbook %r' % (book_uuid,)
        with self._reading(message) as conn:
            rows = conn.execute(self._st.select_flows_of_book,
                                {'b_parent': book_uuid}).all()
            if lazy:
                flows = [_rows.flow_from_row(row, ()) for row in rows]
            else:
                flows = self._flows_with_atoms(conn, rows)
        return iter(flows)

    @_retry_transient
    def get_flow_details(self, fd_uuid: str, lazy: bool = False
                         ) -> models.FlowDetail:
        message = 'Failed getting flow details with uuid %r' % (fd_uuid,)
        with self._reading(message) as conn:
            row = conn.execute(self._st.select_flow,
                               {'b_uuid': fd_uuid}).first()
            if row is None:
                raise exc.NotFound('No flow details found with uuid %r'
                                   % (fd_uuid,))
            atoms: Iterable[Any] = ()
            if not lazy:
                atoms = conn.execute(self._st.select_atoms_of_flow,
                                     {'b_parent': fd_uuid}).all()
            return _rows.flow_from_row(row, atoms)

    @_retry_transient
    def get_atom_details(self, ad_uuid: str) -> models.AtomDetail:
        message = 'Failed getting atom details with uuid %r' % (ad_uuid,)
        with self._reading(message) as conn:
            row = conn.execute(self._st.select_atom,
                               {'b_uuid': ad_uuid}).first()
            if row is None:
                raise exc.NotFound('No atom details found with uuid %r'
                                   % (ad_uuid,))
            return _rows.atom_from_row(row)

    @_retry_transient
    def get_atoms_for_flow(self, fd_uuid: str
                           ) -> Iterator[models.AtomDetail]:
        message = ('Failed getting atom details in flow detail %r'
                   % (fd_uuid,))
        with self._reading(message) as conn:
            rows = conn.execute(self._st.select_atoms_of_flow,
                                {'b_parent': fd_uuid}).all()
            atoms = [_rows.atom_from_row(row) for row in rows]
        return iter(atoms)
