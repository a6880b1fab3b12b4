"""The plan: pure bookkeeping of what may run (or revert) next.

The plan keeps, for every node of a compiled flow, the atom's state and
intention plus two counters, and hands out *steps* as nodes become ready.  It
does no I/O, takes no locks and calls no user code; the run loop
(``_loop.py``) performs the steps and reports back through ``set_state`` and
``set_intention``.  Every state change updates only the neighbours of the
node that changed, so a whole run costs O(edges), whatever the flow's size.

State of the plan, per node index ``i``:

``state[i]``, ``intention[i]``
    The atom's state and intention (as in storage).  Joins have neither.
``wait_exec[i]``
    Predecessors that are not *done*.  An atom is done when ``SUCCESS`` or
    ``IGNORE`` and its own ``wait_exec`` is 0 (as the original walks a flow
    forward: an atom resumed as ``SUCCESS`` behind a ``PENDING`` one holds
    its successors back until that one finishes); a join when its own
    ``wait_exec`` is 0 (and its deciders, if any, said yes).  A node may
    execute only when this is 0.
``wait_revert[i]``
    Successors that are not *clear*.  An atom is clear when ``PENDING`` or
    ``REVERTED`` (nothing of it left to undo); a join or an ``IGNORE`` atom
    when its own ``wait_revert`` is 0 (it passes its successors' status
    through).  A node may revert only when this is 0, which is what makes
    reverts run in reverse dependency order.
``decided[i]``
    For nodes with deciders on incoming links: the deciders have been asked.

Ready rules:

* execute: intention ``EXECUTE``, state ``PENDING`` (or ``RETRYING`` for a
  retry being re-run), ``wait_exec == 0``;  a node with deciders first yields
  a ``DECIDE`` step;
* revert: intention ``REVERT``, state ``SUCCESS``/``FAILURE``,
  ``wait_revert == 0``;
* retry: a retry with intention ``RETRY``, state ``SUCCESS`` (or
  ``RETRYING`` after a crash), ``wait_revert == 0``: its subflow is reverted
  and it may run it again.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from taskflow import deciders as deciders_module
from taskflow import states as st
from taskflow.engines.action_engine import _compile

EXECUTE = 'execute'
REVERT = 'revert'
RETRY = 'retry'
DECIDE = 'decide'

_DONE = frozenset((st.SUCCESS, st.IGNORE))
_CLEAR = frozenset((st.PENDING, st.REVERTED))
_EXECUTABLE = frozenset((st.PENDING, st.RETRYING))
_REVERTIBLE = frozenset((st.SUCCESS, st.FAILURE))
# How states a crashed run left behind are loaded: an atom that was running
# never finished (run it again); one that was reverting must revert again.
LOADED_AS = {st.RUNNING: st.PENDING, st.REVERTING: st.FAILURE}
_RETRYABLE = frozenset((st.SUCCESS, st.RETRYING))



class Step(NamedTuple):
    """Something the loop should do now to one node."""

    kind: str              # EXECUTE, REVERT, RETRY or DECIDE
    node: _compile.Node


class Plan:
    """Ready/done bookkeeping for one run of one compiled flow."""

    def __init__(self, compilation: _compile.Compilation,
                 states: dict[str, str], intentions: dict[str, str]) -> None:
        """Load the plan from stored atom states and intentions (by atom name).

        Atoms stored as ``RUNNING`` never finished: they count as ``PENDING``
        (the loop turns them into reverts when the flow is reverting); atoms
        stored as ``REVERTING`` revert again.
        """
        self.compilation = compilation
        nodes = compilation.nodes
        n = len(nodes)
        self._nodes = nodes
        self._is_join = [node.kind == _compile.JOIN for node in nodes]
        # Joins have neither a state nor an intention ('').
        self.state: list[str] = [''] * n
        self.intention: list[str] = [''] * n
        for node in compilation.atoms:
            state = states.get(node.name, st.PENDING)
            self.state[node.index] = LOADED_AS.get(state, state)
            self.intention[node.index] = intentions.get(node.name, st.EXECUTE)
        self.decided = [node.deciders is None for node in nodes]
        self.held = [False] * n        # waiting for a timer (a retry's delay)
        self.wait_exec = [0] * n
        self.wait_revert = [0] * n
        self._queued = [False] * n
        self._ready: deque[int] = deque()
        self.halted = False
        # Retry index -> atoms after its subflow that its RETRY decision
        # reverts (and that it runs again with its subflow).
        self._retry_extras: dict[int, list[_compile.Node]] = {}
        for node in nodes:  # index order is topological
            self.wait_exec[node.index] = sum(1 for p in node.preds if not self._done(p.index))
        for node in reversed(nodes):
            self.wait_revert[node.index] = sum(1 for s in node.succs if not self._clear(s.index))
        for node in nodes:
            self._check(node.index)

    # -- derived status -------------------------------------------------------

    def _done(self, i: int) -> bool:
        if self.wait_exec[i] != 0:
            return False
        if self._is_join[i]:
            return self.decided[i]
        return self.state[i] in _DONE

    def _passes_through(self, i: int) -> bool:
        # Joins and skipped (IGNORE) atoms stand between their neighbours
        # without doing anything: readiness flows through them.
        return self._is_join[i] or self.state[i] == st.IGNORE

    def _clear(self, i: int) -> bool:
        if self._passes_through(i):
            return self.wait_revert[i] == 0
        return self.state[i] in _CLEAR

    # -- readiness ------------------------------------------------------------

    def _check(self, i: int) -> None:
        """Queue node ``i`` if it has become ready for some step."""
        if self._queued[i] or self._step_for(i) is None:
            return
        self._queued[i] = True
        self._ready.append(i)

    def _step_for(self, i: int) -> str | None:
        if self._is_join[i]:
            # Joins only ever need a step to ask their deciders.
            if not self.decided[i] and self.wait_exec[i] == 0:
                return DECIDE
            return None
        if self.held[i]:
            return None
        state = self.state[i]
        intention = self.intention[i]
        if intention == st.EXECUTE:
            if state in _EXECUTABLE and self.wait_exec[i] == 0:
                return EXECUTE if self.decided[i] else DECIDE
        elif intention == st.REVERT:
            if state in _REVERTIBLE and self.wait_revert[i] == 0:
                return REVERT
        elif intention == st.RETRY:
            if state in _RETRYABLE and self.wait_revert[i] == 0:
                return RETRY
        return None

    def take_ready(self) -> list[Step]:
        """The steps that can be performed now, highest atom priority first."""
        if self.halted or not self._ready:
            return []
        steps = []
        ready = self._ready
        while ready:
            i = ready.popleft()
            self._queued[i] = False
            kind = self._step_for(i)
            if kind is not None:
                steps.append(Step(kind, self._nodes[i]))
        if len(steps) > 1:
            steps.sort(key=lambda step: -step.node.priority)
        return steps

    def take_decisions(self) -> list[Step]:
        """Only the ``DECIDE`` steps ready now; other ready steps stay queued."""
        if self.halted:
            return []
        steps: list[Step] = []
        others: deque[int] = deque()
        while self._ready:
            i = self._ready.popleft()
            kind = self._step_for(i)
            if kind == DECIDE:
                self._queued[i] = False
                steps.append(Step(kind, self._nodes[i]))
            elif kind is not None:
                others.append(i)
            else:
                self._queued[i] = False
        self._ready = others
        return steps

    def has_queued(self) -> bool:
        """Whether some node was queued as (possibly) ready since the last hand-out."""
        return bool(self._ready)

    def has_ready(self) -> bool:
        return any(self._step_for(i) is not None for i in self._ready)

    # -- changes --------------------------------------------------------------

    def set_state(self, node: _compile.Node, new_state: str) -> None:
        """Record an atom's new state and wake up whatever it unblocks."""
        i = node.index
        old = self.state[i]
        if old == new_state:
            return
        was_done, was_clear = self._done(i), self._clear(i)
        self.state[i] = new_state
        is_done, is_clear = self._done(i), self._clear(i)
        if was_done != is_done:
            self._propagate_done(node, -1 if is_done else 1)
        if was_clear != is_clear:
            self._propagate_clear(node, -1 if is_clear else 1)
        self._check(i)

    def set_intention(self, node: _compile.Node, intention: str) -> None:
        i = node.index
        if self.intention[i] != intention:
            self.intention[i] = intention
            self._check(i)

    def _propagate_done(self, node: _compile.Node, delta: int) -> None:
        """Successors of ``node`` gain (+1) or lose (-1) an unfinished predecessor."""
        stack = [(node, delta)]
        wait = self.wait_exec
        while stack:
            current, change = stack.pop()
            for succ in current.succs:
                j = succ.index
                before = wait[j]
                wait[j] = before + change
                if before and wait[j]:
                    continue  # still waiting: nothing flips
                # A join (once decided) or a finished atom is done exactly
                # when its counter is 0: it flips, and so do its successors.
                if self.decided[j] if self._is_join[j] else self.state[j] in _DONE:
                    stack.append((succ, change))
                elif wait[j] == 0:
                    self._check(j)

    def _propagate_clear(self, node: _compile.Node, delta: int) -> None:
        """Predecessors of ``node`` gain (+1) or lose (-1) an uncleared successor."""
        stack = [(node, delta)]
        wait = self.wait_revert
        while stack:
            current, change = stack.pop()
            for pred in current.preds:
                j = pred.index
                before = wait[j]
                wait[j] = before + change
                if self._passes_through(j):
                    if before == 0 or wait[j] == 0:
                        stack.append((pred, change))
                elif wait[j] == 0:
                    self._check(j)

    def hold(self, node: _compile.Node) -> None:
        """Keep ``node`` from being handed out until :meth:`release`."""
        self.held[node.index] = True

    def release(self, node: _compile.Node) -> None:
        self.held[node.index] = False
        self._check(node.index)

    def set_decided(self, node: _compile.Node) -> None:
        """The deciders of ``node`` have been asked (and their answer applied)."""
        i = node.index
        if self.decided[i]:
            return
        self.decided[i] = True
        if self._is_join[i]:
            if self.wait_exec[i] == 0:
                self._propagate_done(node, -1)
        else:
            self._check(i)

    def reset(self, node: _compile.Node) -> None:
        """Back to ``PENDING``/``EXECUTE`` (a retry is about to re-run its subflow)."""
        if node.deciders is not None and self.decided[node.index]:
            i = node.index
            if self._is_join[i] and self.wait_exec[i] == 0:
                self._propagate_done(node, 1)
            self.decided[i] = False
        if not self._is_join[node.index]:
            self.set_intention(node, st.EXECUTE)
            self.set_state(node, st.PENDING)

    # -- decisions ------------------------------------------------------------

    def revert_interrupted(self, stored_states: dict[str, str]) -> None:
        """Atoms a crashed run left ``RUNNING`` whose flow is reverting now
        (their intention is ``REVERT``) may have done part of their work:
        they revert too (as ``FAILURE``) instead of counting as never run."""
        for node in self.compilation.atoms:
            i = node.index
            if (stored_states.get(node.name) == st.RUNNING
                    and self.intention[i] == st.REVERT and self.state[i] == st.PENDING):
                self.set_state(node, st.FAILURE)

    def unfinished_retries(self) -> list[_compile.Node]:
        """Retries a crashed run left part-way through running their subflow
        again (``RETRYING`` with intention ``EXECUTE``): the reset of their
        subflow may be incomplete, so it is done again."""
        return [node for node in self.compilation.atoms
                if node.kind == _compile.RETRY and self.state[node.index] == st.RETRYING
                and self.intention[node.index] == st.EXECUTE]

    def retry_targets(self, retry: _compile.Node) -> list[_compile.Node]:
        """What a retry's ``RETRY`` decision reverts: its subflow, plus atoms
        after the subflow that already ran (only after a resume from odd
        stored states: normally nothing after a subflow runs before it ends)."""
        targets = self.compilation.subflow(retry)
        extras = self._unclear_after(retry.scope.end)
        if extras:
            self._retry_extras[retry.index] = extras
            targets = targets + extras
        return targets

    def retry_resets(self, retry: _compile.Node) -> list[_compile.Node]:
        """What goes back to ``PENDING`` when a retry runs its subflow again:
        the subflow, and what :meth:`retry_targets` reverted after it."""
        extras = self._retry_extras.pop(retry.index, None)
        if extras is None:  # a resumed run: find them by their intention
            extras = [node for node in self._atoms_after(retry.scope.end)
                      if self.intention[node.index] == st.REVERT]
        return self.compilation.subflow(retry) + extras

    def _unclear_after(self, node: _compile.Node) -> list[_compile.Node]:
        if self.wait_revert[node.index] == 0:
            return []  # nothing after it has anything to undo
        return [n for n in self._atoms_after(node)
                if self.state[n.index] not in _CLEAR and self.state[n.index] != st.IGNORE]

    def _atoms_after(self, node: _compile.Node) -> list[_compile.Node]:
        return self._reachable_atoms(list(node.succs))

    def voters(self, node: _compile.Node) -> list[tuple[_compile.Node, object, deciders_module.Depth]]:
        """The links into ``node`` whose deciders have a say: links from
        skipped (``IGNORE``) atoms do not vote; links from subflows do."""
        return [(source, decider, depth) for source, decider, depth in node.deciders or ()
                if source.kind == _compile.JOIN or self.state[source.index] != st.IGNORE]

    def decided_earlier(self, node: _compile.Node) -> bool:
        """Whether an earlier (interrupted) run already acted on the deciders
        of ``node``: one of the atoms they guard has left ``PENDING``."""
        return any(self.state[f.index] != st.PENDING for f in self._entry_atoms(node))

    def final_state(self, suspending: bool, waiting_timers: bool) -> str | None:
        """The flow state a run ends in once nothing is in flight.

        ``None`` means stuck: atoms are left that can never run (an engine
        error). A run with failures to re-raise ends ``FAILURE`` (decided by
        the caller, before asking).
        """
        if suspending and (self.has_ready() or waiting_timers):
            return st.SUSPENDED
        state = self.state
        unfinished = [n for n in self.compilation.atoms
                      if state[n.index] not in (st.SUCCESS, st.IGNORE)]
        if not unfinished:
            return st.SUCCESS
        if any(state[n.index] in (st.REVERTED, st.FAILURE) for n in unfinished):
            return st.REVERTED
        if suspending:
            return st.SUSPENDED
        return None

    def unfinished_names(self) -> list[str]:
        return sorted(n.name for n in self.compilation.atoms
                      if self.state[n.index] not in (st.SUCCESS, st.IGNORE))

    # -- queries --------------------------------------------------------------

    def ignore_targets(self, node: _compile.Node,
                       depth: deciders_module.Depth) -> list[_compile.Node]:
        """The atoms a negative decision on ``node`` sets to ``IGNORE``.

        The decision is about the *first atoms* reached from ``node`` (the node
        itself if it is an atom; the entry atoms of the flow if it is a flow's
        start join).  ``ALL`` ignores everything after them too; ``FLOW`` the
        atoms after them in their own flow (not entering nested flows);
        ``NEIGHBORS`` their direct successor tasks; ``ATOM`` nothing more.
        """
        firsts = self._entry_atoms(node)
        if depth == deciders_module.Depth.ALL:
            return self._reachable_atoms(firsts)
        targets = list(firsts)
        seen = {n.index for n in firsts}
        for first in firsts:
            if depth == deciders_module.Depth.NEIGHBORS:
                for succ in first.succs:
                    if succ.kind == _compile.TASK and succ.index not in seen:
                        seen.add(succ.index)
                        targets.append(succ)
            elif depth == deciders_module.Depth.FLOW:
                stack = [first]
                while stack:
                    for succ in stack.pop().succs:
                        if (succ.kind != _compile.JOIN and succ.scope is first.scope
                                and succ.index not in seen):
                            seen.add(succ.index)
                            targets.append(succ)
                            stack.append(succ)
        return targets

    @staticmethod
    def _entry_atoms(node: _compile.Node) -> list[_compile.Node]:
        """The atoms a decision about ``node`` is about (see :meth:`ignore_targets`)."""
        if node.kind != _compile.JOIN:
            return [node]
        found, stack, seen = [], [node], {node.index}
        while stack:
            for succ in stack.pop().succs:
                if succ.index in seen:
                    continue
                seen.add(succ.index)
                if succ.kind != _compile.JOIN:
                    found.append(succ)
                elif succ is succ.scope.start:  # into nested flows, never out of one
                    stack.append(succ)
        return found

    @staticmethod
    def _reachable_atoms(starts: list[_compile.Node]) -> list[_compile.Node]:
        found, seen, stack = [], set(), list(starts)
        while stack:
            current = stack.pop()
            if current.index in seen:
                continue
            seen.add(current.index)
            if current.kind != _compile.JOIN:
                found.append(current)
            stack.extend(current.succs)
        found.sort(key=lambda n: n.index)
        return found
