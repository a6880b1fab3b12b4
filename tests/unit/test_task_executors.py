"""``taskflow.engines.action_engine.executor``: the original's executor classes."""

from __future__ import annotations

import concurrent.futures
import threading

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


@pytest.mark.parametrize('make', [executor.ParallelThreadTaskExecutor,
                                  executor.SerialTaskExecutor,
                                  executor.SerialRetryExecutor])
def test_not_an_engine_executor_option(make):
    # As in the original 6.5.0: the parallel engine takes concurrent.futures
    # executors (or their names), not these classes.
    class Noop(task.Task):
        def execute(self):
            pass
    with pytest.raises(TypeError, match="^Unknown executor '<taskflow.engines.action_engine"
                                        ".executor.%s object at " % make.__name__):
        taskflow.engines.load(uf.Flow('u').add(Noop('a')), engine='parallel',
                              executor=make())
