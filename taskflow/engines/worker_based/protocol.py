"""What engines and workers say to each other: message types, bodies, checks.

Wire format (the original's, kept byte-compatible so mixed fleets work):
every body is a JSON object; the kombu message ``type`` property names it.

``NOTIFY``
    engine -> worker topic, body ``{}`` with ``reply_to`` = the engine's
    queue; the worker answers ``{'topic': ..., 'tasks': [class names]}``.
``REQUEST``
    engine -> worker topic; properties ``reply_to`` and ``correlation_id``
    (the atom's uuid); body ``{'task_cls', 'task_name', 'task_version',
    'action': 'execute'|'revert', 'arguments'}`` and, for a revert,
    ``'result': ['success', value] | ['failure', failure_dict]`` and
    ``'failures': {atom name: failure_dict}``.
``RESPONSE``
    worker -> ``reply_to``, same ``correlation_id``; body
    ``{'state': 'RUNNING'|'EVENT'|'SUCCESS'|'FAILURE', 'data': {...}}``.

taskflow-ng extensions travel only where the original cannot trip on them:
message *headers* (which the original neither sends nor reads) and one new
message type, ``HEARTBEAT``, which a worker sends only to engines whose
requests asked for it (an ``x-taskflow-heartbeat`` header), so an original
engine never receives one.  See ``docs/workers.md``.

Every incoming body is checked here before anything uses it; a check
returns a description of the first problem (or ``None``), never raises.
"""

from __future__ import annotations

import json
import math
from typing import Any

from taskflow.types import failure as failure_module

# Message types (the kombu ``type`` property).
NOTIFY = 'NOTIFY'
REQUEST = 'REQUEST'
RESPONSE = 'RESPONSE'
HEARTBEAT = 'HEARTBEAT'   # taskflow-ng only

# Request states (engine side) and response states (on the wire).
WAITING = 'WAITING'
PENDING = 'PENDING'
RUNNING = 'RUNNING'
SUCCESS = 'SUCCESS'
FAILURE = 'FAILURE'
EVENT = 'EVENT'
WAITING_STATES = (WAITING, PENDING)
RESPONSE_STATES = (RUNNING, EVENT, SUCCESS, FAILURE)

EXECUTE = 'execute'
REVERT = 'revert'
ACTIONS = (EXECUTE, REVERT)

# Seconds: how long a request may stay WAITING/PENDING; when a silent worker
# is forgotten; how often engines ask who is there.
REQUEST_TIMEOUT = 60
EXPIRES_AFTER = 60
NOTIFY_PERIOD = 5

# taskflow-ng defaults (seconds, bytes).
HEARTBEAT_INTERVAL = 2.0
WORKER_LOST_AFTER = 10.0
MAX_MESSAGE_SIZE = 8 * 1024 * 1024

# Headers (taskflow-ng).
H_HEARTBEAT = 'x-taskflow-heartbeat'   # request: please send heartbeats this often (s)
H_REQUEST = 'x-taskflow-request'       # request/response: this dispatch's own id
H_WORKER = 'x-taskflow-worker'         # response/heartbeat: who sends it

CONTENT_TYPE = 'application/json'
CONTENT_ENCODING = 'utf-8'


class MessageTooLarge(ValueError):
    """A body is bigger than the configured ``max_message_size``."""


class Unserializable(ValueError):
    """A value cannot be sent as JSON."""


def dumps(body: Any, max_size: int | None, what: str) -> str:
    """JSON text of ``body``, refused (before publishing) when too large.

    ``what`` names the atom/message in the error, so the user knows which
    task's arguments or result could not be sent.
    """
    try:
        text = json.dumps(body, allow_nan=False, separators=(', ', ': '))
    except (TypeError, ValueError) as error:
        raise Unserializable('%s cannot be sent to a worker: it is not JSON'
                             ' serializable (%s)' % (what, error)) from None
    if max_size is not None and len(text) > max_size:
        # len() counts characters; close enough for a guard, and exact for ASCII.
        raise MessageTooLarge('%s is %d bytes as JSON, over the max_message_size of %d'
                              ' bytes; it was not sent' % (what, len(text), max_size))
    return text


def loads(body: Any, max_size: int | None) -> tuple[Any, str | None]:
    """``(decoded, None)`` or ``(None, problem)`` for a raw message body."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        if max_size is not None and len(body) > max_size:
            return None, 'body of %d bytes is over the limit of %d' % (len(body), max_size)
        try:
            body = bytes(body).decode('utf-8')
        except UnicodeDecodeError:
            return None, 'body is not UTF-8'
    elif isinstance(body, str):
        if max_size is not None and len(body) > max_size:
            return None, 'body of %d bytes is over the limit of %d' % (len(body), max_size)
    else:
        return None, 'body is a %s, not JSON text' % type(body).__name__
    try:
        return json.loads(body, parse_constant=_refuse_constant), None
    except (ValueError, RecursionError) as error:
        return None, 'body is not valid JSON (%s)' % (error,)


def _refuse_constant(name: str) -> Any:
    raise ValueError('%s is not JSON' % name)


# -- encoding helpers ---------------------------------------------------------

def failure_to_dict(failure: failure_module.Failure) -> dict[str, Any]:
    """``Failure.to_dict()``, without the exception args when they are not JSON."""
    data = failure.to_dict()
    try:
        json.dumps(data['exc_args'])
    except (TypeError, ValueError):
        data = failure.to_dict(include_args=False)
        data['exc_args'] = []
    try:
        json.dumps(data)
    except (TypeError, ValueError):
        data['causes'] = []
    return data


def request_body(task_cls: str, task_name: str, task_version: Any, action: str,
                 arguments: dict[str, Any], result: Any = None, failures: dict[str, Any] | None = None,
                 with_result: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {'task_cls': task_cls, 'task_name': task_name,
                            'task_version': task_version, 'action': action,
                            'arguments': arguments}
    if action == REVERT:
        if with_result:
            if isinstance(result, failure_module.Failure):
                body['result'] = ['failure', failure_to_dict(result)]
            else:
                body['result'] = ['success', result]
        body['failures'] = {name: failure_to_dict(f) for name, f in (failures or {}).items()}
    return body


def version_of(task: Any) -> list[Any]:
    version = getattr(task, 'version', (1, 0))
    if isinstance(version, str):
        try:
            return [int(part) for part in version.split('.')][:2] or [1, 0]
        except ValueError:
            return [1, 0]
    return list(version)


# -- checks -------------------------------------------------------------------

def _failure_problem(data: Any) -> str | None:
    try:
        failure_module.Failure.validate(data)
        failure_module.Failure.from_dict(data)   # e.g. an unknown version
    except Exception as error:  # InvalidFormat, or anything odd in the data
        return str(error)
    if not isinstance(data.get('exc_args', []), (list, tuple)):
        return 'failure exc_args must be a list'
    return None


def request_problem(body: Any) -> str | None:
    """Why ``body`` is not a valid REQUEST (``None`` when it is)."""
    if not isinstance(body, dict):
        return 'request must be a JSON object'
    for key in ('task_cls', 'task_name', 'action', 'arguments'):
        if key not in body:
            return 'request has no %r' % key
    for key in ('task_cls', 'task_name'):
        if not isinstance(body[key], str) or not body[key]:
            return 'request %r must be a non-empty string' % key
    if body['action'] not in ACTIONS:
        return 'request action must be one of %s' % (list(ACTIONS),)
    if not isinstance(body['arguments'], dict):
        return "request 'arguments' must be an object"
    version = body.get('task_version')
    if version is not None and not (isinstance(version, (list, str))):
        return "request 'task_version' must be a list or a string"
    if 'result' in body:
        result = body['result']
        if (not isinstance(result, list) or len(result) != 2
                or result[0] not in ('success', 'failure')):
            return "request 'result' must be ['success', value] or ['failure', failure]"
        if result[0] == 'failure':
            problem = _failure_problem(result[1])
            if problem:
                return "request 'result': %s" % problem
    failures = body.get('failures')
    if failures is not None:
        if not isinstance(failures, dict):
            return "request 'failures' must be an object"
        for name, data in failures.items():
            problem = _failure_problem(data)
            if problem:
                return "request 'failures'[%r]: %s" % (name, problem)
    return None


def response_problem(body: Any) -> str | None:
    """Why ``body`` is not a valid RESPONSE (``None`` when it is)."""
    if not isinstance(body, dict):
        return 'response must be a JSON object'
    state = body.get('state')
    if state not in RESPONSE_STATES:
        return 'response state must be one of %s' % (list(RESPONSE_STATES),)
    data = body.get('data', {})
    if not isinstance(data, dict):
        return "response 'data' must be an object"
    if state == EVENT:
        if not isinstance(data.get('event_type'), str):
            return "event response needs a string 'event_type'"
        details = data.get('details', {})
        if not isinstance(details, dict):
            return "event response 'details' must be an object"
        progress = details.get('progress', 0.0)
        if (isinstance(progress, bool) or not isinstance(progress, (int, float))
                or not math.isfinite(progress)):
            return "event response 'progress' must be a number"
    elif state == FAILURE:
        problem = _failure_problem(data.get('result'))
        if problem:
            return 'failure response: %s' % problem
    elif state == SUCCESS and 'result' not in data:
        return "success response has no 'result'"
    return None


def notify_reply_problem(body: Any) -> str | None:
    """Why ``body`` is not a worker's answer to NOTIFY."""
    if not isinstance(body, dict):
        return 'notify reply must be a JSON object'
    if not isinstance(body.get('topic'), str) or not body['topic']:
        return "notify reply needs a non-empty string 'topic'"
    tasks = body.get('tasks')
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        return "notify reply 'tasks' must be a list of strings"
    return None


def heartbeat_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return 'heartbeat must be a JSON object'
    if not isinstance(body.get('worker'), str):
        return "heartbeat needs a string 'worker'"
    requests = body.get('requests')
    if not isinstance(requests, list) or not all(isinstance(r, str) for r in requests):
        return "heartbeat 'requests' must be a list of strings"
    return None


def string_property(message: Any, name: str) -> str | None:
    """A message property that must be a non-empty string (else ``None``)."""
    value = message.properties.get(name)
    return value if isinstance(value, str) and value else None


def header(message: Any, name: str) -> Any:
    headers = message.headers
    return headers.get(name) if isinstance(headers, dict) else None
