"""The Worker: what it serves, its banner, its command line."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from taskflow.engines.worker_based import worker as worker_module
from taskflow.patterns import linear_flow
from tests.workers import tasks
from tests.workers.conftest import REPO_ROOT


def _endpoints(items) -> list[str]:
    return sorted(worker_module.endpoints_from(items))


def test_task_items_of_every_kind() -> None:
    assert _endpoints(['tests.workers.tasks:Adder']) == ['tests.workers.tasks.Adder']
    assert _endpoints([tasks.Echo]) == ['tests.workers.tasks.Echo']
    every = _endpoints(['tests.workers.tasks'])
    assert 'tests.workers.tasks.Forbidden' in every and 'tests.workers.tasks.Adder' in every
    assert _endpoints([tasks]) == every
    # Names imported into a module are not its own tasks.
    assert not any(name.startswith('taskflow.') for name in every)


@pytest.mark.parametrize('item', ['tests.workers.tasks:record', 42, object(),
                                  'tests.workers.tasks:LEDGER_ENV'])
def test_other_items_are_type_errors(item) -> None:
    with pytest.raises(TypeError):
        worker_module.endpoints_from([item])


def test_banner_hides_the_password_and_lists_endpoints() -> None:
    worker = worker_module.Worker(exchange='ex', topic='top',
                                  tasks=['tests.workers.tasks:Adder'],
                                  url='amqp://guest:very-secret@127.0.0.1:5672//')
    banner = worker.banner
    assert 'very-secret' not in banner
    assert 'Uri => amqp://guest:**@127.0.0.1:5672//' in banner
    assert '  1. tests.workers.tasks.Adder' in banner
    assert 'Exchange => ex' in banner and 'Topic => top' in banner


def test_run_writes_the_banner(broker) -> None:
    written = []
    worker = worker_module.Worker(exchange=broker.exchange, topic='t1',
                                  tasks=[tasks.Adder], url=broker.url)
    import threading
    thread = threading.Thread(target=worker.run, kwargs={'banner_writer': written.append},
                              daemon=True)
    thread.start()
    assert worker.wait(10)
    worker.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert written and 'Supported endpoints:' in written[0]


def test_run_logs_the_banner_line_by_line(caplog) -> None:
    worker = worker_module.Worker(exchange='ex', topic='t', tasks=[tasks.Adder],
                                  url='memory://')
    import threading
    with caplog.at_level(logging.INFO, logger='taskflow.engines.worker_based.worker'):
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        assert worker.wait(10)
        worker.stop()
        thread.join(10)
    lines = [r.getMessage() for r in caplog.records
             if r.name == 'taskflow.engines.worker_based.worker']
    assert '*WBE worker*' in lines and '  Topic => t' in lines


def test_command_line_worker_serves_an_engine(rabbitmq, spawn_worker) -> None:
    process = spawn_worker(rabbitmq, tasks=['tests.workers.tasks:Adder'])
    engine = rabbitmq.load(linear_flow.Flow('f').add(tasks.Adder(provides='z')),
                           store={'x': 20, 'y': 22})
    engine.run()
    assert engine.storage.fetch('z') == 42
    log = process.log.read_text()
    assert 'guest:guest' not in log and 'Uri => amqp://guest:**@' in log


def test_command_line_help() -> None:
    proc = subprocess.run([sys.executable, '-m', 'taskflow.engines.worker_based.worker',
                           '--help'], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=60)
    assert proc.returncode == 0
    for option in ('--exchange', '--connection-url', '--topic', '--task', '-v'):
        assert option in proc.stdout
