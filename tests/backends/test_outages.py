"""Database outages: bounded waits, bounded retries, bounded logs.

The SQL backends reach the real PostgreSQL / MariaDB through a TCP proxy
(``tests/_proxy.py``) that the tests make hang (a server that stops
answering with its connections up) or go down (connections reset, new ones
refused). A short outage is ridden out; a long one ends in
``StorageFailure`` within a bounded time with a few log lines; the next
write after it works. Killed server connections (``pg_terminate_backend``,
MySQL ``KILL``) are replaced transparently. SQLite's "database is locked"
is ridden out the same way (``repro_b_transient_revert``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from taskflow import engines
from taskflow import exceptions as exc
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.persistence import backends
from taskflow.persistence import models
from taskflow.utils import persistence_utils as p_utils
from tests._proxy import TcpProxy
from tests.backends.conftest import kind_params, server_url

SERVER_KINDS = kind_params(['postgresql', 'mysql'])
# Small limits keep the tests short: each attempt waits at most ~2 s
# (libpq's smallest connect timeout).
FAST = {'connect_timeout': 2, 'read_timeout': 1, 'statement_timeout': 0.5,
        'lock_timeout': 0.5, 'max_retry_time': 2, 'retry_backoff': 0.05}
# An attempt that hangs is cut after read_timeout (plus the watchdog's
# tick) or connect_timeout; no attempt starts after max_retry_time.
BOUND = FAST['max_retry_time'] + 2 * FAST['connect_timeout'] + 2


@pytest.fixture
def warnings(caplog):
    caplog.set_level(logging.WARNING, logger='taskflow')

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records
                if r.name.startswith('taskflow')]
    return lines


@pytest.fixture
def proxied(server_urls):
    """``proxied(kind, **options)`` -> (backend through a proxy, proxy)."""
    made = []

    def factory(kind: str, **options):
        url = sa.engine.make_url(server_url(kind, server_urls))
        proxy = TcpProxy(url.host or '127.0.0.1', url.port or
                         {'postgresql': 5432, 'mysql': 3306}[kind])
        conf = dict(FAST, **options)
        conf['connection'] = url.set(host='127.0.0.1', port=proxy.port
                                     ).render_as_string(hide_password=False)
        backend = backends.fetch(conf)
        made.append((backend, proxy))
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
        return backend, proxy

    yield factory
    for backend, proxy in made:
        proxy.close()
        backend.close()


def saved_atom(conn, suffix: str) -> models.AtomDetail:
    book = models.LogBook('b', uuid='book-' + suffix)
    fd = models.FlowDetail('f', 'flow-' + suffix)
    book.add(fd)
    ad = models.TaskDetail('t', 'atom-' + suffix)
    ad.put('SUCCESS', 'before')
    fd.add(ad)
    conn.save_logbook(book)
    return ad


def _unique() -> str:
    return os.urandom(6).hex()


@pytest.mark.parametrize('kind', SERVER_KINDS)
@pytest.mark.parametrize('fault', ['hang', 'down'])
def test_long_outage_ends_in_storage_failure_within_bounds(
        kind, fault, proxied, warnings):
    backend, proxy = proxied(kind)
    with contextlib.closing(backend.get_connection()) as conn:
        ad = saved_atom(conn, _unique())
        getattr(proxy, fault)()
        ad.put('SUCCESS', 'during')
        started = time.monotonic()
        with pytest.raises(exc.StorageFailure) as info:
            conn.update_atom_details(ad)
        elapsed = time.monotonic() - started
        assert not isinstance(info.value, exc.UnstorableValue)
        assert info.value.args == ("Failed updating atom details with uuid"
                                   " %r" % ad.uuid,)
        assert elapsed < BOUND, elapsed
        if fault == 'hang':
            assert elapsed >= FAST['read_timeout'] - 0.5
        during = len(warnings())
        assert 1 <= during <= 3, warnings()
        proxy.resume()
        proxy.up()
        ad.put('SUCCESS', 'after')
        conn.update_atom_details(ad)
        assert conn.get_atom_details(ad.uuid).results == 'after'
    # One more line at most: "the database answers again".
    assert len(warnings()) <= during + 1
    assert 'answers again' in warnings()[-1]


@pytest.mark.parametrize('kind', SERVER_KINDS)
def test_short_outage_is_ridden_out(kind, proxied, warnings):
    backend, proxy = proxied(kind, max_retry_time=10)
    with contextlib.closing(backend.get_connection()) as conn:
        ad = saved_atom(conn, _unique())
        proxy.down()
        threading.Timer(1.5, proxy.up).start()
        ad.put('SUCCESS', 'written while the server restarted')
        started = time.monotonic()
        conn.update_atom_details(ad)
        assert 1.4 < time.monotonic() - started < 10
        assert conn.get_atom_details(ad.uuid).results == ad.results
    lines = warnings()
    assert 2 <= len(lines) <= 3, lines
    assert 'failed, retrying' in lines[0]
    assert 'answers again' in lines[-1]


@pytest.mark.parametrize('kind', SERVER_KINDS)
def test_a_hung_connect_is_bounded(kind, proxied, warnings):
    backend, proxy = proxied(kind, max_retry_time=0)
    backend.engine.dispose()  # no pooled connection: the next one connects
    proxy.hang()
    with contextlib.closing(backend.get_connection()) as conn:
        started = time.monotonic()
        with pytest.raises(exc.StorageFailure):
            conn.validate()
        assert time.monotonic() - started < FAST['connect_timeout'] + 2
    assert len(warnings()) == 1


@pytest.mark.parametrize('kind', SERVER_KINDS)
def test_many_failing_calls_log_a_few_lines(kind, proxied, warnings):
    backend, proxy = proxied(kind, max_retry_time=0.5)
    with contextlib.closing(backend.get_connection()) as conn:
        atoms = [saved_atom(conn, _unique()) for _ in range(4)]
    proxy.down()
    failures = []
    deadline = time.monotonic() + 2

    def hammer(ad):
        with contextlib.closing(backend.get_connection()) as conn:
            while time.monotonic() < deadline:
                try:
                    conn.update_atom_details(ad)
                except exc.StorageFailure:
                    failures.append(1)

    threads = [threading.Thread(target=hammer, args=(ad,)) for ad in atoms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Dozens of calls (and more attempts) failed; the log stayed short.
    assert len(failures) >= 8
    assert len(warnings()) <= 2, warnings()


def _kill_connections(kind: str, backend) -> int:
    """Kill every server connection of the backend's database but this
    one; returns how many were killed."""
    database = backend.engine.url.database
    admin = sa.create_engine(backend.engine.url.set(database=None if kind ==
                                                    'mysql' else 'postgres'),
                             poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            if kind == 'postgresql':
                return len(conn.exec_driver_sql(
                    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity'
                    ' WHERE datname = %(db)s AND pid <> pg_backend_pid()',
                    {'db': database}).all())
            ids = conn.exec_driver_sql(
                'SELECT id FROM information_schema.processlist WHERE db = %s'
                ' AND id <> CONNECTION_ID()', (database,)).scalars().all()
            for connection_id in ids:
                conn.exec_driver_sql('KILL %d' % connection_id)
            return len(ids)
    finally:
        admin.dispose()


@pytest.mark.parametrize('kind', SERVER_KINDS)
def test_killed_server_connections_are_replaced(kind, make_backend,
                                                warnings):
    backend = make_backend(kind, max_pool_size=2)
    with contextlib.closing(backend.get_connection()) as conn:
        ad = saved_atom(conn, _unique())
        for attempt in range(3):
            assert _kill_connections(kind, backend) >= 1
            ad.put('SUCCESS', attempt)
            conn.update_atom_details(ad)
            assert conn.get_atom_details(ad.uuid).results == attempt
    # A warning when a write found its connection dead, one when it worked.
    assert len(warnings()) <= 6, warnings()


@pytest.mark.parametrize('kind', SERVER_KINDS)
def test_pool_checkout_wait_is_bounded(kind, make_backend, warnings):
    backend = make_backend(kind, max_pool_size=1, max_overflow=0,
                           pool_timeout=1, max_retry_time=1.5,
                           retry_backoff=0.05)
    with contextlib.closing(backend.get_connection()) as conn:
        ad = saved_atom(conn, _unique())
        with backend.engine.connect():  # holds the only connection
            started = time.monotonic()
            with pytest.raises(exc.StorageFailure) as info:
                conn.update_atom_details(ad)
            assert time.monotonic() - started < 5
            assert isinstance(info.value.cause, sa.exc.TimeoutError)
        conn.update_atom_details(ad)  # released: works again
    assert len(warnings()) <= 2


# -- through an engine -----------------------------------------------------------

class Step(task.Task):
    calls: list = []
    fault: threading.Event = threading.Event()
    proxy: TcpProxy | None = None

    def execute(self):
        Step.calls.append(self.name)
        if self.name == 's2' and not Step.fault.is_set():
            Step.fault.set()
            Step.proxy.down()  # the database dies while s2 runs
        return self.name

    def revert(self, **kwargs):
        Step.calls.append('revert ' + self.name)


def five_steps():
    return lf.Flow('steps').add(*[Step('s%d' % i) for i in range(5)])


@pytest.mark.parametrize('kind', SERVER_KINDS)
def test_engine_run_stops_in_bounded_time_and_resumes(kind, proxied,
                                                      warnings):
    backend, proxy = proxied(kind, max_retry_time=1.5)
    Step.calls, Step.proxy = [], proxy
    Step.fault = threading.Event()
    book = models.LogBook('outage')
    fd = p_utils.create_flow_detail(five_steps(), book=book, backend=backend)
    engine = engines.load(five_steps(), flow_detail=fd, backend=backend)
    started = time.monotonic()
    with pytest.raises(exc.StorageFailure):
        engine.run()
    # At most two writes (the result, then the failure) each gave up.
    assert time.monotonic() - started < 2 * BOUND
    assert len(warnings()) <= 3, warnings()
    assert Step.calls == ['s0', 's1', 's2']
    proxy.up()
    with contextlib.closing(backend.get_connection()) as conn:
        resumed = conn.get_flow_details(fd.uuid)
    engine = engines.load(five_steps(), flow_detail=resumed, backend=backend)
    engine.run()
    assert engine.storage.get_flow_state() == 'SUCCESS'
    # Nothing was reverted or lost; s2, interrupted, ran again.
    assert Step.calls == ['s0', 's1', 's2', 's2', 's3', 's4']


# -- SQLite: "database is locked" (repro_b_transient_revert) ---------------------

def test_sqlite_lock_held_past_the_busy_timeout_is_ridden_out(tmp_path,
                                                              warnings):
    path = str(tmp_path / 'locked.db')
    calls = []

    def hold_lock(seconds):
        conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        conn.execute('BEGIN EXCLUSIVE')
        time.sleep(seconds)
        conn.execute('ROLLBACK')
        conn.close()

    class Reserve(task.Task):
        def execute(self):
            calls.append('reserve')
            return 'seat-42'

        def revert(self, **kwargs):
            calls.append('REVERT reserve')

    class Pay(task.Task):
        def execute(self):
            holder = threading.Thread(target=hold_lock, args=(1.5,))
            holder.start()
            time.sleep(0.1)
            calls.append('pay')
            return 'charge-7'

        def revert(self, **kwargs):
            calls.append('REVERT pay')

    class Ship(task.Task):
        def execute(self):
            calls.append('ship')

    backend = backends.fetch({'connection': 'sqlite:///' + path,
                              'sqlite_busy_timeout': 1})
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
    flow = lf.Flow('order').add(Reserve('reserve', provides='seat'),
                                Pay('pay', provides='charge'), Ship('ship'))
    engine = engines.load(flow, backend=backend)
    engine.run()
    assert calls == ['reserve', 'pay', 'ship']
    assert engine.storage.get_flow_state() == 'SUCCESS'
    lines = warnings()
    assert len(lines) == 2, lines
    assert 'database is locked' in lines[0]
    backend.close()
