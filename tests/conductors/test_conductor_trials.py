"""Kill trials: three conductor processes on the SQL board (SQLite file),
jobs writing to ledgers, claim holders SIGKILLed at random moments.

``TASKFLOW_CONDUCTOR_TRIALS=N`` runs N trials (default 1)."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from tests.conductors import _support
from tests.conductors import flows
from tests.conductors._procs import _ledger, _results, _wait_for, env  # noqa: F401

TRIALS = int(os.environ.get('TASKFLOW_CONDUCTOR_TRIALS', '1'))
TRIAL_LEASE = 3.0


@pytest.mark.parametrize('trial', range(TRIALS))
def test_kill_trial_every_job_consumed_once(env, tmp_path, trial):
    """Three conductor processes, jobs writing to a ledger each, holders
    SIGKILLed at random moments (and replaced): every job's flow completes
    and is consumed once, takeovers come within lease + 2 s.
    ``TASKFLOW_CONDUCTOR_TRIALS=N`` runs N trials."""
    rng = random.Random(trial)
    board, persistence, _, start = env
    # Non-blocking conductors: a free one is always there to take a job over.
    # A longer lease: renewals of SQLite claims wait for the single writer.
    procs = [start('t%d' % i, kind='nonblocking', lease=TRIAL_LEASE) for i in range(3)]
    for proc in procs:
        _wait_for(lambda: 'ready' in proc.lines(), 30, 'conductor %s' % proc.name)
    jobs = {}
    for i in range(6):
        ledger = str(tmp_path / ('ledger-%d' % i))
        job = _support.post_job(board, persistence, flows.steps,
                                {'ledger': ledger, 'pause': 0.5})
        jobs[job.uuid] = (job, ledger)
    takeovers, kills = [], 0
    for _ in range(2):
        time.sleep(rng.uniform(0.2, 1.5))
        running = []
        deadline = time.monotonic() + 10
        while not running and time.monotonic() < deadline:
            running = [(job, ledger) for job, ledger in jobs.values()
                       if job.state == 'CLAIMED' and _ledger(ledger)
                       and _ledger(ledger)[-1][0] != 'done step-2']
            if all(job.state == 'COMPLETE' for job, _ in jobs.values()):
                break
            time.sleep(0.02)
        if not running:
            break
        job, ledger = rng.choice(running)
        holder_pid = _ledger(ledger)[-1][1]
        victims = [p for p in procs if p.pid == holder_pid and p.popen.poll() is None]
        if not victims:
            continue
        victims[0].signal(signal.SIGKILL)
        killed_at = time.monotonic()
        kills += 1
        procs.remove(victims[0])
        procs.append(start('t-new-%d' % kills, kind='nonblocking', lease=TRIAL_LEASE))
        seen = len(_ledger(ledger))
        if job.state != 'COMPLETE':
            taken = _wait_for(lambda: len(_ledger(ledger)) > seen or job.state == 'COMPLETE',
                              30, 'takeover of %s' % job.uuid)
            takeovers.append(taken - killed_at)
    _wait_for(lambda: all(job.state == 'COMPLETE' for job, _ in jobs.values()), 60,
              'every job consumed')
    assert kills >= 1, 'no job was running to kill: the trial proved nothing'
    assert list(board.iterjobs(ensure_fresh=True)) == []
    consumed = [line for proc in start.procs for line in proc.lines()
                if line.startswith('job_consumed')]
    # Consumed once: no job reported twice. (A conductor killed between
    # consuming a job and printing so reports nothing: not every job has a
    # line, but every job is COMPLETE.)
    assert len(consumed) == len(set(consumed)), consumed
    assert set(consumed) <= {'job_consumed %s' % u for u in jobs}
    for job, ledger in jobs.values():
        results = {name: result for name, result in _results(persistence, job).items()
                   if name.startswith('step-')}
        assert sorted(results) == ['step-0', 'step-1', 'step-2']
        assert all(result.startswith(name + '@') for name, result in results.items())
        lines = [line for line, _ in _ledger(ledger)]
        # A task runs again only when the conductor running it was killed,
        # or lost its claim (a renewal too late), before its result was
        # stored: the new owner runs it then.
        lost = sum(job.uuid in line and 'leaving it to its new owner' in line
                   for proc in start.procs for line in proc.lines())
        for step in results:
            assert 1 <= lines.count('done %s' % step) <= 1 + kills + lost
    assert all(t <= TRIAL_LEASE + 2.0 for t in takeovers), \
        'takeovers %s s, lease %s s' % (takeovers, TRIAL_LEASE)
    print('trial %d: %d kill(s), takeovers %s s' % (
        trial, kills, ', '.join('%.2f' % t for t in takeovers)))

