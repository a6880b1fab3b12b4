"""``async def`` atoms: everything a plain atom does, awaited on one event loop per run.

The rest of the behaviour suite also runs with async atoms (the ``-async``
and ``-run_async`` kinds); these tests cover what only coroutines have.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading

import pytest

import taskflow.engines
from taskflow import exceptions as exc
from taskflow import retry
from taskflow import states
from taskflow import task
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from tests.engines.helpers import Log, Step, atom_events, events_of


class Add(task.Task):
    """``x + y``, awaited; records the running loop of every call."""

    loops: list

    def __init__(self, *args, loops=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.loops = loops if loops is not None else []

    async def execute(self, x, y=10):
        self.loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return x + y


class Parts(task.Task):
    default_provides = ('low', 'high')

    async def execute(self, value):
        await asyncio.sleep(0)
        return value - 1, value + 1


def test_coroutine_signatures_drive_inference_provides_rebind_and_inject(kind):
    flow = lf.Flow('f').add(
        Add('plain', provides='a'),                          # x from storage, y default
        Add('rebound', rebind={'x': 'a'}, provides='b'),     # x <- a
        Add('injected', inject={'y': 1}, rebind=['b'], provides='c'),
        Parts('parts', rebind={'value': 'c'}))
    engine = kind.load(flow, store={'x': 1})
    assert sorted(Add('probe').requires) == ['x']
    assert sorted(Add('probe').optional) == ['y']
    engine.run()
    assert engine.storage.fetch_all() == {'x': 1, 'a': 11, 'b': 21, 'c': 22,
                                          'low': 21, 'high': 23}


def test_a_functor_task_of_a_coroutine_function_is_awaited(kind):
    async def double(n):
        await asyncio.sleep(0)
        return n * 2

    undone = []

    async def undo(n, **kwargs):
        await asyncio.sleep(0)
        undone.append((n, kwargs['result']))

    flow = lf.Flow('f').add(task.FunctorTask(double, provides='d', revert=undo),
                            Step('boom', Log(), fail=ValueError('boom')))
    engine = kind.load(flow, store={'n': 21})
    with pytest.raises(ValueError):
        engine.run()
    assert undone == [(21, 42)]
    assert kind.run(task.FunctorTask(double, provides='d'), store={'n': 4})['d'] == 8


def test_one_event_loop_runs_every_coroutine_of_a_run(kind):
    loops: list = []
    flow = uf.Flow('u').add(*(Add('a%d' % i, loops=loops, provides='r%d' % i)
                              for i in range(6)))
    engine = kind.load(flow, store={'x': 0})
    engine.run()
    assert len(loops) == 6 and len({id(loop) for loop in loops}) == 1
    if not kind.run_async:   # (run_async(): the caller's loop, see test_run_async.py)
        assert loops[0].is_closed()   # the engine's own loop ends with the run
    first = loops[0]
    engine.reset()
    loops.clear()
    engine.run()
    assert len({id(loop) for loop in loops}) == 1
    if not kind.run_async:
        assert loops[0] is not first   # a run's loop ends with it


def test_a_flow_without_coroutines_never_imports_asyncio():
    program = textwrap.dedent('''
        import sys
        import taskflow.engines
        from taskflow import task
        from taskflow.patterns import unordered_flow as uf

        class T(task.Task):
            def execute(self):
                return 1

        for kind in ('serial', 'parallel'):
            taskflow.engines.run(uf.Flow('u').add(T('a'), T('b')), engine=kind)
        print('asyncio' in sys.modules)
    ''')
    out = subprocess.run([sys.executable, '-c', program], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() == 'False'


class Gate(task.Task):
    """Waits (awaiting) until ``expected`` coroutines are inside at once."""

    def __init__(self, name, state, expected, **kwargs):
        super().__init__(name=name, **kwargs)
        self.state = state
        self.expected = expected

    async def execute(self):
        state = self.state
        state['inside'] += 1
        state['peak'] = max(state['peak'], state['inside'])
        state['threads'].add(threading.get_ident())
        try:
            while state['peak'] < self.expected:
                await asyncio.sleep(0.001)
        finally:
            state['inside'] -= 1
        return state['peak']


def _gate_state():
    return {'inside': 0, 'peak': 0, 'threads': set()}


def test_ready_coroutines_run_together_on_the_loop_not_a_thread_each(parallel_kind):
    state = _gate_state()
    flow = uf.Flow('u').add(*(Gate('g%d' % i, state, 300) for i in range(300)))
    engine = parallel_kind.load(flow, max_workers=2, timeout=None)
    before = threading.active_count()
    engine.run(timeout=30)
    assert state['peak'] == 300
    assert len(state['threads']) == 1     # every coroutine ran on the one loop thread
    assert threading.active_count() <= before + 1


def test_async_concurrency_bounds_how_many_coroutines_run_at_once(parallel_kind):
    state = _gate_state()
    flow = uf.Flow('u').add(*(Gate('g%d' % i, state, 5) for i in range(40)))
    parallel_kind.load(flow, async_concurrency=5).run()
    assert state['peak'] == 5


def test_the_serial_engine_awaits_one_coroutine_at_a_time():
    state = _gate_state()
    flow = uf.Flow('u').add(*(Gate('g%d' % i, state, 1) for i in range(5)))
    taskflow.engines.run(flow, engine='serial')
    assert state['peak'] == 1


@pytest.mark.parametrize('value', [0, -3, 2.5, 'many', True])
def test_async_concurrency_must_be_a_positive_integer(value):
    with pytest.raises(ValueError, match="'async_concurrency' must be a positive integer"):
        taskflow.engines.load(Add('a'), engine='parallel', async_concurrency=value)


class Reporting(task.Task):
    async def execute(self):
        for value in (0.25, 0.5):
            await asyncio.sleep(0)
            self.update_progress(value)
        return 'done'


def test_update_progress_from_a_coroutine_is_stored_and_notified(kind):
    reporter = Reporting(name='reporting')
    heard = []
    reporter.notifier.register(task.EVENT_UPDATE_PROGRESS,
                               lambda event, details: heard.append(details['progress']))
    stored = []
    engine = kind.load(lf.Flow('f').add(reporter))
    real = getattr(engine, 'wrapped_engine', engine)
    save = real.storage.set_task_progress

    def recording(name, progress, details=None):
        stored.append(progress)
        return save(name, progress, details)
    real.storage.set_task_progress = recording
    engine.atom_notifier.register(states.SUCCESS, lambda state, details: stored.append(state))
    engine.run()
    assert heard == [0.0, 0.25, 0.5, 1.0]
    assert stored == [0.25, 0.5, states.SUCCESS]   # stored before the task is recorded done
    assert engine.storage.get_task_progress('reporting') == 1.0


class Boom(task.Task):
    async def execute(self, **kwargs):
        await asyncio.sleep(0)
        raise RuntimeError('boom')


class Undoable(task.Task):
    def __init__(self, name, log, **kwargs):
        super().__init__(name=name, **kwargs)
        self.log = log

    async def execute(self):
        await asyncio.sleep(0.001)
        self.log.record('execute', self.name)
        return self.name

    async def revert(self, result, flow_failures, **kwargs):
        await asyncio.sleep(0)
        self.log.record('revert', self.name, result=result,
                        failures=sorted(flow_failures))


def test_mixed_sync_and_async_atoms_revert_in_reverse_order(kind):
    log = Log()
    flow = lf.Flow('f').add(
        Undoable('a1', log), Step('s1', log, requires=[]),
        gf.Flow('g').add(Undoable('a2', log, provides='p'), Step('s2', log, requires=['p']),
                         Boom('boom', requires=['p'])))
    engine = kind.load(flow)
    seen = atom_events(engine)
    with pytest.raises(RuntimeError, match='boom'):
        engine.run()
    reverted = log.names('revert')
    # s2 started with boom (both waited for a2 only), so it ran and reverts first.
    assert sorted(reverted) == ['a1', 'a2', 's1', 's2']
    assert reverted.index('s2') < reverted.index('a2') < reverted.index('s1')
    assert reverted[-1] == 'a1'
    assert log.last('revert', 'a1') == {'result': 'a1', 'failures': ['boom']}
    assert events_of(seen, 'boom') == [(states.RUNNING, states.PENDING),
                                       (states.FAILURE, states.RUNNING),
                                       (states.REVERTING, states.FAILURE),
                                       (states.REVERTED, states.REVERTING)]
    assert engine.storage.get_flow_state() == states.REVERTED


class AsyncTimes(retry.Times):
    """``retry.Times`` with coroutine execute/revert/on_failure."""

    def __init__(self, *args, log, **kwargs):
        super().__init__(*args, **kwargs)
        self.log = log

    async def execute(self, history, *args, **kwargs):
        await asyncio.sleep(0)
        self.log.record('execute', self.name)
        return len(history) + 1

    async def revert(self, history, *args, **kwargs):
        await asyncio.sleep(0)
        self.log.record('revert', self.name)

    async def on_failure(self, history, *args, **kwargs):
        await asyncio.sleep(0)
        self.log.record('on_failure', self.name, attempts=len(history))
        return super().on_failure(history, *args, **kwargs)


class FailsUntil(task.Task):
    def __init__(self, name, log, until, **kwargs):
        super().__init__(name=name, **kwargs)
        self.log = log
        self.until = until

    async def execute(self, attempt):
        await asyncio.sleep(0)
        self.log.record('execute', self.name, attempt=attempt)
        if attempt < self.until:
            raise ValueError('attempt %d' % attempt)
        return attempt

    async def revert(self, attempt, **kwargs):
        self.log.record('revert', self.name, attempt=attempt)


def test_a_coroutine_retry_re_runs_its_subflow_then_succeeds(kind):
    log = Log()
    flow = lf.Flow('f', retry=AsyncTimes(5, name='r', provides='attempt', log=log)).add(
        FailsUntil('flaky', log, until=3, provides='value'))
    engine = kind.load(flow)
    engine.run()
    assert engine.storage.fetch('value') == 3
    assert log.names('execute') == ['r', 'flaky', 'r', 'flaky', 'r', 'flaky']
    assert [d['attempts'] for a, n, d in log.details if a == 'on_failure'] == [1, 2]
    assert log.names('revert') == ['flaky', 'flaky']


def test_an_exhausted_coroutine_retry_reverts_itself_and_the_flow(kind):
    log = Log()
    flow = lf.Flow('f', retry=AsyncTimes(2, name='r', provides='attempt', log=log)).add(
        FailsUntil('flaky', log, until=9))
    engine = kind.load(flow)
    with pytest.raises(ValueError, match='attempt 2'):
        engine.run()
    assert log.names('revert') == ['flaky', 'flaky', 'r']
    assert engine.storage.get_flow_state() == states.REVERTED


class Ticker(task.Task):
    """Counts its awaits until ``stop`` is set (a branch running beside a back-off)."""

    def __init__(self, name, stop, **kwargs):
        super().__init__(name=name, **kwargs)
        self.stop = stop

    async def execute(self):
        ticks = 0
        while not self.stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)
        return ticks


class Flaky(task.Task):
    def __init__(self, name, stop, **kwargs):
        super().__init__(name=name, **kwargs)
        self.stop = stop
        self.runs = 0

    async def execute(self):
        self.runs += 1
        if self.runs == 1:
            raise ValueError('first run')
        self.stop.set()


def test_a_retry_back_off_does_not_block_other_coroutines(parallel_kind):
    from taskflow import delays
    stop = threading.Event()
    flow = uf.Flow('u').add(
        Ticker('ticker', stop, provides='ticks'),
        lf.Flow('backing-off', retry=retry.Times(2, delay=delays.fixed(0.3))).add(
            Flaky('flaky', stop)))
    results = parallel_kind.run(flow)
    # The ticker kept awaiting (every 5 ms) through the 0.3 s back-off.
    assert results['ticks'] >= 10


class Exits(task.Task):
    async def execute(self):
        await asyncio.sleep(0)
        raise KeyboardInterrupt()


def test_a_base_exception_from_a_coroutine_propagates_like_from_a_thread(kind):
    engine = kind.load(lf.Flow('f').add(Exits('exits')))
    with pytest.raises(KeyboardInterrupt):
        engine.run()
    # Like a crash: the atom is left RUNNING and a new run executes it again.
    assert engine.storage.get_atom_state('exits') == states.RUNNING


def test_a_blocking_run_from_code_an_event_loop_runs(kind):
    async def main():
        # Blocking the caller's loop is the caller's choice; it must still work.
        return kind.run(lf.Flow('f').add(Add('a', provides='r')), store={'x': 1})

    if kind.run_async:
        pytest.skip('asyncio.run() inside a running loop: run() is the blocking call here')
    assert asyncio.run(main())['r'] == 11


def test_an_async_task_that_returns_a_failure_fails():
    from taskflow.types import failure

    class ReturnsFailure(task.Task):
        async def execute(self):
            return failure.Failure.from_exception(ValueError('returned'))

    with pytest.raises(ValueError, match='returned'):
        taskflow.engines.run(ReturnsFailure(name='rf'))


def test_no_task_was_left_pending_on_a_closed_loop(kind, recwarn):
    flow = uf.Flow('u').add(*(Add('a%d' % i, provides='r%d' % i) for i in range(20)))
    kind.run(flow, store={'x': 0})
    import gc
    gc.collect()
    assert not [w for w in recwarn if 'was never awaited' in str(w.message)
                or 'destroyed but it is pending' in str(w.message)]


def test_missing_arguments_of_a_coroutine_are_named():
    with pytest.raises(exc.MissingDependencies, match="'x'"):
        taskflow.engines.run(Add('needs-x'))


class AsyncCallable:
    async def __call__(self, n):
        await asyncio.sleep(0)
        return n + 100


def test_functors_of_partials_and_async_callable_objects_are_awaited():
    import functools

    async def scale(n, factor):
        await asyncio.sleep(0)
        return n * factor

    flow = uf.Flow('u').add(
        task.FunctorTask(functools.partial(scale, factor=3), name='partial', provides='p'),
        task.FunctorTask(AsyncCallable(), name='object', provides='o'))
    assert taskflow.engines.run(flow, engine='parallel', store={'n': 2}) == {
        'n': 2, 'p': 6, 'o': 102}
