"""The random-flow properties again, with ``async def`` atoms mixed in.

Flows, failures and retries are generated as in ``test_random_flows`` (and
checked against the same models); here a random subset of the atoms are
coroutines, and runs may go through ``await engine.run_async()``.  One more
property: a run suspended -- or whose ``run_async()`` is cancelled -- at a
random point resumes, in a new engine over the stored flow detail, to the
same end, every atom completing exactly once and after its predecessors.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

import taskflow.engines
from taskflow import exceptions as exc
from taskflow import retry
from taskflow import states
from taskflow.persistence import backends
from taskflow.persistence import models
from taskflow.utils import persistence_utils
from tests.property.test_random_flows import (
    SETTINGS, AtomSpec, InjectedError, Log, Recorded, atoms_of, build, dag_flows,
    engine_options, failing_dag_flows, flatten, must_precede, predict, retry_flows)

# (engine kind, how it is run)
DRIVES = [(kind, drive) for kind in ('serial', 'parallel', 'parallel-executor')
          for drive in ('run', 'run_async')]


class AsyncRecorded(Recorded):
    """:class:`Recorded`, as coroutines that await before doing the same."""

    async def execute(self, **kwargs):
        await asyncio.sleep(0)
        return super().execute(**kwargs)

    async def revert(self, *args, **kwargs):
        await asyncio.sleep(0)
        return super().revert(*args, **kwargs)


def make_atom(spec: AtomSpec, coroutines: set, log: Log, **kwargs):
    cls = AsyncRecorded if spec.name in coroutines else Recorded
    return cls(spec, log, **kwargs)


def run(engine, drive: str) -> None:
    if drive == 'run_async':
        asyncio.run(engine.run_async())
    else:
        engine.run()


def coroutine_names(spec) -> st.SearchStrategy:
    names = [atom.name for atom in atoms_of(spec)]
    return st.sets(st.sampled_from(names)) if names else st.just(set())


# -- every atom once, in a valid order ---------------------------------------------------


@SETTINGS
@given(data=st.data(), spec=dag_flows(), drive=st.sampled_from(DRIVES))
def test_mixed_atoms_each_run_once_after_their_predecessors(data, spec, drive):
    coroutines = data.draw(coroutine_names(spec))
    log = Log()
    flow = build(spec, lambda a: make_atom(a, coroutines, log))
    engine = taskflow.engines.load(flow, **engine_options(drive[0]))
    run(engine, drive[1])
    names = [a.name for a in atoms_of(spec)]
    assert sorted(log.names('execute')) == sorted(names)
    for before, after in must_precede(spec):
        assert log.position('execute', before) < log.position('execute', after)
    assert engine.storage.get_flow_state() == states.SUCCESS


# -- a failure reverts exactly the completed atoms, dependants first ------------------------


@SETTINGS
@given(data=st.data(), case=failing_dag_flows(), drive=st.sampled_from(DRIVES))
def test_a_failure_among_mixed_atoms_reverts_what_completed_in_reverse_order(data, case,
                                                                             drive):
    spec, failing = case
    coroutines = data.draw(coroutine_names(spec))
    log = Log()
    errors: dict = {}
    flow = build(spec, lambda a: make_atom(a, coroutines, log, errors=errors,
                                           fail_on={1} if a.name == failing else ()))
    engine = taskflow.engines.load(flow, **engine_options(drive[0]))
    with pytest.raises(InjectedError) as info:
        run(engine, drive[1])
    assert info.value is errors[failing, 1]
    executed, reverted = log.names('execute'), log.names('revert')
    assert len(executed) == len(set(executed))
    assert sorted(reverted) == sorted(executed)
    for before, after in must_precede(spec):
        if before in reverted and after in reverted:
            assert log.position('revert', after) < log.position('revert', before)
        assert not (before == failing and after in executed)
    assert engine.storage.get_flow_state() == states.REVERTED


# -- retries (coroutine retries too) re-run what the model predicts ---------------------------


def async_logged_retry(spec, log: Log):
    base = retry.Times if spec.kind == 'times' else retry.ForEach

    class AsyncLogged(base):
        async def execute(self, history, *args, **kwargs):
            await asyncio.sleep(0)
            log.record('execute', self.name)
            return base.execute(self, history, *args, **kwargs)

        async def revert(self, history, *args, **kwargs):
            await asyncio.sleep(0)
            log.record('revert', self.name)

        async def on_failure(self, history, *args, **kwargs):
            await asyncio.sleep(0)
            return base.on_failure(self, history, *args, **kwargs)

    if spec.kind == 'times':
        return AsyncLogged(spec.attempts, name=spec.name, revert_all=spec.revert_all)
    return AsyncLogged(list(range(spec.attempts)), name=spec.name, revert_all=spec.revert_all)


@SETTINGS
@given(data=st.data(), case=retry_flows(), drive=st.sampled_from(DRIVES))
def test_coroutine_retries_rerun_and_revert_what_the_algorithm_predicts(data, case, drive):
    spec, fail_on, retries, defer_reverts = case
    coroutines = data.draw(coroutine_names(spec))
    log = Log()
    errors: dict = {}
    flow = build(spec,
                 lambda a: make_atom(a, coroutines, log, fail_on=fail_on[a.name],
                                     errors=errors),
                 lambda f: async_logged_retry(retries[f.name], log)
                 if f.name in retries else None)
    engine = taskflow.engines.load(flow, defer_reverts=defer_reverts,
                                   **engine_options(drive[0]))
    executions, reverts, final, failures = predict(flatten(spec, retries, fail_on),
                                                   defer_reverts)
    if not failures:
        run(engine, drive[1])
    elif len(failures) == 1:
        with pytest.raises(InjectedError) as info:
            run(engine, drive[1])
        assert info.value is errors[failures.pop()]
    else:
        with pytest.raises(exc.WrappedFailure):
            run(engine, drive[1])
    assert Counter(log.names('execute')) == executions
    assert Counter(log.names('revert')) == reverts
    assert engine.storage.get_flow_state() == final


# -- stopped anywhere, resumed to the same end ---------------------------------------------------


class Timed(Recorded):
    """Records 'start' and 'done' around a short piece of work."""

    def execute(self, **kwargs):
        self._log.record('start', self.name)
        result = super().execute(**kwargs)
        self._log.record('done', self.name)
        return result


class AsyncTimed(Recorded):
    async def execute(self, **kwargs):
        self._log.record('start', self.name)
        await asyncio.sleep(0.002)
        result = super().execute(**kwargs)
        self._log.record('done', self.name)
        return result


class Stopper:
    """Stops the run once ``after`` atoms succeeded: ``suspend()``, or
    cancelling the task that awaits ``run_async()``."""

    def __init__(self, engine, after: int, how: str) -> None:
        self.engine = engine
        self.after = after
        self.how = how
        self.count = 0
        self.lock = threading.Lock()
        self.job: asyncio.Future | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        engine.atom_notifier.register(states.SUCCESS, self.on_success)

    def on_success(self, state, details):
        with self.lock:
            self.count += 1
            if self.count != self.after:
                return
        if self.how == 'suspend':
            self.engine.suspend()
        else:
            self.loop.call_soon_threadsafe(self.job.cancel)

    def run(self) -> None:
        if self.how == 'suspend':
            self.engine.run()
            return

        async def main():
            self.loop = asyncio.get_running_loop()
            self.job = asyncio.ensure_future(self.engine.run_async())
            with contextlib.suppress(asyncio.CancelledError):
                await self.job
        asyncio.run(main())


@SETTINGS
@given(data=st.data(), spec=dag_flows(), kind=st.sampled_from(
    ['serial', 'parallel', 'parallel-executor']),
    how=st.sampled_from(['suspend', 'cancel']), after=st.integers(0, 7))
def test_a_run_stopped_anywhere_resumes_in_a_new_engine_to_the_same_end(data, spec, kind,
                                                                        how, after):
    coroutines = data.draw(coroutine_names(spec))
    log = Log()

    def atom(a):
        return (AsyncTimed if a.name in coroutines else Timed)(a, log)

    flow = build(spec, atom)
    backend = backends.fetch({'connection': 'memory'})
    detail = persistence_utils.create_flow_detail(flow, book=models.LogBook('b'),
                                                  backend=backend)
    first = taskflow.engines.load(flow, flow_detail=detail, backend=backend,
                                  **engine_options(kind))
    Stopper(first, after, how).run()
    assert first.storage.get_flow_state() in (states.SUSPENDED, states.SUCCESS)

    with contextlib.closing(backend.get_connection()) as conn:
        stored = conn.get_flow_details(detail.uuid)
    again = build(spec, atom)
    second = taskflow.engines.load(again, flow_detail=stored, backend=backend,
                                   **engine_options(kind))
    second.run()
    assert second.storage.get_flow_state() == states.SUCCESS
    names = [a.name for a in atoms_of(spec)]
    # Completed exactly once over both runs (a cancelled coroutine started
    # twice, but finished once), and never before what it depends on.
    assert Counter(log.names('done')) == Counter(names)
    assert log.names('revert') == []
    entries = log.entries
    for before, after_name in must_precede(spec):
        last_start = max(i for i, e in enumerate(entries) if e == ('start', after_name))
        assert entries.index(('done', before)) < last_start
