"""Hostile or broken messages: refused, answered with a failure when possible,
never run, never fatal to the worker or the engine."""

from __future__ import annotations

import logging
import pickle

import pytest

from taskflow.engines.worker_based import protocol
from taskflow.patterns import linear_flow
from tests.workers import tasks
from tests.workers._raw import RawClient


class _Boom:
    def __reduce__(self):  # would run on unpickling
        return (tasks.record, ('FORBIDDEN-RAN', ))


@pytest.fixture
def raw(broker):
    client = RawClient(broker.url, broker.exchange)
    yield client
    client.close()


def _final(replies, correlation_id):
    return [body for props, body in replies
            if props.get('correlation_id') == correlation_id
            and body.get('state') in ('SUCCESS', 'FAILURE')]


def _refusal(raw, correlation_id):
    replies = raw.replies(lambda got: _final(got, correlation_id))
    final = _final(replies, correlation_id)
    assert final, 'no answer to %s' % correlation_id
    assert final[0]['state'] == 'FAILURE'
    return final[0]['data']['result']['exception_str']


REQUEST = {'task_cls': 'tests.workers.tasks.Adder', 'task_name': 'a', 'task_version': [1, 0],
           'action': 'execute', 'arguments': {'x': 1, 'y': 2}}


def test_a_valid_raw_request_is_served(broker, workers, raw) -> None:
    workers.start(broker)
    cid = raw.request('t1', REQUEST)
    replies = raw.replies(lambda got: _final(got, cid))
    states = [body['state'] for props, body in replies if props['correlation_id'] == cid]
    assert states == ['RUNNING', 'SUCCESS']
    assert _final(replies, cid)[0]['data'] == {'result': 3}


@pytest.mark.parametrize('task_cls', ['tests.workers.tasks.Forbidden', 'os.system',
                                      'builtins.eval', 'subprocess.Popen'])
def test_unregistered_classes_are_never_run(broker, workers, raw, task_cls, tmp_path,
                                            monkeypatch) -> None:
    ledger = tmp_path / 'ledger'
    monkeypatch.setenv(tasks.LEDGER_ENV, str(ledger))
    workers.start(broker)
    cid = raw.request('t1', dict(REQUEST, task_cls=task_cls, arguments={'command': 'true'}))
    text = _refusal(raw, cid)
    assert 'is not served by this worker' in text and task_cls in text
    assert not ledger.exists()


def test_pickle_is_never_loaded(broker, workers, raw, tmp_path, monkeypatch) -> None:
    ledger = tmp_path / 'ledger'
    monkeypatch.setenv(tasks.LEDGER_ENV, str(ledger))
    workers.start(broker)
    cid = raw.request('t1', pickle.dumps(_Boom()), content_type='application/x-python-serialize')
    assert 'Refused request: body is not' in _refusal(raw, cid)
    assert not ledger.exists()


@pytest.mark.parametrize('body, problem', [
    ('not json', 'body is not valid JSON'),
    ([1, 2], 'request must be a JSON object'),
    (dict(REQUEST, action='destroy'), 'request action must be one of'),
    (dict(REQUEST, arguments='x=1'), "request 'arguments' must be an object"),
])
def test_malformed_requests_are_answered_with_a_failure(broker, workers, raw, body,
                                                         problem) -> None:
    workers.start(broker)
    cid = raw.request('t1', body)
    assert problem in _refusal(raw, cid)


def test_messages_without_a_reply_address_are_dropped(broker, workers, raw, caplog) -> None:
    workers.start(broker)
    with caplog.at_level(logging.WARNING):
        raw.publish(REQUEST, 't1', type='REQUEST', correlation_id='c1')   # no reply_to
        raw.publish(REQUEST, 't1', type='REQUEST', reply_to=raw.reply_to)  # no correlation
        raw.publish(REQUEST, 't1', type='SOMETHING', reply_to=raw.reply_to)
        raw.publish({}, 't1', type='NOTIFY')                               # no reply_to
        assert raw.ping('t1')
    text = caplog.text
    assert 'Dropping a request without reply_to/correlation_id' in text
    assert "Dropping a message of unknown type 'SOMETHING'" in text
    # Still serving.
    cid = raw.request('t1', REQUEST)
    assert _final(raw.replies(lambda got: _final(got, cid)), cid)[0]['state'] == 'SUCCESS'


def test_oversized_requests_are_refused(broker, workers, raw) -> None:
    workers.start(broker, max_message_size=1000)
    cid = raw.request('t1', dict(REQUEST, arguments={'x': 'y' * 2000, 'y': ''}))
    assert 'over the limit of 1000' in _refusal(raw, cid)


def test_engine_ignores_junk_on_its_reply_queue(broker, workers, raw, caplog) -> None:
    workers.start(broker)
    sleeper = tasks.Sleeper(name='s', inject={'seconds': 1.0})
    engine = broker.load(linear_flow.Flow('f').add(sleeper))
    reply_queue = engine.storage.flow_uuid

    junk = [('RESPONSE', 'not json'), ('RESPONSE', {'state': 'SUCCESS'}),
            ('RESPONSE', {'state': 'FAILURE', 'data': {'result': {'bad': 1}}}),
            ('HEARTBEAT', {'worker': 3}), ('NOTIFY', {'topic': 5}), ('WHAT', {}),
            ('RESPONSE', {'state': 'EVENT', 'data': {'event_type': 'update_progress',
                                                      'details': {'progress': 'x'}}})]

    def send_junk(state, details):
        if state != 'RUNNING':
            return
        uuid = engine.storage.get_atom_uuid('s')
        for kind, body in junk:
            raw.publish(body, reply_queue, type=kind, correlation_id=uuid)
        # A forged result for the atom, with a dispatch id it never had.
        raw.publish({'state': 'SUCCESS', 'data': {'result': 'forged'}}, reply_queue,
                    type='RESPONSE', correlation_id=uuid,
                    headers={protocol.H_REQUEST: 'not-the-dispatch-id'})

    engine.atom_notifier.register('RUNNING', send_junk)
    with caplog.at_level(logging.WARNING):
        engine.run()
    assert engine.storage.get('s') == 's'
    assert 'Dropping a malformed response' in caplog.text


SLEEP = {'task_cls': 'tests.workers.tasks.Sleeper', 'task_name': 's', 'task_version': [1, 0],
         'action': 'execute', 'arguments': {'seconds': 1.2}}


def test_heartbeats_only_for_engines_that_ask(broker, workers, raw) -> None:
    workers.start(broker)
    # Like the original's engine: no headers, so no heartbeats (it would not know them).
    plain = raw.request('t1', SLEEP)
    replies = raw.replies(lambda got: _final(got, plain))
    assert [p['type'] for p, _ in replies] == ['RESPONSE'] * 2
    assert all(p['headers'].get(protocol.H_REQUEST) is None for p, _ in replies)
    # Ours asks, and names the dispatch: heartbeats list it, responses echo it.
    asked = raw.request('t1', SLEEP, headers={protocol.H_HEARTBEAT: 0.2,
                                             protocol.H_REQUEST: 'dispatch-1'})
    replies = raw.replies(lambda got: _final(got, asked))
    beats = [body for props, body in replies if props['type'] == 'HEARTBEAT']
    assert len(beats) >= 3
    assert all(body['requests'] == ['dispatch-1'] for body in beats)
    responses = [props for props, _ in replies if props['type'] == 'RESPONSE']
    assert {p['headers'][protocol.H_REQUEST] for p in responses} == {'dispatch-1'}
    assert len({p['headers'][protocol.H_WORKER] for p in responses}) == 1
