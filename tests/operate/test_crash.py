"""An operator action killed with SIGKILL is either fully done or not done.

A real subprocess performs the action against a real backend and is killed
(1) exactly between two writes, via ``$TASKFLOW_OPERATE_CRASH_AT`` (every
write boundary of the action), and (2) at random times while acting.
Afterwards the flow must load, show either the state before the action (no
record) or the state after it (one record), and a later resume must run
only what the action left to run, exactly once.

``TASKFLOW_OPERATE_CRASH_TRIALS`` sets the number of random kills per
backend (default 8).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid as uuid_module
from pathlib import Path

import pytest

from taskflow import operate
from taskflow import states as st
from taskflow.engines.action_engine import _compile
from taskflow.operate import _apply
from taskflow.operate import _plans
from tests.operate import flows
from tests.operate.conftest import kinds, url_for

REPO = Path(__file__).resolve().parents[2]
TRIALS = int(os.environ.get('TASKFLOW_OPERATE_CRASH_TRIALS', '8'))
# Every write boundary of a retry of the orders flow (4 atoms change).
ATOMIC_POINTS = ['before-commit', 'committed']
JOURNAL_POINTS = ['before-journal', 'journal-written', 'atom-written:1', 'atom-written:2',
                  'atom-written:3', 'atom-written:4', 'committed']


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), **extra)
    env.pop(_apply.CRASH_ENV, None)
    env.update(extra)
    return env


def _worker(url: str, flow_uuid: str, action: str = 'retry', wait: bool = False,
            crash_at: str | None = None) -> subprocess.Popen:
    args = [sys.executable, '-m', 'tests.operate.crash_worker', url, flow_uuid, action]
    extra = {_apply.CRASH_ENV: crash_at} if crash_at else {}
    return subprocess.Popen(args + (['--wait'] if wait else []), cwd=str(REPO),
                            env=_env(**extra), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _reverted_orders_flow(backend, tmp_path):
    log = str(tmp_path / ('log-%s' % uuid_module.uuid4().hex[:8]))
    flows.break_task(log, 'charge')
    uuid, state, _error = operate.start(backend, 'tests.operate.flows:make_orders',
                                        store={'log': log, 'delay': 0})
    assert state == st.REVERTED
    flows.break_task(log, 'charge', broken=False)
    return uuid, log


def _states(flow_detail):
    return ({ad.name: (ad.state, ad.intention) for ad in flow_detail
             if not ad.name.startswith('_')}, flow_detail.state)


def _expected_after(flow_detail):
    copy = flow_detail.copy(retain_contents=False)
    for ad in flow_detail:
        copy.add(ad.copy())
    compilation = _compile.Compilation(operate.rebuild_flow(flow_detail))
    _plans.apply_to_detail(copy, _plans.plan_retry(copy, compilation))
    return _states(copy)


def _check_done_or_not(backend, uuid, before, after, atomic: bool) -> bool:
    """Assert the invariant; returns whether the action counts as done."""
    stored = operate.find_flow(backend, uuid).flow          # it loads
    view = operate.describe(stored)                          # and can be shown
    seen = _apply.effective(stored)
    records = [r for r in seen.meta.get('operator_actions', []) if r['action'] == 'retry']
    if atomic:
        assert _apply.pending(stored) is None                # never half written
        assert _states(stored) in (before, after)
    assert _states(seen) in (before, after), _states(seen)
    done = _states(seen) == after
    assert len(records) == (1 if done else 0)
    assert not any(r.get('abandoned') for r in records)
    assert view.state == seen.state
    return done


def _finish_and_check_runs(backend, uuid, log, done: bool) -> None:
    before = flows.ran(log)
    if done:
        result = operate.resume(backend, uuid)          # completes a journal, then runs
    else:
        result = operate.retry(backend, uuid, run=True)
    assert (result.state, result.error) == (st.SUCCESS, None)
    assert flows.ran(log)[len(before):] == ['exec charge', 'exec ship', 'exec receipt']
    history = operate.find_flow(backend, uuid).flow.meta['operator_actions']
    assert [r['action'] for r in history if r['action'] == 'retry'] == ['retry']


@pytest.mark.parametrize('kind', kinds(['sqlite', 'dir', 'postgresql']))
def test_killed_between_any_two_writes(open_backend, tmp_path, server_databases, kind):
    backend = open_backend(kind)
    url = url_for(kind, tmp_path, server_databases)
    atomic = _apply.writes_atomically(backend)
    points = ATOMIC_POINTS if atomic else JOURNAL_POINTS
    outcomes = []
    for point in points:
        uuid, log = _reverted_orders_flow(backend, tmp_path)
        stored = operate.find_flow(backend, uuid).flow
        before, after = _states(stored), _expected_after(stored)
        worker = _worker(url, uuid, crash_at=point)
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == -signal.SIGKILL, (point, out, err)
        done = _check_done_or_not(backend, uuid, before, after, atomic)
        outcomes.append((point, done))
        _finish_and_check_runs(backend, uuid, log, done)
    # The first point is before anything was written, the last after all of it.
    assert outcomes[0] == (points[0], False)
    assert outcomes[-1] == (points[-1], True)


@pytest.mark.slow
@pytest.mark.parametrize('kind', kinds(['sqlite', 'dir']))
def test_killed_at_random_times(open_backend, tmp_path, server_databases, kind):
    backend = open_backend(kind)
    url = url_for(kind, tmp_path, server_databases)
    atomic = _apply.writes_atomically(backend)
    rng = random.Random(os.environ.get('TASKFLOW_OPERATE_CRASH_SEED', 'operate'))
    # How long the action takes in the worker, measured on one flow first.
    uuid, log = _reverted_orders_flow(backend, tmp_path)
    worker = _worker(url, uuid, wait=True)
    assert worker.stdout.readline().strip() == 'ready'
    out, _err = worker.communicate('go\n', timeout=60)
    took = float(out.split()[-1])
    done_count = 0
    for _trial in range(TRIALS):
        uuid, log = _reverted_orders_flow(backend, tmp_path)
        stored = operate.find_flow(backend, uuid).flow
        before, after = _states(stored), _expected_after(stored)
        worker = _worker(url, uuid, wait=True)
        assert worker.stdout.readline().strip() == 'ready'
        worker.stdin.write('go\n')
        worker.stdin.flush()
        time.sleep(rng.uniform(0, took * 1.5))
        worker.kill()
        worker.communicate(timeout=60)
        done = _check_done_or_not(backend, uuid, before, after, atomic)
        done_count += done
        _finish_and_check_runs(backend, uuid, log, done)
    print('%s: %d of %d killed actions had completed' % (kind, done_count, TRIALS))
