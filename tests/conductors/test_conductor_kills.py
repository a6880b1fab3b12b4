"""Conductor processes killed, paused and crashed on the SQL board (SQLite
file shared by the processes, persistence in the same database)."""

from __future__ import annotations

import signal
import time

from tests.conductors import _support
from tests.conductors import flows
from tests.conductors._procs import LEASE, _ledger, _results, _wait_for, env  # noqa: F401

def _two_holding(start, board, persistence, ledger, pause=0.7):
    """Two conductor processes and a job: (the one running its step-1,
    the other), the job as ``.job`` of the first."""
    procs = [start('one'), start('two')]
    for proc in procs:
        _wait_for(lambda: 'ready' in proc.lines(), 30, 'conductor %s' % proc.name)
    job = _support.post_job(board, persistence, flows.steps,
                            {'ledger': ledger, 'pause': pause})
    _wait_for(lambda: any(line == 'start step-1' for line, _ in _ledger(ledger)), 30,
              'step-1')
    [holder_pid] = {pid for line, pid in _ledger(ledger) if line == 'start step-1'}
    holder, other = sorted(procs, key=lambda proc: proc.pid != holder_pid)
    holder.job = job
    return holder, other


def test_a_killed_conductors_job_is_taken_over_after_its_lease(env):
    board, persistence, ledger, start = env
    first, second = _two_holding(start, board, persistence, ledger)
    job = first.job
    first.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    taken_at = _wait_for(
        lambda: any(pid == second.pid for _, pid in _ledger(ledger)), 30, 'takeover')
    _wait_for(lambda: job.state == 'COMPLETE', 30, 'the job consumed')
    # The job comes back within lease + 2 s of its holder's death.
    assert taken_at - killed_at <= LEASE + 2.0
    lines = _ledger(ledger)
    # What the dead conductor completed (and stored) is not run again.
    assert [line for line, _ in lines].count('done step-0') == 1
    assert ('start step-1', second.pid) in lines
    assert ('done step-2', second.pid) in lines
    assert 'job_consumed %s' % job.uuid in second.lines()


def test_a_paused_conductor_past_its_lease_writes_nothing(env):
    board, persistence, ledger, start = env
    stale, fresh = _two_holding(start, board, persistence, ledger, pause=1.0)
    job = stale.job
    stale.signal(signal.SIGSTOP)
    _wait_for(lambda: job.state == 'COMPLETE', 60, 'the new owner to finish')
    before = _results(persistence, job)
    stale.signal(signal.SIGCONT)
    # The stale conductor finishes its step-1, then finds out.
    _wait_for(lambda: ('done step-1', stale.pid) in _ledger(ledger), 30,
              'the stale task to end')
    _wait_for(lambda: any('leaving it to its new owner' in line for line in stale.lines()),
              30, 'the stale conductor to give the job up')
    after = _results(persistence, job)
    assert after == before
    assert after['step-1'] == 'step-1@%d' % fresh.pid
    assert after['step-2'] == 'step-2@%d' % fresh.pid
    assert ('start step-2', stale.pid) not in _ledger(ledger)
    assert not any(line.startswith(('job_consumed', 'job_abandoned', 'job_trashed'))
                   for line in stale.lines())
    assert stale.popen.poll() is None  # it carries on with other jobs


def test_a_poison_job_ends_in_the_dead_letter(env):
    board, persistence, ledger, start = env
    job = _support.post_job(board, persistence, flows.poison, {'ledger': ledger})
    attempts = 2
    for n in range(attempts + 1):
        proc = start('c%d' % n, max_attempts=attempts)
        deadline = time.monotonic() + 30
        while proc.popen.poll() is None and time.monotonic() < deadline:
            if 'job_trashed %s' % job.uuid in proc.lines():
                break
            time.sleep(0.05)
        if n < attempts:
            assert proc.popen.wait(30) == 17  # the job killed it
            time.sleep(LEASE)  # its claim expires
    _wait_for(lambda: 'job_trashed %s' % job.uuid in proc.lines(), 30, 'the trash')
    assert [line for line, _ in _ledger(ledger)] == ['die die'] * attempts
    [trashed] = list(board.iter_trashed())
    history = board.history(trashed)
    assert [a.outcome for a in history] == ['lost'] * attempts + ['trashed']
    assert 'failed 2 time(s), max_attempts is 2' in history[-1].reason
    assert list(board.iterjobs(ensure_fresh=True)) == []

