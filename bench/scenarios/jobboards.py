"""``jobboards``: jobs through a board on a real server; dispatch latency.

``mode='throughput'``: N jobs are posted, then ``consumers`` threads (each
with its own board connection, as separate consumers would have) iterate the
unclaimed jobs, claim and consume them until all N are gone.  Timed: the
first post to the last consume; ``jobs_per_second`` = N / seconds.

``mode='latency'``: one blocking conductor (in a thread, in-memory
persistence) waits on an otherwise empty board; N one-task jobs are posted
one at a time, each once the conductor went idle again (the previous job
consumed, then 50-100 ms).  Measured: post -> the conductor's
``running_start`` of that job; ``latency_p50``/``latency_p99`` in seconds.

Boards (servers from the environment, the test defaults otherwise):
``redis`` (``$TASKFLOW_TEST_REDIS``, 127.0.0.1:6379), ``zookeeper``
(``$TASKFLOW_TEST_ZOOKEEPER``, 127.0.0.1:2181), ``etcd``
(``$TASKFLOW_TEST_ETCD``, 127.0.0.1:2379) on both implementations, with
the configuration keys the original documents; ``sql-postgresql`` (taskflow-ng
only: the SQL board in a scratch database on ``$TASKFLOW_BENCH_PG_URL``)
and ``sql-sqlite`` (a fresh file).  Every run has its own namespace/path,
removed afterwards.  A server that does not answer skips the case.
"""

import contextlib
import os
import random
import socket
import statistics
import tempfile
import threading
import time
import uuid

from taskflow import engines
from taskflow import exceptions as exc
from taskflow import task
from taskflow.jobs import backends as job_backends
from taskflow.patterns import linear_flow
from taskflow.persistence import backends as persistence_backends
from taskflow.persistence import models

from scenarios import Skip

ENDPOINTS = {'redis': ('TASKFLOW_TEST_REDIS', '127.0.0.1:6379'),
             'zookeeper': ('TASKFLOW_TEST_ZOOKEEPER', '127.0.0.1:2181'),
             'etcd': ('TASKFLOW_TEST_ETCD', '127.0.0.1:2379')}
WARM_UP_JOBS = 20
CONSUMER_DEADLINE = 600.0   # seconds: a stuck consumer fails the run instead of hanging


class Noop(task.Task):
    def execute(self):
        pass


def noop_flow():
    """The flow of a latency job (module-level: conductors rebuild it by name)."""
    return linear_flow.Flow('noop').add(Noop('noop'))


def _endpoint(board):
    env, default = ENDPOINTS[board]
    host, _, port = os.environ.get(env, default).rpartition(':')
    try:
        socket.create_connection((host, int(port)), timeout=1.0).close()
    except OSError as error:
        raise Skip('%s at %s:%s is not reachable: %s' % (board, host, port, error))
    return host, int(port)


@contextlib.contextmanager
def _sql_url(board):
    if board == 'sql-sqlite':
        with tempfile.TemporaryDirectory(prefix='tf-bench-board-') as tmp:
            yield 'sqlite:///' + os.path.join(tmp, 'board.db')
        return
    from scenarios import persisted
    with persisted._scratch_postgresql() as url:
        yield url


@contextlib.contextmanager
def board_conf(board):
    """``(conf, cleanup)`` of a fresh namespace on ``board``'s server."""
    name = 'tf-bench-%s' % uuid.uuid4().hex[:10]
    if board.startswith('sql-'):
        _check_kind({'board': 'sql', 'connection': 'sqlite://'})
        with _sql_url(board) as url:
            store = persistence_backends.fetch({'connection': url})
            with contextlib.closing(store.get_connection()) as conn:
                conn.upgrade()
            store.close()
            yield {'board': 'sql', 'connection': url, 'namespace': name}
        return
    host, port = _endpoint(board)
    if board == 'redis':
        conf = {'board': 'redis', 'host': host, 'port': port, 'namespace': name}
    elif board == 'zookeeper':
        conf = {'board': 'zookeeper', 'hosts': '%s:%d' % (host, port),
                'path': '/%s' % name}
    else:
        conf = {'board': 'etcd', 'host': host, 'port': port, 'path': name}
    _check_kind(conf)
    try:
        yield conf
    finally:
        with contextlib.suppress(Exception):
            _cleanup(board, conf, host, port)


def _cleanup(board, conf, host, port):
    if board == 'redis':
        import redis
        client = redis.Redis(host=host, port=port)
        for key in client.scan_iter(match='%s*' % conf['namespace']):
            client.delete(key)
        client.close()
    elif board == 'zookeeper':
        import kazoo.client
        client = kazoo.client.KazooClient(hosts=conf['hosts'])
        client.start(timeout=5)
        client.delete(conf['path'], recursive=True)
        client.stop()
    else:
        import etcd3gw
        etcd3gw.client(host=host, port=port).delete_prefix(conf['path'])


def _check_kind(conf):
    try:
        job_backends.fetch('bench-probe', dict(conf))
    except (exc.NotFound, ImportError) as error:
        raise Skip('no %s jobboard in this taskflow: %s' % (conf['board'], error))


def _connected(conf, **kwargs):
    board = job_backends.fetch('bench', dict(conf), **kwargs)
    board.connect()
    return board


def _consume_all(conf, total, consumers):
    """Start ``consumers`` threads that consume until ``total`` jobs are gone."""
    done = [0]
    lock = threading.Lock()
    errors = []
    boards = [_connected(conf) for _ in range(consumers)]

    def consume(board, who):
        give_up = time.monotonic() + CONSUMER_DEADLINE
        try:
            while time.monotonic() < give_up:
                with lock:
                    if done[0] >= total:
                        return
                found = False
                for job in board.iterjobs(only_unclaimed=True):
                    try:
                        board.claim(job, who)
                    except (exc.UnclaimableJob, exc.NotFound):
                        continue
                    board.consume(job, who)
                    found = True
                    with lock:
                        done[0] += 1
                if not found:
                    time.sleep(0.001)
            errors.append('%s gave up after %.0f s' % (who, CONSUMER_DEADLINE))
        except Exception as error:   # reported by the run, after the threads end
            errors.append('%s: %r' % (who, error))
            with lock:
                done[0] = total   # let the other consumers stop too

    threads = [threading.Thread(target=consume, args=(board, 'consumer-%d' % i))
               for i, board in enumerate(boards)]
    return threads, boards, done, errors


def run_throughput(conf, size, consumers):
    poster = _connected(conf)
    threads, boards, done, errors = _consume_all(conf, size, consumers)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for i in range(size):
        poster.post('job-%d' % i, details={'n': i})
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    left = len(list(poster.iterjobs(ensure_fresh=True)))
    for board in boards + [poster]:
        board.close()
    if errors:
        raise AssertionError('consumers failed: %s' % '; '.join(errors))
    if done[0] != size or left:
        raise AssertionError('%d jobs consumed, %d left on the board, expected %d and 0'
                             % (done[0], left, size))
    return seconds


def run_latency(conf, size):
    from taskflow.conductors import backends as conductor_backends
    store = persistence_backends.fetch({'connection': 'memory://'})
    board = _connected(conf, persistence=store)
    started, consumed = {}, {}
    cond = threading.Condition()

    def on_event(event, details):
        with cond:
            target = started if event == 'running_start' else consumed
            target[details['job'].uuid] = time.perf_counter()
            cond.notify_all()

    conductor = conductor_backends.fetch('blocking', 'bench-conductor', board,
                                         persistence=store, engine='serial')
    conductor.notifier.register('running_start', on_event)
    conductor.notifier.register('job_consumed', on_event)
    runner = threading.Thread(target=conductor.run, daemon=True)
    runner.start()
    poster = _connected(conf, persistence=store)
    latencies = []
    try:
        for i in range(size):
            book = models.LogBook('latency-%d' % i)
            detail = models.FlowDetail('latency-%d' % i, str(uuid.uuid4()))
            book.add(detail)
            engines.save_factory_details(detail, noop_flow, [], {})
            with contextlib.closing(store.get_connection()) as conn:
                conn.save_logbook(book)
            time.sleep(random.uniform(0.05, 0.1))   # the conductor goes idle
            posted = time.perf_counter()
            job = poster.post('latency-%d' % i, book=book)
            with cond:
                if not cond.wait_for(lambda: job.uuid in consumed, timeout=30):
                    raise AssertionError('job %d not dispatched within 30 s' % i)
            latencies.append(started[job.uuid] - posted)
    finally:
        conductor.stop()
        conductor.wait(10)
        for b in (poster, board):
            b.close()
    return latencies


def _quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(size, board='redis', consumers=1, mode='throughput'):
    with board_conf(board) as conf:
        if mode == 'latency':
            latencies = run_latency(conf, size + 2)[2:]   # the first two warm up
            return {'seconds': sum(latencies),
                    'latency_p50': statistics.median(latencies),
                    'latency_p99': _quantile(latencies, 0.99),
                    'latency_max': max(latencies)}
        run_throughput(conf, WARM_UP_JOBS, consumers)
    with board_conf(board) as conf:   # a fresh namespace for the timed run
        seconds = run_throughput(conf, size, consumers)
    return {'seconds': seconds, 'jobs_per_second': size / seconds}
