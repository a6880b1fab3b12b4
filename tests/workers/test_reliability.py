"""Worker processes killed or hung mid-task, over the real RabbitMQ.

Tasks append ``start``/``finish`` lines (with their pid) to a ledger file, so
the test sees every execution, including those of killed workers.  What must
hold: the flow ends ``SUCCESS`` with every result; a task runs again only if
a worker it ran on was killed (or hung); the engine notices within 15 s.

``TASKFLOW_WORKER_KILL_TRIALS`` (default 1) runs more trials per mode;
detection times are printed (``pytest -s``) as a distribution.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import threading
import time
from pathlib import Path

import pytest

from taskflow import exceptions as exc
from taskflow import states as st
from taskflow.patterns import linear_flow
from taskflow.patterns import unordered_flow
from tests.workers import tasks

TRIALS = int(os.environ.get('TASKFLOW_WORKER_KILL_TRIALS', '1'))
DETECTION_LIMIT = 15.0
TASK_COUNT = 200
TASK_SECONDS = 0.3


def _ledger(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _sleepers(count: int, seconds: float) -> unordered_flow.Flow:
    return unordered_flow.Flow('many').add(*[
        tasks.Sleeper(name='s%03d' % i, inject={'seconds': seconds}, provides='r%03d' % i)
        for i in range(count)])


def _running_on(entries: list[dict], pids: set[int]) -> dict[int, int]:
    """pid -> how many tasks it started and did not finish."""
    open_starts: dict[tuple, int] = {}
    for entry in entries:
        key = (entry['pid'], entry['name'])
        open_starts[key] = open_starts.get(key, 0) + (1 if entry['event'] == 'start' else -1)
    counts: dict[int, int] = {}
    for (pid, _name), n in open_starts.items():
        if n > 0 and pid in pids:
            counts[pid] = counts.get(pid, 0) + n
    return counts


def _check_executions(entries: list[dict], killed: dict[int, float]) -> list[float]:
    """Assert reruns only follow kills; return detection times (kill -> restart)."""
    starts: dict[str, list[dict]] = {}
    for entry in entries:
        if entry['event'] == 'start':
            starts.setdefault(entry['name'], []).append(entry)
    detections = []
    for name, runs in starts.items():
        for earlier, later in zip(runs, runs[1:]):
            assert earlier['pid'] in killed, (
                '%s ran again although its worker (pid %s) was not killed: %s'
                % (name, earlier['pid'], runs))
            detections.append(later['at'] - killed[earlier['pid']])
    return detections


def _report(label: str, detections: list[float], kills: int) -> None:
    if detections:
        ordered = sorted(detections)
        print('\n%s: %d kills, %d tasks re-run; detection s: min %.2f p50 %.2f p90 %.2f max %.2f'
              % (label, kills, len(ordered), ordered[0], statistics.median(ordered),
                 ordered[int(0.9 * (len(ordered) - 1))], ordered[-1]))
    else:
        print('\n%s: %d kills, no task had to run again' % (label, kills))


@pytest.mark.slow
@pytest.mark.parametrize('trial', range(TRIALS))
@pytest.mark.parametrize('mode', ['shared-topic', 'topic-per-worker'])
def test_sigkill_workers_mid_task(rabbitmq, spawn_worker, tmp_path, mode, trial) -> None:
    ledger = tmp_path / 'ledger.jsonl'
    topics = ['t1'] * 3 if mode == 'shared-topic' else ['k0', 'k1', 'k2']
    alive = {}
    for topic in topics:
        process = spawn_worker(rabbitmq, topic=topic, ledger=ledger)
        alive[process.pid] = (process, topic)
    engine = rabbitmq.load(_sleepers(TASK_COUNT, TASK_SECONDS), topics=sorted(set(topics)),
                           transition_timeout=60)
    killed: dict[int, float] = {}
    stop = threading.Event()

    def killer() -> None:
        for threshold in (25, 110):
            while not stop.is_set():
                entries = _ledger(ledger)
                starts = sum(1 for e in entries if e['event'] == 'start')
                busy = _running_on(entries, set(alive))
                if starts >= threshold and busy:
                    pid = max(busy, key=busy.get)
                    process, topic = alive.pop(pid)
                    process.kill()
                    killed[pid] = time.time()
                    # Keep the fleet at its size (same topic: same queue name).
                    replacement = spawn_worker(rabbitmq, topic=topic, ledger=ledger,
                                               wait=False)
                    alive[replacement.pid] = (replacement, topic)
                    break
                time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        engine.run()
    finally:
        stop.set()
        thread.join(30)
    elapsed = time.monotonic() - started
    assert engine.storage.get_flow_state() == st.SUCCESS
    assert all(engine.storage.fetch('r%03d' % i) == 's%03d' % i for i in range(TASK_COUNT))
    assert len(killed) == 2, 'the run ended before both kills: %s' % killed
    detections = _check_executions(_ledger(ledger), killed)
    _report('%s trial %d (%.1fs run)' % (mode, trial, elapsed), detections, len(killed))
    assert max(detections, default=0.0) <= DETECTION_LIMIT


@pytest.mark.slow
def test_hung_worker_is_detected_by_heartbeats(rabbitmq, spawn_worker, tmp_path) -> None:
    """SIGSTOP keeps the connection open: the broker never redelivers, only
    the missing heartbeats tell; the task is re-dispatched to the other worker."""
    ledger = tmp_path / 'ledger.jsonl'
    first = spawn_worker(rabbitmq, topic='h0', ledger=ledger)
    # (A hung consumer on a *shared* queue keeps being handed messages by
    # the broker, so the spare worker has a topic of its own.)
    engine = rabbitmq.load(linear_flow.Flow('f').add(
        tasks.Sleeper(name='hang-me', inject={'seconds': 1.0})), worker_lost_after=4,
        heartbeat_interval=1, topics=['h0', 'h1'])
    hung_at: list[float] = []

    def hang_when_started() -> None:
        while not any(e['event'] == 'start' for e in _ledger(ledger)):
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGSTOP)
        hung_at.append(time.time())
        spawn_worker(rabbitmq, topic='h1', ledger=ledger, wait=False)

    thread = threading.Thread(target=hang_when_started, daemon=True)
    thread.start()
    try:
        engine.run()
    finally:
        os.kill(first.pid, signal.SIGCONT)
        thread.join(10)
    assert engine.storage.get('hang-me') == 'hang-me'
    starts = [e for e in _ledger(ledger) if e['event'] == 'start']
    assert len(starts) == 2 and starts[0]['pid'] == first.pid != starts[1]['pid']
    detection = starts[1]['at'] - hung_at[0]
    print('\nhung worker: re-dispatched %.2fs after SIGSTOP (worker_lost_after=4)' % detection)
    assert 4 <= detection <= 4 + DETECTION_LIMIT


@pytest.mark.slow
def test_lost_worker_fails_the_task_when_asked(rabbitmq, spawn_worker, tmp_path) -> None:
    ledger = tmp_path / 'ledger.jsonl'
    first = spawn_worker(rabbitmq, topic='f0', ledger=ledger)
    engine = rabbitmq.load(unordered_flow.Flow('f').add(
        tasks.Sleeper(name='a', inject={'seconds': 3.0})),
        on_worker_lost='fail', worker_lost_after=3, heartbeat_interval=0.5,
        topics=['f0', 'f1'])

    def hang() -> None:
        while not _running_on(_ledger(ledger), {first.pid}):
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGSTOP)
        spawn_worker(rabbitmq, topic='f1', ledger=ledger, wait=False)  # to revert

    thread = threading.Thread(target=hang, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(exc.WorkerLost) as caught:
            engine.run()
    finally:
        os.kill(first.pid, signal.SIGCONT)
        thread.join(10)
    assert time.monotonic() - started < 3 + DETECTION_LIMIT
    assert "was lost (worker " in str(caught.value)
    assert "on_worker_lost='fail'" in str(caught.value)
    assert isinstance(caught.value, exc.RequestTimeout)   # old except clauses still work
    assert engine.storage.get_flow_state() == st.REVERTED
