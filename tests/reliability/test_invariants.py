"""The invariant checks catch what they are meant to catch (literal data, no processes)."""

from __future__ import annotations

import pytest

from tests.reliability import invariants, observe
from tests.reliability.driver import Baseline
from tests.reliability.ledger import Record
from tests.reliability.shapes import SHAPES, Shape

LINEAR = Shape('two', 'serial', 'SUCCESS')
FAILING = Shape('fails', 'serial', 'REVERTED')


def rec(inc, atom, action, phase, attempt=None, outcome=None):
    if phase == 'end' and outcome is None:
        outcome = 'ok'
    return Record(inc, 100 + inc, atom, action, phase, attempt, outcome)


def ran(inc, atom, action='execute', attempt=None, outcome='ok'):
    return [rec(inc, atom, action, 'start', attempt),
            rec(inc, atom, action, 'end', attempt, outcome)]


def snap(flow_state='RUNNING', **atoms):
    return observe.Snapshot(flow_state, {
        name: observe.AtomState(*value) if isinstance(value, tuple)
        else observe.AtomState(value, 'EXECUTE', None)
        for name, value in atoms.items()})


def incarnations(*befores, last_end=observe.FINISHED):
    made = []
    for number, before in enumerate(befores, 1):
        end = last_end if number == len(befores) else observe.KILLED
        made.append(observe.Incarnation(number, before, None, end, True))
    return made


def baseline(shape, records, final, state='SUCCESS', results=None):
    return Baseline(shape, {'state': state, 'results': results or {}}, final, records)


LINEAR_DONE = snap('SUCCESS', a='SUCCESS', b='SUCCESS')
LINEAR_BASELINE = baseline(LINEAR, ran(1, 'a') + ran(1, 'b'), LINEAR_DONE,
                           results={'a': 1, 'b': 2})
OUTCOME = {'state': 'SUCCESS', 'results': {'a': 1, 'b': 2}, 'raised': None}


def check(shape, base, incs, records, outcome=OUTCOME, final=LINEAR_DONE):
    return sorted({v.invariant for v in invariants.check(shape, base, incs, records,
                                                         outcome, final)})


def test_a_clean_resume_has_no_violation():
    records = ran(1, 'a') + [rec(1, 'b', 'execute', 'start')] + ran(2, 'b')
    incs = incarnations(observe.Snapshot(absent=True),
                        snap(a='SUCCESS', b='RUNNING'))
    assert check(LINEAR, LINEAR_BASELINE, incs, records) == []


def test_executing_again_what_was_saved_as_success_is_b():
    records = ran(1, 'a') + ran(2, 'a') + ran(2, 'b')
    incs = incarnations(observe.Snapshot(absent=True), snap(a='SUCCESS', b='PENDING'))
    assert check(LINEAR, LINEAR_BASELINE, incs, records) == ['b']


def test_one_worker_running_an_atom_twice_is_b():
    records = ran(1, 'a') + ran(1, 'a') + ran(1, 'b')
    assert check(LINEAR, LINEAR_BASELINE, incarnations(snap()), records) == ['b']


def test_other_results_are_a():
    records = ran(1, 'a') + ran(1, 'b')
    outcome = dict(OUTCOME, results={'a': 1, 'b': 3})
    assert check(LINEAR, LINEAR_BASELINE, incarnations(snap()), records, outcome) == ['a']


def test_an_atom_left_running_is_d_and_a():
    records = ran(1, 'a') + [rec(1, 'b', 'execute', 'start')]
    final = snap('SUCCESS', a='SUCCESS', b='RUNNING')
    found = check(LINEAR, LINEAR_BASELINE, incarnations(snap()), records, final=final)
    assert found == ['a', 'c', 'd']


def test_unloadable_data_and_crashed_workers():
    records = ran(1, 'a') + ran(2, 'b')
    incs = incarnations(snap(), observe.Snapshot(error='StorageFailure: boom'))
    incs.append(observe.Incarnation(3, snap(), None, observe.CRASHED, True, 'Error: x'))
    assert check(LINEAR, LINEAR_BASELINE, incs, records) == ['e', 'worker']


REVERTED = snap('REVERTED', a=('REVERTED', 'REVERT', None), boom=('REVERTED', 'REVERT', None),
                c=('PENDING', 'REVERT', None))
FAILING_RECORDS = (ran(1, 'a') + ran(1, 'boom', outcome='raised')
                   + ran(1, 'boom', 'revert') + ran(1, 'a', 'revert'))
FAILING_BASELINE = baseline(FAILING, FAILING_RECORDS, REVERTED, state='REVERTED')
REVERTED_OUTCOME = {'state': 'REVERTED', 'results': {}, 'raised': 'StepFailed'}


def test_a_missing_revert_is_c():
    records = FAILING_RECORDS[:-2]
    final = snap('REVERTED', a=('SUCCESS', 'REVERT', None),
                 boom=('REVERTED', 'REVERT', None), c=('PENDING', 'REVERT', None))
    found = check(FAILING, FAILING_BASELINE, incarnations(snap()), records,
                  REVERTED_OUTCOME, final)
    assert found == ['a', 'c']


def test_an_execution_cut_short_may_be_reverted_instead():
    """The original reverts an atom stored RUNNING whose intention is REVERT."""
    records = (ran(1, 'boom', outcome='raised') + [rec(1, 'a', 'execute', 'start')]
               + ran(2, 'boom', 'revert') + ran(2, 'a', 'revert'))
    incs = incarnations(snap(), snap(a=('RUNNING', 'REVERT', None),
                                     boom=('FAILURE', 'REVERT', None)))
    assert check(FAILING, FAILING_BASELINE, incs, records, REVERTED_OUTCOME,
                 REVERTED) == []


@pytest.mark.parametrize('stored, found', [
    ('RUNNING', []),   # handed over, killed before execute() wrote its start
    ('PENDING', ['c']),  # never handed over: reverting it is a violation
])
def test_an_atom_reverted_without_a_ledger_start(stored, found):
    records = (ran(1, 'boom', outcome='raised')
               + ran(2, 'boom', 'revert') + ran(2, 'a', 'revert'))
    incs = incarnations(snap(), snap(a=(stored, 'REVERT', None),
                                     boom=('FAILURE', 'REVERT', None)))
    assert check(FAILING, FAILING_BASELINE, incs, records, REVERTED_OUTCOME,
                 REVERTED) == found


def test_reverting_again_what_was_saved_as_reverted_is_b():
    records = FAILING_RECORDS + ran(2, 'a', 'revert')
    incs = incarnations(snap(), snap(a=('REVERTED', 'REVERT', None)))
    assert check(FAILING, FAILING_BASELINE, incs, records, REVERTED_OUTCOME,
                 REVERTED) == ['b']


def test_retry_attempts_must_not_go_backwards():
    shape = SHAPES['retry']
    records = (ran(1, 'attempts_retry', attempt=1) + ran(1, 'flaky', attempt=1)
               + ran(1, 'attempts_retry', attempt=2) + ran(1, 'flaky', attempt=1))
    final = snap(attempts_retry=('SUCCESS', 'EXECUTE', 2))
    found = invariants.completed_work(shape, baseline(shape, records, final), records,
                                      final)
    assert [str(v) for v in found] == [
        "(c) retry 'attempts_retry' stored 2 attempts, expected 3",
        "(c) 'flaky' ran attempt 1 (execute start, worker 1) after attempt 2 had started"]


def _group(*numbers, ends):
    made = []
    for number, end in zip(numbers, ends):
        inc = observe.Incarnation(number, observe.Snapshot(absent=True), None, end, True)
        inc.group = 1
        made.append(inc)
    return made


def test_concurrent_resumers_taking_over_from_a_dead_one_is_fine():
    # 201 started together with 200, ran after 200 died: one owner at a time.
    incs = _group(200, 201, 202, ends=[observe.KILLED, observe.FINISHED, observe.REFUSED])
    records = ran(200, 'a') + ran(201, 'b')
    assert invariants.one_owner(incs, records) == []


def test_concurrent_resumers_running_at_the_same_time_break_f():
    incs = _group(200, 201, ends=[observe.FINISHED, observe.FINISHED])
    records = [rec(200, 'a', 'execute', 'start'), rec(201, 'b', 'execute', 'start'),
               rec(200, 'a', 'execute', 'end')]
    found = invariants.one_owner(incs, records)
    assert [v.invariant for v in found] == ['f']
    assert 'worker 200 ran' in found[0].detail


def test_a_storage_failure_without_an_outage_is_a_worker_fault():
    inc = observe.Incarnation(100, observe.Snapshot(absent=True), None,
                              observe.STOPPED, True, 'StorageFailure: down')
    assert [v.invariant for v in invariants.workers_behaved([inc])] == ['worker']
    inc.kill_mode = 'outage'
    assert invariants.workers_behaved([inc]) == []
