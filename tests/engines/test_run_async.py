"""``await engine.run_async()`` and ``async for state in engine.run_iter_async()``.

What a caller's event loop is promised: coroutines run on it, nothing else
does -- synchronous atoms, listeners and storage writes (a PostgreSQL write
held up by a lock, here) happen on other threads, so the loop keeps serving
while they block.  The checks are made deadlock-shaped rather than timed: the
blocked thing can only go on once the caller's loop did something.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

import taskflow.engines
from taskflow import exceptions as exc
from taskflow import states
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from taskflow.persistence import backends
from taskflow.persistence import models
from taskflow.utils import persistence_utils
from tests import _services
from tests.engines.helpers import Log

ENGINES = ['serial', 'parallel']


class Where(task.Task):
    """Records the loop and thread it ran on."""

    def __init__(self, name, seen, **kwargs):
        super().__init__(name=name, **kwargs)
        self.seen = seen

    async def execute(self):
        await asyncio.sleep(0)
        self.seen.append((asyncio.get_running_loop(), threading.get_ident()))
        return self.name


@pytest.mark.parametrize('engine', ENGINES)
def test_coroutines_run_on_the_callers_loop(engine):
    seen = []
    flow = uf.Flow('u').add(*(Where('w%d' % i, seen, provides='r%d' % i) for i in range(4)))

    async def main():
        loaded = taskflow.engines.load(flow, engine=engine)
        await loaded.run_async()
        return asyncio.get_running_loop(), threading.get_ident(), loaded

    loop, thread, loaded = asyncio.run(main())
    assert seen == [(loop, thread)] * 4
    assert loaded.storage.fetch_all() == {'r%d' % i: 'w%d' % i for i in range(4)}


class WaitsForTheLoop(task.Task):
    """A plain task that can only finish once the caller's loop set ``event``."""

    def __init__(self, name, event, **kwargs):
        super().__init__(name=name, **kwargs)
        self.event = event

    def execute(self):
        return self.event.wait(10)


async def _set_soon(event):
    await asyncio.sleep(0.05)
    event.set()


@pytest.mark.parametrize('engine', ENGINES)
def test_plain_atoms_do_not_block_the_callers_loop(engine):
    event = threading.Event()
    flow = lf.Flow('f').add(WaitsForTheLoop('waits', event, provides='released'),
                            Where('after', []))

    async def main():
        loaded = taskflow.engines.load(flow, engine=engine)
        await asyncio.gather(loaded.run_async(), _set_soon(event))
        return loaded.storage.fetch('released')

    assert asyncio.run(main()) is True


@pytest.mark.parametrize('engine', ENGINES)
def test_listeners_do_not_block_the_callers_loop(engine):
    event = threading.Event()
    released = []

    async def main():
        loaded = taskflow.engines.load(Where('w', []), engine=engine)
        loaded.atom_notifier.register(states.SUCCESS,
                                      lambda state, details: released.append(event.wait(10)))
        await asyncio.gather(loaded.run_async(), _set_soon(event))

    asyncio.run(main())
    assert released == [True]


@pytest.fixture
def postgresql_backend():
    url = _services.scratch_database('postgresql')
    backend = backends.fetch({'connection': url})
    try:
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
        yield url, backend
    finally:
        backend.close()
        _services.drop_scratch_database(url)


@pytest.mark.postgresql
@pytest.mark.parametrize('engine', ENGINES)
def test_a_storage_write_held_up_by_a_lock_does_not_block_the_callers_loop(
        engine, postgresql_backend):
    import sqlalchemy as sa

    url, backend = postgresql_backend
    flow = lf.Flow('f').add(Where('a', [], provides='a'), Where('b', [], provides='b'))
    detail = persistence_utils.create_flow_detail(flow, book=models.LogBook('book'),
                                                  backend=backend)
    locker = sa.create_engine(url)
    observer = sa.create_engine(url, isolation_level='AUTOCOMMIT')
    watchdog_fired = []
    try:
        lock = locker.connect()
        transaction = lock.begin()
        # Every write to atom details now waits for this transaction.
        lock.exec_driver_sql('LOCK TABLE atomdetails IN EXCLUSIVE MODE')

        def watchdog():   # only if the caller's loop never released the lock
            time.sleep(30)
            if transaction.is_active:
                watchdog_fired.append(True)
                transaction.rollback()
        threading.Thread(target=watchdog, daemon=True).start()

        def engine_waits_for_the_lock():
            with observer.connect() as conn:
                return conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()").scalar() > 0

        async def release_once_blocked():
            ticks = 0
            while not engine_waits_for_the_lock():
                await asyncio.sleep(0.01)
                ticks += 1
                assert ticks < 2000, 'the engine never waited for the lock'
            for _ in range(10):   # the loop keeps running while the write waits
                await asyncio.sleep(0.01)
                ticks += 1
            transaction.commit()
            return ticks

        async def main():
            loaded = taskflow.engines.load(flow, flow_detail=detail, backend=backend,
                                           engine=engine)
            _, ticks = await asyncio.gather(loaded.run_async(), release_once_blocked())
            return loaded, ticks

        loaded, ticks = asyncio.run(main())
        lock.close()
    finally:
        locker.dispose()
        observer.dispose()
    assert not watchdog_fired, 'the engine blocked the loop that would release the lock'
    assert ticks >= 10
    assert loaded.storage.get_flow_state() == states.SUCCESS


@pytest.mark.parametrize('engine', ENGINES)
def test_a_flow_without_coroutines_runs_too(engine):
    log = Log()

    class Plain(task.Task):
        def execute(self):
            log.record('execute', self.name)
            return threading.get_ident()

    async def main():
        loaded = taskflow.engines.load(lf.Flow('f').add(Plain('p', provides='t')),
                                       engine=engine)
        await loaded.run_async()
        return loaded.storage.fetch('t'), threading.get_ident()

    ran_on, caller = asyncio.run(main())
    assert log.names('execute') == ['p'] and ran_on != caller


class Boom(task.Task):
    async def execute(self):
        raise ValueError('boom')


@pytest.mark.parametrize('engine', ENGINES)
def test_run_async_raises_what_run_raises(engine):
    async def main():
        loaded = taskflow.engines.load(lf.Flow('f').add(Where('a', []), Boom('boom')),
                                       engine=engine)
        with pytest.raises(ValueError, match='boom'):
            await loaded.run_async()
        return loaded

    assert asyncio.run(main()).storage.get_flow_state() == states.REVERTED


def test_a_running_engine_is_locked_for_another_run_async():
    event = threading.Event()

    async def main():
        loaded = taskflow.engines.load(WaitsForTheLoop('waits', event))
        first = asyncio.ensure_future(loaded.run_async())
        await asyncio.sleep(0.05)
        with pytest.raises(exc.ExecutionFailure, match='Engine currently locked'):
            await loaded.run_async()
        event.set()
        await first

    asyncio.run(main())


def test_many_engines_share_one_loop():
    async def main():
        engines = [taskflow.engines.load(
            uf.Flow('u%d' % n).add(*(Where('w%d' % i, [], provides='r%d' % i)
                                     for i in range(10))), engine='parallel')
            for n in range(20)]
        await asyncio.gather(*(engine.run_async() for engine in engines))
        return engines

    engines = asyncio.run(main())
    assert all(e.storage.get_flow_state() == states.SUCCESS for e in engines)


# -- run_iter_async ------------------------------------------------------------------------


def _two_step_flow(log):
    class Step(task.Task):
        async def execute(self):
            await asyncio.sleep(0)
            log.record('execute', self.name)

    return lf.Flow('f').add(Step('one'), Step('two'))


@pytest.mark.parametrize('engine', ENGINES)
def test_run_iter_async_yields_the_states_run_iter_yields(engine):
    async def states_of_async():
        loaded = taskflow.engines.load(_two_step_flow(Log()), engine=engine)
        return [state async for state in loaded.run_iter_async()]

    expected = list(taskflow.engines.load(_two_step_flow(Log()), engine=engine).run_iter())
    assert asyncio.run(states_of_async()) == expected
    assert expected[0] == states.RESUMING and expected[-1] == states.SUCCESS


@pytest.mark.parametrize('engine', ENGINES)
def test_sending_true_into_run_iter_async_suspends(engine):
    log = Log()

    async def main():
        loaded = taskflow.engines.load(_two_step_flow(log), engine=engine)
        states_seen = []
        iterator = loaded.run_iter_async()
        state = await iterator.__anext__()
        while True:
            states_seen.append(state)
            try:
                state = await iterator.asend(state == states.ANALYZING)
            except StopAsyncIteration:
                break
        return loaded, states_seen

    loaded, seen = asyncio.run(main())
    assert seen[-1] == states.SUSPENDED
    assert log.names('execute') == ['one']
    assert loaded.storage.get_flow_state() == states.SUSPENDED


@pytest.mark.parametrize('engine', ENGINES)
def test_leaving_an_async_for_early_suspends_and_lets_running_atoms_finish(engine):
    log = Log()

    async def main():
        loaded = taskflow.engines.load(_two_step_flow(log), engine=engine)
        async with contextlib.aclosing(loaded.run_iter_async()) as iterator:
            async for state in iterator:
                if state == states.WAITING:
                    break
        return loaded

    loaded = asyncio.run(main())
    assert log.names('execute') == ['one']   # started before the break: it finished
    assert loaded.storage.get_atom_state('one') == states.SUCCESS
    assert loaded.storage.get_flow_state() == states.SUSPENDED
    loaded.run()
    assert log.names('execute') == ['one', 'two']


@pytest.mark.parametrize('engine', ENGINES)
def test_an_error_thrown_into_run_iter_async_fails_the_run(engine):
    log = Log()

    async def main():
        loaded = taskflow.engines.load(_two_step_flow(log), engine=engine)
        iterator = loaded.run_iter_async()
        state = await iterator.__anext__()
        while state != states.WAITING:
            state = await iterator.__anext__()
        with pytest.raises(RuntimeError, match='stop it'):
            await iterator.athrow(RuntimeError('stop it'))
        return loaded

    loaded = asyncio.run(main())
    assert log.names('execute') == ['one']
    assert loaded.storage.get_flow_state() == states.FAILURE


@pytest.mark.postgresql
def test_a_database_connection_killed_mid_run_does_not_stop_it(postgresql_backend):
    """A transient fault: PostgreSQL terminates the engine's connection while a
    coroutine runs; the next write reconnects and the run finishes."""
    import sqlalchemy as sa

    url, backend = postgresql_backend
    started = threading.Event()

    class Slow(task.Task):
        async def execute(self):
            started.set()
            await asyncio.sleep(0.2)
            return self.name

    flow = lf.Flow('f').add(Where('a', [], provides='a'), Slow('b', provides='b'),
                            Where('c', [], provides='c'))
    detail = persistence_utils.create_flow_detail(flow, book=models.LogBook('book'),
                                                  backend=backend)
    admin = sa.create_engine(url, isolation_level='AUTOCOMMIT')
    try:
        async def main():
            loaded = taskflow.engines.load(flow, flow_detail=detail, backend=backend,
                                           engine='parallel')
            job = asyncio.ensure_future(loaded.run_async())
            while not started.is_set():
                await asyncio.sleep(0.005)
            with admin.connect() as conn:
                killed = conn.exec_driver_sql(
                    'SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity'
                    ' WHERE datname = current_database() AND pid <> pg_backend_pid()'
                ).scalar()
            await job
            return loaded, killed

        loaded, killed = asyncio.run(main())
    finally:
        admin.dispose()
    assert killed >= 1
    assert loaded.storage.fetch_all() == {'a': 'a', 'b': 'b', 'c': 'c'}
    with contextlib.closing(backend.get_connection()) as conn:
        stored = conn.get_flow_details(detail.uuid)
    assert stored.state == states.SUCCESS
    assert {ad.name: ad.state for ad in stored} == dict.fromkeys('abc', states.SUCCESS)


class Gated(task.Task):
    """Awaits ``Gated.gate`` (an asyncio.Event of the running test, if any)."""

    gate: asyncio.Event | None = None
    started = threading.Event()

    async def execute(self):
        Gated.started.set()
        if Gated.gate is not None:
            await Gated.gate.wait()
        return self.name


def gated_flow():
    """The flow factory a second process rebuilds the flow with."""
    return lf.Flow('leased').add(Gated('gated', provides='gated'))


def test_a_second_process_is_refused_the_flow_run_async_is_running(tmp_path):
    import json
    import subprocess
    import sys

    conf = {'connection': 'sqlite:///%s' % (tmp_path / 'flows.db')}
    backend = backends.fetch(dict(conf))
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
    book = models.LogBook('book')
    detail = models.FlowDetail('leased', uuid='fd-leased')
    taskflow.engines.save_factory_details(detail, gated_flow, [], {})
    book.add(detail)
    with contextlib.closing(backend.get_connection()) as conn:
        conn.save_logbook(book)
    second = (
        'import contextlib, json, sys\n'
        'import taskflow.engines\n'
        'from taskflow import exceptions as exc\n'
        'from taskflow.persistence import backends\n'
        'backend = backends.fetch(json.loads(sys.argv[1]))\n'
        'with contextlib.closing(backend.get_connection()) as conn:\n'
        '    detail = conn.get_flow_details("fd-leased")\n'
        'engine = taskflow.engines.load_from_detail(detail, backend=backend)\n'
        'try:\n'
        '    engine.run()\n'
        '    print("ran it")\n'
        'except exc.FlowLeased as error:\n'
        '    print("refused:", error)\n')

    async def main():
        Gated.gate = asyncio.Event()
        Gated.started.clear()
        engine = taskflow.engines.load_from_detail(detail, backend=backend)
        job = asyncio.ensure_future(engine.run_async())
        while not Gated.started.is_set():
            await asyncio.sleep(0.005)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, '-c', second, json.dumps(conf),
            stdout=asyncio.subprocess.PIPE, cwd=str(_repo_root()))
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        Gated.gate.set()
        await job
        return out.decode(), engine

    try:
        out, engine = asyncio.run(main())
    finally:
        Gated.gate = None
        backend.close()
    assert out.startswith('refused:'), out
    assert engine.storage.get_flow_state() == states.SUCCESS


def _repo_root():
    import pathlib
    return pathlib.Path(__file__).resolve().parents[2]
