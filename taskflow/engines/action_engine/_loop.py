"""The run loop: the only code that moves atoms through their states.

The engine's ``run_iter()`` is the event loop: it yields the engine states
(``RESUMING``, then ``SCHEDULING``, ``WAITING``, ``ANALYZING`` until a final
state) and, between yields, calls the :class:`RunLoop` method that does that
state's work and returns the next state (``RunLoop.work``):

``RESUMING``
    load the plan from storage; re-resolve failures a previous (crashed) run
    recorded but did not resolve; finish what a crash cut short;
``SCHEDULING``
    take every ready step from the plan and start it (the serial runner runs
    it right away);
``WAITING``
    wait for started atoms to finish;
``ANALYZING``
    record what finished (storage first, then notifications, then the plan),
    resolve failures, and pick the next state.

The loop owns the storage writes and the notifications of a run; user code
is called only through ``_call``; what is ready, what a failure reverts and
how a run ends is decided by the pure ``_plan`` and ``_resolution``.  Its
collaborators are passed in explicitly and it reports back through
:meth:`RunLoop.outcome`, an immutable :class:`RunOutcome`.
"""

from __future__ import annotations

import heapq
import itertools
import time
import types
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from taskflow import deciders as deciders_module
from taskflow import exceptions as exc
from taskflow import states as st
from taskflow.engines.action_engine import _call
from taskflow.engines.action_engine import _compile
from taskflow.engines.action_engine import _executors
from taskflow.engines.action_engine import _plan
from taskflow.engines.action_engine import _resolution
from taskflow.types import failure as failure_module

FINAL_STATES = frozenset((st.SUCCESS, st.REVERTED, st.FAILURE, st.SUSPENDED))
_META_RETRY_AT = 'retry_at'   # wall-clock time a delayed retry may run again
_TASK_EVENT_KEYS = ('task_name', 'task_uuid')
_RETRY_EVENT_KEYS = ('retry_name', 'retry_uuid')
_NO_RESULT = object()

Token = tuple[str, _compile.Node]   # (EXECUTE or REVERT, node): what a runner hands back


class RunOptions(NamedTuple):
    """How one run behaves (the engine's options, checked before it starts)."""

    timeout: float | None = None     # longest single wait for atoms to finish
    never_resolve: bool = False
    defer_reverts: bool = False
    task_timeout: float | None = None


class RunOutcome(NamedTuple):
    """What a run left behind, for ``run()`` to raise and for statistics."""

    final_state: str | None                  # None: the run broke off
    failures: tuple[failure_module.Failure, ...]   # what run() must re-raise
    # Execute failures of atoms already meant to revert (storage does not
    # list them; run() still raises them): atom name -> latest failure.
    late_failures: Mapping[str, failure_module.Failure]
    completed: int                           # executions and reverts that finished
    discarded_failures: int                  # failures resolved by reverting or retrying
    in_flight: int                           # started, never recorded as finished
    seconds_per_state: Mapping[str, float]


class Suspension:
    """The engine's request to stop scheduling, shared with its running loop."""

    def __init__(self) -> None:
        self.requested = False
        self._runner: _executors.Runner | None = None

    def start(self, runner: _executors.Runner) -> None:
        self.requested = False
        self._runner = runner

    def request(self) -> None:
        """Thread safe: the loop stops scheduling, and a wait for a timer ends now."""
        self.requested = True
        runner = self._runner
        if runner is not None:
            runner.wake()

    def interrupt(self) -> None:
        """Thread safe: :meth:`request`, and cancel the coroutines still running
        (they end ``INTERRUPTED``: left to run again when the flow resumes)."""
        self.requested = True
        runner = self._runner
        if runner is not None:
            runner.interrupt()
            runner.wake()

    def stop(self) -> None:
        self._runner = None


class RunLoop:
    """One run of an engine over its compiled flow."""

    def __init__(self, compilation: _compile.Compilation, storage: Any, atom_notifier: Any,
                 runner: _executors.Runner, change_flow_state: Callable[[str], Any],
                 suspension: Suspension, options: RunOptions) -> None:
        self._compilation = compilation
        self._storage = storage
        self._atom_notifier = atom_notifier
        self._runner = runner
        self._change_flow_state = change_flow_state
        self._suspension = suspension
        self._options = options
        self._timers: list[tuple[float, int, _compile.Node]] = []  # heap: delayed retries
        self._timer_sequence = itertools.count()
        self._failures: list[failure_module.Failure] = []
        self._late_failures: dict[str, failure_module.Failure] = {}
        self._finished: _executors.Finished = []
        self._final_state: str | None = None
        self._completed = 0
        self._discarded_failures = 0
        self.plan: _plan.Plan
        # Keys in the original's (alphabetical) order: programs print them.
        self.seconds_per_state = {st.ANALYZING: 0.0, st.RESUMING: 0.0, st.SCHEDULING: 0.0,
                                  st.WAITING: 0.0}
        self.work: dict[str, Callable[[], str]] = {
            st.RESUMING: self._resume, st.SCHEDULING: self._schedule,
            st.WAITING: self._wait, st.ANALYZING: self._analyze}

    def outcome(self) -> RunOutcome:
        return RunOutcome(
            self._final_state, tuple(self._failures),
            types.MappingProxyType(dict(self._late_failures)), self._completed,
            self._discarded_failures, self._runner.pending,
            types.MappingProxyType({state.lower(): seconds for state, seconds
                                    in self.seconds_per_state.items()}))

    def finish_round(self, state: str) -> None:
        """End the run after the current round (an error was thrown into it).

        As the original: what the round started is still started, awaited and
        recorded (up to and including ``ANALYZING``), then nothing more.
        """
        if state == st.RESUMING:
            state = self._resume()
        if state == st.SCHEDULING:
            state = self._schedule()
        if state == st.WAITING:
            state = self._wait()
        if state == st.ANALYZING:
            self._record_finished()
        while self._runner.pending:  # never leave what runs behind unrecorded
            self._finished = self._runner.wait(self._options.timeout)
            self._record_finished()

    def finish_quietly(self, state: str) -> None:
        """Run to a final state (the run's iterator was closed; the engine
        asked to suspend first)."""
        while state not in FINAL_STATES:
            state = self.work[state]()

    def detach(self) -> None:
        """Forget the progress sinks installed on tasks (the run is over)."""
        for node in self._compilation.atoms:
            if node.kind == _compile.TASK:
                node.atom._progress_sink = None

    # -- the states' work -----------------------------------------------------

    def _resume(self) -> str:
        compilation = self._compilation
        storage = self._storage
        states, intentions = {}, {}
        for node in compilation.atoms:
            ad = storage.get_atom_detail(node.name)
            states[node.name] = ad.state
            intentions[node.name] = ad.intention
        plan = self.plan = _plan.Plan(compilation, states, intentions)
        for node in compilation.atoms:
            if states[node.name] == st.FAILURE:
                # Not reverted yet: its resolution may be missing or half
                # written (a crash between intention writes, never_resolve).
                # Resolving again sets the same intentions when it was done.
                self._resolve(node, storage.get_atom_detail(node.name).failure,
                              this_run=False)
        plan.revert_interrupted(states)
        for retry in plan.unfinished_retries():
            self._reset_subflow(retry)
            # It was waiting out its delay: it waits for what is left.
            retry_at = storage.get_atom_detail(retry.name).meta.get(_META_RETRY_AT)
            if retry_at is not None:
                self._delay(retry, retry_at - time.time())
        return st.SCHEDULING

    def _schedule(self) -> str:
        plan = self.plan
        steps = [] if self._stopping() else plan.take_ready()
        while steps:
            for kind, node in steps:
                if kind == _plan.EXECUTE:
                    self._start_execute(node)
                elif kind == _plan.REVERT:
                    self._start_revert(node)
                elif kind == _plan.RETRY:
                    self._retry_subflow(node)
                else:
                    self._decide(node)
                if self._stopping():
                    break
            steps = [] if self._stopping() else plan.take_ready()
        return st.WAITING

    def _wait(self) -> str:
        timers = self._timers and not self._stopping()
        if self._runner.pending or timers:
            timeout = self._options.timeout
            if timers:
                until_due = max(self._timers[0][0] - time.monotonic(), 0.0)
                timeout = until_due if timeout is None else min(timeout, until_due)
            self._finished = self._runner.wait(timeout)
        return st.ANALYZING

    def _analyze(self) -> str:
        self._record_finished()
        self._release_due_timers()
        if self._suspension.requested:
            self._settle_decisions()
        if not self._stopping() and self.plan.has_queued():
            return st.SCHEDULING
        if self._runner.pending or (self._timers and not self._stopping()):
            return st.WAITING
        return self._finish()

    def _record_finished(self) -> None:
        finished, self._finished = self._finished, []
        for (kind, node), outcome in finished:
            if outcome is _executors.TIMED_OUT:
                outcome = _call.Outcome(False, self._timeout_failure(node, kind))
            elif outcome is _executors.INTERRUPTED:
                self._interrupted(node)
                continue
            if kind == _plan.EXECUTE:
                self._executed(node, outcome)
            else:
                self._reverted(node, outcome)

    def _stopping(self) -> bool:
        return self.plan.halted or self._suspension.requested

    def _finish(self) -> str:
        final_state = st.FAILURE
        if not self._failures:
            decided = self.plan.final_state(self._suspension.requested, bool(self._timers))
            if decided is None:
                self._failures.append(failure_module.Failure.from_exception(
                    exc.ExecutionFailure('Engine stopped with atoms that can never run: %s'
                                         % self.plan.unfinished_names())))
            else:
                final_state = decided
        self._final_state = final_state
        if final_state == st.SUSPENDED:
            # Suspension is requested (a flag, from any thread) before the
            # requester stores SUSPENDING; a run that ends first passes
            # through SUSPENDING itself (a no-op when it is stored already).
            self._change_flow_state(st.SUSPENDING)
        self._change_flow_state(final_state)
        return final_state

    # -- starting atoms -------------------------------------------------------

    def _start_execute(self, node: _compile.Node) -> None:
        try:
            arguments = self._storage.fetch_arguments(
                node.name, self._compilation.argument_plan(node, False))
        except exc.NotFound:
            self._halt(failure_module.Failure())
            return
        self._enter(node, st.RUNNING)
        atom = node.atom
        if node.kind == _compile.TASK:
            atom._progress_sink = self._store_progress  # for the task's own reports
            self._runner.submit((_plan.EXECUTE, node),
                                _call.Call(_call.EXECUTE, atom, arguments, None, None,
                                           'execute' in node.coroutines),
                                atom.timeout or self._options.task_timeout)
        else:
            history = self._storage.get_retry_history(node.name)
            if 'execute' in node.coroutines:
                self._runner.run_local((_plan.EXECUTE, node), self._runner.run_coroutine,
                                       _call.execute_retry_async, atom, arguments, history)
            else:
                self._runner.run_local((_plan.EXECUTE, node), _call.execute_retry, atom,
                                       arguments, history)

    def _start_revert(self, node: _compile.Node) -> None:
        try:
            arguments = self._storage.fetch_arguments(
                node.name, self._compilation.argument_plan(node, True))
        except exc.NotFound:
            self._halt(failure_module.Failure())
            return
        ad = self._storage.get_atom_detail(node.name)
        flow_failures = self._storage.get_execute_failures()
        self._enter(node, st.REVERTING)
        atom = node.atom
        if node.kind == _compile.TASK:
            result = ad.failure if ad.failure is not None else ad.results
            atom._progress_sink = self._store_progress
            self._runner.submit((_plan.REVERT, node),
                                _call.Call(_call.REVERT, atom, arguments, result, flow_failures,
                                           'revert' in node.coroutines),
                                atom.timeout or self._options.task_timeout)
        else:
            history = self._storage.get_retry_history(node.name)
            if 'revert' in node.coroutines:
                self._runner.run_local((_plan.REVERT, node), self._runner.run_coroutine,
                                       _call.revert_retry_async, atom, arguments, history,
                                       flow_failures)
            else:
                self._runner.run_local((_plan.REVERT, node), _call.revert_retry, atom,
                                       arguments, history, flow_failures)

    def _enter(self, node: _compile.Node, state: str) -> None:
        """Move an atom into RUNNING/REVERTING (a task restarts at progress 0.0)."""
        ad = self._storage.get_atom_detail(node.name)
        old_state = ad.state
        is_task = node.kind == _compile.TASK
        # Re-entering the same state (resuming after a crash) is announced
        # only when it changes something, like the original: the progress.
        changed = old_state != state or (is_task and ad.meta.get('progress', 0.0) != 0.0)
        self._storage.set_atom_state(node.name, state, progress=0.0 if is_task else None)
        self.plan.set_state(node, state)
        if changed:
            self._notify(node, state, old_state)
            if is_task:
                node.atom._notify_progress(0.0)

    def _timeout_failure(self, node: _compile.Node, kind: str) -> failure_module.Failure:
        timeout = node.atom.timeout or self._options.task_timeout
        method = 'execute' if kind == _plan.EXECUTE else 'revert'
        return failure_module.Failure.from_exception(exc.AtomTimeout(
            "Task '%s' did not finish %s within %s seconds; it was abandoned (its thread"
            " may still be running)" % (node.name, method, timeout)))

    # -- recording outcomes ---------------------------------------------------

    def _interrupted(self, node: _compile.Node) -> None:
        """A call was cancelled before it finished (``run_async()`` was cancelled).

        Storage keeps it ``RUNNING``/``REVERTING``, as a crash would leave it:
        the run ends ``SUSPENDED`` and a resumed run executes (or reverts) it
        again.  The plan sees it as a resumed run will load it.
        """
        plan = self.plan
        state = _plan.LOADED_AS[plan.state[node.index]]
        if state == st.PENDING and plan.intention[node.index] == st.REVERT:
            state = st.FAILURE   # may have done part of its work: it reverts (as on resume)
        plan.set_state(node, state)

    def _executed(self, node: _compile.Node, outcome: _call.Outcome) -> None:
        name = node.name
        is_task = node.kind == _compile.TASK
        ok, value = outcome
        if ok:
            try:
                # A finished task is at progress 1.0: stored in the same write.
                self._storage.save(name, value, st.SUCCESS, progress=1.0 if is_task else None)
            except exc.UnstorableValue:
                # It can never be stored: the atom fails (and reverts). Any
                # other storage failure means storage is down: it propagates
                # and stops the run with the atom left RUNNING (resumable).
                ok, value = False, failure_module.Failure()
        if ok:
            self._completed += 1
            self.plan.set_state(node, st.SUCCESS)
            self._notify(node, st.SUCCESS, st.RUNNING, value)
            if is_task:
                node.atom._notify_progress(1.0)
            return
        if self.plan.intention[node.index] == st.REVERT:
            self._late_failures[name] = value
        self._storage.save(name, value, st.FAILURE)
        self.plan.set_state(node, st.FAILURE)
        self._notify(node, st.FAILURE, st.RUNNING, value)
        if self._resolve(node, value):
            self._completed += 1  # (as the original: not when resolving broke)

    def _reverted(self, node: _compile.Node, outcome: _call.Outcome) -> None:
        name = node.name
        ok, value = outcome
        is_task = node.kind == _compile.TASK
        if ok:
            try:
                # As the original, a retry's revert result is notified, not stored.
                self._storage.save(name, value if is_task else None, st.REVERTED,
                                   progress=1.0 if is_task else None)
            except exc.UnstorableValue:
                ok, value = False, failure_module.Failure()
        self._completed += 1
        if ok:
            if not is_task:
                self._storage.cleanup_retry_history(name, st.REVERTED)
            self.plan.set_state(node, st.REVERTED)
            self._notify(node, st.REVERTED, st.REVERTING, value)
            if is_task:
                node.atom._notify_progress(1.0)
            return
        self._storage.save(name, value, st.REVERT_FAILURE)
        self.plan.set_state(node, st.REVERT_FAILURE)
        self._notify(node, st.REVERT_FAILURE, st.REVERTING, value)
        self._halt(value)

    def _halt(self, failure: failure_module.Failure) -> None:
        """Stop scheduling: the run will end in FAILURE and re-raise ``failure``."""
        self._failures.append(failure)
        self.plan.halted = True

    # -- failure resolution ---------------------------------------------------

    def _resolve(self, node: _compile.Node, failure: failure_module.Failure,
                 this_run: bool = True) -> bool:
        """Decide, with the retries in charge, what to revert (and retry).

        Returns False when deciding broke (a retry's ``on_failure`` raised):
        the run halts with that error.

        ``never_resolve`` leaves failures alone: one of this run halts it;
        one an earlier run left behind stays as it is (as in the original;
        without ``never_resolve`` it is resolved when the flow runs again).
        """
        if self._options.never_resolve:
            if this_run:
                self._halt(failure)
            return True

        def ask(retry: _compile.Node, failed_name: str) -> Any:
            return self._ask(retry, failed_name, failure)
        try:
            action, retry = _resolution.resolve(node.name, node.retry, ask,
                                                self._options.defer_reverts)
        except _Abort as abort:
            self._halt(abort.failure)
            return False
        except _resolution.UnknownDecision:
            self._halt(failure_module.Failure())
            return False
        if this_run:  # one resolved again on resume was counted by its run
            self._discarded_failures += 1
        for nodes, intention in _resolution.intention_changes(action, retry,
                                                              self._compilation, self.plan):
            self._set_intentions(nodes, intention)
        return True

    def _ask(self, retry: _compile.Node, failed_name: str,
             failure: failure_module.Failure) -> Any:
        """Record the failure in the retry's history, then ask its ``on_failure``."""
        storage = self._storage
        storage.save_retry_failure(retry.name, failed_name, failure)
        try:
            arguments = storage.fetch_arguments(
                retry.name, self._compilation.argument_plan(retry, False))
        except exc.NotFound:
            raise _Abort(failure_module.Failure()) from None
        history = storage.get_retry_history(retry.name)
        if 'on_failure' in retry.coroutines:
            ok, decision = self._runner.run_coroutine(_call.ask_retry_async, retry.atom,
                                                      arguments, history)
        else:
            ok, decision = _call.ask_retry(retry.atom, arguments, history)
        if not ok:
            raise _Abort(decision)
        return decision

    def _set_intentions(self, nodes: Any, intention: str) -> None:
        plan = self.plan
        changed = [n for n in nodes if n.kind != _compile.JOIN
                   and plan.intention[n.index] != intention]
        if not changed:
            return
        self._storage.set_atoms_intention([n.name for n in changed], intention)
        for n in changed:
            plan.set_intention(n, intention)

    def _retry_subflow(self, retry: _compile.Node) -> None:
        """Reset a retry's reverted subflow so the retry can run it again."""
        storage, plan = self._storage, self.plan
        if plan.state[retry.index] != st.RETRYING:
            self._set_state(retry, st.RETRYING, plan.state[retry.index])
        self._reset_subflow(retry)
        ok, delay = _call.retry_delay(retry.atom, storage.get_retry_history(retry.name))
        if not ok:
            self._halt(delay)
            return
        if delay and delay > 0:
            storage.update_atom_metadata(retry.name, {_META_RETRY_AT: time.time() + delay})
            self._delay(retry, delay)
        storage.set_atom_intention(retry.name, st.EXECUTE)
        plan.set_intention(retry, st.EXECUTE)

    def _reset_subflow(self, retry: _compile.Node) -> None:
        """Back to ``PENDING`` (announced) for what a retry runs again."""
        storage, plan = self._storage, self.plan
        for node in plan.retry_resets(retry):
            if node.kind == _compile.JOIN:
                plan.reset(node)
                continue
            old_state = plan.state[node.index]
            storage.set_atom_pending(node.name)
            plan.reset(node)
            if old_state != st.PENDING:
                self._notify(node, st.PENDING, old_state)
                self._progress(node, 0.0)

    # -- timers ---------------------------------------------------------------

    def _delay(self, node: _compile.Node, seconds: float) -> None:
        """Keep ``node`` from running for ``seconds``; other branches go on."""
        if seconds <= 0:
            return
        self.plan.hold(node)
        heapq.heappush(self._timers,
                       (time.monotonic() + seconds, next(self._timer_sequence), node))

    def _release_due_timers(self) -> None:
        timers = self._timers
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            self.plan.release(heapq.heappop(timers)[2])

    # -- deciders -------------------------------------------------------------

    def _settle_decisions(self) -> None:
        """While suspending, still ask the deciders that have become due (as
        the original): what they skip is stored ``IGNORE`` before the run
        stops, and a run left with nothing else to do ends ``SUCCESS``."""
        steps = self.plan.take_decisions()
        while steps:
            for _kind, node in steps:
                self._decide(node)
            steps = self.plan.take_decisions()

    def _decide(self, node: _compile.Node) -> None:
        plan = self.plan
        if plan.decided_earlier(node):
            plan.set_decided(node)
            return
        voters = plan.voters(node)
        history = {source.name: self._storage.get(source.name)
                   for source, _decider, _depth in voters if source.kind != _compile.JOIN}
        refusals = []
        for _source, decider, depth in voters:
            ok, answer = _call.ask_decider(decider, history)
            if not ok:
                self._halt(answer)
                return
            if not answer:
                refusals.append(depth)
        if refusals:
            depth = deciders_module.pick_widest(refusals)
            for target in plan.ignore_targets(node, depth):
                if plan.state[target.index] == st.PENDING:
                    self._ignore(target)
        plan.set_decided(node)

    def _ignore(self, node: _compile.Node) -> None:
        storage, plan = self._storage, self.plan
        storage.set_atom_intention(node.name, st.IGNORE)
        storage.set_atom_state(node.name, st.IGNORE)
        plan.set_intention(node, st.IGNORE)
        plan.set_state(node, st.IGNORE)
        self._notify(node, st.IGNORE, st.PENDING)
        self._progress(node, 0.0)

    # -- state changes and notifications -------------------------------------

    def _set_state(self, node: _compile.Node, state: str, old_state: str) -> None:
        self._storage.set_atom_state(node.name, state)
        self.plan.set_state(node, state)
        if state != old_state:
            self._notify(node, state, old_state)

    def _notify(self, node: _compile.Node, state: str, old_state: str,
                result: Any = _NO_RESULT) -> None:
        notify_atom(self._atom_notifier, self._storage, node, state, old_state, result)

    def _progress(self, node: _compile.Node, progress: float) -> None:
        set_progress(self._storage, node, progress)

    def _store_progress(self, task: Any, progress: float, details: dict[str, Any]) -> None:
        """Progress a task reported while running (the sink every task gets).

        Called on the task's thread: storage is thread safe, and so the value
        is stored before ``update_progress`` returns, as in the original.
        """
        self._storage.set_task_progress(task.name, progress, details)


def notify_atom(notifier: Any, storage: Any, node: _compile.Node, state: str,
                old_state: str, result: Any = _NO_RESULT) -> None:
    """Tell ``atom_notifier`` listeners that an atom moved (details built only if heard)."""
    if not notifier.has_listeners(state):
        return
    name_key, uuid_key = _TASK_EVENT_KEYS if node.kind == _compile.TASK else _RETRY_EVENT_KEYS
    details = {name_key: node.name,
               uuid_key: storage.get_atom_uuid(node.name),
               'old_state': old_state}
    if result is not _NO_RESULT:
        details['result'] = result
    notifier.notify(state, details)


def set_progress(storage: Any, node: _compile.Node, progress: float) -> None:
    """Engine-driven task progress (0.0 when (re)starting, 1.0 when done)."""
    if node.kind == _compile.TASK:
        node.atom._notify_progress(progress)
        storage.set_task_progress(node.name, progress)


class _Abort(Exception):
    """Internal: resolving a failure itself failed (the retry raised...)."""

    def __init__(self, failure: failure_module.Failure) -> None:
        super().__init__(failure)
        self.failure = failure
