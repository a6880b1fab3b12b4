"""The fleet checks flag what they must (plain data, no processes)."""

from __future__ import annotations

from tests.reliability.fleet import flows
from tests.reliability.fleet import invariants as inv

JOB = inv.JobInfo('job000', 'u0', 'f0', ['t0', 't1'])
POISON = inv.JobInfo('job001-poison', 'u1', 'f1', ['t0'], poison=True)


def line(task, phase, pid, at):
    return flows.Line('job000', task, phase, pid, at)


def test_a_persisted_task_started_again_after_a_kill_is_a_rerun():
    kill = inv.Kill(pid=1, job='job000', at=10.0, persisted={'t0': 'SUCCESS',
                                                            't1': 'RUNNING'})
    ledger = [line('t0', 'start', 1, 9.0), line('t0', 'end', 1, 9.5),
              line('t1', 'start', 1, 9.6), line('t1', 'start', 2, 12.0)]
    assert inv.check_reruns([kill], [], ledger) == []
    ledger.append(line('t0', 'start', 2, 12.5))
    assert [v[0] for v in inv.check_reruns([kill], [], ledger)] == ['rerun']


def test_consumed_twice_or_never_and_a_consumed_poison_job_are_flagged():
    events = [{'event': 'job_consumed', 'job': 'u0', 'pid': 1},
              {'event': 'job_consumed', 'job': 'u0', 'pid': 2},
              {'event': 'job_consumed', 'job': 'u1', 'pid': 2}]
    found = inv.check_consumed([JOB, POISON], events, left_on_board=set())
    assert sorted(v[0] for v in found) == ['consumed', 'dead-letter']
    assert inv.check_consumed([JOB], events[:1], left_on_board=set()) == []
    assert inv.check_consumed([JOB], [], left_on_board={'u0'})[0][0] == 'consumed'


def test_late_takeovers_and_missing_ones_are_flagged():
    kills = [inv.Kill(1, 'job000', 0.0, freed_after=3.9),
             inv.Kill(2, 'job000', 0.0, freed_after=4.1), inv.Kill(3, 'job000', 0.0)]
    found = inv.check_takeovers(kills, lease=2.0)
    assert [v[1].split(':')[1].split()[0] for v in found] == ['claimable', 'never']


def test_a_stale_owner_that_starts_stores_or_consumes_after_the_takeover_is_flagged():
    stop = inv.Stop(pid=1, job='job000', stopped_at=5.0, taken_over_at=8.0)
    ledger = [line('t1', 'start', 1, 4.9), line('t1', 'start', 2, 7.9),
              line('t1', 'end', 2, 8.3), line('t1', 'end', 1, 9.0)]
    final = {'job000': inv.Final('SUCCESS', {'t0': ('SUCCESS', 1), 't1': ('SUCCESS', 2)})}
    assert inv.check_stale([stop], [JOB], ledger, [], final) == []
    stored_stale = {'job000': inv.Final('SUCCESS', {'t0': ('SUCCESS', 1),
                                                    't1': ('SUCCESS', 1)})}
    late = ledger + [line('t2', 'start', 1, 9.1)]
    consumed = [{'event': 'job_consumed', 'job': 'u0', 'pid': 1}]
    assert len(inv.check_stale([stop], [JOB], late, consumed, stored_stale)) == 3
    never = inv.Stop(pid=1, job='job000', stopped_at=5.0)
    assert 'nobody took it over' in inv.check_stale([never], [JOB], [], [], final)[0][1]


def test_the_poison_job_must_be_trashed_after_enough_attempts():
    assert inv.check_dead_letter([JOB, POISON], {'u1': [1, 2, 3]}, 3) == []
    assert inv.check_dead_letter([JOB, POISON], {'u1': [1, 2]}, 3)[0][0] == 'dead-letter'
    assert inv.check_dead_letter([JOB, POISON], {}, 3)[0][0] == 'dead-letter'
    assert inv.check_dead_letter([JOB], {'u0': []}, 0)[0][0] == 'flow'


def test_a_holder_killed_after_its_run_ended_may_have_consumed_without_saying_so():
    ended = [{'event': 'running_end', 'job': 'u0', 'pid': 1}]
    kill = inv.Kill(pid=1, job='job000', at=5.0)
    assert inv.check_consumed([JOB], ended, set(), [kill]) == []
    assert inv.check_consumed([JOB], ended, set(), [])[0][0] == 'consumed'
    assert inv.check_consumed([JOB], ended, {'u0'}, [kill])[0][0] == 'consumed'


def test_a_consume_whose_answer_an_outage_lost_counts_once_and_only_near_a_cut():
    events = [{'event': 'running_start', 'job': 'u0', 'pid': 1, 't': 9.0},
              {'event': 'running_end', 'job': 'u0', 'pid': 1, 't': 10.0}]
    near = inv.unacknowledged_consumes([JOB], events, set(), [(11.0, 14.0)])
    assert near == {'u0'}
    assert inv.check_consumed([JOB], events, set(), unacknowledged=near) == []
    # Far from any cut, or still on the board: a lost job, flagged.
    assert inv.unacknowledged_consumes([JOB], events, set(), [(20.0, 21.0)]) == set()
    assert inv.unacknowledged_consumes([JOB], events, {'u0'}, [(11.0, 14.0)]) == set()
    assert [v[0] for v in inv.check_consumed([JOB], events, set())] == ['consumed']


def test_a_task_started_after_it_was_seen_stored_success_is_a_rerun():
    ledger = [line('t0', 'start', 1, 9.0), line('t0', 'end', 1, 9.5),
              line('t0', 'start', 2, 9.8)]   # before it was seen stored: allowed
    assert inv.check_reruns_seen({('job000', 't0'): 10.0}, ledger) == []
    ledger.append(line('t0', 'start', 3, 10.5))
    assert [v[0] for v in inv.check_reruns_seen({('job000', 't0'): 10.0}, ledger)] == ['rerun']
