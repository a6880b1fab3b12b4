"""Brokers, workers and engines for the worker-based engine tests.

``broker`` runs a test once per transport: kombu's in-process ``memory://``,
the real RabbitMQ and the real Redis (skipped without them, failed under
CI).  Every test gets its own exchange name, so parallel runs never share
queues.  ``workers`` starts in-process workers (threads) and stops them;
``spawn_worker`` starts real worker processes (``python -m
taskflow.engines.worker_based.worker``) for tests that kill them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import taskflow.engines
from taskflow.engines.worker_based import worker as worker_module
from tests import _services

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVED = ('Adder', 'Multiplier', 'Progressing', 'Failing', 'Reverting', 'Echo', 'Noop',
          'Sleeper', 'Unjsonable', 'Huge', 'AsyncDoubler')
# Every test task but tasks.Forbidden, which no worker may ever run.
TASKS = ['tests.workers.tasks:%s' % name for name in SERVED]


class Broker:
    """One transport: its URL and how to load engines/workers on it."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        self.exchange = 'tf-test-%s' % uuid.uuid4().hex[:10]

    def load(self, flow: Any, topics: list[str] | None = None, **options: Any) -> Any:
        options.setdefault('transition_timeout', 20)
        return taskflow.engines.load(flow, engine='worker-based', url=self.url,
                                     exchange=self.exchange,
                                     topics=topics if topics is not None else ['t1'],
                                     **options)

    def __repr__(self) -> str:
        return '<Broker %s>' % self.name


def rabbitmq_url() -> str:
    host, port = _services.require_endpoint('rabbitmq')
    return 'amqp://guest:guest@%s:%s//' % (host, port)


def redis_url() -> str:
    host, port = _services.require_endpoint('redis')
    return 'redis://%s:%s/7' % (host, port)


def make_broker(name: str) -> Broker:
    if name == 'memory':
        return Broker(name, 'memory://')
    if name == 'rabbitmq':
        return Broker(name, rabbitmq_url())
    return Broker(name, redis_url())


@pytest.fixture(params=['memory', 'rabbitmq', 'redis'])
def broker(request: pytest.FixtureRequest) -> Broker:
    return make_broker(request.param)


@pytest.fixture
def rabbitmq() -> Broker:
    return make_broker('rabbitmq')


class Workers:
    """Starts in-process workers; stops them all at the end of the test."""

    def __init__(self) -> None:
        self._started: list[tuple[worker_module.Worker, threading.Thread]] = []

    def start(self, broker: Broker, topic: str = 't1', tasks: Any = None,
              **kwargs: Any) -> worker_module.Worker:
        worker = worker_module.Worker(exchange=broker.exchange, topic=topic,
                                      tasks=tasks if tasks is not None else TASKS,
                                      url=broker.url, **kwargs)
        thread = threading.Thread(target=worker.run, kwargs={'display_banner': False},
                                  daemon=True)
        thread.start()
        assert worker.wait(10), 'the worker did not start'
        self._started.append((worker, thread))
        return worker

    def stop_all(self) -> None:
        for worker, thread in self._started:
            worker.stop()
            thread.join(10)


@pytest.fixture
def workers() -> Iterator[Workers]:
    started = Workers()
    yield started
    started.stop_all()


class WorkerProcess:
    """A worker in its own process (``python -m ...worker``)."""

    def __init__(self, broker: Broker, topic: str, tasks: list[str], ledger: Path | None,
                 log: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        if ledger is not None:
            env['TASKFLOW_TEST_LEDGER'] = str(ledger)
        command = [sys.executable, '-m', 'taskflow.engines.worker_based.worker',
                   '--exchange', broker.exchange, '--connection-url', broker.url,
                   '--topic', topic]
        for task in tasks:
            command += ['--task', task]
        self.log = log
        self._log_file = open(log, 'ab')
        self.process = subprocess.Popen(command, cwd=str(REPO_ROOT), env=env,
                                        stdout=self._log_file, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_listening(self, timeout: float = 20) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise AssertionError('worker exited: %s' % self.log.read_text()[-2000:])
            if b'Supported endpoints' in self.log.read_bytes():
                time.sleep(0.2)  # the banner is logged just before consuming starts
                return
            time.sleep(0.05)
        raise AssertionError('worker did not start: %s' % self.log.read_text()[-2000:])

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log_file.close()


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def spawn(broker: Broker, topic: str = 't1', tasks: list[str] | None = None,
              ledger: Path | None = None, wait: bool = True) -> WorkerProcess:
        log = tmp_path / ('worker-%d.log' % len(started))
        process = WorkerProcess(broker, topic, tasks or TASKS, ledger, log)
        started.append(process)
        if wait:
            process.wait_listening()
        return process

    yield spawn
    for process in started:
        process.stop()
