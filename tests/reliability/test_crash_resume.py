"""Killed workers resume their flows to the end a crash-free run reaches.

Every test here runs real worker processes against a real database and
SIGKILLs them (see README.md in this folder):

* ``test_random_kills``: per backend and flow shape, trials of 1 to 4 random
  kills, until the shape had ``TASKFLOW_CRASH_KILLS`` kills (default 9, so
  at least 63 per backend);
* ``test_kill_at_commit_boundaries``: kill once right after the n-th backend
  write, for every ``TASKFLOW_CRASH_SWEEP_STRIDE``-th write (default 3; 1
  sweeps every commit boundary of the run);
* ``test_database_outages``: per backend, ``TASKFLOW_OUTAGE_TRIALS`` trials
  (default: one per shape) where the database goes away instead (reset or
  hung connections, SQLite's write lock held) for a short or a long spell;
* ``test_concurrent_resumers``: every resume starts two rival resumers too;
  only one may own and run the flow at a time (invariant f).

More: ``TASKFLOW_CRASH_TRIALS`` (minimum trials per backend and shape,
default 3), ``TASKFLOW_CRASH_SEED``, ``TASKFLOW_CRASH_JOBS`` (trials at once,
default 2), or the command line: ``python -m tests.reliability.harness``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import _services
from tests.reliability import harness
from tests.reliability.driver import KillPlan, Runner
from tests.reliability.shapes import SHAPES

pytestmark = pytest.mark.timeout(900)

TRIALS = int(os.environ.get('TASKFLOW_CRASH_TRIALS', '3'))
MIN_KILLS = int(os.environ.get('TASKFLOW_CRASH_KILLS', '9'))
SEED = int(os.environ.get('TASKFLOW_CRASH_SEED', '20240601'))
JOBS = int(os.environ.get('TASKFLOW_CRASH_JOBS', '2'))
STRIDE = int(os.environ.get('TASKFLOW_CRASH_SWEEP_STRIDE', '3'))
OUTAGE_TRIALS = int(os.environ.get('TASKFLOW_OUTAGE_TRIALS', str(len(SHAPES))))

BACKENDS = [
    pytest.param('sqlite', id='sqlite'),
    pytest.param('postgresql', id='postgresql', marks=pytest.mark.postgresql),
    pytest.param('mysql', id='mysql', marks=pytest.mark.mysql),
]


@pytest.fixture(scope='module', params=BACKENDS)
def runner(request, tmp_path_factory) -> Iterator[Runner]:
    backend = request.param
    if backend == 'postgresql':
        _services.require_postgresql()
    elif backend == 'mysql':
        _services.require_mysql()
    workdir = tmp_path_factory.mktemp('crash-%s' % backend)
    with harness.backend_runner(backend, workdir) as made:
        yield made


def _explain(summary: harness.Summary) -> str:
    return '%s\n%s\n%s\n\n(replay one with python -m tests.reliability.harness ' \
           '--backend BACKEND --replay ...)' % (
               harness.TABLE_HEADER, summary.table_row(), summary.describe_failures())


@pytest.mark.parametrize('shape', sorted(SHAPES))
def test_random_kills(runner, shape):
    summary = harness.run_campaign(runner, [shape], TRIALS, SEED, min_kills=MIN_KILLS,
                                   jobs=JOBS)
    assert summary.kills >= MIN_KILLS, 'the harness did not get to kill enough'
    assert not summary.failed, _explain(summary)


@pytest.mark.parametrize('shape', sorted(SHAPES))
def test_kill_at_commit_boundaries(runner, shape):
    writes = runner.baseline(shape).outcome['writes']
    summary = harness.run_sweep(runner, [shape], JOBS, points=range(1, writes + 1, STRIDE))
    assert summary.kills > 0
    assert not summary.failed, _explain(summary)


def test_database_outages(runner):
    """Short outages are ridden out; after a long one the worker stops with
    StorageFailure within a bounded time and the next one resumes."""
    summary = harness.run_campaign(runner, sorted(SHAPES), OUTAGE_TRIALS, SEED,
                                   jobs=JOBS, outages=True)
    assert sum(n for mode, n in summary.kill_modes.items()
               if not mode.endswith('missed')) >= OUTAGE_TRIALS // 2
    assert not summary.failed, _explain(summary)


CONCURRENT_SHAPES = ['linear', 'parallel', 'revert-fan', 'retry']
RIVAL_TRIALS = int(os.environ.get('TASKFLOW_RIVAL_TRIALS', '8'))


def test_concurrent_resumers(runner):
    summary = harness.run_campaign(runner, CONCURRENT_SHAPES, RIVAL_TRIALS, SEED + 1,
                                   jobs=JOBS, rivals=2)
    assert summary.workers > summary.trials * 2, 'rivals were not started'
    assert not summary.failed, _explain(summary)


def test_a_kill_plan_is_what_kills(runner):
    """The harness itself: a planned kill lands, and an unkilled run is clean."""
    report = runner.trial('linear', 1, 'self-check', plans=[KillPlan('record', count=3)])
    assert (report.kills, report.incarnations, report.violations) == (1, 2, [])
