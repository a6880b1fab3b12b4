"""What each operator action changes: pure functions, no I/O.

Each ``plan_*`` function looks at a stored flow detail and the compiled flow
(to know which retry governs which atom and who needs whose results) and
returns a :class:`Plan`: the new flow state and, per atom, the fields to
store.  Nothing is written here (``_apply`` does that, atomically), so these
rules can be tested on literal data.

How the engine reads what we leave (``_loop._resume``, ``_plan.Plan``):
``SUCCESS`` atoms are not run again and their results are used; ``PENDING``
atoms with intention ``EXECUTE`` run; ``IGNORE`` atoms are passed over;
atoms with intention ``REVERT`` are reverted newest first.  A flow stored as
``REVERTED`` is reset entirely by the engine, so actions leave the flow
``SUSPENDED`` (the state of a flow that ran part-way and can be resumed).

The rules, per action:

``retry``
    Atoms that failed, were reverted or were caught running/reverting go
    back to ``PENDING``; so do the retry controllers governing them (with a
    fresh history: the retried part gets its attempts back).  Atoms that
    succeeded keep their results (a revert they were waiting for is
    cancelled).
``skip``
    One task is recorded ``IGNORE`` (or ``SUCCESS`` with a given result);
    the rest as for ``retry``, so the flow carries on past it.  Ignoring a
    task whose result a later atom needs (and no one else provides) is
    refused: give a result instead.
``resume_no_revert``
    Pending reverts are cancelled: atoms that still hold results keep them,
    atoms that failed or were reverted run again.  (The run that follows
    does not revert on a new failure either: see ``_actions``.)
``revert``
    Every atom is meant to revert (as a ``REVERT_ALL`` decision does):
    resuming reverts, newest first, everything that holds a result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from taskflow import states as st
from taskflow.engines.action_engine import _compile
from taskflow.operate import _errors
from taskflow.persistence import models
from taskflow.storage import Storage

#: Atom states an action resets to PENDING: something failed, was undone or
#: was interrupted there.
RESETTABLE = frozenset((st.FAILURE, st.REVERTED, st.REVERT_FAILURE, st.REVERTING,
                        st.RUNNING, st.RETRYING))
#: Atom states that hold something a revert would undo.
REVERTIBLE = frozenset((st.SUCCESS, st.FAILURE, st.RUNNING, st.REVERTING, st.RETRYING,
                        st.REVERT_FAILURE))
FIELDS = ('state', 'intention', 'results', 'failure', 'revert_results', 'revert_failure')

#: Flow states each action accepts.  A flow stored as RUNNING/SUSPENDING/
#: RESUMING only gets here when no one runs it (see ``_lease``): it is
#: treated as SUSPENDED.
ACCEPTS = {
    'retry': frozenset((st.FAILURE, st.REVERTED, st.SUSPENDED)),
    'skip': frozenset((st.FAILURE, st.REVERTED, st.SUSPENDED, st.PENDING)),
    'resume': frozenset((st.FAILURE, st.REVERTED, st.SUSPENDED, st.PENDING)),
    'resume_no_revert': frozenset((st.FAILURE, st.SUSPENDED, st.PENDING)),
    'revert': frozenset((st.FAILURE, st.SUSPENDED)),
}
_ADVICE = {
    (st.SUCCESS, 'retry'): 'it finished successfully, there is nothing to retry',
    (st.SUCCESS, 'skip'): 'it finished successfully, there is nothing to skip',
    (st.SUCCESS, 'resume'): 'it already finished successfully',
    (st.SUCCESS, 'resume_no_revert'): 'it already finished successfully',
    (st.SUCCESS, 'revert'): 'it finished successfully; only unfinished flows are reverted',
    (st.REVERTED, 'resume_no_revert'): 'it was already reverted; use retry to run it again',
    (st.REVERTED, 'revert'): 'it was already reverted',
    (st.PENDING, 'retry'): 'it never ran; use resume to run it',
    (st.PENDING, 'revert'): 'it never ran, there is nothing to revert',
}


class AtomChange(NamedTuple):
    """New values for some fields of one atom detail."""

    name: str
    before: tuple[str | None, str | None]     # (state, intention) when planned
    after: dict[str, Any]                      # field -> value ('state', 'intention', ...)


class Plan(NamedTuple):
    """What an action will store."""

    action: str
    flow_state: tuple[str | None, str]         # (before, after)
    changes: tuple[AtomChange, ...]
    notes: dict[str, Any]                      # extra facts for the action record


def effective_state(flow_detail: models.FlowDetail) -> str:
    """The flow state actions reason about (a crashed run counts as SUSPENDED)."""
    state = flow_detail.state or st.PENDING
    if state in (st.RUNNING, st.SUSPENDING, st.RESUMING):
        return st.SUSPENDED
    return state


def check_accepts(action: str, flow_detail: models.FlowDetail) -> str:
    """The effective flow state, or :class:`ActionRefused` when ``action`` does not apply."""
    state = effective_state(flow_detail)
    if state not in ACCEPTS[action]:
        why = _ADVICE.get((state, action), 'it is %s' % state)
        raise _errors.ActionRefused("cannot %s flow %r (%s): %s"
                                    % (action.replace('_', ' '), flow_detail.name,
                                       flow_detail.uuid, why))
    return state


def _details(flow_detail: models.FlowDetail) -> dict[str, models.AtomDetail]:
    return {ad.name: ad for ad in flow_detail if ad.name != Storage.injector_name}


def _reset_fields(ad: models.AtomDetail) -> dict[str, Any]:
    return {'state': st.PENDING, 'intention': st.EXECUTE,
            'results': [] if isinstance(ad, models.RetryDetail) else None,
            'failure': None, 'revert_results': None, 'revert_failure': None}


def _differs(current: Any, wanted: Any) -> bool:
    try:
        return bool(current != wanted) or type(current) is not type(wanted)
    except Exception:  # values that cannot compare (arrays...): assume a change
        return True


def _change(ad: models.AtomDetail, after: dict[str, Any]) -> AtomChange | None:
    """The change, or ``None`` when ``ad`` already has those values."""
    if not any(_differs(getattr(ad, field), value) for field, value in after.items()):
        return None
    return AtomChange(ad.name, (ad.state, ad.intention), after)


def _governing_retries(nodes: Iterable[_compile.Node]) -> set[str]:
    """Names of every retry that decides about any of ``nodes`` (transitively)."""
    found: set[str] = set()
    for node in nodes:
        retry = node.retry
        while retry is not None and retry.name not in found:
            found.add(retry.name)
            retry = retry.retry
    return found


def _failure_notes(details: dict[str, models.AtomDetail], names: Iterable[str]) -> dict:
    notes = {}
    for name in names:
        ad = details[name]
        failure = ad.failure or ad.revert_failure
        if failure is not None:
            names = tuple(failure.exc_type_names)
            notes[name] = '%s: %s' % (names[0] if names else 'Exception',
                                      failure.exception_str)
    return notes


def _going_again(flow_detail: models.FlowDetail, compilation: _compile.Compilation,
                 keep: frozenset[str] = frozenset()) -> tuple[list[AtomChange], list[str]]:
    """Changes that make a stopped flow go forward again (shared by retry and skip).

    Returns the changes and the names of the atoms that will run again.
    """
    details = _details(flow_detail)
    stored = [node for node in compilation.atoms
              if node.name in details and node.name not in keep]
    again = [node for node in stored if details[node.name].state in RESETTABLE]
    refreshed = _governing_retries(again) - keep
    changes = []
    for node in stored:
        ad = details[node.name]
        if node.name in refreshed or ad.state in RESETTABLE:
            after = _reset_fields(ad)
        elif ad.state in (st.SUCCESS, st.PENDING):
            after = {'intention': st.EXECUTE}   # a planned revert is cancelled
        else:
            continue   # IGNORE: a decider's choice stands
        change = _change(ad, after)
        if change is not None:
            changes.append(change)
    rerun = [node.name for node in stored
             if node.name in refreshed or details[node.name].state in RESETTABLE]
    return changes, rerun


def plan_retry(flow_detail: models.FlowDetail,
               compilation: _compile.Compilation) -> Plan:
    """Retry a stopped flow from the atom(s) that failed (see module doc)."""
    state = check_accepts('retry', flow_detail)
    changes, rerun = _going_again(flow_detail, compilation)
    details = _details(flow_detail)
    if not any(details[name].state in RESETTABLE for name in rerun):
        raise _errors.ActionRefused(
            "cannot retry flow %r (%s): no atom failed, was reverted or was interrupted"
            " (it is %s); use resume" % (flow_detail.name, flow_detail.uuid, state))
    return Plan('retry', (flow_detail.state, st.SUSPENDED), tuple(changes),
                {'rerun': rerun, 'failures': _failure_notes(details, rerun)})


def plan_skip(flow_detail: models.FlowDetail, compilation: _compile.Compilation,
              atom_name: str, result: Any, with_result: bool) -> Plan:
    """Record one task as skipped, then carry on as a retry does."""
    state = check_accepts('skip', flow_detail)
    details = _details(flow_detail)
    node = compilation.by_name.get(atom_name)
    if node is None or atom_name not in details:
        known = ', '.join(sorted(details)) or 'none'
        raise _errors.ActionRefused("flow %r (%s) has no atom %r (atoms: %s)"
                                    % (flow_detail.name, flow_detail.uuid, atom_name, known))
    if node.kind != _compile.TASK:
        raise _errors.ActionRefused("cannot skip %r in flow %r: it is a retry controller,"
                                    " only tasks can be skipped"
                                    % (atom_name, flow_detail.name))
    ad = details[atom_name]
    if ad.state == st.SUCCESS:
        raise _errors.ActionRefused("cannot skip %r in flow %r: it already succeeded"
                                    % (atom_name, flow_detail.name))
    if ad.state == st.IGNORE:
        raise _errors.ActionRefused("cannot skip %r in flow %r: it is already skipped"
                                    " (IGNORE)" % (atom_name, flow_detail.name))
    if not with_result:
        _check_nobody_needs(flow_detail, compilation, node)
        after = {'state': st.IGNORE, 'intention': st.IGNORE, 'results': None,
                 'failure': None, 'revert_results': None, 'revert_failure': None}
    else:
        after = {'state': st.SUCCESS, 'intention': st.EXECUTE, 'results': result,
                 'failure': None, 'revert_results': None, 'revert_failure': None}
    changes, rerun = _going_again(flow_detail, compilation, keep=frozenset([atom_name]))
    changes.insert(0, AtomChange(atom_name, (ad.state, ad.intention), after))
    new_state = st.PENDING if state == st.PENDING and not rerun else st.SUSPENDED
    notes = {'atom': atom_name, 'as': after['state'], 'rerun': rerun,
             'failures': _failure_notes(details, [atom_name] + rerun)}
    return Plan('skip', (flow_detail.state, new_state), tuple(changes), notes)


def _check_nobody_needs(flow_detail: models.FlowDetail, compilation: _compile.Compilation,
                        skipped: _compile.Node) -> None:
    """Refuse to IGNORE a task whose result some unfinished atom can only get from it."""
    details = _details(flow_detail)
    injected: set[str] = set()
    injector = next((ad for ad in flow_detail if ad.name == Storage.injector_name), None)
    if injector is not None and isinstance(injector.results, dict):
        injected.update(injector.results)
    for node in compilation.atoms:
        ad = details.get(node.name)
        if node is skipped or (ad is not None and ad.state in (st.SUCCESS, st.IGNORE)):
            continue
        atom_injected = set((ad.meta.get('injected') or {}) if ad is not None else ())
        atom_injected.update(getattr(node.atom, 'inject', None) or ())
        for arg, name, optional, providers in compilation.argument_plan(node, False):
            if optional or name in injected or name in atom_injected:
                continue
            others = [p for p in providers if p != skipped.name
                      and (details.get(p) is None or details[p].state != st.IGNORE)]
            if skipped.name in providers and not others:
                raise _errors.ActionRefused(
                    "cannot skip %r in flow %r without a result: %r needs %r, which only %r"
                    " provides; give the result to record instead (--result JSON)"
                    % (skipped.name, flow_detail.name, node.name, name, skipped.name))


def plan_resume_no_revert(flow_detail: models.FlowDetail,
                          compilation: _compile.Compilation) -> Plan:
    """Cancel pending reverts so that resuming goes forward (see module doc)."""
    check_accepts('resume_no_revert', flow_detail)
    details = _details(flow_detail)
    changes = []
    rerun = []
    for node in compilation.atoms:
        ad = details.get(node.name)
        if ad is None:
            continue
        if ad.state in RESETTABLE and not (ad.state == st.RETRYING
                                           and ad.intention == st.EXECUTE):
            after = _reset_fields(ad)
            rerun.append(node.name)
        elif ad.intention in (st.REVERT, st.RETRY) and ad.state in (st.SUCCESS, st.PENDING):
            after = {'intention': st.EXECUTE}
        else:
            continue
        change = _change(ad, after)
        if change is not None:
            changes.append(change)
    new_state = st.SUSPENDED if changes else (flow_detail.state or st.PENDING)
    if new_state in (st.RUNNING, st.SUSPENDING, st.RESUMING):
        new_state = st.SUSPENDED
    return Plan('resume_no_revert', (flow_detail.state, new_state), tuple(changes),
                {'rerun': rerun, 'failures': _failure_notes(details, rerun)})


def plan_resume(flow_detail: models.FlowDetail) -> Plan:
    """A plain resume changes nothing stored; the engine does the rest."""
    check_accepts('resume', flow_detail)
    return Plan('resume', (flow_detail.state, flow_detail.state or st.PENDING), (), {})


def plan_revert(flow_detail: models.FlowDetail,
                compilation: _compile.Compilation) -> Plan:
    """Make every atom meant to revert: resuming undoes what was done."""
    check_accepts('revert', flow_detail)
    details = _details(flow_detail)
    changes = []
    undone = []
    for node in compilation.atoms:
        ad = details.get(node.name)
        if ad is None:
            continue
        after: dict[str, Any] = {'intention': st.REVERT}
        if ad.state in REVERTIBLE:
            undone.append(node.name)
        if ad.state == st.RETRYING:
            after['state'] = st.SUCCESS     # its history is what it reverts with
        elif ad.state == st.REVERT_FAILURE:
            # Try the revert again: back to what it was before reverting.
            after.update(state=st.FAILURE if ad.failure is not None else st.SUCCESS,
                         revert_results=None, revert_failure=None)
        change = _change(ad, after)
        if change is not None:
            changes.append(change)
    if not undone:
        raise _errors.ActionRefused("cannot revert flow %r (%s): no atom holds anything to"
                                    " revert" % (flow_detail.name, flow_detail.uuid))
    return Plan('revert', (flow_detail.state, st.SUSPENDED), tuple(changes),
                {'revert': undone})


def apply_to_detail(flow_detail: models.FlowDetail, plan: Plan) -> None:
    """Set the planned values on the (in-memory) flow detail and its atom details."""
    details = {ad.name: ad for ad in flow_detail}
    for change in plan.changes:
        ad = details[change.name]
        for field in FIELDS:
            if field in change.after:
                setattr(ad, field, change.after[field])
    flow_detail.state = plan.flow_state[1]
