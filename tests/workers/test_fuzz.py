"""Hypothesis-made messages thrown at a worker and at an engine's reply queue,
over the real RabbitMQ: nothing crashes, nothing unregistered ever runs.

``TASKFLOW_WORKER_FUZZ_MESSAGES`` (default 10,000) is how many messages are
sent in all, half to each of the two targets.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskflow.engines.worker_based import executor as wb_executor
from taskflow.engines.worker_based import protocol
from taskflow.engines.worker_based import worker as worker_module
from tests.workers import conftest
from tests.workers import tasks
from tests.workers._raw import RawClient

MESSAGES = int(os.environ.get('TASKFLOW_WORKER_FUZZ_MESSAGES', '10000'))
# Served tasks whose arguments cannot make them sleep for ages or allocate
# gigabytes (Sleeper, Huge, Multiplier could, given fuzzed arguments).
FUZZ_SERVED = ['tests.workers.tasks:%s' % name for name in
               ('Adder', 'Echo', 'Noop', 'Progressing', 'Failing', 'Reverting', 'Unjsonable')]
BATCH = 10
UNREGISTERED = ['tests.workers.tasks.Forbidden', 'os.system', 'subprocess.Popen',
                'builtins.exec', 'taskflow.task.FunctorTask', '', 'tests.workers.tasks']

texts = st.text(alphabet=st.characters(blacklist_categories=('Cs',)), max_size=40)
small_ints = st.integers(min_value=-2 ** 31, max_value=2 ** 31 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | small_ints | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=8)
failure_dicts = st.fixed_dictionaries({
    'exception_str': texts, 'traceback_str': texts,
    'exc_type_names': st.lists(texts, max_size=3) | st.just(['ValueError', 'Exception']),
    'version': st.sampled_from([1, 2, -1]),
    'exc_args': st.lists(json_values, max_size=2), 'causes': st.just([])})
requests = st.fixed_dictionaries({
    'task_cls': st.sampled_from(UNREGISTERED + ['tests.workers.tasks.%s' % name
                                                for name in conftest.SERVED]) | texts,
    'task_name': texts, 'task_version': json_values,
    'action': st.sampled_from(['execute', 'revert', 'EXECUTE']) | texts,
    'arguments': st.dictionaries(texts, json_values, max_size=3) | json_values,
}, optional={'result': st.tuples(st.sampled_from(['success', 'failure']) | texts,
                                 failure_dicts | json_values).map(list),
             'failures': st.dictionaries(texts, failure_dicts | json_values, max_size=2)})
responses = st.fixed_dictionaries({
    'state': st.sampled_from(list(protocol.RESPONSE_STATES)) | texts,
    'data': st.fixed_dictionaries({}, optional={
        'result': failure_dicts | json_values, 'event_type': st.just('update_progress') | texts,
        'details': st.dictionaries(st.just('progress') | texts, json_values, max_size=2),
    }) | json_values})
notify_replies = st.fixed_dictionaries({'topic': texts | json_values,
                                        'tasks': st.lists(texts, max_size=3) | json_values})
heartbeats = st.fixed_dictionaries({'worker': texts | json_values,
                                    'requests': st.lists(texts, max_size=3) | json_values})


def _encoded(value) -> str | bytes:
    return json.dumps(value) if not isinstance(value, bytes) else value


bodies = st.one_of(
    requests.map(_encoded), responses.map(_encoded), notify_replies.map(_encoded),
    heartbeats.map(_encoded), json_values.map(_encoded), st.binary(max_size=64),
    texts, st.just('{"task_cls": '), st.just('[' * 3000))
# (RabbitMQ itself breaks the connection on an infinite float header.)
header_values = (st.none() | st.booleans() | small_ints
                 | st.floats(allow_nan=False, allow_infinity=False) | texts)
headers = st.dictionaries(
    st.sampled_from([protocol.H_HEARTBEAT, protocol.H_REQUEST, protocol.H_WORKER]) | texts,
    header_values, max_size=3)


# What an engine's queue gets: mostly (near-)responses about its own request.
engine_bodies = st.one_of(
    st.fixed_dictionaries({'state': st.sampled_from(['SUCCESS', 'FAILURE']),
                           'data': st.fixed_dictionaries({'result': failure_dicts
                                                          | json_values})}).map(_encoded),
    responses.map(_encoded),
    st.fixed_dictionaries({'state': st.sampled_from(['SUCCESS', 'FAILURE']),
                           'data': st.fixed_dictionaries({'result': failure_dicts
                                                          | json_values})}).map(_encoded),
    heartbeats.map(_encoded), notify_replies.map(_encoded), bodies)


def _messages(routing_keys, correlation_ids, body_strategy=bodies,
              types=('REQUEST', 'RESPONSE', 'NOTIFY', 'HEARTBEAT'), odd_types=texts,
              odd_ids=texts):
    return st.fixed_dictionaries({
        'body': body_strategy,
        'routing_key': st.sampled_from(routing_keys),
        'type': st.sampled_from(list(types)) | odd_types,
        'content_type': st.sampled_from(['application/json',
                                         'application/x-python-serialize',
                                         'text/plain', 'application/data']),
        'reply_to': st.none() | st.sampled_from(['fuzz-replies']) | texts,
        'correlation_id': st.sampled_from(correlation_ids) | st.none() | odd_ids,
        'headers': headers,
    })


def _publish(raw: RawClient, message: dict) -> None:
    properties = {k: message[k] for k in ('type', 'reply_to', 'correlation_id')
                  if message[k] is not None}
    raw.publish(message['body'], message['routing_key'],
                content_type=message['content_type'], headers=message['headers'],
                **properties)


@pytest.mark.slow
def test_fuzzed_messages_never_crash_or_run_the_unregistered(rabbitmq, tmp_path,
                                                             monkeypatch, caplog) -> None:
    ledger = tmp_path / 'ledger'
    monkeypatch.setenv(tasks.LEDGER_ENV, str(ledger))
    worker = worker_module.Worker(exchange=rabbitmq.exchange, topic='fuzz',
                                  tasks=FUZZ_SERVED, url=rabbitmq.url)
    worker_thread = threading.Thread(target=worker.run, kwargs={'display_banner': False},
                                     daemon=True)
    worker_thread.start()
    assert worker.wait(10)
    remote = wb_executor.WorkerTaskExecutor('fuzz-engine-' + uuid.uuid4().hex[:8],
                                            rabbitmq.exchange, [], url=rabbitmq.url)
    remote.start()
    victim = tasks.Echo(name='victim')
    victim_uuid = uuid.uuid4().hex
    assert remote.submit('token', 'execute', victim, victim_uuid, {'value': 1}) is None
    raw = RawClient(rabbitmq.url, rabbitmq.exchange)
    sent = {'worker': 0, 'engine': 0}
    engine_outcomes = []

    @settings(max_examples=max(MESSAGES // (2 * BATCH), 1), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(to_worker=st.lists(_messages(['fuzz'], ['c1', victim_uuid]),
                              min_size=BATCH, max_size=BATCH),
           to_engine=st.lists(_messages([remote._uuid], [victim_uuid, victim_uuid, 'c2'],
                                        engine_bodies, ('RESPONSE', 'RESPONSE', 'HEARTBEAT',
                                                        'NOTIFY', 'REQUEST'),
                                        odd_types=st.just('UNKNOWN'), odd_ids=st.just('')),
                              min_size=BATCH, max_size=BATCH))
    def throw(to_worker, to_engine) -> None:
        for message in to_worker:
            _publish(raw, message)
            sent['worker'] += 1
        for message in to_engine:
            _publish(raw, message)
            sent['engine'] += 1
        # The engine handles what came in (this raising would be a crash);
        # a request stays in flight so answers to it are parsed, not ignored.
        outcomes = remote.wait(0)
        engine_outcomes.extend(outcomes)
        if outcomes:
            assert remote.submit('token', 'execute', victim, victim_uuid, {'value': 1}) is None

    with caplog.at_level(logging.WARNING, logger='taskflow'):
        try:
            throw()
            assert raw.ping('fuzz', timeout=120), 'the worker stopped answering'
            engine_outcomes.extend(remote.wait(1))
        finally:
            raw.close()
            worker.stop()
            worker_thread.join(30)
            remote.stop()
    print('\nfuzz: %d messages to a worker, %d to an engine reply queue (%d taken as'
          ' the in-flight request\'s outcome)' % (sent['worker'], sent['engine'],
                                                  len(engine_outcomes)))
    assert sent['worker'] + sent['engine'] >= MESSAGES
    assert not worker_thread.is_alive()
    crashes = [r for r in caplog.records if 'failed; dropping it' in r.getMessage()
               or r.levelno >= logging.ERROR and 'Could not send' not in r.getMessage()]
    assert not crashes, [r.getMessage() for r in crashes[:5]]
    ran = [json.loads(line) for line in ledger.read_text().splitlines()] \
        if ledger.exists() else []
    assert not [entry for entry in ran if entry['event'] == 'FORBIDDEN-RAN']
