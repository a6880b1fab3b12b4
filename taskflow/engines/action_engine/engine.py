"""Action engines: run a flow in this process, serially or on an executor.

The engine is wiring: it compiles the flow (``_compile``), prepares storage,
validates requirements, then hands the run to the loop (``_loop``), which
consults the plan (``_plan``) and executes atoms through a runner
(``_executors``).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import AsyncIterator, Generator
from concurrent import futures
from typing import TYPE_CHECKING, Any

from taskflow import _gc
from taskflow import exceptions as exc
from taskflow import logging
from taskflow import states as st
from taskflow import storage as storage_module
from taskflow.engines import base
from taskflow.engines.action_engine import _compile
from taskflow.engines.action_engine import _executors
from taskflow.engines.action_engine import _loop
from taskflow.engines.action_engine import compiler
from taskflow.persistence import ownership
from taskflow.types import failure as failure_module

if TYPE_CHECKING:
    import asyncio

LOG = logging.getLogger(__name__)

_TRUE_STRINGS = ('1', 't', 'true', 'on', 'y', 'yes')
DEFAULT_WAIT_TIMEOUT = 60.0


def _boolean_option(options: dict[str, Any], name: str, default: bool) -> bool:
    """A boolean option; a string counts as true only when it says so ('yes'...).

    Like the original, any other string means False.
    """
    value = options.get(name, default)
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_STRINGS
    return bool(value)


def _timeout_option(options: dict[str, Any]) -> float | None:
    value = options.get('task_timeout')
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not seconds > 0:
        raise ValueError("Engine option 'task_timeout' must be a positive number of seconds,"
                         " not %r" % (value,))
    return seconds


def _claim_token_option(options: dict[str, Any]) -> int | None:
    value = options.get('claim_token')
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("Engine option 'claim_token' must be an integer, not %r" % (value,))
    return value


DEFAULT_ASYNC_CONCURRENCY = 1000


def _async_concurrency_option(options: dict[str, Any]) -> int:
    value = options.get('async_concurrency', DEFAULT_ASYNC_CONCURRENCY)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("Engine option 'async_concurrency' must be a positive integer,"
                         " not %r" % (value,))
    return value


class _LeaseKeeper:
    """Renews an engine's lease on its flow every ``ttl / 3`` seconds while it runs.

    A daemon thread: a paused or partitioned process stops renewing, its
    lease expires, and its next write is refused once someone else took
    the flow over (see ``taskflow.persistence.ownership``).
    """

    def __init__(self, storage: storage_module.Storage, ttl: float) -> None:
        self._storage = storage
        self._ttl = ttl
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True,
                                        name='taskflow-lease-%s' % storage.flow_uuid[:8])
        self._thread.start()

    def _renew(self) -> None:
        failing = False
        while not self._stopped.wait(self._ttl / 3):
            try:
                self._storage.renew_ownership(self._ttl)
            except exc.OwnershipLost as error:
                LOG.warning('%s; the engine stops at its next write', error)
                return
            except Exception as error:  # storage down: try again, log once per outage
                if not failing:
                    LOG.warning("Could not renew the lease of flow detail '%s' (retrying"
                                " every %.1f s): %s", self._storage.flow_uuid,
                                self._ttl / 3, error)
                failing = True
            else:
                if failing:
                    LOG.info("Renewed the lease of flow detail '%s' again",
                             self._storage.flow_uuid)
                failing = False

    def stop(self) -> None:
        self._stopped.set()


class ActionEngine(base.Engine):
    """An engine that runs atoms in this process.

    Options (all engines): ``defer_reverts``, ``never_resolve``,
    ``inject_transient``, ``gather_statistics`` (booleans, strings such as
    ``'true'`` accepted) and, taskflow-ng extensions:

    ``task_timeout``
        seconds any task may run before it fails with ``AtomTimeout``,
        unless it sets its own;
    ``async_concurrency``
        parallel engine: how many ``async def`` atoms may run at once on the
        event loop (default 1,000; more wait their turn). See ``docs/async.md``;
    ``owner``, ``lease_ttl``, ``claim_token``
        a persisted flow is run by one engine at a time: the engine takes a
        lease on the flow detail named ``owner`` (default ``host:pid:random``)
        for ``lease_ttl`` seconds (default 30), renewed while it runs, and
        every write carries its token (see
        :mod:`taskflow.persistence.ownership`). ``claim_token`` is the token
        of the jobboard claim the engine runs under, if any.
    """

    NO_RERAISING_STATES = frozenset([st.SUSPENDED, st.SUCCESS])
    IGNORABLE_STATES = frozenset([st.SCHEDULING, st.WAITING, st.RESUMING, st.ANALYZING,
                                  st.GAME_OVER, st.UNDEFINED])
    MAX_MACHINE_STATES_RETAINED = 10

    def __init__(self, flow: Any, flow_detail: Any, backend: Any,
                 options: dict[str, Any] | None) -> None:
        super().__init__(flow, flow_detail, backend, options)
        self._compilation: _compile.Compilation | None = None
        self._storage_ensured = False
        self._engine_lock = threading.Lock()
        self._suspension = _loop.Suspension()
        self._statistics: dict[str, Any] = {}
        self._task_timeout = _timeout_option(self._options)
        self._owner = self._options.get('owner') or ownership.default_owner()
        self._lease_ttl = ownership.check_ttl(self._options.get('lease_ttl',
                                                                ownership.DEFAULT_TTL))
        self._claim_token = _claim_token_option(self._options)
        # The loop of run_async()'s caller while it runs (coroutines go there).
        self._caller_loop: asyncio.AbstractEventLoop | None = None

    # -- properties -----------------------------------------------------------

    @functools.cached_property
    def _storage(self) -> storage_module.Storage:
        # Made on first use, so an engine can be built before its flow
        # detail is usable (the original fails only when storage is used).
        return storage_module.Storage(self._flow_detail, backend=self._backend,
                                      scope_fetcher=self._scope_fetcher)

    @property
    def storage(self) -> storage_module.Storage:
        return self._storage

    @property
    def compilation(self) -> compiler.Compilation | None:
        """The compiled flow, as the original shows it (``None`` until :meth:`compile`).

        Offers ``execution_graph`` and ``hierarchy`` (see
        :mod:`taskflow.engines.action_engine.compiler`); the engine itself runs
        on ``_compile``'s graph.
        """
        compiled = self._compilation
        return None if compiled is None else compiled.public

    @property
    def statistics(self) -> dict[str, Any]:
        return self._statistics

    def _scope_fetcher(self, atom_name: str, name: str) -> list[str]:
        compilation = self._compilation
        if compilation is None or atom_name not in compilation.by_name:
            return []
        node = compilation.by_name[atom_name]
        return list(compilation.provider_names(node, name))

    # -- lifecycle ------------------------------------------------------------

    def _require(self, method: str, prepared: bool = False) -> _compile.Compilation:
        """The compilation, if the engine has got far enough to ``method``."""
        if self._compilation is None:
            raise exc.InvalidState('Can not %s an engine which has not been compiled' % method)
        if prepared and not self._storage_ensured:
            raise exc.InvalidState('Can not %s an engine which has not had its storage'
                                   ' populated' % method)
        return self._compilation

    def compile(self) -> None:
        if self._compilation is None:
            with _gc.paused():
                self._compilation = _compile.Compilation(self._flow)

    def _take_ownership(self) -> bool:
        """Take the lease on the flow unless held; True when this call took it."""
        storage = self._storage
        if storage.lease is not None:
            return False
        return storage.take_ownership(self._owner, self._lease_ttl,
                                      self._claim_token) is not None

    def prepare(self) -> None:
        compilation = self._require('prepare')
        took = self._take_ownership() if not self._storage_ensured else False
        try:
            self._prepare(compilation)
        finally:
            if took:
                self._storage.give_up_ownership()

    def _prepare(self, compilation: _compile.Compilation) -> None:
        if not self._storage_ensured:
            # Resuming a flow stored as RUNNING (a crash) is announced; for a
            # fresh flow these transitions are ignored and nothing is notified.
            self._change_flow_state(st.RESUMING)
            for node in compilation.atoms:
                if node.kind == _compile.RETRY and not node.name:
                    raise ValueError('Retry name must be non-empty')
            with _gc.paused():
                self._storage.ensure_atoms(compilation.iter_atoms())
            self._inject_atom_values(compilation)
            self._change_flow_state(st.SUSPENDED)
            self._storage_ensured = True
        if self._storage.get_flow_state() == st.REVERTED:
            self.reset()

    def _inject_atom_values(self, compilation: _compile.Compilation) -> None:
        transient = _boolean_option(self._options, 'inject_transient', True)
        for atom in compilation.iter_atoms():
            if atom.inject:
                self._storage.inject_atom_args(atom.name, atom.inject, transient=transient)

    def validate(self) -> None:
        compilation = self._require('validate', prepared=True)
        storage = self._storage
        last_cause: exc.MissingDependencies | None = None
        causes = 0
        missing_all: set[str] = set()
        with _gc.paused():
            for node in compilation.atoms:
                for method in ('execute', 'revert'):
                    # Errors name the argument, not the (rebound) value it reads.
                    missing = [arg for arg, name, optional, providers
                               in compilation.argument_plan(node, method == 'revert')
                               if not (optional or providers
                                       or storage.is_injected(name, node.name))]
                    if missing:
                        missing.sort()
                        missing_all.update(missing)
                        causes += 1
                        last_cause = exc.MissingDependencies(node.atom, missing,
                                                             cause=last_cause, method=method)
        if last_cause is not None:
            if compilation.root_scope.flow is None and causes == 1:
                raise last_cause  # a bare atom with one unsatisfied method
            raise exc.MissingDependencies(self._flow, sorted(missing_all), cause=last_cause)

    def reset(self) -> None:
        compilation = self._require('reset', prepared=True)
        # Check the flow transition first so a refused reset changes nothing.
        st.check_flow_transition(self._storage.get_flow_state(), st.PENDING)
        storage = self._storage
        for node in compilation.atoms:
            # States and intentions only: results stay stored (unreadable
            # while PENDING), so a retry's history carries on counting.
            old_state = storage.get_atom_state(node.name)
            storage.set_atom_pending(node.name)
            if old_state != st.PENDING:
                _loop.notify_atom(self._atom_notifier, storage, node, st.PENDING,
                                  old_state)
                _loop.set_progress(storage, node, 0.0)
        self._change_flow_state(st.PENDING)

    def suspend(self) -> None:
        """Ask the engine to stop scheduling; running atoms finish first.

        Thread safe; may be called from a task.  A no-op when not running.
        """
        self._require('suspend')
        self._suspension.request()
        self._change_flow_state(st.SUSPENDING)

    def _interrupt(self) -> None:
        """:meth:`suspend`, also cancelling the coroutines still running
        (``run_async()``'s caller was cancelled; they run again on resume)."""
        self._suspension.interrupt()
        self._change_flow_state(st.SUSPENDING)

    def _change_flow_state(self, state: str) -> bool:
        moved, old_state = self._storage.change_flow_state(state)
        if moved and self._notifier.has_listeners(state):
            self._notifier.notify(state, {'engine': self,
                                          'flow_name': self._storage.flow_name,
                                          'flow_uuid': self._storage.flow_uuid,
                                          'old_state': old_state})
        return moved

    # -- running --------------------------------------------------------------

    def run(self, timeout: float | None = None) -> None:
        """Run the flow until it succeeds, is reverted, fails or is suspended.

        Re-raises the failure that ended the run: the original exception for
        one failure, :class:`~taskflow.exceptions.WrappedFailure` for several.
        """
        if not self._engine_lock.acquire(blocking=False):
            raise exc.ExecutionFailure('Engine currently locked, please try again later')
        try:
            with _gc.run_threshold():
                for _state in self.run_iter(timeout=timeout):
                    pass
        finally:
            self._engine_lock.release()

    def run_iter(self, timeout: float | None = None) -> Generator[str, Any, None]:
        """Run step by step, yielding engine states (``RESUMING``, ``SCHEDULING``...).

        Sending a truthy value into the iterator suspends the run; closing it
        suspends the run and lets it finish quietly; an exception thrown into
        it ends the run in ``FAILURE`` once the current round's atoms are
        recorded, then propagates.
        """
        self.compile()
        with contextlib.ExitStack() as cleanup:
            self._own_while_running(cleanup)   # FlowLeased if another engine runs it
            self.prepare()
            self.validate()
            options = self._run_options(timeout)   # refused before anything runs
            runner = self._make_runner()
            loop = _loop.RunLoop(self._require('run'), self._storage, self._atom_notifier,
                                 runner, self._change_flow_state, self._suspension, options)
            self._suspension.start(runner)
            cleanup.callback(self._end_run, loop, runner, time.monotonic())
            work, spent, clock = loop.work, loop.seconds_per_state, time.monotonic
            self._change_flow_state(st.RUNNING)
            state = st.RESUMING
            try:
                while state not in _loop.FINAL_STATES:
                    try:
                        sent = yield state
                    except GeneratorExit:
                        self.suspend()
                        loop.finish_quietly(state)
                        raise
                    except Exception:
                        loop.finish_round(state)
                        raise
                    if sent:
                        self.suspend()
                    began = clock()
                    next_state = work[state]()
                    spent[state] += clock() - began
                    state = next_state
            except exc.StorageFailure:
                raise  # storage is down (or the flow moved on): leave it resumable
            except Exception:
                self._fail_after_error()
                raise
            # Anything else (SystemExit, KeyboardInterrupt, closing the
            # iterator) passes through with the flow left as it is: like a
            # crash, a later run resumes it (as the original).
            if state != st.FAILURE:  # like the original: a failed run raises instead
                yield state
        self._raise_failures(loop.outcome())

    async def run_async(self, timeout: float | None = None) -> None:
        """:meth:`run` from inside a running event loop, without blocking it.

        ``async def`` atoms run on the caller's loop; the engine itself
        (storage, notifications, synchronous atoms of the serial engine) on a
        thread of its own, synchronous atoms of the parallel engine on its
        executor.  Cancelling the caller suspends the flow, cancels the atoms'
        coroutines (they run again when the flow resumes) and, once the flow
        is stored ``SUSPENDED``, raises ``CancelledError``.  See
        ``docs/async.md``.
        """
        from taskflow.engines.action_engine import _async_run
        await _async_run.run(self, timeout)

    def run_iter_async(self, timeout: float | None = None) -> AsyncIterator[str]:
        """:meth:`run_iter` for ``async for``: yields the engine states.

        ``asend(True)`` suspends the run; closing the iterator early (``break``
        inside ``contextlib.aclosing(...)``, ``aclose()``) suspends it and lets
        running atoms finish; cancellation as for :meth:`run_async`.
        """
        from taskflow.engines.action_engine import _async_run
        return _async_run.run_iter(self, timeout)

    def _own_while_running(self, cleanup: contextlib.ExitStack) -> None:
        """Hold the lease on the flow (renewed) until ``cleanup`` unwinds."""
        if self._take_ownership():
            cleanup.callback(self._storage.give_up_ownership)
            cleanup.callback(_LeaseKeeper(self._storage, self._lease_ttl).stop)

    def _end_run(self, loop: _loop.RunLoop, runner: _executors.Runner,
                 started: float) -> None:
        self._suspension.stop()
        runner.stop()
        loop.detach()
        self._record_statistics(loop.outcome(), started)

    def _run_options(self, timeout: float | None) -> _loop.RunOptions:
        """This run's options, every one checked before anything runs."""
        if timeout is None:
            timeout = DEFAULT_WAIT_TIMEOUT
        elif (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                or not timeout >= 0):
            raise ValueError("run()'s timeout must be a number of seconds >= 0 (or None),"
                             " not %r" % (timeout,))
        self._check_runner_options()
        return _loop.RunOptions(
            timeout=float(timeout),
            never_resolve=_boolean_option(self._options, 'never_resolve', False),
            defer_reverts=_boolean_option(self._options, 'defer_reverts', False),
            task_timeout=self._task_timeout)

    def _check_runner_options(self) -> None:
        """Refuse runner options that cannot work (before anything runs)."""

    def _raise_failures(self, outcome: _loop.RunOutcome) -> None:
        if outcome.final_state in self.NO_RERAISING_STATES:
            return
        if outcome.failures:
            failure_module.Failure.reraise_if_any(list(outcome.failures))
        elif outcome.final_state == st.REVERTED:
            # Every execute failure stored (this run's and earlier ones'),
            # then revert failures earlier runs left behind.
            stored = self._storage.get_execute_failures()
            late = [f for name, f in outcome.late_failures.items() if name not in stored]
            failure_module.Failure.reraise_if_any(
                list(stored.values()) + late
                + list(self._storage.get_revert_failures().values()))

    def _fail_after_error(self) -> None:
        """The loop itself broke: end the flow in FAILURE if we can."""
        try:
            self._change_flow_state(st.FAILURE)
        except Exception:  # the original error matters more
            pass

    def _make_runner(self) -> _executors.Runner:
        if self._require('run').has_coroutines:
            from taskflow.engines.action_engine import _async
            return _async.serial_runner(self._caller_loop)
        return _executors.SerialRunner()

    def _record_statistics(self, outcome: _loop.RunOutcome, started: float) -> None:
        if not _boolean_option(self._options, 'gather_statistics', True):
            return
        # Keys in the original's order.  A run only ends when nothing it
        # started is still in flight, so 'awaiting' and 'incomplete' (started
        # but unfinished work) are 0 unless the loop broke off.
        self._statistics = {
            'seconds_per_state': dict(outcome.seconds_per_state),
            'discarded_failures': outcome.discarded_failures,
            'awaiting': outcome.in_flight,
            'completed': outcome.completed,
            'incomplete': outcome.in_flight,
            'active_for': time.monotonic() - started,
        }


class SerialActionEngine(ActionEngine):
    """Runs one atom at a time, in the thread that calls :meth:`run`."""


class ParallelActionEngine(ActionEngine):
    """Runs independent atoms concurrently on an executor.

    Options: ``executor`` (a ``concurrent.futures.Executor`` instance, used
    as is and never shut down by the engine, or ``'threads'``/
    ``'greenthreads'``), ``max_workers`` (size of the pool the engine creates
    for each run when no executor instance is given).
    """

    def __init__(self, flow: Any, flow_detail: Any, backend: Any,
                 options: dict[str, Any] | None) -> None:
        super().__init__(flow, flow_detail, backend, options)
        _executors.validate_executor_option(self._options.get('executor'))
        self._max_workers = self._max_workers_option()
        self._async_concurrency = _async_concurrency_option(self._options)

    def _max_workers_option(self) -> int | None:
        # Like the reference: int() at load (so 'x' or [] fail here with
        # int()'s own message), the range is only checked when a pool is made.
        value = self._options.get('max_workers')
        return None if value is None else int(value)

    def _check_runner_options(self) -> None:
        workers = self._max_workers
        # An executor instance is used as given: max_workers does not apply.
        if (workers is not None and workers <= 0
                and not isinstance(self._options.get('executor'), futures.Executor)):
            raise ValueError('max_workers must be greater than zero')

    def _make_runner(self) -> _executors.Runner:
        if self._require('run').has_coroutines:
            from taskflow.engines.action_engine import _async
            return _async.pool_runner(self._options.get('executor'), self._max_workers,
                                      self._async_concurrency, self._caller_loop)
        return _executors.make_pool_runner(self._options.get('executor'), self._max_workers)
