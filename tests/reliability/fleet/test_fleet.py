"""Fleet trials under pytest: conductor processes killed, stopped, poisoned,
and the board's service cut under them.

A modest number per available board (``FLEET_TRIALS`` kill trials of
``FLEET_JOBS`` jobs, default 2 and 20); ``python -m tests.reliability.fleet``
runs more.  A board whose server is missing skips (fails under CI).
"""

from __future__ import annotations

import os

import pytest

from tests import _services
from tests.reliability.fleet import boards, report
from tests.reliability.fleet.driver import TrialConfig, run_trial

TRIALS = int(os.environ.get('FLEET_TRIALS', '1'))
JOBS = int(os.environ.get('FLEET_JOBS', '12'))


@pytest.fixture(params=boards.KINDS)
def kind(request):
    try:
        boards.check_available(request.param)
    except boards.Unavailable as e:
        _services.unavailable(request.param, str(e))
    return request.param


def _run(cfg: TrialConfig):
    result = run_trial(cfg)
    assert not result.violations, report.trial_line(result)
    return result


def test_killed_holders_are_taken_over_and_every_job_runs_once(kind):
    freed = []
    for _ in range(TRIALS):
        # Tasks long enough that some job is still held when the first kill is due.
        result = _run(TrialConfig(board=kind, mode='kill', jobs=JOBS, kills=2,
                                  task_seconds=(0.1, 0.3)))
        assert result.kills >= 1, 'no claim holder was ever killed'
        freed += result.freed
    assert freed and max(freed) <= 2.0 + 2.0   # the lease, + 2 s


def test_a_stopped_holder_writes_nothing_after_the_takeover(kind):
    _run(TrialConfig(board=kind, mode='stop', jobs=3))


def test_a_job_that_crashes_its_conductor_ends_in_the_dead_letter(kind):
    _run(TrialConfig(board=kind, mode='poison', jobs=2, conductors=2,
                     dead_letter_after=int(os.environ.get('FLEET_DEAD_LETTER_AFTER', '3'))))


#: Programs the outage trials run their private servers with.
_PRIVATE_SERVERS = {'redis': 'redis-server', 'etcd': 'etcd'}


def test_outages_of_the_boards_service_lose_no_job_and_run_none_twice(kind):
    if kind in _PRIVATE_SERVERS:
        _services.require_program(_PRIVATE_SERVERS[kind])
    result = _run(TrialConfig(board=kind, mode='outage', jobs=JOBS, cuts=(2, 2),
                              task_seconds=(0.1, 0.3)))
    assert result.cuts, 'the service was never cut'
