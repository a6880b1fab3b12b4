"""``workers``: the worker-based engine over RabbitMQ, 2 worker processes.

The engine and both workers are of the implementation under test (workers
are started with the same interpreter, ``python -P -m
taskflow.engines.worker_based.worker``, sharing one topic so the broker
spreads requests over both).  Shapes: ``wide`` (an unordered flow of N no-op
tasks) and ``chain`` (task i+1 needs task i's result).  Timed:
``engines.load(flow, engine='worker-based', ...)`` + ``engine.run()``,
discovery of the workers included.  Also reported: tasks per second and the
round trip of each task (engine-side ``RUNNING`` -> ``SUCCESS``, p50/p99).

Broker: ``$TASKFLOW_BENCH_AMQP_URL`` (default
``amqp://guest:guest@127.0.0.1:5672//``); skipped when unreachable.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

from taskflow import engines
from taskflow import states

from scenarios import Skip
from scenarios import _flows

DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672//'
BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOPIC = 'bench'
TASKS = ('scenarios._flows:Noop', 'scenarios._flows:Head', 'scenarios._flows:Link')


def _url():
    url = os.environ.get('TASKFLOW_BENCH_AMQP_URL', DEFAULT_URL)
    split = urllib.parse.urlsplit(url)
    try:
        socket.create_connection((split.hostname, split.port or 5672), timeout=2).close()
    except OSError as error:
        raise Skip('RabbitMQ at %s:%s is not reachable: %s'
                   % (split.hostname, split.port or 5672, error))
    return url


def _start_workers(url, exchange, count, log_dir):
    env = dict(os.environ, PYTHONPATH=BENCH_DIR)
    processes = []
    for i in range(count):
        command = [sys.executable, '-P', '-m', 'taskflow.engines.worker_based.worker',
                   '--exchange', exchange, '--connection-url', url, '--topic', TOPIC]
        for task in TASKS:
            command += ['--task', task]
        log = open(os.path.join(log_dir, 'worker-%d.log' % i), 'wb')
        processes.append(subprocess.Popen(command, env=env, cwd=log_dir, stdout=log,
                                          stderr=subprocess.STDOUT))
    return processes


def _stop(processes):
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


def run_once(size, shape, url, exchange):
    if shape == 'chain':
        flow = _flows.build_chain(size)
    else:
        flow = _flows.build_wide(size)
    started, round_trips = {}, []

    def on_atom(state, details):
        now = time.perf_counter()
        if state == states.RUNNING:
            started[details['task_name']] = now
        elif state == states.SUCCESS:
            round_trips.append(now - started[details['task_name']])

    def load_and_run():
        engine = engines.load(flow, engine='worker-based', url=url, exchange=exchange,
                              topics=[TOPIC], transition_timeout=120)
        engine.atom_notifier.register('*', on_atom)
        engine.run()
        return engine

    seconds, engine = _flows.timed(load_and_run)
    if engine.storage.get_flow_state() != states.SUCCESS:
        raise AssertionError('the flow ended %s' % engine.storage.get_flow_state())
    if shape == 'chain' and engine.storage.fetch(_flows.chain_name(size - 1)) != size - 1:
        raise AssertionError('wrong last result')
    if len(round_trips) != size:
        raise AssertionError('%d of %d tasks reported SUCCESS' % (len(round_trips), size))
    return {'seconds': seconds, 'tasks_per_second': size / seconds,
            'round_trip_p50_ms': _percentile(round_trips, 0.5) * 1e3,
            'round_trip_p99_ms': _percentile(round_trips, 0.99) * 1e3}


def measure(size, shape='wide', workers=2):
    url = _url()
    exchange = 'tf-bench-%s' % uuid.uuid4().hex[:10]
    with tempfile.TemporaryDirectory(prefix='tf-bench-workers-') as log_dir:
        processes = _start_workers(url, exchange, workers, log_dir)
        try:
            # Untimed warm-up: imports, and both workers up and consuming.
            time.sleep(1.0)
            run_once(_flows.WARM_UP_SIZE, shape, url, exchange)
            return run_once(size, shape, url, exchange)
        finally:
            _stop(processes)
