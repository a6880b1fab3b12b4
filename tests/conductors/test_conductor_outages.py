"""A conductor whose board goes away (the SQL board on PostgreSQL behind a
TCP proxy that drops every connection): it backs off, logs a bounded
number of lines, stops promptly and picks up again when the server is
back."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest
from sqlalchemy.engine import make_url

from taskflow.conductors import backends as conductor_backends
from tests import _services
from tests._proxy import TcpProxy
from tests.conductors import _support
from tests.conductors import flows


@pytest.fixture
def env(tmp_path):
    pg_url = make_url(_services.scratch_database('postgresql'))
    proxy = TcpProxy(pg_url.host or '127.0.0.1', pg_url.port or 5432)
    persistence = _support.make_persistence(_support.sqlite_url(tmp_path))
    board = _support.make_board(
        pg_url.set(host='127.0.0.1', port=proxy.port).render_as_string(hide_password=False),
        'outage-%s' % uuid.uuid4().hex[:8], persistence,
        max_retries=1, max_retry_time=0.5)
    yield board, persistence, str(tmp_path / 'ledger'), proxy
    proxy.up()
    board.close()
    proxy.close()
    _services.drop_scratch_database(pg_url.render_as_string(hide_password=False))


def test_an_outage_backs_off_quietly_and_work_resumes(env, caplog):
    board, persistence, ledger, proxy = env
    job = _support.post_job(board, persistence, flows.steps, {'ledger': ledger})
    conductor = conductor_backends.fetch('blocking', 'c', board, persistence=persistence,
                                         engine='serial', wait_timeout=0.05)
    proxy.down()
    caplog.set_level(logging.WARNING, logger='taskflow.conductors')
    thread = threading.Thread(target=conductor.run, daemon=True)
    thread.start()
    time.sleep(4.0)
    warnings = [r for r in caplog.records if r.name.startswith('taskflow.conductors')]
    # 0.1, 0.2, 0.4, 0.8, 1.6, 3.2 s... at most one line per step.
    assert 1 <= len(warnings) <= 7
    assert _support.read_ledger(ledger) == []
    proxy.up()
    deadline = time.monotonic() + 20
    while job.state != 'COMPLETE' and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.state == 'COMPLETE'
    assert _support.read_ledger(ledger).count('done step-2') == 1
    conductor.stop()
    assert conductor.wait(5)


def test_stop_during_an_outage_returns_promptly(env):
    board, persistence, ledger, proxy = env
    conductor = conductor_backends.fetch('blocking', 'c', board, persistence=persistence,
                                         engine='serial', wait_timeout=0.05)
    thread = threading.Thread(target=conductor.run, daemon=True)
    thread.start()
    time.sleep(0.3)
    proxy.down()
    time.sleep(3.0)  # deep into the back-off
    started = time.monotonic()
    conductor.stop()
    assert conductor.wait(3)
    assert time.monotonic() - started < 2.0
