"""Rolling upgrades: the original's workers serve our engine and ours serve the
original's engine, over one RabbitMQ exchange (the original runs as a black
box through ``scripts/oracle``)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from taskflow import exceptions as exc
from taskflow import states as st
from taskflow.engines.worker_based import worker as worker_module
from taskflow.patterns import linear_flow
from taskflow.patterns import unordered_flow
from tests import _services

pytestmark = pytest.mark.oracle

MODULE = 'wb_interop_tasks'
TASKS_SOURCE = '''
import time
from taskflow import task


class Adder(task.Task):
    def execute(self, x, y):
        self.update_progress(0.5)
        return x + y


class Failing(task.Task):
    def execute(self, x):
        raise ValueError('bad x %s' % x)

    def revert(self, x, result, flow_failures, **kwargs):
        return None


class Remember(task.Task):
    def execute(self):
        return {'list': [1, 2], 'text': 'ok'}

    def revert(self, result, flow_failures, **kwargs):
        assert result == {'list': [1, 2], 'text': 'ok'}, result
        assert list(flow_failures) == ['wb_interop_tasks.Failing'], flow_failures


class Slow(task.Task):
    def execute(self, seconds):
        time.sleep(seconds)
        return seconds
'''
SERVED = ['%s:%s' % (MODULE, name) for name in ('Adder', 'Failing', 'Remember', 'Slow')]


@pytest.fixture
def interop_tasks(tmp_path: Path, monkeypatch):
    (tmp_path / (MODULE + '.py')).write_text(TASKS_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(MODULE, None)
    module = importlib.import_module(MODULE)
    yield tmp_path, module
    sys.modules.pop(MODULE, None)


def _original_worker(tmp_path: Path, broker, topic: str) -> subprocess.Popen:
    tool = _services.require_oracle()
    program = textwrap.dedent('''
        import sys, logging
        sys.path.insert(0, %r)
        logging.basicConfig(level=logging.INFO)
        from taskflow.engines.worker_based import worker
        w = worker.Worker(exchange=%r, topic=%r, tasks=%r, url=%r)
        w.run()
    ''' % (str(tmp_path), broker.exchange, topic, SERVED, broker.url))
    log = open(tmp_path / ('original-worker-%s.log' % topic), 'wb')
    process = subprocess.Popen([tool, '-c', program], stdout=log, stderr=subprocess.STDOUT)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if b'Supported endpoints' in (tmp_path / ('original-worker-%s.log' % topic)).read_bytes():
            time.sleep(0.5)
            return process
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    pytest.fail('the original worker did not start: %s'
                % (tmp_path / ('original-worker-%s.log' % topic)).read_text()[-2000:])


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_original_worker_serves_our_engine(rabbitmq, interop_tasks) -> None:
    tmp_path, tasks = interop_tasks
    process = _original_worker(tmp_path, rabbitmq, 't1')
    try:
        adder = tasks.Adder(provides='z')
        progress = []
        adder.notifier.register('update_progress', lambda e, details: progress.append(
            details['progress']))
        engine = rabbitmq.load(linear_flow.Flow('ok').add(adder), store={'x': 2, 'y': 5})
        engine.run()
        assert engine.storage.fetch('z') == 7
        assert 0.5 in progress and progress[-1] == 1.0

        flow = linear_flow.Flow('bad').add(tasks.Remember(), tasks.Failing())
        engine = rabbitmq.load(flow, store={'x': 3})
        with pytest.raises(exc.WrappedFailure) as caught:
            engine.run()
        assert 'bad x 3' in str(caught.value)
        assert engine.storage.get_flow_state() == st.REVERTED
        assert engine.storage.get_atom_state('wb_interop_tasks.Remember') == st.REVERTED
    finally:
        _stop(process)


def test_mixed_fleet_on_one_topic_serves_our_engine(rabbitmq, interop_tasks,
                                                    workers) -> None:
    tmp_path, tasks = interop_tasks
    process = _original_worker(tmp_path, rabbitmq, 'shared')
    try:
        ours = workers.start(rabbitmq, topic='shared', tasks=SERVED)
        assert ours
        flow = unordered_flow.Flow('u').add(*[
            tasks.Slow(name='s%d' % i, inject={'seconds': 0.05}, provides='r%d' % i)
            for i in range(40)])
        engine = rabbitmq.load(flow, topics=['shared'])
        engine.run()
        assert [engine.storage.fetch('r%d' % i) for i in range(40)] == [0.05] * 40
    finally:
        _stop(process)


ORIGINAL_ENGINE = '''
import json, sys
sys.path.insert(0, %(path)r)
import taskflow.engines
from taskflow.patterns import linear_flow
import wb_interop_tasks as tasks
out = {}
adder = tasks.Adder(provides='z')
seen = []
adder.notifier.register('update_progress', lambda e, details: seen.append(details['progress']))
engine = taskflow.engines.load(linear_flow.Flow('ok').add(adder), engine='worker-based',
                               url=%(url)r, exchange=%(exchange)r, topics=['t1'],
                               store={'x': 20, 'y': 22}, transition_timeout=30)
engine.run()
out['z'] = engine.storage.fetch('z')
out['progress'] = seen
flow = linear_flow.Flow('bad').add(tasks.Remember(), tasks.Failing())
engine = taskflow.engines.load(flow, engine='worker-based', url=%(url)r,
                               exchange=%(exchange)r, topics=['t1'], store={'x': 9},
                               transition_timeout=30)
try:
    engine.run()
except Exception as error:
    out['error'] = [type(error).__name__, str(error)]
out['state'] = engine.storage.get_flow_state()
out['remember'] = engine.storage.get_atom_state('wb_interop_tasks.Remember')
print(json.dumps(out))
'''


def test_our_worker_serves_the_original_engine(rabbitmq, interop_tasks) -> None:
    tmp_path, _tasks = interop_tasks
    worker = worker_module.Worker(exchange=rabbitmq.exchange, topic='t1', tasks=SERVED,
                                  url=rabbitmq.url)
    thread = threading.Thread(target=worker.run, kwargs={'display_banner': False},
                              daemon=True)
    thread.start()
    assert worker.wait(10)
    try:
        proc = _services.run_oracle(ORIGINAL_ENGINE % {
            'path': str(tmp_path), 'url': rabbitmq.url, 'exchange': rabbitmq.exchange})
    finally:
        worker.stop()
        thread.join(10)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out['z'] == 42
    assert 0.5 in out['progress'] and out['progress'][-1] == 1.0
    assert out['error'][0] == 'WrappedFailure' and 'bad x 9' in out['error'][1]
    assert out['state'] == 'REVERTED' and out['remember'] == 'REVERTED'
    # Heartbeats go only to engines that ask: the original logged nothing odd.
    assert 'HEARTBEAT' not in proc.stderr and 'Traceback' not in proc.stderr
