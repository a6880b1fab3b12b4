"""``taskflow jobs`` and ``taskflow conductor`` through the real entry point,
on the SQL board in the persistence's SQLite file (the embedded default)."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from taskflow.jobs import backends as job_backends
from tests.cli.test_cli import one_error_line, quiet_env, taskflow
from tests.conductors import _support
from tests.conductors import flows
from tests.web import _server


def _listed(db, *extra):
    return json.loads(taskflow('jobs', '--backend', db, '--json', *extra, check=0).stdout)


def test_jobs_listed_run_by_a_conductor_and_the_refused_one_trashed(tmp_path):
    db = _support.sqlite_url(tmp_path)
    persistence = _support.make_persistence(db)
    board = job_backends.fetch('cli', {'board': 'sql', 'connection': db},
                               persistence=persistence)
    board.connect()
    ledger = str(tmp_path / 'ledger')
    good = _support.post_job(board, persistence, flows.steps, {'ledger': ledger})
    refused = _support.post_job(board, persistence, None, factory_name='os:getcwd')
    board.close()

    listed = _listed(db)
    assert {(j['uuid'], j['state'], j['owner']) for j in listed} == {
        (good.uuid, 'UNCLAIMED', None), (refused.uuid, 'UNCLAIMED', None)}

    log = open(tmp_path / 'conductor.log', 'w+')
    process = subprocess.Popen(
        _server.taskflow_command() + ['conductor', '--backend', db, '--name', 'c1',
                                      '--claim-expiry', '5'],
        cwd=str(_server.REPO), env=_server.env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while _listed(db):
            assert process.poll() is None, (tmp_path / 'conductor.log').read_text()
            assert time.monotonic() < deadline, (tmp_path / 'conductor.log').read_text()
            time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGTERM)   # as a supervisor stops it
        assert process.wait(30) == 0, (tmp_path / 'conductor.log').read_text()
        log.close()
    assert _support.read_ledger(ledger).count('done step-2') == 1
    [trashed] = _listed(db, '--trashed')
    assert trashed['uuid'] == refused.uuid
    assert trashed['attempts'][-1]['who'] == 'c1'
    assert trashed['attempts'][-1]['outcome'] == 'trashed'
    assert 'os:getcwd' in trashed['attempts'][-1]['reason']
    table = taskflow('jobs', '--backend', db, '--trashed', check=0).stdout
    assert 'trashed jobs (dead-letter)' in table and refused.uuid in table


def _restore_sigint():
    # A shell leaves SIGINT ignored for background commands (so would a CI
    # runner started that way); a terminal's Ctrl-C reaches a foreground one.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_an_idle_conductor_cleanly(tmp_path):
    db = _support.sqlite_url(tmp_path)
    log_path = tmp_path / 'conductor.log'
    with open(log_path, 'w') as log:
        process = subprocess.Popen(
            _server.taskflow_command() + ['conductor', '--backend', db, '--name', 'c1'],
            cwd=str(_server.REPO), env=_server.env(), stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_restore_sigint)
        try:
            deadline = time.monotonic() + 30
            while 'Ctrl-C or SIGTERM stops it' not in log_path.read_text():
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        finally:
            process.send_signal(signal.SIGINT)
            code = process.wait(30)
    output = log_path.read_text()
    assert code == 0, output
    assert 'Conductor c1 runs the jobs of sqlite:///' in output
    assert 'Traceback' not in output


def test_an_unreachable_board_is_one_error_line(tmp_path):
    db = _support.sqlite_url(tmp_path)
    _support.make_persistence(db)
    proc = taskflow('jobs', '--backend', db, '--board', 'redis://:s3cret@127.0.0.1:1/',
                    env=quiet_env())
    line = one_error_line(proc)
    assert 's3cret' not in proc.stdout + proc.stderr
    assert line.startswith('taskflow: error: ')
