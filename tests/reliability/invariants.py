"""The invariants a killed-and-resumed run must keep, as plain checks.

``check()`` takes what a trial observed (the snapshot stored before each
worker started, the ledger, the last worker's outcome, the final snapshot)
and the baseline run of the same shape, and returns the violations:

``a``  the final flow state, ``storage.fetch_all()`` and the final atom states
       equal the baseline's (a run without crashes; when the last worker
       found the flow already over, the ``fetch_all()`` of the baseline's
       flow loaded again);
``b``  no atom runs again what it already saved: once an atom's ``SUCCESS`` or
       ``FAILURE`` for attempt *n* is stored, it never starts executing attempt
       *n* again, and once ``REVERTED`` is stored it never reverts attempt *n*
       again (an atom stored ``RUNNING``/``REVERTING`` may run again); no
       worker runs the same (atom, action, attempt) twice;
``c``  the completed executions and reverts (atom, action, attempt, outcome)
       are exactly the baseline's (an execution killed mid-way may instead be
       reverted, when its atom was already meant to revert); failing shapes
       revert exactly the atoms that ran; retry shapes finish on the same
       attempt, and attempts never go backwards;
``d``  nothing is left ``RUNNING``/``REVERTING``/``RETRYING``, the flow is final;
``e``  the stored data always loads (the driver's snapshots, every worker's
       ``load_from_detail``);
``worker``  a worker crashed or hung (the engine raised something unexpected
       or never finished).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

from tests.reliability import observe
from tests.reliability.ledger import END, EXECUTE, REVERT, START, Record

INVARIANTS = ('a', 'b', 'c', 'd', 'e', 'f', 'worker')
_UNFINISHED_ATOM_STATES = ('RUNNING', 'REVERTING', 'RETRYING')
_FINAL_FLOW_STATES = ('SUCCESS', 'REVERTED', 'FAILURE', 'SUSPENDED')


@dataclass(frozen=True)
class Violation:
    invariant: str   # one of INVARIANTS
    detail: str

    def __str__(self) -> str:
        return '(%s) %s' % (self.invariant, self.detail)


def check(shape: Any, baseline: Any, incarnations: list[observe.Incarnation],
          records: list[Record], outcome: dict | None,
          final: observe.Snapshot) -> list[Violation]:
    found: list[Violation] = []
    found += final_results(baseline, outcome, final)
    found += no_repeats(incarnations, records)
    found += completed_work(shape, baseline, records, final, incarnations)
    found += nothing_unfinished(final)
    found += always_loads(incarnations, final)
    found += one_owner(incarnations, records)
    found += workers_behaved(incarnations)
    return found


def final_results(baseline: Any, outcome: dict | None,
                  final: observe.Snapshot) -> list[Violation]:
    """(a) same final state, results and atom states as without crashes."""
    if outcome is None:
        return []   # the worker/e violations say why there is none
    found = []
    expected = baseline.outcome
    if outcome['state'] != expected['state']:
        found.append(Violation('a', 'final flow state %s, expected %s (run raised %s)'
                               % (outcome['state'], expected['state'], outcome['raised'])))
    # A worker that found the flow already over did not run it: compare with
    # what the baseline's flow gives when loaded again.
    key = 'results' if outcome.get('ran', True) else 'reloaded_results'
    if outcome[key] != expected[key]:
        found.append(Violation('a', 'fetch_all() differs: %s'
                               % _dict_diff(outcome[key], expected[key])))
    states = {name: atom.state for name, atom in final.atoms.items()}
    expected_states = {name: atom.state for name, atom in baseline.final.atoms.items()}
    if not final.error and states != expected_states:
        found.append(Violation('a', 'final atom states differ: %s'
                               % _dict_diff(states, expected_states)))
    if not final.error and final.flow_state != baseline.final.flow_state:
        found.append(Violation('a', 'stored flow state %s, expected %s'
                               % (final.flow_state, baseline.final.flow_state)))
    return found


def no_repeats(incarnations: list[observe.Incarnation],
               records: list[Record]) -> list[Violation]:
    """(b) nothing saved as done is done again; no worker repeats itself."""
    # (action, atom, attempt) -> first incarnation that must not start it.
    forbidden_from: dict[tuple, tuple[int, str]] = {}
    for inc in incarnations:
        for name, atom in inc.before.atoms.items():
            if atom.state in ('SUCCESS', 'FAILURE'):
                key = (EXECUTE, name, atom.attempt)
            elif atom.state == 'REVERTED':
                key = (REVERT, name, atom.attempt)
            else:
                continue
            forbidden_from.setdefault(key, (inc.number, atom.state))
    found, reported = [], set()
    starts = collections.Counter()
    for r in records:
        if r.phase != START:
            continue
        key = (r.action, r.atom, r.attempt)
        starts[(r.inc,) + key] += 1
        rule = forbidden_from.get(key)
        if rule is not None and r.inc >= rule[0] and key not in reported:
            reported.add(key)
            found.append(Violation('b', '%s %r%s started again in worker %d although %s '
                                   'was stored before worker %d started'
                                   % (r.action, r.atom, _attempt(r.attempt), r.inc,
                                      rule[1], rule[0])))
    for (inc, action, atom, attempt), count in sorted(starts.items(), key=repr):
        if count > 1:
            found.append(Violation('b', 'worker %d started %s %r%s %d times'
                                   % (inc, action, atom, _attempt(attempt), count)))
    return found


def completed_work(shape: Any, baseline: Any, records: list[Record],
                   final: observe.Snapshot,
                   incarnations: list[observe.Incarnation] = ()) -> list[Violation]:
    """(c) the same executions/reverts completed as without crashes."""
    found = []
    done = {(r.atom, r.action, r.attempt, r.outcome) for r in records if r.phase == END}
    expected = {(r.atom, r.action, r.attempt, r.outcome)
                for r in baseline.records if r.phase == END}
    started = {(r.atom, r.action, r.attempt) for r in records if r.phase == START}
    # An atom stored RUNNING was handed to a thread; the kill may have come
    # before its execute() began (no ledger start), but a resumed engine must
    # treat it as started all the same.
    started |= {(name, EXECUTE, atom.attempt) for inc in incarnations
                for name, atom in inc.before.atoms.items() if atom.state == 'RUNNING'}
    missing = {key for key in expected - done
               if not _cut_short_then_reverted(key, started, done)}
    if missing or done - expected:
        found.append(Violation('c', 'completed (atom, action, attempt, outcome) differ:'
                               ' missing %s, extra %s'
                               % (sorted(missing, key=repr),
                                  sorted(done - expected, key=repr))))
    if shape.final_state == 'REVERTED':
        ran = {atom for atom, action, _ in started if action == EXECUTE}
        reverted = {r.atom for r in records if r.action == REVERT and r.phase == END}
        stored = {name for name, atom in final.atoms.items() if atom.state == 'REVERTED'}
        if not (ran == reverted == stored):
            found.append(Violation('c', 'atoms that ran %s, reverted (ledger) %s, '
                                   'REVERTED (stored) %s'
                                   % (sorted(ran), sorted(reverted), sorted(stored))))
    if shape.retry_name is not None:
        retry = final.atoms.get(shape.retry_name)
        if retry is not None and retry.attempt != shape.attempts_needed:
            found.append(Violation('c', 'retry %r stored %s attempts, expected %s'
                                   % (shape.retry_name, retry.attempt,
                                      shape.attempts_needed)))
        # The retry and its subflow move through attempts together: once a
        # record of attempt n exists, none of an earlier attempt may follow.
        highest = 0
        for r in records:
            if r.attempt is None:
                continue
            if r.attempt < highest:
                found.append(Violation('c', '%r ran attempt %d (%s %s, worker %d) after '
                                       'attempt %d had started' % (
                                           r.atom, r.attempt, r.action, r.phase, r.inc,
                                           highest)))
                break
            highest = r.attempt
    return found


def _cut_short_then_reverted(key: tuple, started: set, done: set) -> bool:
    """An execution killed mid-way (or before it began) whose atom was then
    reverted, not re-run.

    That is what the original does with an atom stored ``RUNNING`` whose
    intention already is ``REVERT`` (a sibling failed while it ran).
    """
    atom, action, attempt, _ = key
    return (action == EXECUTE and (atom, EXECUTE, attempt) in started
            and (atom, REVERT, attempt, 'ok') in done)


def nothing_unfinished(final: observe.Snapshot) -> list[Violation]:
    """(d) no atom left mid-way, the flow in a final state."""
    if final.error or final.absent:
        return []
    found = []
    stuck = sorted('%s=%s' % (name, atom.state) for name, atom in final.atoms.items()
                   if atom.state in _UNFINISHED_ATOM_STATES)
    if stuck:
        found.append(Violation('d', 'atoms left unfinished: %s' % ', '.join(stuck)))
    if final.flow_state not in _FINAL_FLOW_STATES:
        found.append(Violation('d', 'flow left in state %s' % final.flow_state))
    return found


def always_loads(incarnations: list[observe.Incarnation],
                 final: observe.Snapshot) -> list[Violation]:
    """(e) every snapshot and every worker could load the stored flow."""
    found = []
    for inc in incarnations:
        if inc.before.error:
            found.append(Violation('e', 'the stored flow did not load before worker %d: %s'
                                   % (inc.number, inc.before.error)))
        if inc.end == observe.LOAD_FAILED:
            found.append(Violation('e', 'worker %d could not load the stored flow: %s'
                                   % (inc.number, _last_line(inc.stderr))))
    if final.error:
        found.append(Violation('e', 'the final stored flow did not load: %s' % final.error))
    if final.absent:
        found.append(Violation('e', 'no flow detail stored at the end'))
    return found


def one_owner(incarnations: list[observe.Incarnation],
              records: list[Record]) -> list[Violation]:
    """(f) workers started together never ran atoms at the same time.

    One of them may take over from another that died (its lease is then
    free), but once a worker has recorded work after another, the other
    never records again.
    """
    group_of = {inc.number: inc.group for inc in incarnations if inc.group is not None}
    current: dict[int, int] = {}              # group -> worker that recorded last
    replaced: dict[int, set[int]] = collections.defaultdict(set)
    found: list[Violation] = []
    for r in records:
        group = group_of.get(r.inc)
        if group is None or current.get(group) == r.inc:
            continue
        if r.inc in replaced[group]:
            found.append(Violation('f', 'worker %d ran %s %r again after worker %d took'
                                   ' the flow over' % (r.inc, r.action, r.atom,
                                                        current[group])))
            break
        if group in current:
            replaced[group].add(current[group])
        current[group] = r.inc
    return found


def workers_behaved(incarnations: list[observe.Incarnation]) -> list[Violation]:
    found = []
    for inc in incarnations:
        if inc.end == observe.CRASHED:
            found.append(Violation('worker', 'worker %d crashed: %s'
                                   % (inc.number, _last_line(inc.stderr))))
        elif inc.end == observe.STOPPED and inc.kill_mode != 'outage':
            found.append(Violation('worker', 'worker %d stopped, the database'
                                   ' unreachable without an outage: %s'
                                   % (inc.number, _last_line(inc.stderr))))
        elif inc.end == observe.HUNG:
            found.append(Violation('worker', 'worker %d still running after the deadline'
                                   % inc.number))
    return found


def _attempt(attempt: int | None) -> str:
    return '' if attempt is None else ' (attempt %d)' % attempt


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else '(no stderr)'


def _dict_diff(got: dict, expected: dict) -> str:
    keys = sorted(set(got) | set(expected))
    parts = ['%s: %r != %r' % (k, got.get(k, '<missing>'), expected.get(k, '<missing>'))
             for k in keys if got.get(k, '<missing>') != expected.get(k, '<missing>')]
    return '; '.join(parts)
