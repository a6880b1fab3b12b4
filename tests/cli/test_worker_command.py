"""``taskflow worker``: a real worker process serving a worker-based engine."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid

import taskflow.engines
from taskflow.patterns import linear_flow
from tests.cli.test_cli import one_error_line, quiet_env, taskflow
from tests.web import _server
from tests.workers import conftest as workers
from tests.workers import tasks


def test_a_worker_started_from_the_command_line_serves_an_engine(tmp_path):
    broker = workers.make_broker('rabbitmq')
    log = open(tmp_path / 'worker.log', 'w+')
    process = subprocess.Popen(
        _server.taskflow_command() + [
            'worker', '--url', broker.url, '--exchange', broker.exchange,
            '--topic', 't1', '--task', 'tests.workers.tasks:Adder',
            '--task', 'tests.workers.tasks:Multiplier'],
        cwd=str(_server.REPO), env=_server.env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while 'Supported endpoints' not in (tmp_path / 'worker.log').read_text():
            assert process.poll() is None, (tmp_path / 'worker.log').read_text()
            assert time.monotonic() < deadline, 'the worker never started'
            time.sleep(0.1)
        flow = linear_flow.Flow('f-%s' % uuid.uuid4().hex[:6]).add(
            tasks.Adder(provides='z'), tasks.Multiplier(provides='product'))
        engine = broker.load(flow, store={'x': 2, 'y': 3})
        engine.run()
        assert engine.storage.fetch('product') == 10
    finally:
        process.send_signal(signal.SIGTERM)   # as a supervisor stops it
        assert process.wait(20) == 0
        log.close()
    output = (tmp_path / 'worker.log').read_text()
    assert 'Uri => amqp://guest:**@' in output and 'guest:guest' not in output


def test_a_task_that_cannot_be_loaded_is_one_error_line():
    proc = taskflow('worker', '--url', 'amqp://guest:s3cret@127.0.0.1:5672//',
                    '--exchange', 'e', '--topic', 't', '--task', 'no_such_module:Task',
                    env=quiet_env())
    line = one_error_line(proc)
    assert "cannot load the tasks to serve: No module named 'no_such_module'" in line
    assert 's3cret' not in proc.stdout + proc.stderr
