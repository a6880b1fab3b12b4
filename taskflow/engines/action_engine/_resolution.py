"""Failure resolution: which retry decides, and what its decision means.

When an atom fails, the retry of the innermost enclosing flow that has one is
asked (``on_failure``).  ``RETRY`` reverts that retry's subflow and runs it
again; ``REVERT_ALL`` reverts everything; ``REVERT`` defers to the parent
retry, and reverts only the retry's own subflow when no parent wants more
(see ``../shared/spec/retries.md``).  This module only decides: asking the
retries (user code) is the caller's ``ask`` callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskflow import retry as retry_module
from taskflow import states as st
from taskflow.engines.action_engine import _compile

if TYPE_CHECKING:
    from taskflow.engines.action_engine import _plan

Ask = Callable[[_compile.Node, str], Any]   # (retry node, failed atom name) -> Decision


class UnknownDecision(ValueError):
    """A retry's ``on_failure`` returned something that is not a decision."""


def resolve(failed_name: str, retry: _compile.Node | None, ask: Ask,
            defer_reverts: bool = False) -> tuple[str, _compile.Node | None]:
    """``(action, retry node)`` for a failure of ``failed_name`` under ``retry``.

    ``action`` is ``RETRY`` (with the retry that runs its subflow again),
    ``REVERT`` (with the retry whose subflow, and what follows it, reverts)
    or ``REVERT_ALL`` (with ``None``).
    """
    if retry is None:
        return retry_module.REVERT_ALL, None
    decision = ask(retry, failed_name)
    if decision == retry_module.RETRY:
        return retry_module.RETRY, retry
    if decision == retry_module.REVERT_ALL:
        return retry_module.REVERT_ALL, None
    if decision != retry_module.REVERT:
        raise UnknownDecision("Unknown atom failure resolution action/strategy '%s'"
                              % (decision,))
    # The parent retry is asked about this retry's failure in turn.
    parent = retry.retry
    if defer_reverts:
        return resolve(retry.name, parent, ask, defer_reverts)
    if parent is not None:
        action, target = resolve(retry.name, parent, ask, defer_reverts)
        if action != retry_module.REVERT:
            return action, target
    return retry_module.REVERT, retry


def downstream(node: _compile.Node) -> list[_compile.Node]:
    """``node`` and every node after it in the execution graph, in index order."""
    seen = {node.index}
    found = [node]
    stack = [node]
    while stack:
        for succ in stack.pop().succs:
            if succ.index not in seen:
                seen.add(succ.index)
                found.append(succ)
                stack.append(succ)
    found.sort(key=lambda n: n.index)
    return found


def intention_changes(action: str, retry: _compile.Node | None,
                      compilation: _compile.Compilation, plan: _plan.Plan
                      ) -> list[tuple[list[_compile.Node], str]]:
    """The intentions a resolved failure sets, as ``(nodes, intention)`` pairs.

    ``RETRY``: the retry's subflow (and anything after it that already ran)
    reverts, then the retry runs it again; ``REVERT``: the retry, its
    subflow and everything after it revert; ``REVERT_ALL``: every atom.
    """
    if action == retry_module.RETRY:
        assert retry is not None
        return [(plan.retry_targets(retry), st.REVERT), ([retry], st.RETRY)]
    if action == retry_module.REVERT:
        assert retry is not None
        return [(downstream(retry), st.REVERT)]
    return [(compilation.atoms, st.REVERT)]
