"""The collector's first threshold is raised while a run lasts, then restored
(``taskflow/_gc.py``): whatever way the run ends, with runs overlapping in
threads, and never over a setting of the program's."""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest

from taskflow import _gc
from taskflow import engines
from taskflow import task
from taskflow.patterns import linear_flow
from taskflow.patterns import unordered_flow


@pytest.fixture(autouse=True)
def default_thresholds():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


class Seen(task.Task):
    """Records the collector's thresholds while it runs."""

    def __init__(self, name, seen):
        super().__init__(name=name)
        self.seen = seen

    def execute(self):
        self.seen.append(gc.get_threshold())


class AsyncSeen(Seen):
    async def execute(self):
        await asyncio.sleep(0)
        self.seen.append(gc.get_threshold())


class Fails(task.Task):
    def execute(self):
        raise RuntimeError('boom')


class Interrupts(task.Task):
    def execute(self):
        raise KeyboardInterrupt


@pytest.mark.parametrize('engine', ['serial', 'parallel'])
@pytest.mark.parametrize('cls', [Seen, AsyncSeen])
def test_raised_during_run_restored_after(engine, cls):
    seen = []
    flow = unordered_flow.Flow('f').add(cls('a', seen), cls('b', seen))
    engines.run(flow, engine=engine)
    assert seen == [(_gc.RUN_THRESHOLD, 10, 10)] * 2
    assert gc.get_threshold() == (700, 10, 10)


def test_raised_during_run_async_restored_after():
    seen = []
    engine = engines.load(linear_flow.Flow('f').add(AsyncSeen('a', seen), Seen('b', seen)))
    asyncio.run(engine.run_async())
    assert seen == [(_gc.RUN_THRESHOLD, 10, 10)] * 2
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.parametrize('engine', ['serial', 'parallel'])
def test_restored_when_the_run_raises(engine):
    flow = linear_flow.Flow('f').add(Seen('a', []), Fails('b'))
    with pytest.raises(RuntimeError, match='boom'):
        engines.run(flow, engine=engine)
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_when_a_base_exception_escapes():
    with pytest.raises(KeyboardInterrupt):
        engines.run(linear_flow.Flow('f').add(Interrupts('a')))
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_when_run_async_raises():
    engine = engines.load(linear_flow.Flow('f').add(Fails('a')))
    with pytest.raises(RuntimeError, match='boom'):
        asyncio.run(engine.run_async())
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_or_disabling_threshold_of_the_program_is_left_alone():
    for setting in [(50_000, 20, 20), (0, 10, 10)]:
        gc.set_threshold(*setting)
        seen = []
        engines.run(linear_flow.Flow('f').add(Seen('a', seen)))
        assert seen == [setting]
        assert gc.get_threshold() == setting


def test_a_change_of_the_program_during_the_run_wins():
    class Changes(task.Task):
        def execute(self):
            gc.set_threshold(1234, 5, 5)

    engines.run(linear_flow.Flow('f').add(Changes('a')))
    assert gc.get_threshold() == (1234, 5, 5)


def test_overlapping_runs_in_threads_restore_once_the_last_ends():
    first_running, release_first = threading.Event(), threading.Event()
    seen = []

    class Blocks(task.Task):
        def execute(self):
            first_running.set()
            release_first.wait(10)

    errors = []

    def run_first():
        try:
            engines.run(linear_flow.Flow('first').add(Blocks('a')))
        except BaseException as error:   # reported below
            errors.append(error)

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert first_running.wait(10)
        engines.run(linear_flow.Flow('second').add(Seen('b', seen)))
        # The second run ended while the first still runs: still raised.
        assert gc.get_threshold() == (_gc.RUN_THRESHOLD, 10, 10)
    finally:
        release_first.set()
        thread.join(10)
    assert not errors
    assert seen == [(_gc.RUN_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)
