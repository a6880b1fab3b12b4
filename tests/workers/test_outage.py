"""RabbitMQ going away during a run: every connection dropped, then the broker
application stopped and started again.  The run must end (SUCCESS, or a clear
error), never hang; the broker is always restored."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from taskflow import states as st
from taskflow.patterns import unordered_flow
from tests import _services
from tests.workers import tasks

RUN_LIMIT = 120.0


def _rabbitmqctl(*args: str) -> None:
    tool = _services.require_program('rabbitmqctl')
    subprocess.run([tool, *args], check=True, capture_output=True, timeout=120)


def _broker_up() -> bool:
    tool = _services.require_program('rabbitmq-diagnostics')
    for _ in range(120):
        if subprocess.run([tool, '-q', 'check_running'], capture_output=True,
                          timeout=60).returncode == 0:
            return True
        time.sleep(1)
    return False


def _starts(ledger) -> int:
    if not ledger.exists():
        return 0
    return sum(1 for line in ledger.read_text().splitlines()
               if json.loads(line)['event'] == 'start')


def _run_through(rabbitmq, spawn_worker, tmp_path, disrupt) -> tuple:
    ledger = tmp_path / 'ledger.jsonl'
    for topic in ('o1', 'o1', 'o2'):
        spawn_worker(rabbitmq, topic=topic, ledger=ledger)
    flow = unordered_flow.Flow('outage').add(*[
        tasks.Sleeper(name='s%02d' % i, inject={'seconds': 2.0}, provides='r%02d' % i)
        for i in range(60)])
    engine = rabbitmq.load(flow, topics=['o1', 'o2'], transition_timeout=60,
                           retry_options={'max_retries': 2, 'interval_start': 0.5,
                                          'interval_max': 1})
    errors: list = []
    disrupted: list = []

    def trigger() -> None:
        while _starts(ledger) < 15:
            time.sleep(0.02)
        try:
            disrupt(lambda: disrupted.append(time.monotonic()))   # marks: the outage began
        except Exception as error:  # reported by the test, after the run
            errors.append(error)

    thread = threading.Thread(target=trigger, daemon=True)
    thread.start()
    started = time.monotonic()
    outcome: object = None
    try:
        engine.run()
    except Exception as error:
        outcome = error
    elapsed = time.monotonic() - started
    ended = time.monotonic()
    thread.join(RUN_LIMIT)
    assert not errors, errors
    assert disrupted and disrupted[0] < ended, 'the outage did not happen during the run'
    return engine, outcome, elapsed


@pytest.mark.slow
def test_all_connections_closed_mid_run(rabbitmq, spawn_worker, tmp_path, caplog) -> None:
    engine, outcome, elapsed = _run_through(
        rabbitmq, spawn_worker, tmp_path,
        lambda began: (_rabbitmqctl('close_all_connections', 'taskflow-ng outage test'),
                       began()))
    print('\nclose_all_connections: run ended in %.1fs: %s' % (
        elapsed, outcome or engine.storage.get_flow_state()))
    assert elapsed < RUN_LIMIT
    assert outcome is None, outcome
    assert engine.storage.get_flow_state() == st.SUCCESS
    assert 'Lost the connection to amqp://guest:**@' in caplog.text
    assert [engine.storage.fetch('r%02d' % i) for i in range(60)] == [
        's%02d' % i for i in range(60)]


@pytest.mark.slow
def test_broker_stopped_and_started_mid_run(rabbitmq, spawn_worker, tmp_path) -> None:
    def restart(began) -> None:
        try:
            _rabbitmqctl('stop_app')
            began()
            time.sleep(3)
        finally:
            _rabbitmqctl('start_app')
            assert _broker_up()

    try:
        engine, outcome, elapsed = _run_through(rabbitmq, spawn_worker, tmp_path, restart)
    finally:
        _rabbitmqctl('start_app')   # whatever happened, leave the broker running
        assert _broker_up()
    print('\nstop_app/start_app: run ended in %.1fs: %s' % (
        elapsed, outcome or engine.storage.get_flow_state()))
    assert elapsed < RUN_LIMIT
    assert outcome is None, outcome
    assert engine.storage.get_flow_state() == st.SUCCESS
