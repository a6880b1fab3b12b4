"""Run a flow on two worker processes, kill one mid-task, and still finish.

    python examples/worker_failover.py [BROKER_URL]

BROKER_URL defaults to ``amqp://guest:guest@127.0.0.1:5672//`` (RabbitMQ);
``redis://127.0.0.1:6379/0`` works too.  The script starts two workers
(``python -m taskflow.engines.worker_based.worker``), runs 12 tasks that each
take a second, SIGKILLs one worker while it runs tasks, and prints where
every task ended up running.  The dead worker never acknowledged its
requests, so the broker hands them to the survivor (or, when its queue went
away with it, the engine notices the missing heartbeats and sends them
again): the flow ends SUCCESS.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

EXAMPLE_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(EXAMPLE_DIR))

import taskflow.engines  # noqa: E402
from taskflow import task  # noqa: E402
from taskflow.patterns import unordered_flow  # noqa: E402

TASK_SECONDS = 1.0


class SlowSquare(task.Task):
    """Squares a number slowly; says which process did it."""

    def execute(self, number):
        with open(os.environ['FAILOVER_STARTS'], 'a') as starts:
            starts.write('%s %d\n' % (self.name, os.getpid()))
        time.sleep(TASK_SECONDS)
        return {'square': number * number, 'pid': os.getpid()}


def start_worker(url: str, exchange: str, log_dir: str, index: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([EXAMPLE_DIR, os.path.dirname(
        EXAMPLE_DIR)]), FAILOVER_STARTS=os.path.join(log_dir, 'starts'))
    log = open(os.path.join(log_dir, 'worker-%d.log' % index), 'wb')
    return subprocess.Popen(
        [sys.executable, '-m', 'taskflow.engines.worker_based.worker',
         '--exchange', exchange, '--connection-url', url, '--topic', 'squares',
         '--task', 'worker_failover:SlowSquare'],
        env=env, stdout=log, stderr=subprocess.STDOUT)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')
    url = sys.argv[1] if len(sys.argv) > 1 else 'amqp://guest:guest@127.0.0.1:5672//'
    exchange = 'failover-example-%s' % uuid.uuid4().hex[:8]
    # Workers import this file as ``worker_failover``: the engine must name
    # the task class the same way.
    from worker_failover import SlowSquare as Square

    with tempfile.TemporaryDirectory() as log_dir:
        workers = [start_worker(url, exchange, log_dir, i) for i in range(2)]
        try:
            time.sleep(2.0)   # let both workers connect
            flow = unordered_flow.Flow('squares').add(*[
                Square(name='square-%d' % i, inject={'number': i}, provides='r%d' % i)
                for i in range(12)])
            engine = taskflow.engines.load(flow, engine='worker-based', url=url,
                                           exchange=exchange, topics=['squares'])
            starts_file = os.path.join(log_dir, 'starts')

            def starts() -> list[tuple[str, int]]:
                if not os.path.exists(starts_file):
                    return []
                with open(starts_file) as lines:
                    return [(name, int(pid)) for name, pid in
                            (line.split() for line in lines if line.strip())]

            victim_pid: list[int] = []

            def kill_a_busy_worker() -> None:
                # Wait until a worker runs a task, then SIGKILL it mid-task.
                while not starts():
                    time.sleep(0.01)
                time.sleep(TASK_SECONDS / 2)
                pid = starts()[0][1]
                victim_pid.append(pid)
                print('killing worker pid %d while it runs %s'
                      % (pid, sorted(n for n, p in starts() if p == pid)))
                os.kill(pid, signal.SIGKILL)

            killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
            killer.start()
            started = time.monotonic()
            engine.run()
            killer.join()
            print('flow ended %s in %.1fs' % (engine.storage.get_flow_state(),
                                               time.monotonic() - started))
            for i in range(12):
                result = engine.storage.fetch('r%d' % i)
                ran_on = [pid for name, pid in starts() if name == 'square-%d' % i]
                print('  %2d squared = %3d  (started on %s, answered by %d)'
                      % (i, result['square'], ran_on, result['pid']))
            assert all(engine.storage.fetch('r%d' % i)['pid'] != victim_pid[0]
                       for i in range(12))
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.terminate()
                worker.wait(10)


if __name__ == '__main__':
    main()
