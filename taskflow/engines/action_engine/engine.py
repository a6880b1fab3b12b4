"""Action engines: run a flow in this process, serially or on an executor.

The engine is wiring: it compiles the flow (``_compile``), prepares storage,
validates requirements, then hands the run to the loop (``_loop``), which
consults the plan (``_plan``) and executes atoms through a runner
(``_executors``).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

from taskflow import _gc
from taskflow import exceptions as exc
from taskflow import states as st
from taskflow import storage as storage_module
from taskflow.engines import base
from taskflow.engines.action_engine import _compile
from taskflow.engines.action_engine import _executors
from taskflow.engines.action_engine import _loop
from taskflow.engines.action_engine import compiler
from taskflow.types import failure as failure_module

_TRUE_STRINGS = ('1', 't', 'true', 'on', 'y', 'yes')
DEFAULT_WAIT_TIMEOUT = 60.0


def _boolean_option(options: dict, name: str, default: bool) -> bool:
    """A boolean option; a string counts as true only when it says so ('yes'...).

    Like the original, any other string means False.
    """
    value = options.get(name, default)
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_STRINGS
    return bool(value)


def _timeout_option(options: dict) -> float | None:
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


class ActionEngine(base.Engine):
    """An engine that runs atoms in this process.

    Options (all engines): ``defer_reverts``, ``never_resolve``,
    ``inject_transient``, ``gather_statistics`` (booleans, strings such as
    ``'true'`` accepted) and ``task_timeout`` (taskflow-ng: seconds any task
    may run before it fails with ``AtomTimeout``, unless it sets its own).
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
        self._validated = False
        self._engine_lock = threading.Lock()
        self._suspend_requested = False
        self._runner: Any = None
        self._statistics: dict[str, Any] = {}
        self._task_timeout = _timeout_option(self._options)

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

    def _require(self, method: str, prepared: bool = False) -> None:
        if self._compilation is None:
            raise exc.InvalidState('Can not %s an engine which has not been compiled' % method)
        if prepared and not self._storage_ensured:
            raise exc.InvalidState('Can not %s an engine which has not had its storage'
                                   ' populated' % method)

    def compile(self) -> None:
        if self._compilation is None:
            with _gc.paused():
                self._compilation = _compile.Compilation(self._flow)

    def prepare(self) -> None:
        self._require('prepare')
        if not self._storage_ensured:
            # Resuming a flow stored as RUNNING (a crash) is announced; for a
            # fresh flow these transitions are ignored and nothing is notified.
            self._change_flow_state(st.RESUMING)
            for node in self._compilation.atoms:
                if node.kind == _compile.RETRY and not node.name:
                    raise ValueError('Retry name must be non-empty')
            with _gc.paused():
                self._storage.ensure_atoms(self._compilation.iter_atoms())
            self._inject_atom_values()
            self._change_flow_state(st.SUSPENDED)
            self._storage_ensured = True
        if self._storage.get_flow_state() == st.REVERTED:
            self.reset()

    def _inject_atom_values(self) -> None:
        transient = _boolean_option(self._options, 'inject_transient', True)
        for atom in self._compilation.iter_atoms():
            if atom.inject:
                self._storage.inject_atom_args(atom.name, atom.inject, transient=transient)

    def validate(self) -> None:
        self._require('validate', prepared=True)
        if self._validated:
            return  # later injections can only satisfy more, never less
        compilation = self._compilation
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
        self._validated = True

    def reset(self) -> None:
        self._require('reset', prepared=True)
        # Check the flow transition first so a refused reset changes nothing.
        st.check_flow_transition(self._storage.get_flow_state(), st.PENDING)
        storage = self._storage
        for node in self._compilation.atoms:
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
        self._suspend_requested = True
        self._change_flow_state(st.SUSPENDING)
        runner = self._runner
        if runner is not None:
            runner.wake()  # end a wait for a delayed retry now

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
            for _state in self.run_iter(timeout=timeout):
                pass
        finally:
            self._engine_lock.release()

    def run_iter(self, timeout: float | None = None) -> Iterator[str]:
        """Run step by step, yielding engine states (``RESUMING``, ``SCHEDULING``...).

        Sending a truthy value into the iterator (or closing it) suspends the run.
        """
        self.compile()
        self.prepare()
        self.validate()
        if timeout is None:
            timeout = DEFAULT_WAIT_TIMEOUT
        runner = self._make_runner()
        loop = _loop.RunLoop(self, runner, timeout,
                             never_resolve=_boolean_option(self._options, 'never_resolve', False),
                             defer_reverts=_boolean_option(self._options, 'defer_reverts', False),
                             task_timeout=self._task_timeout)
        self._suspend_requested = False
        self._runner = runner
        started = time.monotonic()
        try:
            self._change_flow_state(st.RUNNING)
            try:
                for state in loop.iterate():
                    sent = yield state
                    if sent:
                        self.suspend()
            except Exception:
                self._fail_after_error()
                raise
            # Anything else (SystemExit, KeyboardInterrupt, closing the
            # iterator) passes through with the flow left as it is: like a
            # crash, a later run resumes it (as the original).
        finally:
            self._runner = None
            runner.stop()
            loop.detach()
            self._record_statistics(loop, started)
        if loop.final_state not in self.NO_RERAISING_STATES:
            if loop.failures:
                failure_module.Failure.reraise_if_any(loop.failures)
            elif loop.final_state == st.REVERTED:
                # Every execute failure stored (this run's and earlier ones'),
                # then revert failures earlier runs left behind.
                stored = self._storage.get_execute_failures()
                late = [f for name, f in loop.late_failures.items() if name not in stored]
                failure_module.Failure.reraise_if_any(
                    list(stored.values()) + late
                    + list(self._storage.get_revert_failures().values()))

    def _fail_after_error(self) -> None:
        """The loop itself broke (e.g. storage is down): end the flow in FAILURE if we can."""
        try:
            self._change_flow_state(st.FAILURE)
        except Exception:  # the original error matters more
            pass

    def _make_runner(self) -> Any:
        return _executors.SerialRunner()

    def _record_statistics(self, loop: _loop.RunLoop, started: float) -> None:
        if not _boolean_option(self._options, 'gather_statistics', True):
            return
        # Keys in the original's order.  A run only ends when nothing it
        # started is still in flight, so 'awaiting' and 'incomplete' (started
        # but unfinished work) are 0 unless the loop broke off.
        in_flight = loop.in_flight
        self._statistics = {
            'seconds_per_state': dict(loop.seconds_per_state),
            'discarded_failures': loop.discarded_failures,
            'awaiting': in_flight,
            'completed': loop.completed,
            'incomplete': in_flight,
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

    def _max_workers_option(self) -> int | None:
        # Like the reference: int() at load (so 'x' or [] fail here with
        # int()'s own message), the range is only checked when a pool is made.
        value = self._options.get('max_workers')
        return None if value is None else int(value)

    def _make_runner(self) -> Any:
        executor = self._options.get('executor')
        workers = self._max_workers
        # An executor instance is used as given: max_workers does not apply.
        if workers is not None and workers <= 0 and not isinstance(executor, futures.Executor):
            raise ValueError('max_workers must be greater than zero')
        return _executors.make_pool_runner(executor, workers)
