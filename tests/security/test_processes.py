"""Masking configured by environment holds across processes and crashes.

A conductor or worker process is configured like any other: the
``TASKFLOW_MASK_KEYS`` environment variable.  One process starts a flow and
is killed (SIGKILL) in the middle of a task; a second process, which has
never seen the secret's value (nothing remembered), resumes it and the task
fails quoting its password.  Nothing either process printed or logged, nor
what the database holds as failures, contains the secret.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from taskflow import secrets
from tests import _services

REPO_ROOT = _services.REPO_ROOT


def run_phase(phase, url, book_uuid, marker, secret, masked='password'):
    env = dict(os.environ, SECRET=secret, PYTHONPATH=str(REPO_ROOT))
    env[secrets.ENV_VAR] = masked
    return subprocess.run(
        [sys.executable, '-m', 'tests.security._crashing_flow', phase, url, book_uuid, marker],
        cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, timeout=120)


def stored_failures(url):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [(row.name, row.state, row.failure) for row in conn.execute(sa.text(
                'SELECT name, state, failure FROM atomdetails'))]
    finally:
        engine.dispose()


@pytest.mark.parametrize('database', [
    'sqlite',
    pytest.param('postgresql', marks=pytest.mark.postgresql),
])
def test_a_crashed_flow_resumed_elsewhere_never_shows_its_secret(database, tmp_path):
    secret = 'canary-%s' % uuid.uuid4().hex
    if database == 'sqlite':
        url = 'sqlite:///%s' % (tmp_path / 'processes.db')
    else:
        url = _services.scratch_database(database)
    try:
        book_uuid = str(uuid.uuid4())
        marker = str(tmp_path / 'crashed-once')
        first = run_phase('start', url, book_uuid, marker, secret)
        assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
        second = run_phase('resume', url, book_uuid, marker, secret)
        assert second.returncode == 0, second.stderr[-2000:]
        rows = stored_failures(url)
    finally:
        if database != 'sqlite':
            _services.drop_scratch_database(url)

    outputs = [first.stdout, first.stderr, second.stdout, second.stderr]
    stored = [str(failure) for _name, _state, failure in rows]
    for text in outputs + stored:
        assert secret not in text
    # The runs did what they should: the first got as far as the crashing
    # task, the second re-ran it, failed and reverted, and said so.
    assert "has moved task 'crash'" in first.stdout
    assert "with result '{'session': '***', 'user': 'bob'}'" not in first.stdout
    assert 'raised RuntimeError' in second.stdout
    assert "with result 'Failure: RuntimeError: login *** refused (session ***-session)'" \
        in second.stdout
    assert 'RuntimeError: login *** refused' in second.stderr   # logged traceback
    [crash_failure] = [f for name, _s, f in rows if name == 'crash' and f]
    assert 'login *** refused' in str(crash_failure)


def test_without_the_environment_variable_the_secret_is_shown(tmp_path):
    # The same processes with nothing masked: the test above is not vacuous.
    secret = 'canary-%s' % uuid.uuid4().hex
    url = 'sqlite:///%s' % (tmp_path / 'processes.db')
    book_uuid = str(uuid.uuid4())
    marker = str(tmp_path / 'crashed-once')
    run_phase('start', url, book_uuid, marker, secret, masked='')
    second = run_phase('resume', url, book_uuid, marker, secret, masked='')
    assert 'Failure: RuntimeError: login %s refused' % secret in second.stdout
