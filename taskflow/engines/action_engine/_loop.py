"""The run loop: the only code that moves atoms through their states.

``RunLoop.iterate()`` is the engine's event loop.  It yields the engine
states of ``run_iter()`` and, between yields, does that state's work:

``RESUMING``
    re-resolve failures a previous (crashed) run recorded but did not resolve;
``SCHEDULING``
    take every ready step from the plan and start it (the serial runner runs
    it right away);
``WAITING``
    wait for started atoms to finish;
``ANALYZING``
    record what finished (storage first, then notifications, then the plan),
    resolve failures, and pick the next state.

It owns the storage writes and the notifications of a run; user code is
called only through ``_call``; what is ready is decided only by ``_plan``.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator
from typing import Any

from taskflow import deciders as deciders_module
from taskflow import exceptions as exc
from taskflow import retry as retry_module
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


class RunLoop:
    """One run of an engine over its compiled flow."""

    def __init__(self, engine: Any, runner: Any, timeout: float | None,
                 never_resolve: bool = False, defer_reverts: bool = False,
                 task_timeout: float | None = None) -> None:
        self._engine = engine
        self._compilation: _compile.Compilation = engine._compilation
        self._storage = engine.storage
        self._atom_notifier = engine.atom_notifier
        self._runner = runner
        self._timeout = timeout
        self._never_resolve = never_resolve
        self._defer_reverts = defer_reverts
        self._task_timeout = task_timeout
        self._timers: list = []   # heap of (due, sequence, retry node) for delayed retries
        self._timer_sequence = 0
        self.failures: list[failure_module.Failure] = []   # what run() must re-raise
        # Execute failures of atoms already meant to revert (storage does not
        # list them; run() still raises them): atom name -> latest failure.
        self.late_failures: dict[str, failure_module.Failure] = {}
        self._finished: list = []
        self.plan: _plan.Plan
        # Keys in the original's (alphabetical) order: programs print them.
        self.seconds_per_state = {'analyzing': 0.0, 'resuming': 0.0, 'scheduling': 0.0,
                                  'waiting': 0.0}
        self.final_state: str | None = None
        self.completed = 0             # executions and reverts that finished
        self.discarded_failures = 0    # failures resolved by reverting or retrying

    # -- the loop -------------------------------------------------------------

    def iterate(self) -> Iterator[str]:
        """Yield engine states until the run ends.

        The last state yielded is the final one, except ``FAILURE``, which is
        not yielded: the engine raises the failure instead.
        """
        work = {st.RESUMING: self._resume, st.SCHEDULING: self._schedule,
                st.WAITING: self._wait, st.ANALYZING: self._analyze}
        stats = self.seconds_per_state
        stat_keys = {state: state.lower() for state in work}
        clock = time.monotonic
        state = st.RESUMING
        while state not in FINAL_STATES:
            try:
                sent = yield state
            except GeneratorExit:
                # Closing the iterator early: suspend and finish quietly.
                self._engine.suspend()
                while state not in FINAL_STATES:
                    state = work[state]()
                raise
            if sent:
                self._engine.suspend()
            started = clock()
            next_state = work[state]()
            stats[stat_keys[state]] += clock() - started
            state = next_state
        if state != st.FAILURE:  # like the original: a failed run raises instead
            yield state

    def _resume(self) -> str:
        compilation = self._compilation
        storage = self._storage
        states, intentions = {}, {}
        for node in compilation.atoms:
            ad = storage.get_atom_detail(node.name)
            states[node.name] = ad.state
            intentions[node.name] = ad.intention
        self.plan = _plan.Plan(compilation, states, intentions)
        for node in compilation.atoms:
            name = node.name
            if states[name] == st.FAILURE:
                # Not reverted yet: its resolution may be missing or half
                # written (a crash between intention writes, never_resolve).
                # Resolving again sets the same intentions when it was done.
                self._resolve(node, storage.get_atom_detail(name).failure, this_run=False)
        plan = self.plan
        for node in compilation.atoms:
            name = node.name
            if (states[name] == st.RUNNING and plan.intention[node.index] == st.REVERT
                    and plan.state[node.index] == st.PENDING):
                # Interrupted while running, and the flow is reverting now:
                # it may have done part of its work, so it reverts too.
                plan.set_state(node, st.FAILURE)
            elif states[name] == st.RETRYING and intentions[name] == st.EXECUTE:
                # A retry that was waiting out its delay: wait for what is left.
                retry_at = storage.get_atom_detail(name).meta.get(_META_RETRY_AT)
                if retry_at is not None:
                    self._delay(node, retry_at - time.time())
        return st.SCHEDULING

    def _schedule(self) -> str:
        if not self._stopping():
            plan = self.plan
            steps = plan.take_ready()
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
            timeout = self._timeout
            if timers:
                until_due = max(self._timers[0][0] - time.monotonic(), 0.0)
                timeout = until_due if timeout is None else min(timeout, until_due)
            self._finished = self._runner.wait(timeout)
        return st.ANALYZING

    def _analyze(self) -> str:
        finished, self._finished = self._finished, []
        for token, outcome in finished:
            kind, node = token
            if outcome is _executors.TIMED_OUT:
                outcome = (False, self._timeout_failure(node, kind))
            ok, value = outcome
            if kind == _plan.EXECUTE:
                self._executed(node, ok, value)
            else:
                self._reverted(node, ok, value)
        self._release_due_timers()
        if self._engine._suspend_requested:
            self._settle_decisions()
        if not self._stopping() and self.plan._ready:
            return st.SCHEDULING
        if self._runner.pending or (self._timers and not self._stopping()):
            return st.WAITING
        return self._finish()

    @property
    def in_flight(self) -> int:
        """Atoms started and not yet recorded as finished."""
        return self._runner.pending

    def _stopping(self) -> bool:
        return self.plan.halted or self._engine._suspend_requested

    def _finish(self) -> str:
        self.final_state = self._final_state()
        self._engine._change_flow_state(self.final_state)
        return self.final_state

    def _final_state(self) -> str:
        if self.failures:
            return st.FAILURE
        suspending = self._engine._suspend_requested
        if suspending and (self.plan.has_ready() or self._timers):
            return st.SUSPENDED
        plan_state = self.plan.state
        unfinished = [n for n in self._compilation.atoms
                      if plan_state[n.index] not in (st.SUCCESS, st.IGNORE)]
        if not unfinished:
            return st.SUCCESS
        if any(plan_state[n.index] in (st.REVERTED, st.FAILURE) for n in unfinished):
            return st.REVERTED
        if suspending:
            return st.SUSPENDED
        self.failures.append(failure_module.Failure.from_exception(exc.ExecutionFailure(
            'Engine stopped with atoms that can never run: %s'
            % sorted(n.name for n in unfinished))))
        return st.FAILURE

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
            self._submit_task((_plan.EXECUTE, node), _call.execute_task, atom, arguments)
        else:
            history = self._storage.get_retry_history(node.name)
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
            self._submit_task((_plan.REVERT, node), _call.revert_task, atom, arguments,
                              result, flow_failures)
        else:
            history = self._storage.get_retry_history(node.name)
            self._runner.run_local((_plan.REVERT, node), _call.revert_retry, atom, arguments,
                                   history, flow_failures)

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

    def _submit_task(self, token: tuple, fn: Any, *args: Any) -> None:
        kind, node = token
        timeout = node.atom.timeout or self._task_timeout
        if timeout:
            label = "task '%s' (%s)" % (node.name, kind)
            self._runner.submit_timed(token, timeout, label, fn, *args)
        else:
            self._runner.submit(token, fn, *args)

    def _timeout_failure(self, node: _compile.Node, kind: str) -> failure_module.Failure:
        timeout = node.atom.timeout or self._task_timeout
        method = 'execute' if kind == _plan.EXECUTE else 'revert'
        return failure_module.Failure.from_exception(exc.AtomTimeout(
            "Task '%s' did not finish %s within %s seconds; it was abandoned (its thread"
            " may still be running)" % (node.name, method, timeout)))

    # -- recording outcomes ---------------------------------------------------

    def _executed(self, node: _compile.Node, ok: bool, value: Any) -> None:
        name = node.name
        is_task = node.kind == _compile.TASK
        if ok:
            try:
                # A finished task is at progress 1.0: stored in the same write.
                self._storage.save(name, value, st.SUCCESS, progress=1.0 if is_task else None)
            except exc.StorageFailure:
                ok, value = False, failure_module.Failure()
        if ok:
            self.completed += 1
            self.plan.set_state(node, st.SUCCESS)
            self._notify(node, st.SUCCESS, st.RUNNING, value)
            if is_task:
                node.atom._notify_progress(1.0)
            return
        if self.plan.intention[node.index] == st.REVERT:
            self.late_failures[name] = value
        self._storage.save(name, value, st.FAILURE)
        self.plan.set_state(node, st.FAILURE)
        self._notify(node, st.FAILURE, st.RUNNING, value)
        if self._resolve(node, value):
            self.completed += 1  # (as the original: not when resolving broke)

    def _reverted(self, node: _compile.Node, ok: bool, value: Any) -> None:
        name = node.name
        self.completed += 1
        if ok:
            is_task = node.kind == _compile.TASK
            # As the original, a retry's revert result is notified, not stored.
            self._storage.save(name, value if is_task else None, st.REVERTED,
                               progress=1.0 if is_task else None)
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
        self.failures.append(failure)
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
        if self._never_resolve:
            if this_run:
                self._halt(failure)
            return True

        def ask(retry: _compile.Node, failed_name: str) -> Any:
            return self._ask(retry, failed_name, failure)
        try:
            action, retry = _resolution.resolve(node.name, node.retry, ask,
                                                self._defer_reverts)
        except _Abort as abort:
            self._halt(abort.failure)
            return False
        except _resolution.UnknownDecision:
            self._halt(failure_module.Failure())
            return False
        if this_run:  # one resolved again on resume was counted by its run
            self.discarded_failures += 1
        if action == retry_module.RETRY:
            self._set_intentions(self._compilation.subflow(retry), st.REVERT)
            self._set_intentions([retry], st.RETRY)
        elif action == retry_module.REVERT:
            self._set_intentions(_resolution.downstream(retry), st.REVERT)
        else:
            self._set_intentions(self._compilation.atoms, st.REVERT)
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
        ok, decision = _call.ask_retry(retry.atom, arguments,
                                       storage.get_retry_history(retry.name))
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
        for node in self._compilation.subflow(retry):
            if node.kind == _compile.JOIN:
                plan.reset(node)
                continue
            old_state = plan.state[node.index]
            storage.set_atom_pending(node.name)
            plan.reset(node)
            if old_state != st.PENDING:
                self._notify(node, st.PENDING, old_state)
                self._progress(node, 0.0)
        ok, delay = _call.retry_delay(retry.atom, storage.get_retry_history(retry.name))
        if not ok:
            self._halt(delay)
            return
        if delay and delay > 0:
            storage.update_atom_metadata(retry.name, {_META_RETRY_AT: time.time() + delay})
            self._delay(retry, delay)
        storage.set_atom_intention(retry.name, st.EXECUTE)
        plan.set_intention(retry, st.EXECUTE)

    # -- timers ---------------------------------------------------------------

    def _delay(self, node: _compile.Node, seconds: float) -> None:
        """Keep ``node`` from running for ``seconds``; other branches go on."""
        if seconds <= 0:
            return
        self.plan.hold(node)
        self._timer_sequence += 1
        heapq.heappush(self._timers, (time.monotonic() + seconds, self._timer_sequence, node))

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
        firsts = plan._entry_atoms(node)
        if any(plan.state[f.index] != st.PENDING for f in firsts):
            plan.set_decided(node)  # decided by an earlier (interrupted) run
            return
        # Links from skipped (IGNORE) atoms have no say; links from subflows do.
        voters = [(source, decider, depth) for source, decider, depth in node.deciders
                  if source.kind == _compile.JOIN or plan.state[source.index] != st.IGNORE]
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

    def _store_progress(self, task: Any, progress: float, details: dict) -> None:
        """Progress a task reported while running (the sink every task gets).

        Called on the task's thread: storage is thread safe, and so the value
        is stored before ``update_progress`` returns, as in the original.
        """
        self._storage.set_task_progress(task.name, progress, details)

    def detach(self) -> None:
        """Forget the progress sinks installed on tasks (the run is over)."""
        for node in self._compilation.atoms:
            if node.kind == _compile.TASK:
                node.atom._progress_sink = None


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
