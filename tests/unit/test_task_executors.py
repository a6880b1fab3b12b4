"""``taskflow.engines.action_engine.executor``: the original's executor classes."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest

import taskflow.engines
from taskflow import retry
from taskflow import task
from taskflow.engines.action_engine import executor
from taskflow.patterns import unordered_flow as uf
from taskflow.types import failure


class Doubler(task.Task):
    def __init__(self, name, calls):
        super().__init__(name)
        self.calls = calls

    def pre_execute(self):
        self.calls.append('pre_execute')

    def execute(self, x):
        self.calls.append('execute %s on %s' % (x, threading.current_thread().name))
        self.update_progress(0.25)
        return x * 2

    def post_execute(self):
        self.calls.append('post_execute')

    def pre_revert(self):
        self.calls.append('pre_revert')

    def revert(self, x, result, flow_failures):
        self.calls.append('revert %s %s %s' % (x, result, flow_failures))
        self.update_progress(0.75)
        return 'undone'

    def post_revert(self):
        self.calls.append('post_revert')


class BrokenPre(Doubler):
    def pre_execute(self):
        raise KeyError('pre')


class BrokenPost(Doubler):
    def post_execute(self):
        raise KeyError('post')


def test_serial_executor_runs_in_the_calling_thread():
    calls, progress = [], []
    serial = executor.SerialTaskExecutor()
    serial.start()
    doubler = Doubler('d', calls)

    def on_progress(event_type, details):
        progress.append((event_type, details))
    future = serial.execute_task(doubler, 'uuid', {'x': 2}, progress_callback=on_progress)
    assert future.done() and future.result() == (executor.EXECUTED, 4)
    assert calls == ['pre_execute', 'execute 2 on %s' % threading.current_thread().name,
                     'post_execute']
    assert progress == [('update_progress', {'progress': 0.25})]
    assert not doubler.notifier.is_registered('update_progress', on_progress)
    calls.clear()
    progress.clear()
    future = serial.revert_task(doubler, 'uuid', {'x': 2}, 4, {'d': 'f'},
                                progress_callback=on_progress)
    assert future.result() == (executor.REVERTED, 'undone')
    assert calls == ['pre_revert', "revert 2 4 {'d': 'f'}", 'post_revert']
    assert progress == [('update_progress', {'progress': 0.75})]
    serial.stop()
    with pytest.raises(RuntimeError, match='^Can not schedule new futures after being'
                                           ' shutdown$'):
        serial.execute_task(doubler, 'uuid', {'x': 2})
    serial.start()
    assert serial.execute_task(doubler, 'uuid', {'x': 3}).result() == ('executed', 6)


def test_exceptions_become_failure_results():
    calls = []
    serial = executor.SerialTaskExecutor()
    kind, result = serial.execute_task(BrokenPre('p', calls), 'u', {'x': 1}).result()
    assert kind == 'executed' and isinstance(result, failure.Failure)
    assert str(result) == "Failure: KeyError: 'pre'" and calls == ['post_execute']
    kind, result = serial.execute_task(Doubler('m', calls), 'u', {}).result()
    assert result.check(TypeError) is TypeError
    kind, result = serial.revert_task(Doubler('m', calls), 'u', {}, None, {}).result()
    assert kind == 'reverted' and result.check(TypeError) is TypeError
    with pytest.raises(KeyError, match='post'):
        serial.execute_task(BrokenPost('q', calls), 'u', {'x': 1}).result()


def test_retry_executor():
    retries = executor.SerialRetryExecutor()
    retries.start()
    history = retry.History([(5, {})])
    assert retries.execute_retry(retry.ForEach([5, 6]), {'history': history}).result() == (
        'executed', 6)
    assert retries.revert_retry(retry.Times(2), {'history': history}).result() == (
        'reverted', None)

    class Broken(retry.Times):
        def execute(self, history):
            raise ValueError('r')
    kind, result = retries.execute_retry(Broken(2), {'history': history}).result()
    assert kind == 'executed' and str(result) == 'Failure: ValueError: r'
    retries.stop()
    with pytest.raises(RuntimeError, match='after being shutdown'):
        retries.execute_retry(retry.Times(2), {'history': history})


def test_parallel_executor_owns_the_pool_it_makes():
    calls = []
    parallel = executor.ParallelThreadTaskExecutor(max_workers=2)
    with pytest.raises(AttributeError):
        parallel.execute_task(Doubler('d', calls), 'u', {'x': 1})   # not started
    parallel.start()
    futures = [parallel.execute_task(Doubler('d%d' % i, calls), 'u', {'x': i})
               for i in range(6)]
    assert [f.result(timeout=10) for f in futures] == [('executed', 2 * i) for i in range(6)]
    assert not any(threading.current_thread().name in c for c in calls if 'execute' in c)
    pool = parallel._executor
    parallel.stop()
    assert parallel._executor is None
    with pytest.raises(RuntimeError):
        pool.submit(len, 'x')    # shut down


def test_parallel_executor_never_shuts_down_a_given_pool():
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        parallel = executor.ParallelThreadTaskExecutor(executor=pool)
        assert (parallel._own_executor, parallel._max_workers) == (False, None)
        parallel.start()
        assert parallel.execute_task(Doubler('d', []), 'u', {'x': 3}).result() == (
            'executed', 6)
        parallel.stop()
        assert pool.submit(len, 'ab').result() == 2


def test_class_hierarchy_and_options():
    assert issubclass(executor.ParallelGreenThreadTaskExecutor,
                      executor.ParallelThreadTaskExecutor)
    assert issubclass(executor.ParallelThreadTaskExecutor, executor.ParallelTaskExecutor)
    assert issubclass(executor.SerialTaskExecutor, executor.TaskExecutor)
    assert executor.ParallelGreenThreadTaskExecutor.DEFAULT_WORKERS == 1000
    with pytest.raises(TypeError):
        executor.ParallelTaskExecutor()     # abstract: no _create_executor
    [(name, convert)] = executor.ParallelTaskExecutor.constructor_options
    assert (name, convert('5'), convert(None)) == ('max_workers', 5, None)
    assert executor.ParallelThreadTaskExecutor(max_workers='4')._max_workers == '4'


class _Overlap(task.Task):
    """Notes how many of its kind run at once, and in which thread."""

    lock = threading.Lock()
    running = 0
    peak = 0
    threads: set = set()

    def execute(self):
        cls = type(self)
        with cls.lock:
            cls.running += 1
            cls.peak = max(cls.peak, cls.running)
            cls.threads.add(threading.current_thread().name)
        time.sleep(0.05)
        with cls.lock:
            cls.running -= 1
        return self.name


def _overlap_class():
    return type('Overlap', (_Overlap,), {'lock': threading.Lock(), 'running': 0,
                                         'peak': 0, 'threads': set()})


def _run_wide(executor_option, width=6, **options):
    cls = _overlap_class()
    flow = uf.Flow('wide').add(*[cls('t%d' % i) for i in range(width)])
    engine = taskflow.engines.load(flow, engine='parallel', executor=executor_option,
                                   **options)
    engine.run()
    assert [engine.storage.get_atom_state('t%d' % i) for i in range(width)] == ['SUCCESS'] * width
    return cls


def test_a_thread_task_executor_runs_the_parallel_engine_within_its_max_workers():
    # Beyond the original (which raises TypeError): the executor stands for its pool.
    ran = _run_wide(executor.ParallelThreadTaskExecutor(max_workers=2))
    assert ran.peak == 2
    assert threading.current_thread().name not in ran.threads


def test_a_thread_task_executor_without_max_workers_takes_the_engines():
    ran = _run_wide(executor.ParallelThreadTaskExecutor(), max_workers=3)
    assert ran.peak == 3


def test_a_serial_task_executor_runs_atoms_one_at_a_time_in_the_engines_thread():
    ran = _run_wide(executor.SerialTaskExecutor())
    assert ran.peak == 1
    assert ran.threads == {threading.current_thread().name}


def test_a_task_executor_given_a_pool_runs_on_it_and_never_shuts_it_down():
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix='given-pool')
    ran = _run_wide(executor.ParallelThreadTaskExecutor(executor=pool))
    assert ran.peak <= 2 and all(name.startswith('given-pool') for name in ran.threads)
    assert pool.submit(len, 'abc').result() == 3  # still usable
    pool.shutdown()


def test_a_subclass_with_its_own_pool_is_used():
    made = []

    class Counted(executor.ParallelThreadTaskExecutor):
        def _create_executor(self, max_workers=None):
            made.append(max_workers)
            return concurrent.futures.ThreadPoolExecutor(max_workers=max_workers)

    ran = _run_wide(Counted(max_workers=2))
    assert made == [2] and ran.peak <= 2


@pytest.mark.parametrize('make', [executor.SerialRetryExecutor, object])
def test_what_stands_for_no_pool_is_refused_as_an_engine_executor_option(make):
    class Noop(task.Task):
        def execute(self):
            pass
    with pytest.raises(TypeError, match="^Unknown executor '<.*%s object at " % make.__name__):
        taskflow.engines.load(uf.Flow('u').add(Noop('a')), engine='parallel',
                              executor=make())
