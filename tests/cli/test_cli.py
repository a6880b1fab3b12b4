"""The ``taskflow`` command through its real entry point, in subprocesses."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys

import pytest

from tests import _services
from tests.operate import flows
from tests.web import _server

FLOWS = 'tests.operate.flows:'


def taskflow(*args, check=None, input=None, env=None):
    proc = subprocess.run(_server.taskflow_command() + list(args), cwd=str(_server.REPO),
                          env=env or _server.env(), capture_output=True, text=True,
                          timeout=120, input=input, stdin=None if input else subprocess.DEVNULL)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def one_error_line(proc, code=1):
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('taskflow: error: '), proc.stderr
    assert 'Traceback' not in proc.stderr
    return lines[0]


def quiet_env():
    env = _server.env()
    env.pop('TASKFLOW_DEBUG', None)
    return env


@pytest.fixture
def db(tmp_path):
    return 'sqlite:///%s' % (tmp_path / 'cli.db')


def test_a_failed_flow_seen_and_retried_from_the_command_line(db, tmp_path):
    log = str(tmp_path / 'log')
    flows.break_task(log, 'charge')
    proc = taskflow('run', FLOWS + 'make_orders', '--backend', db, '--store', 'log=' + log,
                    '--store', 'delay=0', '--store', 'db_password="hunter2"', check=3)
    assert 'charge                   FAILURE' in proc.stdout          # live, line per event
    assert 'is REVERTED: RuntimeError: charge is broken' in proc.stdout
    uuid = proc.stdout.split('running flow orders (', 1)[1].split(')', 1)[0]
    assert 'look at it: taskflow show %s' % uuid in proc.stdout

    listed = json.loads(taskflow('flows', '--backend', db, '--json', check=0).stdout)
    assert [(f['uuid'], f['state'], f['done'], f['total']) for f in listed] == [
        (uuid, 'REVERTED', 3, 7)]
    failed_only = taskflow('flows', '--backend', db, '--state', 'FAILURE', '--json', check=0)
    assert json.loads(failed_only.stdout) == []

    shown = taskflow('show', uuid[:8], '--backend', db, check=0).stdout
    assert 'charge failed: RuntimeError: charge is broken' in shown
    assert 'Traceback (most recent call last):' in shown
    assert "raise RuntimeError('%s is broken' % self.name)" in shown
    assert 'db_password=***' in shown and 'hunter2' not in shown
    data = json.loads(taskflow('show', uuid, '--backend', db, '--json', check=0).stdout)
    charge = next(a for a in data['atoms'] if a['name'] == 'charge')
    assert (charge['state'], charge['failure']['type']) == ('REVERTED', 'RuntimeError')
    assert data['store']['db_password'] == '***'

    flows.break_task(log, 'charge', broken=False)
    before = flows.ran(log)
    proc = taskflow('retry', uuid, '--backend', db, '--yes', '--why', 'gateway back',
                    '--who', 'ops', check=0)
    assert 'is SUCCESS' in proc.stdout
    assert flows.ran(log)[len(before):] == ['exec charge', 'exec ship', 'exec receipt']
    data = json.loads(taskflow('show', uuid, '--backend', db, '--json', check=0).stdout)
    assert [(a['action'], a['who'], a['why']) for a in data['actions']] == [
        ('retry', 'ops', 'gateway back')]
    assert 'retry            by ops (gateway back)' in taskflow('show', uuid, '--backend', db,
                                                               check=0).stdout


def test_skip_with_a_result_then_resume(db, tmp_path):
    log = str(tmp_path / 'log')
    flows.break_task(log, 'c')
    taskflow('run', FLOWS + 'make_linear', '--backend', db, '--store', 'log=' + log,
             '--store', 'delay=0', check=3)
    proc = taskflow('skip', 'linear', 'c', '--backend', db, '--yes', check=1)
    assert "'d' needs 'c_out', which only 'c' provides" in proc.stderr
    proc = taskflow('skip', 'linear', 'c', '--result', '"by hand"', '--backend', db, '--yes',
                    '--no-run', '--json', check=0)
    data = json.loads(proc.stdout)
    assert (data['state'], data['action']['atom'], data['action']['as']) == (
        'SUSPENDED', 'c', 'SUCCESS')
    before = flows.ran(log)
    assert 'is SUCCESS' in taskflow('resume', 'linear', '--backend', db, check=0).stdout
    assert flows.ran(log)[len(before):] == ['exec a', 'exec b', 'exec d']
    shown = json.loads(taskflow('show', 'linear', '--backend', db, '--json', check=0).stdout)
    assert next(a for a in shown['atoms'] if a['name'] == 'c')['result'] == 'by hand'
    assert [a['action'] for a in shown['actions']] == ['skip', 'resume']


def test_resume_without_reverting_then_revert(db, tmp_path):
    log = str(tmp_path / 'log')
    flows.break_task(log, 'c')
    taskflow('run', FLOWS + 'make_independent', '--backend', db, '--store', 'log=' + log,
             '--store', 'delay=0', check=3)
    taskflow('retry', 'independent', '--backend', db, '--yes', '--no-run', check=0)
    before = flows.ran(log)
    proc = taskflow('resume', 'independent', '--no-revert', '--yes', '--backend', db, check=3)
    assert 'is FAILURE: RuntimeError: c is broken' in proc.stdout
    assert flows.ran(log)[len(before):] == ['exec a', 'exec b', 'exec c']   # no revert
    before = flows.ran(log)
    proc = taskflow('revert', 'independent', '--backend', db, '--yes', '--why', 'give up',
                    check=0)
    assert 'is REVERTED' in proc.stdout
    assert flows.ran(log)[len(before):] == ['revert c', 'revert b', 'revert a']
    shown = json.loads(taskflow('show', 'independent', '--backend', db, '--json',
                                check=0).stdout)
    assert [a['action'] for a in shown['actions']] == ['retry', 'resume_no_revert', 'revert']


def test_errors_are_one_line_and_a_status(db, tmp_path):
    env = quiet_env()
    missing = tmp_path / 'missing.db'
    line = one_error_line(taskflow('flows', '--backend', 'sqlite:///%s' % missing, env=env))
    assert 'no taskflow database at %s' % missing in line
    assert not missing.exists()
    taskflow('run', FLOWS + 'make_independent', '--backend', db, '--store',
             'log=%s' % (tmp_path / 'log'), '--store', 'delay=0', check=0)
    assert 'no flow' in one_error_line(taskflow('show', 'nope', '--backend', db, env=env))
    assert 'nothing to retry' in one_error_line(
        taskflow('retry', 'independent', '--backend', db, '--yes', env=env))
    assert 'expected MODULE:FACTORY' in one_error_line(
        taskflow('run', 'nonsense', '--backend', db, env=env))
    assert 'cannot import no_such_module' in one_error_line(
        taskflow('run', 'no_such_module:f', '--backend', db, env=env))
    assert 'expected KEY=VALUE' in one_error_line(
        taskflow('run', FLOWS + 'make_linear', '--store', 'oops', '--backend', db, env=env))
    assert 'unusable backend' in one_error_line(
        taskflow('flows', '--backend', 'nosuch://x', env=env))
    # Confirmation is required when nobody can answer it.
    assert 'confirmation needed, pass --yes' in one_error_line(
        taskflow('revert', 'independent', '--backend', db, env=env), code=2)
    assert "No such option '--bogus'" in one_error_line(
        taskflow('flows', '--bogus', env=env), code=2)


def test_graph_of_a_factory_and_of_a_stored_flow(db, tmp_path):
    dot = taskflow('graph', FLOWS + 'make_orders', check=0).stdout
    assert dot.startswith('digraph "orders" {')
    assert '"reserve" -> "payment-retry";' in dot and '"charge" -> "ship";' in dot
    assert 'subgraph cluster_' in dot and 'fillcolor=' not in dot.split('\n', 3)[3]
    log = str(tmp_path / 'log')
    flows.break_task(log, 'charge')
    taskflow('run', FLOWS + 'make_orders', '--backend', db, '--store', 'log=' + log,
             '--store', 'delay=0', check=3)
    mermaid = taskflow('graph', 'orders', '--format', 'mermaid', '--backend', db,
                       check=0).stdout
    assert mermaid.startswith('flowchart LR')
    assert 'charge<br/>REVERTED' in mermaid and 'class' in mermaid
    out = tmp_path / 'orders.svg'
    taskflow('graph', 'orders', '--format', 'svg', '-o', str(out), '--backend', db, check=0)
    svg = out.read_text()
    assert svg.startswith('<svg') and 'data-atom="charge"' in svg
    assert 'class="atom kind-task state-REVERTED" data-atom="charge"' in svg


def test_the_main_jobs_database(tmp_path):
    db_file = tmp_path / 'main.db'
    job = subprocess.run([sys.executable, 'examples/main_job.py', '--db', str(db_file)],
                         cwd=str(_server.REPO), capture_output=True, text=True, timeout=120)
    assert job.returncode == 0, job.stderr
    hint = [line.strip() for line in job.stdout.splitlines() if 'taskflow show' in line]
    args = hint[0].split()[1:]
    assert args[:1] == ['show'] and args[-2:] == ['--backend', 'sqlite:///%s' % db_file]
    shown = taskflow(*args, check=0).stdout
    assert 'fulfil-order' in shown and 'SUCCESS' in shown and 'PAY-A-1001' in shown
    graph = taskflow('graph', args[1], '--backend', args[-1], check=1)
    assert 'defined in the script that ran the flow' in graph.stderr
    graph = taskflow('graph', args[1], '--backend', args[-1], '--format', 'mermaid',
                     '--factory', 'examples/main_job.py:make_flow', check=0)
    assert 'charge-card<br/>SUCCESS' in graph.stdout


def test_a_progress_bar_on_a_terminal(db, tmp_path):
    """On a terminal ``run`` draws a live bar: atoms done/total and the atom running."""
    master, slave = pty.openpty()
    env = dict(_server.env(), TERM='xterm-256color', COLUMNS='120')
    proc = subprocess.Popen(_server.taskflow_command() + [
        'run', FLOWS + 'make_independent', '--backend', db,
        '--store', 'log=%s' % (tmp_path / 'log'), '--store', 'delay=0.3'],
        cwd=str(_server.REPO), env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        ready, _w, _x = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(30) == 0
    os.close(master)
    screen = b''.join(chunks).decode('utf-8', 'replace')
    assert '4/4 atoms' in screen
    assert '2/4 atoms' in screen and 'c running' in screen     # seen while it ran


@pytest.mark.postgresql
def test_a_server_backend_and_its_password_is_never_shown(tmp_path):
    url = _services.scratch_database('postgresql')
    try:
        import sqlalchemy as sa
        with_password = sa.engine.make_url(url).set(password='topsecret').render_as_string(
            hide_password=False)
        log = str(tmp_path / 'log')
        taskflow('run', FLOWS + 'make_independent', '--backend', with_password,
                 '--store', 'log=' + log, '--store', 'delay=0', check=0)
        shown = taskflow('show', 'independent', '--backend', with_password, check=0).stdout
        assert 'topsecret' not in shown and ':***@' in shown
        refused = taskflow('resume', 'independent', '--backend', with_password, check=1)
        assert 'already finished successfully' in refused.stderr
        unreachable = with_password.replace(':5432/', ':1/')
        error = one_error_line(taskflow('flows', '--backend', unreachable, env=quiet_env()))
        assert 'cannot open backend' in error and ':***@' in error
        assert 'topsecret' not in error
    finally:
        _services.drop_scratch_database(url)
