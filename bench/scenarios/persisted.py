"""``persisted``: a chain of N no-op tasks saved to a SQL backend as it runs.

``backend='sqlite'`` writes to a fresh SQLite file, with ``synchronous``
(``'FULL'``, taskflow-ng's default, or ``'NORMAL'``) passed as the
``sqlite_synchronous`` backend option (the original ignores it and keeps its
own default, a rollback journal with ``synchronous=FULL``); ``backend='postgresql'``
to a scratch database created (and dropped afterwards) on the server at
``$TASKFLOW_BENCH_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``,
the database part is replaced). The driver is whichever of psycopg (3) or
psycopg2 the interpreter has, so both implementations can run it.
Timed: ``engines.load(flow, backend=..., book=...)`` + ``engine.run()`` (which
saves the new logbook and flow detail, then every atom state change); the
schema upgrade is not timed.
"""

import contextlib
import importlib.util
import os
import tempfile
import uuid

from taskflow import engines
from taskflow.persistence import backends
from taskflow.persistence import models

from scenarios import Skip
from scenarios import _flows

DEFAULT_PG_URL = 'postgresql://postgres@127.0.0.1:5432/test'


def _pg_driver():
    for module, driver in (('psycopg', 'psycopg'), ('psycopg2', 'psycopg2')):
        if importlib.util.find_spec(module) is not None:
            return driver
    raise Skip('no PostgreSQL driver (psycopg or psycopg2) installed')


@contextlib.contextmanager
def _scratch_postgresql():
    import sqlalchemy as sa
    url = sa.engine.make_url(os.environ.get('TASKFLOW_BENCH_PG_URL', DEFAULT_PG_URL))
    url = url.set(drivername='postgresql+' + _pg_driver())
    name = 'tf_bench_%s' % uuid.uuid4().hex[:12]
    admin = sa.create_engine(url, isolation_level='AUTOCOMMIT')
    try:
        with admin.connect() as conn:
            conn.execute(sa.text('CREATE DATABASE %s' % name))
    except sa.exc.OperationalError as error:
        admin.dispose()
        raise Skip('PostgreSQL at %s is not reachable: %s'
                   % (url.render_as_string(), str(error).splitlines()[0]))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text('DROP DATABASE IF EXISTS %s WITH (FORCE)' % name))
        admin.dispose()


@contextlib.contextmanager
def _scratch_sqlite():
    with tempfile.TemporaryDirectory(prefix='tf-bench-') as tmp:
        yield 'sqlite:///' + os.path.join(tmp, 'bench.db')


SCRATCH = {'sqlite': _scratch_sqlite, 'postgresql': _scratch_postgresql}


def run_once(store, size):
    flow = _flows.build_chain(size)
    book = models.LogBook('bench-%d' % size)

    def load_and_run():
        engine = engines.load(flow, backend=store, book=book)
        engine.run()
        return engine

    seconds, engine = _flows.timed(load_and_run)
    if engine.storage.fetch(_flows.chain_name(size - 1)) != size - 1:
        raise AssertionError('wrong last result')
    with contextlib.closing(store.get_connection()) as conn:
        atoms = sum(len(list(fd)) for fd in conn.get_logbook(book.uuid))
    if atoms != size:
        raise AssertionError('%d atom details persisted, expected %d' % (atoms, size))
    return seconds


def measure(size, backend='sqlite', synchronous=None):
    with SCRATCH[backend]() as url:
        conf = {'connection': url}
        if synchronous is not None:
            conf['sqlite_synchronous'] = synchronous
        store = backends.fetch(conf)
        try:
            with contextlib.closing(store.get_connection()) as conn:
                conn.upgrade()
            run_once(store, _flows.WARM_UP_SIZE)   # warms the statement caches too
            seconds = run_once(store, size)
        finally:
            store.close()
    return {'seconds': seconds}
