"""Per-task timeouts (taskflow-ng extension): overruns fail the task, never hang the engine."""

from __future__ import annotations

import threading
from concurrent import futures

import pytest

from taskflow import engines
from taskflow import exceptions as exc
from taskflow import retry
from taskflow import states
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf

ENGINE_KINDS = ['serial', 'parallel']


class Blocks(task.Task):
    """Blocks until released (or 30 s), so overruns never depend on timing luck."""

    def __init__(self, name, release, **kwargs):
        super().__init__(name=name, **kwargs)
        self.release = release

    def execute(self):
        self.release.wait(30)
        return 'late'


class Quick(task.Task):
    def execute(self):
        return self.name

    def revert(self, **kwargs):
        pass


@pytest.fixture
def release():
    event = threading.Event()
    yield event
    event.set()   # let abandoned threads end


@pytest.mark.parametrize('kind', ENGINE_KINDS)
def test_overrunning_task_fails_with_atom_timeout_and_is_reverted(kind, release):
    flow = lf.Flow('t').add(Quick('before'), Blocks('stuck', release, timeout=0.2))
    engine = engines.load(flow, engine=kind)
    with pytest.raises(exc.AtomTimeout) as info:
        engine.run()
    assert isinstance(info.value, TimeoutError)
    assert str(info.value).startswith("Task 'stuck' did not finish execute within 0.2 seconds")
    storage = engine.storage
    assert storage.get_flow_state() == states.REVERTED
    assert storage.get_atom_state('stuck') == states.REVERTED
    assert storage.get_atom_state('before') == states.REVERTED
    assert storage.get('stuck').check(exc.AtomTimeout)


@pytest.mark.parametrize('kind', ENGINE_KINDS)
def test_engine_wide_default_and_retry_handle_timeouts(kind, release):
    attempts = []

    class SlowThenFast(task.Task):
        def execute(self, attempt):
            attempts.append(attempt)
            if attempt == 1:
                release.wait(30)
            return attempt

    flow = lf.Flow('r', retry=retry.Times(2, provides='attempt')).add(SlowThenFast('s'))
    engine = engines.load(flow, engine=kind, task_timeout=0.2)
    engine.run()
    assert attempts == [1, 2]
    assert engine.storage.get('s') == 2


def test_late_result_of_an_abandoned_task_is_dropped(release):
    flow = uf.Flow('u').add(Blocks('stuck', release, timeout=0.1), Quick('other'))
    with futures.ThreadPoolExecutor(2) as pool:
        engine = engines.load(flow, engine='parallel', executor=pool)
        with pytest.raises(exc.AtomTimeout):
            engine.run()
        release.set()
        pool.submit(lambda: None).result(10)   # the user's pool still works
    assert engine.storage.get_atom_state('stuck') == states.REVERTED


@pytest.mark.parametrize('value', [0, -1, 'soon', True])
def test_bad_engine_timeout_option_names_the_option(value):
    with pytest.raises(ValueError) as info:
        engines.load(lf.Flow('f').add(Quick('q')), task_timeout=value)
    assert "Engine option 'task_timeout' must be a positive number of seconds" in str(info.value)
