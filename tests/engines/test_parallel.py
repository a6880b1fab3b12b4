"""What only the parallel engine promises: overlap, executors, worker threads."""

from __future__ import annotations

import concurrent.futures
import threading

import pytest

import taskflow.engines
from taskflow import exceptions as exc
from taskflow import states
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from tests.engines.helpers import Log, Step, make_barrier


class Meeting(Step):
    """Waits at ``barrier`` in execute (and in revert, if ``revert_barrier``)."""

    def __init__(self, name, log, barrier, revert_barrier=None, **kwargs):
        super().__init__(name, log, **kwargs)
        self._barrier = barrier
        self._revert_barrier = revert_barrier

    def execute(self, **kwargs):
        self._barrier.wait()  # BrokenBarrierError (a task failure) if nobody else comes
        return super().execute(**kwargs)

    def revert(self, *args, **kwargs):
        if self._revert_barrier is not None:
            self._revert_barrier.wait()
        return super().revert(*args, **kwargs)


def test_independent_atoms_run_at_the_same_time(parallel_kind):
    log = Log()
    barrier = make_barrier(4)
    flow = uf.Flow('u').add(*(Meeting('m%d' % i, log, barrier) for i in range(4)))
    engine = parallel_kind.load(flow)
    engine.run()
    assert sorted(log.names('execute')) == ['m0', 'm1', 'm2', 'm3']
    assert not barrier.broken


def test_independent_graph_branches_overlap_but_keep_their_order(parallel_kind):
    log = Log()
    barrier = make_barrier(2)
    flow = gf.Flow('g').add(
        Meeting('left1', log, barrier, provides='l'),
        Step('left2', log, requires=['l'], provides='l2'),
        Meeting('right1', log, barrier, provides='r'),
        Step('right2', log, requires=['r'], provides='r2'),
        Step('join', log, requires=['l2', 'r2']))
    parallel_kind.run(flow)
    order = log.names('execute')
    assert order.index('left1') < order.index('left2')
    assert order.index('right1') < order.index('right2')
    assert order[-1] == 'join'


def test_independent_reverts_run_at_the_same_time(parallel_kind):
    log = Log()
    run_barrier, revert_barrier = make_barrier(3), make_barrier(2)
    flow = lf.Flow('f').add(
        Step('first', log),
        uf.Flow('u').add(
            Meeting('a', log, run_barrier, revert_barrier=revert_barrier),
            Meeting('b', log, run_barrier, revert_barrier=revert_barrier),
            Meeting('boom', log, run_barrier, fail=ValueError('boom'))))
    engine = parallel_kind.load(flow)
    with pytest.raises(ValueError, match='boom'):
        engine.run()
    assert sorted(log.names('revert')) == ['a', 'b', 'boom', 'first']
    assert log.names('revert')[-1] == 'first'
    assert not revert_barrier.broken


def test_a_one_task_flow(parallel_kind):
    log = Log()
    assert parallel_kind.run(lf.Flow('f').add(Step('only', log, provides='x'))) == {'x': 'only'}
    assert log.names('execute') == ['only']


def test_tasks_run_on_worker_threads(kind):
    caller = threading.current_thread()
    threads = []
    lock = threading.Lock()

    class Where(Step):
        def execute(self, **kwargs):
            with lock:
                threads.append(threading.current_thread())
            return super().execute(**kwargs)

    kind.run(uf.Flow('u').add(Where('a', Log()), Where('b', Log())))
    if kind.parallel:
        assert all(thread is not caller for thread in threads)
    elif kind.run_async:   # the engine runs on a thread of its own, never the caller's loop
        assert threads[0] is threads[1] and threads[0] is not caller
    else:
        assert threads == [caller, caller]


def test_the_engine_owned_pool_is_shut_down_after_each_run():
    threads = []

    class Where(Step):
        def execute(self, **kwargs):
            threads.append(threading.current_thread())
            return super().execute(**kwargs)

    engine = taskflow.engines.load(uf.Flow('u').add(Where('a', Log()), Where('b', Log())),
                                   engine='parallel', max_workers=2)
    engine.run()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    engine.reset()
    engine.run()  # a new pool for the next run
    assert engine.storage.get_flow_state() == states.SUCCESS


def test_max_workers_bounds_how_many_atoms_overlap():
    running, peak = [0], [0]
    lock = threading.Lock()
    pairs = make_barrier(2)  # atoms can only pass two by two

    class Counted(Step):
        def execute(self, **kwargs):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                pairs.wait()
                return super().execute(**kwargs)
            finally:
                with lock:
                    running[0] -= 1

    log = Log()
    flow = uf.Flow('u').add(*(Counted('c%d' % i, log) for i in range(6)))
    taskflow.engines.run(flow, engine='parallel', max_workers=2)
    assert sorted(log.names('execute')) == ['c%d' % i for i in range(6)]
    assert peak[0] == 2


def test_a_user_executor_is_never_shut_down(shared_executor):
    log = Log()
    for round_ in range(3):
        flow = uf.Flow('u').add(Step('a%d' % round_, log), Step('b%d' % round_, log))
        taskflow.engines.run(flow, engine='parallel', executor=shared_executor)
        assert shared_executor.submit(len, 'abc').result(timeout=10) == 3
    assert len(log.names('execute')) == 6


def test_a_futurist_executor_runs_the_flow_and_stays_open():
    futurist = pytest.importorskip('futurist')
    log = Log()
    with futurist.ThreadPoolExecutor(max_workers=2) as pool:
        barrier = make_barrier(2)
        flow = uf.Flow('u').add(Meeting('a', log, barrier), Meeting('b', log, barrier))
        taskflow.engines.run(flow, engine='parallel', executor=pool)
        assert pool.submit(len, 'ab').result(timeout=10) == 2
    assert sorted(log.names('execute')) == ['a', 'b']


def test_two_engines_share_one_user_executor_at_the_same_time():
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        barrier = make_barrier(4)  # two atoms of each engine meet
        logs = [Log(), Log()]
        engines = [
            taskflow.engines.load(
                uf.Flow('u%d' % n).add(Meeting('a', logs[n], barrier),
                                       Meeting('b', logs[n], barrier)),
                engine='parallel', executor=pool)
            for n in range(2)]
        runners = [threading.Thread(target=e.run) for e in engines]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join(30)
        assert [e.storage.get_flow_state() for e in engines] == [states.SUCCESS] * 2
        assert not barrier.broken
        assert pool.submit(sum, [1, 2]).result(timeout=10) == 3


class FailsAfter(Step):
    """Fails once ``event`` is set (after another atom's failure was recorded)."""

    def __init__(self, name, log, event, **kwargs):
        super().__init__(name, log, fail=ValueError(name), **kwargs)
        self._event = event

    def execute(self, **kwargs):
        assert self._event.wait(30)
        return super().execute(**kwargs)


def test_a_failure_after_the_revert_began_is_raised_but_not_a_flow_failure(parallel_kind):
    """As the original: ``flow_failures`` (and ``get_failures()``) hold the
    failures that started the revert, not those of atoms already reverting."""
    log = Log()
    first_failed = threading.Event()
    flow = uf.Flow('u').add(Step('fast', log, fail=ValueError('fast')),
                            FailsAfter('slow', log, first_failed))
    engine = parallel_kind.load(flow)
    engine.atom_notifier.register(
        states.FAILURE, lambda state, details: first_failed.set()
        if details['task_name'] == 'fast' else None)
    with pytest.raises(exc.WrappedFailure) as info:
        engine.run()
    assert sorted(str(f) for f in info.value) == ['Failure: ValueError: fast',
                                                  'Failure: ValueError: slow']
    assert list(log.last('revert', 'slow')['flow_failures']) == ['fast']
    assert list(engine.storage.get_failures()) == ['fast']
    assert engine.storage.get_atom_state('slow') == states.REVERTED
