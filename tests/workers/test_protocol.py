"""Message checks, size limits and URL masking (no broker needed)."""

from __future__ import annotations

import pytest

from taskflow.engines.worker_based import protocol
from taskflow.engines.worker_based import proxy
from taskflow.types import failure as failure_module


def _failure_dict() -> dict:
    try:
        raise RuntimeError('broken', {'not': 'json-able', 'set': 1})
    except RuntimeError:
        return failure_module.Failure().to_dict()


GOOD_REQUEST = {'task_cls': 'm.C', 'task_name': 'n', 'task_version': [1, 0],
                'action': 'execute', 'arguments': {'a': 1}}


def test_a_request_from_the_original_passes() -> None:
    assert protocol.request_problem(GOOD_REQUEST) is None
    revert = dict(GOOD_REQUEST, action='revert', result=['failure', _failure_dict()],
                  failures={'n': _failure_dict()})
    assert protocol.request_problem(revert) is None
    assert protocol.request_problem(dict(revert, result=['success', [1, 2]])) is None


@pytest.mark.parametrize('body, problem', [
    ([], 'request must be a JSON object'),
    ({k: v for k, v in GOOD_REQUEST.items() if k != 'task_cls'}, "request has no 'task_cls'"),
    (dict(GOOD_REQUEST, task_cls=3), "request 'task_cls' must be a non-empty string"),
    (dict(GOOD_REQUEST, action='delete'), 'request action must be one of'),
    (dict(GOOD_REQUEST, arguments=[1]), "request 'arguments' must be an object"),
    (dict(GOOD_REQUEST, result=['maybe', 1]), "request 'result' must be"),
    (dict(GOOD_REQUEST, result=['failure', {'exception_str': 'x'}]),
     "request 'result': Failure data not of the expected format"),
    (dict(GOOD_REQUEST, failures={'a': 1}), "request 'failures'['a']"),
    (dict(GOOD_REQUEST, failures={'a': dict(_failure_dict(), version=2)}),
     'Invalid dict version of failure object: 2'),
])
def test_bad_requests_are_described(body, problem) -> None:
    assert problem in protocol.request_problem(body)


@pytest.mark.parametrize('body, problem', [
    ({'state': 'DONE'}, 'response state must be one of'),
    ({'state': 'SUCCESS', 'data': {}}, "success response has no 'result'"),
    ({'state': 'FAILURE', 'data': {'result': 'oops'}}, 'failure response:'),
    ({'state': 'EVENT', 'data': {'event_type': 'update_progress',
                                 'details': {'progress': 'half'}}},
     "event response 'progress' must be a number"),
    ({'state': 'RUNNING', 'data': 5}, "response 'data' must be an object"),
])
def test_bad_responses_are_described(body, problem) -> None:
    assert problem in protocol.response_problem(body)


def test_good_responses_pass() -> None:
    for body in ({'state': 'RUNNING', 'data': {}},
                 {'state': 'SUCCESS', 'data': {'result': None}},
                 {'state': 'FAILURE', 'data': {'result': _failure_dict()}},
                 {'state': 'EVENT', 'data': {'event_type': 'update_progress',
                                             'details': {'progress': 0.5}}}):
        assert protocol.response_problem(body) is None


def test_loads_refuses_what_is_not_json() -> None:
    assert protocol.loads(b'\x80\x04pickle', None)[1] == 'body is not UTF-8'
    assert 'not valid JSON' in protocol.loads('{"a": NaN}', None)[1]
    assert protocol.loads(b'x' * 11, 10)[1] == 'body of 11 bytes is over the limit of 10'
    assert protocol.loads(object(), None)[1] == 'body is a object, not JSON text'
    assert protocol.loads('[' * 100000, None)[1].startswith('body is not valid JSON')
    assert protocol.loads(b'{"a": [1]}', None) == ({'a': [1]}, None)


def test_dumps_names_what_cannot_be_sent() -> None:
    with pytest.raises(protocol.Unserializable, match="^The thing cannot be sent"):
        protocol.dumps({'a': object()}, None, 'The thing')
    with pytest.raises(protocol.MessageTooLarge, match='over the max_message_size of 5'):
        protocol.dumps('abcdefgh', 5, 'The thing')
    with pytest.raises(protocol.Unserializable):
        protocol.dumps(float('nan'), None, 'The thing')


def test_failures_with_unjsonable_args_still_travel() -> None:
    try:
        raise RuntimeError(object())
    except RuntimeError:
        failure = failure_module.Failure()
    data = protocol.failure_to_dict(failure)
    assert data['exc_args'] == []
    assert failure_module.Failure.from_dict(data).exception_str == failure.exception_str


@pytest.mark.parametrize('url, masked', [
    ('amqp://guest:secret@host:5672//', 'amqp://guest:**@host:5672//'),
    ('redis://:pw@host:6379/0', 'redis://:**@host:6379/0'),
    ('amqp://u:p%40ss@h//;amqp://u:other@h2//', 'amqp://u:**@h//;amqp://u:**@h2//'),
    ('memory://', 'memory://'),
    (None, None),
])
def test_mask_url(url, masked) -> None:
    assert proxy.mask_url(url) == masked


def test_request_body_matches_the_originals_layout() -> None:
    failure = failure_module.Failure.from_dict(_failure_dict())
    body = protocol.request_body('m.C', 'n', [1, 0], 'revert', {'a': 1}, 5,
                                 {'n': failure}, with_result=True)
    assert list(body) == ['task_cls', 'task_name', 'task_version', 'action', 'arguments',
                          'result', 'failures']
    assert body['result'] == ['success', 5]
    assert body['failures']['n']['exception_str'] == failure.exception_str
