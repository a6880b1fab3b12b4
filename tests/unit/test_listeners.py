"""taskflow.listeners: what users see (printed lines, log records, stored metadata).

Message texts, levels and the events each listener reacts to were observed
on the reference TaskFlow 6.5.0 (run as a black box).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import sys
import time

import pytest

import taskflow.engines
from taskflow import exceptions as exc
from taskflow import retry
from taskflow import secrets
from taskflow import states
from taskflow import task
from taskflow.listeners import base
from taskflow.listeners import capturing
from taskflow.listeners import claims
from taskflow.listeners import logging as logging_listeners
from taskflow.listeners import printing
from taskflow.listeners import timing
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from taskflow.persistence import backends
from taskflow.persistence import models
from taskflow.types import failure
from taskflow.types import notifier

ENGINES = ('serial', 'parallel')
LISTENER_LOGGER = 'taskflow.listeners.logging'


class CatTalk(task.Task):
    def execute(self):
        return 'cat'


class DogTalk(task.Task):
    def execute(self):
        raise RuntimeError('dog is tired')


class Sleepy(task.Task):
    def __init__(self, name, execute_for=0.0, revert_for=0.0, fail=False):
        super().__init__(name)
        self._execute_for = execute_for
        self._revert_for = revert_for
        self._fail = fail

    def execute(self):
        time.sleep(self._execute_for)
        if self._fail:
            raise RuntimeError('woke up grumpy')

    def revert(self, *args, **kwargs):
        time.sleep(self._revert_for)


@pytest.fixture(params=ENGINES)
def engine_kind(request):
    return request.param


@pytest.fixture(autouse=True)
def forget_secrets():
    # Masked keys and remembered values are process-wide: start and end clean.
    secrets.reset()
    yield
    secrets.reset()


def load(flow, engine_kind='serial', **kwargs):
    return taskflow.engines.load(flow, engine=engine_kind, **kwargs)


def cat_dog_engine(engine_kind='serial'):
    return load(lf.Flow('cat-dog').add(CatTalk('cat'), DogTalk('dog')), engine_kind)


def registrations(eng):
    """{notifier: sorted [(event, count)]} of what is registered on an engine."""
    return {
        'flow': sorted((event, len(ls)) for event, ls in eng.notifier.listeners_iter()),
        'atom': sorted((event, len(ls)) for event, ls in eng.atom_notifier.listeners_iter()),
    }


def no_fail_failure(message='nope'):
    """A Failure without exc_info (as if loaded from persistence)."""
    return failure.Failure(exception_str=message, traceback_str='TB here\n',
                           exc_type_names=['ValueError'])


# -- base.Listener: registration bookkeeping ---------------------------------


class Recording(base.Listener):
    def __init__(self, engine, **kwargs):
        super().__init__(engine, **kwargs)
        self.seen = []

    def _flow_receiver(self, state, details):
        self.seen.append(('flow', state, details['flow_name']))

    def _task_receiver(self, state, details):
        self.seen.append(('task', state, details['task_name']))

    def _retry_receiver(self, state, details):
        self.seen.append(('retry', state, details['retry_name']))


def test_module_constants():
    assert base.DEFAULT_LISTEN_FOR == ('*',)
    assert base.FINISH_STATES == ('FAILURE', 'SUCCESS', 'REVERTED', 'REVERT_FAILURE')


def test_constructing_registers_nothing():
    eng = cat_dog_engine()
    for listener in (base.Listener(eng), printing.PrintingListener(eng),
                     timing.DurationListener(eng), capturing.CaptureListener(eng)):
        assert (len(eng.notifier), len(eng.atom_notifier)) == (0, 0), listener


def test_register_twice_is_a_no_op_and_deregister_removes_everything():
    eng = cat_dog_engine()
    listener = base.Listener(eng)
    listener.register()
    assert registrations(eng) == {'flow': [('*', 1)], 'atom': [('*', 2)]}
    listener.register()
    assert registrations(eng) == {'flow': [('*', 1)], 'atom': [('*', 2)]}
    listener.deregister()
    assert (len(eng.notifier), len(eng.atom_notifier)) == (0, 0)
    listener.deregister()  # nothing left to do, no error
    listener.register()  # and it can register again
    assert (len(eng.notifier), len(eng.atom_notifier)) == (1, 2)


def test_task_and_retry_receivers_use_details_filters():
    eng = cat_dog_engine()
    listener = base.Listener(eng)
    listener.register()
    atom = {listener.callback.__name__: listener.details_filter
            for _event, ls in eng.atom_notifier.listeners_iter() for listener in ls}
    assert atom['_task_receiver']({'task_name': 'x', 'task_uuid': 'u'})
    assert not atom['_task_receiver']({'retry_name': 'x', 'retry_uuid': 'u'})
    assert not atom['_task_receiver']({'task_name': 'x'})
    assert atom['_retry_receiver']({'retry_name': 'x', 'retry_uuid': 'u'})
    assert not atom['_retry_receiver']({'task_name': 'x', 'task_uuid': 'u'})
    [(_event, [flow_listener])] = list(eng.notifier.listeners_iter())
    assert flow_listener.details_filter is None


@pytest.mark.parametrize('falsy', [None, [], ()])
def test_falsy_listen_for_listens_to_nothing_of_that_kind(falsy):
    eng = cat_dog_engine()
    listener = base.Listener(eng, task_listen_for=['SUCCESS', 'FAILURE'],
                             flow_listen_for=falsy, retry_listen_for=falsy)
    listener.register()
    assert registrations(eng) == {'flow': [], 'atom': [('FAILURE', 1), ('SUCCESS', 1)]}
    listener.deregister()
    assert (len(eng.notifier), len(eng.atom_notifier)) == (0, 0)


def test_repeated_states_are_registered_once():
    eng = cat_dog_engine()
    listener = base.Listener(eng, task_listen_for=['SUCCESS', 'SUCCESS'])
    listener.register()
    assert registrations(eng) == {'flow': [('*', 1)], 'atom': [('*', 1), ('SUCCESS', 1)]}


def test_deregister_leaves_registrations_it_did_not_make():
    eng = cat_dog_engine()
    listener = base.Listener(eng, task_listen_for=['SUCCESS'], flow_listen_for=[],
                             retry_listen_for=[])
    eng.atom_notifier.register('SUCCESS', listener._task_receiver,
                               details_filter=base._task_matcher)
    listener.register()
    assert len(eng.atom_notifier) == 1
    listener.deregister()
    assert len(eng.atom_notifier) == 1
    assert eng.atom_notifier.is_registered('SUCCESS', listener._task_receiver,
                                           details_filter=base._task_matcher)


def test_failed_registration_leaves_nothing_behind(monkeypatch):
    # taskflow-ng: all or nothing.  (The reference only undoes the notifier
    # that failed and keeps the task/retry registrations made before it.)
    eng = cat_dog_engine()
    real_register = eng.notifier.register

    def refuse(event_type, *args, **kwargs):
        if event_type == 'FAILURE':
            raise ValueError('nope')
        real_register(event_type, *args, **kwargs)

    monkeypatch.setattr(eng.notifier, 'register', refuse)
    listener = base.Listener(eng, flow_listen_for=['RUNNING', 'FAILURE'])
    with pytest.raises(ValueError, match='nope'):
        listener.register()
    assert (len(eng.notifier), len(eng.atom_notifier)) == (0, 0)
    listener.deregister()  # nothing was kept to deregister
    assert (len(eng.notifier), len(eng.atom_notifier)) == (0, 0)


def test_receivers_get_their_own_kind_of_events(engine_kind):
    flow = lf.Flow('f', retry=retry.Times(1, 'r')).add(CatTalk('cat'))
    eng = load(flow, engine_kind)
    with Recording(eng) as listener:
        eng.run()
    assert listener.seen == [
        ('flow', 'RUNNING', 'f'),
        ('retry', 'RUNNING', 'r'), ('retry', 'SUCCESS', 'r'),
        ('task', 'RUNNING', 'cat'), ('task', 'SUCCESS', 'cat'),
        ('flow', 'SUCCESS', 'f'),
    ]


def test_context_manager_registers_for_the_block_only():
    eng = cat_dog_engine()
    listener = Recording(eng, task_listen_for=['SUCCESS'])
    with listener as entered:
        assert entered is listener
        assert (len(eng.notifier), len(eng.atom_notifier)) == (1, 2)
        with pytest.raises(RuntimeError):
            eng.run()
    assert (len(eng.notifier), len(eng.atom_notifier)) == (0, 0)
    assert listener.seen == [('flow', 'RUNNING', 'cat-dog'), ('task', 'SUCCESS', 'cat'),
                             ('flow', 'REVERTED', 'cat-dog')]


class BadDeregister(base.Listener):
    def deregister(self):
        raise RuntimeError('can not let go')


def test_context_exit_logs_deregistration_errors(caplog):
    eng = cat_dog_engine()
    with caplog.at_level(logging.WARNING, logger='taskflow.listeners.base'):
        with BadDeregister(eng):
            pass
    [record] = [r for r in caplog.records if r.name == 'taskflow.listeners.base']
    assert record.levelno == logging.WARNING
    assert record.getMessage() == 'Failed deregistering listeners from engine %s' % eng
    assert record.exc_info[0] is RuntimeError


def test_context_exit_does_not_hide_the_blocks_exception(caplog):
    with pytest.raises(KeyError, match='body'):
        with BadDeregister(cat_dog_engine()):
            raise KeyError('body')
    assert 'Failed deregistering listeners' in caplog.text


# -- DumpingListener / PrintingListener --------------------------------------


def test_dumping_listener_is_abstract():
    with pytest.raises(TypeError):
        base.DumpingListener(cat_dog_engine())


class DumpRecorder(base.DumpingListener):
    def __init__(self, engine, **kwargs):
        super().__init__(engine, **kwargs)
        self.dumps = []

    def _dump(self, message, *args, **kwargs):
        self.dumps.append((args[3], len(args), kwargs))


def test_dumping_listener_passes_exc_info_for_every_finished_task():
    # The reference passes exc_info= (None unless a failure has one) for the
    # task states that carry a result, and no keyword for anything else.
    eng = cat_dog_engine()
    with DumpRecorder(eng) as listener:
        with pytest.raises(RuntimeError):
            eng.run()
    shapes = [(state, nargs, sorted(kwargs)) for state, nargs, kwargs in listener.dumps]
    assert shapes == [
        ('RUNNING', 5, []),                 # flow
        ('RUNNING', 5, []), ('SUCCESS', 7, ['exc_info']),
        ('RUNNING', 5, []), ('FAILURE', 7, ['exc_info']),
        ('REVERTING', 5, []), ('REVERTED', 7, ['exc_info']),
        ('REVERTING', 5, []), ('REVERTED', 7, ['exc_info']),
        ('REVERTED', 5, []),                # flow
    ]
    exc_infos = [kwargs['exc_info'] for _state, _n, kwargs in listener.dumps if kwargs]
    assert exc_infos[0] is None and exc_infos[2] is None and exc_infos[3] is None
    assert exc_infos[1][0] is RuntimeError


@pytest.mark.parametrize('state, details', [
    ('SUCCESS', {}),                                  # no result at all
    ('FAILURE', {'result': no_fail_failure()}),       # a failure without exc_info
    ('REVERT_FAILURE', {'result': no_fail_failure()}),
])
def test_dumping_listener_exc_info_is_none_without_one(state, details):
    listener = DumpRecorder(cat_dog_engine())
    listener._task_receiver(state, dict(details, task_name='t', task_uuid='u', old_state='X'))
    assert listener.dumps == [(state, 7, {'exc_info': None})]


def expected_cat_dog_lines(eng):
    uuid = eng.storage.get_atom_uuid
    flow = "%s has moved flow 'cat-dog' (%s) into state '%%s' from state '%%s'" % (
        eng, eng.storage.flow_uuid)

    def moved(name, new, old, result=None, failed=False):
        line = "%s has moved task '%s' (%s) into state '%s' from state '%s'" % (
            eng, name, uuid(name), new, old)
        if new in base.FINISH_STATES:
            line += " with result '%s' (failure=%s)" % (result, failed)
        return line

    return [
        flow % ('RUNNING', 'PENDING'),
        moved('cat', 'RUNNING', 'PENDING'),
        moved('cat', 'SUCCESS', 'RUNNING', 'cat'),
        moved('dog', 'RUNNING', 'PENDING'),
        moved('dog', 'FAILURE', 'RUNNING', 'Failure: RuntimeError: dog is tired', True),
        'Traceback (most recent call last):',
        moved('dog', 'REVERTING', 'FAILURE'),
        moved('dog', 'REVERTED', 'REVERTING', None),
        moved('cat', 'REVERTING', 'SUCCESS'),
        moved('cat', 'REVERTED', 'REVERTING', None),
        flow % ('REVERTED', 'RUNNING'),
    ]


def without_traceback_frames(text):
    lines = []
    in_tb = False
    for line in text.splitlines():
        if in_tb and line[:1] in (' ', '\t'):
            continue
        in_tb = line == 'Traceback (most recent call last):'
        lines.append(line)
    return lines


@pytest.mark.parametrize('stderr', [False, True])
def test_printing_listener_prints_every_transition(capsys, stderr):
    eng = cat_dog_engine()
    with printing.PrintingListener(eng, stderr=stderr):
        with pytest.raises(RuntimeError):
            eng.run()
    out, err = capsys.readouterr()
    printed, silent = (err, out) if stderr else (out, err)
    assert silent == ''
    lines = without_traceback_frames(printed)
    expected = expected_cat_dog_lines(eng)
    # The traceback of the failure follows its line, ending with the error.
    tb_at = expected.index('Traceback (most recent call last):')
    expected.insert(tb_at + 1, 'RuntimeError: dog is tired')
    assert lines == expected
    assert 'in execute' in printed  # a real traceback, frames included


def test_printing_listener_on_the_parallel_engine(capsys):
    eng = load(uf.Flow('pets').add(CatTalk('cat1'), CatTalk('cat2')), 'parallel')
    with printing.PrintingListener(eng):
        eng.run()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6
    assert lines[0].endswith("flow 'pets' (%s) into state 'RUNNING' from state 'PENDING'"
                             % eng.storage.flow_uuid)
    for name in ('cat1', 'cat2'):
        assert ("%s has moved task '%s' (%s) into state 'SUCCESS' from state 'RUNNING'"
                " with result 'cat' (failure=False)"
                % (eng, name, eng.storage.get_atom_uuid(name))) in lines
    assert lines[-1].endswith("into state 'SUCCESS' from state 'RUNNING'")


def test_printing_listener_does_not_dump_retries(capsys):
    eng = load(lf.Flow('f', retry=retry.Times(1, 'my-retry')).add(CatTalk('cat')))
    with printing.PrintingListener(eng):
        eng.run()
    out = capsys.readouterr().out
    assert 'my-retry' not in out
    assert len(out.splitlines()) == 4


def test_printing_listener_edge_cases(capsys):
    eng = cat_dog_engine()
    listener = printing.PrintingListener(eng)
    # A finish state without a result, and a failure without exc_info.
    listener._task_receiver('SUCCESS', {'task_name': 'n', 'task_uuid': 'u',
                                        'old_state': 'RUNNING'})
    listener._task_receiver('REVERT_FAILURE', {'task_name': 'n', 'task_uuid': 'u',
                                               'old_state': 'REVERTING',
                                               'result': no_fail_failure()})
    # Other states never show a result; the engine comes from the listener.
    listener._task_receiver('RUNNING', {'task_name': 'n', 'task_uuid': 'u',
                                        'old_state': 'PENDING', 'result': 5})
    listener._flow_receiver('RUNNING', {'engine': 'other', 'flow_name': 'f',
                                        'flow_uuid': 'fu', 'old_state': 'PENDING'})
    assert capsys.readouterr().out.splitlines() == [
        "%s has moved task 'n' (u) into state 'SUCCESS' from state 'RUNNING' with result"
        " 'None' (failure=False)" % eng,
        "%s has moved task 'n' (u) into state 'REVERT_FAILURE' from state 'REVERTING' with"
        " result 'Failure: ValueError: nope' (failure=True)" % eng,
        "%s has moved task 'n' (u) into state 'RUNNING' from state 'PENDING'" % eng,
        "%s has moved flow 'f' (fu) into state 'RUNNING' from state 'PENDING'" % eng,
    ]


# -- LoggingListener ----------------------------------------------------------


def records_of(caplog, name=LISTENER_LOGGER):
    return [r for r in caplog.records if r.name == name]


def test_logging_listener_logs_the_dumped_messages(caplog, engine_kind):
    eng = cat_dog_engine(engine_kind)
    caplog.set_level(logging.DEBUG, logger=LISTENER_LOGGER)
    with logging_listeners.LoggingListener(eng):
        with pytest.raises(RuntimeError):
            eng.run()
    records = records_of(caplog)
    expected = [line for line in expected_cat_dog_lines(eng)
                if not line.startswith('Traceback')]
    if engine_kind == 'parallel':
        assert sorted(r.getMessage() for r in records) == sorted(expected)
    else:
        assert [r.getMessage() for r in records] == expected
    assert {r.levelno for r in records} == {logging.DEBUG}
    [failed] = [r for r in records if r.exc_info]
    assert "into state 'FAILURE'" in failed.getMessage()
    assert failed.exc_info[0] is RuntimeError
    assert str(failed.exc_info[1]) == 'dog is tired'


def test_logging_listener_logger_and_level_choices(caplog):
    eng = cat_dog_engine()
    caplog.set_level(logging.DEBUG)
    running = {'task_name': 'n', 'task_uuid': 'u', 'old_state': 'PENDING'}

    custom = logging.getLogger('my.app')
    logging_listeners.LoggingListener(eng, log=custom, level=logging.INFO)._task_receiver(
        'RUNNING', running)

    class Subclassed(logging_listeners.LoggingListener):
        _LOGGER = logging.getLogger('my.subclass')

    Subclassed(eng)._task_receiver('RUNNING', running)
    Subclassed(eng, log=custom)._task_receiver('RUNNING', running)
    seen = [(r.name, r.levelno) for r in caplog.records]
    assert seen == [('my.app', logging.INFO), ('my.subclass', logging.DEBUG),
                    ('my.app', logging.DEBUG)]


def test_logging_listener_failure_without_exc_info(caplog):
    caplog.set_level(logging.DEBUG, logger=LISTENER_LOGGER)
    listener = logging_listeners.LoggingListener(cat_dog_engine())
    listener._task_receiver('FAILURE', {'task_name': 'n', 'task_uuid': 'u',
                                        'old_state': 'RUNNING', 'result': no_fail_failure()})
    [record] = records_of(caplog)
    assert record.exc_info is None
    assert record.getMessage().endswith("with result 'Failure: ValueError: nope'"
                                        " (failure=True)")


# -- DynamicLoggingListener ---------------------------------------------------


def test_dynamic_logging_listener_levels_and_messages(caplog, engine_kind):
    eng = load(lf.Flow('cat-dog').add(CatTalk('cat'), DogTalk('dog')), engine_kind)
    caplog.set_level(logging.DEBUG, logger=LISTENER_LOGGER)
    with logging_listeners.DynamicLoggingListener(eng):
        with pytest.raises(RuntimeError):
            eng.run()
    uuid = eng.storage.get_atom_uuid
    flow_uuid = eng.storage.flow_uuid
    task_msg = "Task '%s' (%s) transitioned into state '%s' from state '%s'"
    predecessors = os.linesep.join([
        '2 predecessors (most recent first):',
        "  Atom 'cat' {'intention': 'EXECUTE', 'state': 'SUCCESS', 'requires': {},"
        " 'provides': 'cat'}",
        "  |__Flow 'cat-dog'"])
    D, W = logging.DEBUG, logging.WARNING
    assert [(r.levelno, r.getMessage()) for r in records_of(caplog)] == [
        (D, "Flow 'cat-dog' (%s) transitioned into state 'RUNNING' from state 'PENDING'"
         % flow_uuid),
        (D, task_msg % ('cat', uuid('cat'), 'RUNNING', 'PENDING')),
        (D, task_msg % ('cat', uuid('cat'), 'SUCCESS', 'RUNNING') + " with result 'cat'"),
        (D, task_msg % ('dog', uuid('dog'), 'RUNNING', 'PENDING')),
        (W, task_msg % ('dog', uuid('dog'), 'FAILURE', 'RUNNING') + os.linesep
         + predecessors),
        (D, task_msg % ('dog', uuid('dog'), 'REVERTING', 'FAILURE')),
        (W, task_msg % ('dog', uuid('dog'), 'REVERTED', 'REVERTING') + " with result 'None'"),
        (D, task_msg % ('cat', uuid('cat'), 'REVERTING', 'SUCCESS')),
        (W, task_msg % ('cat', uuid('cat'), 'REVERTED', 'REVERTING') + " with result 'None'"),
        (W, "Flow 'cat-dog' (%s) transitioned into state 'REVERTED' from state 'RUNNING'"
         % flow_uuid),
    ]
    failed = [r for r in records_of(caplog) if r.exc_info]
    assert len(failed) == 1 and failed[0].exc_info[0] is RuntimeError


def dynamic_direct(caplog, listener, calls):
    caplog.clear()
    for receiver, state, details in calls:
        getattr(listener, receiver)(state, details)
    return [(r.levelname, r.getMessage()) for r in caplog.records]


def task_details(name='n', **extra):
    return dict({'task_name': name, 'task_uuid': 'u', 'old_state': 'X'}, **extra)


def test_dynamic_logging_listener_level_by_state(caplog):
    caplog.set_level(logging.DEBUG, logger=LISTENER_LOGGER)
    listener = logging_listeners.DynamicLoggingListener(cat_dog_engine())
    task_states = ('RUNNING', 'PENDING', 'REVERTING', 'RETRYING', 'IGNORE', 'SUCCESS',
                   'REVERTED', 'FAILURE', 'REVERT_FAILURE')
    seen = dynamic_direct(caplog, listener,
                          [('_task_receiver', s, task_details()) for s in task_states])
    assert [level for level, _msg in seen] == [
        'DEBUG', 'DEBUG', 'DEBUG', 'WARNING', 'DEBUG', 'DEBUG', 'WARNING', 'WARNING',
        'WARNING']
    flow_states = ('RUNNING', 'SUCCESS', 'FAILURE', 'REVERTED', 'SUSPENDED', 'RESUMING')
    seen = dynamic_direct(caplog, listener, [
        ('_flow_receiver', s, {'engine': None, 'flow_name': 'f', 'flow_uuid': 'fu',
                               'old_state': 'X'}) for s in flow_states])
    assert [level for level, _msg in seen] == ['DEBUG', 'DEBUG', 'WARNING', 'WARNING',
                                               'DEBUG', 'DEBUG']


def test_dynamic_logging_listener_shows_results_of_finished_tasks_only(caplog):
    caplog.set_level(logging.DEBUG, logger=LISTENER_LOGGER)
    listener = logging_listeners.DynamicLoggingListener(cat_dog_engine())
    seen = dynamic_direct(caplog, listener, [
        ('_task_receiver', s, task_details(result='R'))
        for s in ('SUCCESS', 'REVERTED', 'RUNNING', 'RETRYING')])
    base_msg = "Task 'n' (u) transitioned into state '%s' from state 'X'"
    assert seen == [('DEBUG', base_msg % 'SUCCESS' + " with result 'R'"),
                    ('WARNING', base_msg % 'REVERTED' + " with result 'R'"),
                    ('DEBUG', base_msg % 'RUNNING'),
                    ('WARNING', base_msg % 'RETRYING')]


def test_dynamic_logging_listener_hides_results(caplog):
    caplog.set_level(logging.DEBUG)
    listener = logging_listeners.DynamicLoggingListener(cat_dog_engine(),
                                                        hide_inputs_outputs_of=['secret'])
    seen = dynamic_direct(caplog, listener, [
        ('_task_receiver', 'SUCCESS', task_details('secret', result='R')),
        ('_task_receiver', 'SUCCESS', task_details('open', result='R'))])
    assert seen == [
        ('DEBUG', "Task 'secret' (u) transitioned into state 'SUCCESS' from state 'X'"),
        ('DEBUG', "Task 'open' (u) transitioned into state 'SUCCESS' from state 'X'"
                  " with result 'R'")]


def test_dynamic_logging_listener_hides_results_when_level_is_disabled(caplog):
    caplog.set_level(logging.DEBUG)
    quiet = logging.getLogger('quiet.app')
    quiet.setLevel(logging.WARNING)
    listener = logging_listeners.DynamicLoggingListener(cat_dog_engine(), log=quiet)
    seen = dynamic_direct(caplog, listener, [
        ('_task_receiver', 'REVERTED', task_details(result='R')),
        ('_task_receiver', 'SUCCESS', task_details(result='R'))])
    assert seen == [('WARNING', "Task 'n' (u) transitioned into state 'REVERTED' from"
                                " state 'X'")]
    listener = logging_listeners.DynamicLoggingListener(
        cat_dog_engine(), log=quiet, level=logging.ERROR, failure_level=logging.CRITICAL)
    seen = dynamic_direct(caplog, listener, [
        ('_task_receiver', 'REVERTED', task_details(result='R')),
        ('_task_receiver', 'SUCCESS', task_details(result='R'))])
    assert seen == [
        ('CRITICAL', "Task 'n' (u) transitioned into state 'REVERTED' from state 'X'"
                     " with result 'R'"),
        ('ERROR', "Task 'n' (u) transitioned into state 'SUCCESS' from state 'X'"
                  " with result 'R'")]


class FakeFormatter:
    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def format(self, fail, atom_matcher):
        self.calls.append((fail, atom_matcher))
        return self.answer


class FakeNode:
    def __init__(self, item):
        self.item = item


def test_dynamic_logging_listener_uses_the_fail_formatter(caplog):
    caplog.set_level(logging.DEBUG, logger=LISTENER_LOGGER)
    fail = no_fail_failure()
    try:
        raise KeyError('real')
    except KeyError:
        exc_info = sys.exc_info()
    formatter = FakeFormatter((exc_info, 'custom details'))
    listener = logging_listeners.DynamicLoggingListener(cat_dog_engine(),
                                                        fail_formatter=formatter)
    # Any Failure result is a failure, whatever the state.
    listener._task_receiver('SUCCESS', task_details('cat', result=fail))
    [record] = records_of(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage() == ("Task 'cat' (u) transitioned into state 'SUCCESS' from"
                                   " state 'X'" + os.linesep + 'custom details')
    assert record.exc_info == exc_info
    [(got_fail, matcher)] = formatter.calls
    assert got_fail is fail
    # The matcher accepts the node of the task named like the event's task.
    assert matcher(FakeNode(CatTalk('cat')))
    assert not matcher(FakeNode(CatTalk('dog')))
    assert not matcher(FakeNode(retry.Times(name='cat')))


def test_dynamic_logging_listener_empty_failure_details(caplog):
    caplog.set_level(logging.DEBUG, logger=LISTENER_LOGGER)
    listener = logging_listeners.DynamicLoggingListener(
        cat_dog_engine(), fail_formatter=FakeFormatter((None, '')))
    listener._task_receiver('REVERT_FAILURE', task_details(result=no_fail_failure()))
    [record] = records_of(caplog)
    assert record.getMessage() == ("Task 'n' (u) transitioned into state 'REVERT_FAILURE'"
                                   " from state 'X'")
    assert record.exc_info is None


def test_dynamic_logging_listener_skips_formatting_failures_nobody_sees(caplog):
    # taskflow-ng: the reference formats (walks graph and storage) even when
    # the record will be dropped.
    quiet = logging.getLogger('silent.app')
    quiet.setLevel(logging.ERROR)
    formatter = FakeFormatter((None, 'details'))
    listener = logging_listeners.DynamicLoggingListener(cat_dog_engine(), log=quiet,
                                                        fail_formatter=formatter)
    listener._task_receiver('FAILURE', task_details(result=no_fail_failure()))
    assert formatter.calls == []


def test_dynamic_logging_listener_default_formatter_masks(caplog):
    class Secretive(task.Task):
        def execute(self, secret, auth):
            return {'token': 't0k3n', 'user': 'bob', 'keys': [{'token': 'k2'}]}

    eng = load(lf.Flow('f').add(Secretive('login'), DogTalk('dog')),
               store={'secret': 'pw', 'auth': {'secret': 'pw2'}})
    caplog.set_level(logging.DEBUG, logger=LISTENER_LOGGER)
    with logging_listeners.DynamicLoggingListener(eng, mask_inputs_keys=['secret'],
                                                  mask_outputs_keys=['token']):
        with pytest.raises(RuntimeError):
            eng.run()
    [failed] = [r for r in records_of(caplog) if r.exc_info]
    # Masking reaches into nested dicts and lists (as the reference does).
    assert failed.getMessage().split(os.linesep)[1:] == [
        '2 predecessors (most recent first):',
        "  Atom 'login' {'intention': 'EXECUTE', 'state': 'SUCCESS', 'requires':"
        " {'secret': '***', 'auth': {'secret': '***'}}, 'provides': {'token': '***',"
        " 'user': 'bob', 'keys': [{'token': '***'}]}}",
        "  |__Flow 'f'"]
    # Results in ordinary messages are masked too (the reference shows them
    # as they are: documented in docs/behaviour.md).
    assert "with result '{'token': '***', 'user': 'bob', 'keys': [{'token': '***'}]}'" \
        in caplog.text
    assert 't0k3n' not in caplog.text


def test_dynamic_logging_listener_does_not_log_retries(caplog):
    eng = load(lf.Flow('f', retry=retry.Times(1, 'my-retry')).add(CatTalk('cat')))
    caplog.set_level(logging.DEBUG, logger=LISTENER_LOGGER)
    with logging_listeners.DynamicLoggingListener(eng):
        eng.run()
    assert len(records_of(caplog)) == 4
    assert 'my-retry' not in caplog.text


# -- timing -------------------------------------------------------------------


def test_timing_constants():
    assert timing.STARTING_STATES == frozenset(['RUNNING', 'REVERTING'])
    assert timing.FINISHED_STATES == frozenset(base.FINISH_STATES)
    assert timing.WATCH_STATES == timing.FINISHED_STATES | timing.STARTING_STATES | {
        'PENDING'}


def test_duration_listener_registers_only_watched_states():
    eng = cat_dog_engine()
    listener = timing.DurationListener(eng)
    listener.register()
    watched = sorted((s, 1) for s in timing.WATCH_STATES)
    # Retries keep the default ('*') registration, with a receiver doing nothing.
    assert registrations(eng) == {'flow': watched, 'atom': sorted(watched + [('*', 1)])}
    listener.deregister()
    assert (len(eng.notifier), len(eng.atom_notifier)) == (0, 0)


@contextlib.contextmanager
def saved_flow_detail(book, backend, flow_uuid):
    with contextlib.closing(backend.get_connection()) as conn:
        yield conn.get_logbook(book.uuid).find(flow_uuid)


def test_duration_listener_saves_durations(engine_kind):
    backend = backends.fetch('memory://')
    book = models.LogBook('timing')
    flow = lf.Flow('sleepy').add(Sleepy('nap-1', 0.05), Sleepy('nap-2', 0.05))
    eng = load(flow, engine_kind, book=book, backend=backend)
    with timing.DurationListener(eng):
        eng.run()
    with saved_flow_detail(book, backend, eng.storage.flow_uuid) as fd:
        assert fd.meta['duration'] >= 0.1
        durations = {ad.name: ad.meta['duration'] for ad in fd}
    assert set(durations) == {'nap-1', 'nap-2'}
    assert all(0.05 <= d < fd.meta['duration'] for d in durations.values())


def test_duration_listener_times_reverts_and_not_retries():
    flow = lf.Flow('f', retry=retry.Times(1, 'r')).add(
        Sleepy('slow-revert', 0.0, revert_for=0.1), Sleepy('grumpy', fail=True))
    eng = load(flow)
    with timing.DurationListener(eng):
        with pytest.raises(RuntimeError):
            eng.run()
    # The revert's duration replaces the (quick) execution's.
    assert eng.storage._flowdetail.find(
        eng.storage.get_atom_uuid('slow-revert')).meta['duration'] >= 0.1
    assert 'duration' not in eng.storage._flowdetail.find(
        eng.storage.get_atom_uuid('r')).meta
    assert 'duration' in eng.storage.flow_meta


def test_printing_duration_listener_output(capsys, engine_kind):
    flow = lf.Flow('sleepy-flow').add(Sleepy('nap-1', 0.01), Sleepy('nap-2', 0.01))
    eng = load(flow, engine_kind)
    with timing.PrintingDurationListener(eng):
        eng.run()
    lines = capsys.readouterr().out.splitlines()
    lines = [re.sub(r'\d+\.\d\d seconds', 'N seconds', line) for line in lines]
    assert lines == [
        "'sleepy-flow' flow started.",
        "'nap-1' task started.",
        "It took task 'nap-1' N seconds to finish.",
        "'nap-2' task started.",
        "It took task 'nap-2' N seconds to finish.",
        "It took flow 'sleepy-flow' N seconds to finish.",
    ]


def test_printing_duration_listener_printer_and_reverts():
    printed = []
    eng = load(lf.Flow('f').add(Sleepy('ok'), Sleepy('grumpy', fail=True)))
    with timing.PrintingDurationListener(eng, printer=printed.append):
        with pytest.raises(RuntimeError):
            eng.run()
    printed = [re.sub(r'\d+\.\d\d seconds', 'N seconds', line) for line in printed]
    assert printed == [
        "'f' flow started.",
        "'ok' task started.", "It took task 'ok' N seconds to finish.",
        "'grumpy' task started.", "It took task 'grumpy' N seconds to finish.",
        "'grumpy' task started.", "It took task 'grumpy' N seconds to finish.",
        "'ok' task started.", "It took task 'ok' N seconds to finish.",
        "It took flow 'f' N seconds to finish.",
    ]


def test_printed_and_saved_durations_agree():
    printed = []
    eng = load(lf.Flow('f').add(Sleepy('nap', 0.02)))
    with timing.PrintingDurationListener(eng, printer=printed.append):
        eng.run()
    saved = eng.storage._flowdetail.find(eng.storage.get_atom_uuid('nap')).meta['duration']
    assert "It took task 'nap' %0.2f seconds to finish." % saved in printed


def test_durations_use_a_monotonic_clock(monkeypatch):
    # The wall clock jumping backwards must not produce negative durations.
    wall = itertools.count(10 ** 9, -1000)
    monkeypatch.setattr(time, 'time', lambda: float(next(wall)))
    eng = load(lf.Flow('f').add(Sleepy('nap', 0.02)))
    with timing.DurationListener(eng):
        eng.run()
    duration = eng.storage._flowdetail.find(
        eng.storage.get_atom_uuid('nap')).meta['duration']
    assert 0.02 <= duration < 5


def failing_storage(eng, monkeypatch, error=exc.StorageFailure('disk full')):
    eng.compile()
    eng.prepare()

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(eng.storage, 'update_atom_metadata', broken)
    monkeypatch.setattr(eng.storage, 'update_flow_metadata', broken)


def test_duration_storage_failures_are_logged_not_raised(caplog, monkeypatch):
    eng = load(lf.Flow('f').add(Sleepy('nap')))
    failing_storage(eng, monkeypatch)
    printed = []
    caplog.set_level(logging.WARNING, logger='taskflow.listeners.timing')
    with timing.PrintingDurationListener(eng, printer=printed.append):
        eng.run()
    assert eng.storage.get_flow_state() == states.SUCCESS
    messages = [re.sub(r"\{'duration': [0-9.e-]+\}", '{D}', r.getMessage())
                for r in records_of(caplog, 'taskflow.listeners.timing')]
    assert messages == ['Failure to store duration update {D} for task nap',
                        'Failure to store duration update {D} for flow f']
    assert all(r.exc_info[0] is exc.StorageFailure for r in caplog.records)
    assert len(printed) == 4  # printing goes on


def test_duration_other_storage_errors_are_not_swallowed(monkeypatch):
    eng = load(lf.Flow('f').add(Sleepy('nap')))
    failing_storage(eng, monkeypatch, KeyError('boom'))
    listener = timing.DurationListener(eng)
    listener._task_receiver('RUNNING', {'task_name': 'nap', 'task_uuid': 'u',
                                        'old_state': 'PENDING'})
    with pytest.raises(KeyError):
        listener._task_receiver('SUCCESS', {'task_name': 'nap', 'task_uuid': 'u',
                                            'old_state': 'RUNNING'})


def notify_task(eng, state, name='nap'):
    eng.atom_notifier.notify(state, {'task_name': name, 'task_uuid': 'u',
                                     'old_state': 'X'})


def test_unfinished_timers_are_reported_on_deregister(caplog):
    eng = load(lf.Flow('f').add(Sleepy('nap')))
    printed = []
    listener = timing.PrintingDurationListener(eng, printer=printed.append)
    listener.register()
    eng.notifier.notify('RUNNING', {'engine': eng, 'flow_name': 'f', 'flow_uuid': 'u',
                                    'old_state': 'PENDING'})
    notify_task(eng, 'RUNNING')
    caplog.set_level(logging.WARNING, logger='taskflow.listeners.timing')
    listener.deregister()
    assert [r.getMessage() for r in caplog.records] == [
        '1 task(s) did not enter %s states' % (timing.FINISHED_STATES,),
        '1 flow(s) did not enter %s states' % (timing.FINISHED_STATES,)]
    caplog.clear()
    listener.deregister()  # the timers were dropped: nothing more to report
    assert caplog.records == []


def test_pending_drops_a_running_timer():
    eng = load(lf.Flow('f').add(Sleepy('nap')))
    eng.compile()
    eng.prepare()
    printed = []
    with timing.PrintingDurationListener(eng, printer=printed.append):
        notify_task(eng, 'RUNNING')
        notify_task(eng, 'PENDING')
        notify_task(eng, 'SUCCESS')
        notify_task(eng, 'SUCCESS', name='never-started')
    assert printed == ["'nap' task started."]
    assert 'duration' not in eng.storage._flowdetail.find(
        eng.storage.get_atom_uuid('nap')).meta


def test_event_time_listener_saves_timestamps(engine_kind):
    backend = backends.fetch('memory://')
    book = models.LogBook('stamps')
    flow = lf.Flow('stamps', retry=retry.Times(1, 'r')).add(Sleepy('nap'))
    eng = load(flow, engine_kind, book=book, backend=backend)
    before = time.time()
    with timing.EventTimeListener(eng):
        eng.run()
    after = time.time()
    with saved_flow_detail(book, backend, eng.storage.flow_uuid) as fd:
        stamps = {'flow': {k: v for k, v in fd.meta.items() if k.endswith('-timestamp')}}
        for ad in fd:
            stamps[ad.name] = {k: v for k, v in ad.meta.items() if k.endswith('-timestamp')}
    for name in ('flow', 'r', 'nap'):
        assert sorted(stamps[name]) == ['RUNNING-timestamp', 'SUCCESS-timestamp']
        assert before <= stamps[name]['RUNNING-timestamp'] <= \
            stamps[name]['SUCCESS-timestamp'] <= after


def test_event_time_listener_respects_listen_for():
    eng = load(lf.Flow('f').add(Sleepy('nap')))
    with timing.EventTimeListener(eng, task_listen_for=['SUCCESS'], flow_listen_for=[]):
        eng.run()
    assert [k for k in eng.storage.flow_meta if k.endswith('-timestamp')] == []
    meta = eng.storage._flowdetail.find(eng.storage.get_atom_uuid('nap')).meta
    assert [k for k in meta if k.endswith('-timestamp')] == ['SUCCESS-timestamp']


def test_event_time_storage_failures_are_logged_not_raised(caplog, monkeypatch):
    eng = load(lf.Flow('f').add(Sleepy('nap')))
    failing_storage(eng, monkeypatch)
    caplog.set_level(logging.WARNING, logger='taskflow.listeners.timing')
    with timing.EventTimeListener(eng):
        eng.run()
    assert eng.storage.get_flow_state() == states.SUCCESS
    messages = [re.sub(r'[0-9.]+\}', 'T}', r.getMessage()) for r in caplog.records]
    assert messages == [
        "Failure to store timestamp {'RUNNING-timestamp': T} for flow f",
        "Failure to store timestamp {'RUNNING-timestamp': T} for atom nap",
        "Failure to store timestamp {'SUCCESS-timestamp': T} for atom nap",
        "Failure to store timestamp {'SUCCESS-timestamp': T} for flow f",
    ]
    assert all(r.exc_info[0] is exc.StorageFailure for r in caplog.records)


# -- CaptureListener ----------------------------------------------------------


def capture_run(engine_kind='serial', **kwargs):
    flow = lf.Flow('f', retry=retry.Times(1, 'r')).add(CatTalk('cat'), CatTalk('kitten'))
    eng = load(flow, engine_kind)
    with capturing.CaptureListener(eng, **kwargs) as listener:
        eng.run()
    return eng, listener


def test_capture_listener_records_everything(engine_kind):
    eng, listener = capture_run(engine_kind)
    assert [(kind, state) for kind, state, _details in listener.values] == [
        ('flow', 'RUNNING'),
        ('retry', 'RUNNING'), ('retry', 'SUCCESS'),
        ('task', 'RUNNING'), ('task', 'SUCCESS'),
        ('task', 'RUNNING'), ('task', 'SUCCESS'),
        ('flow', 'SUCCESS')]
    kind, state, details = listener.values[4]
    assert details == {'task_name': 'cat', 'task_uuid': eng.storage.get_atom_uuid('cat'),
                       'old_state': 'RUNNING', 'result': 'cat'}
    assert listener.values[0][2]['engine'] is eng


def test_capture_listener_kinds_and_skips():
    _eng, listener = capture_run(capture_flow=False, capture_retry=False)
    assert {kind for kind, _s, _d in listener.values} == {'task'}
    _eng, listener = capture_run(skip_tasks=['cat'], skip_retries=['r'], skip_flows=['f'])
    assert [(k, s, d['task_name']) for k, s, d in listener.values] == [
        ('task', 'RUNNING', 'kitten'), ('task', 'SUCCESS', 'kitten')]
    # A string is an iterable of names, like any other.
    _eng, listener = capture_run(capture_flow=False, capture_retry=False, skip_tasks='cat')
    assert len(listener.values) == 4


def test_capture_listener_appends_to_the_given_list():
    shared = []
    _eng, first = capture_run(values=shared, capture_task=False, capture_retry=False)
    _eng, second = capture_run(values=shared, capture_task=False, capture_retry=False)
    assert first.values is shared and second.values is shared
    assert [s for _k, s, _d in shared] == ['RUNNING', 'SUCCESS', 'RUNNING', 'SUCCESS']
    assert capturing.CaptureListener(cat_dog_engine()).values == []


def test_capture_listener_format_capture_override():
    class NamesOnly(capturing.CaptureListener):
        @staticmethod
        def _format_capture(kind, state, details):
            return '%s:%s' % (kind, state)

    eng = load(lf.Flow('f').add(CatTalk('cat')))
    with NamesOnly(eng) as listener:
        eng.run()
    assert listener.values == ['flow:RUNNING', 'task:RUNNING', 'task:SUCCESS',
                               'flow:SUCCESS']
    assert capturing.CaptureListener._format_capture('task', 'S', {}) == ('task', 'S', {})


# -- CheckingClaimListener ----------------------------------------------------


class FakeJob:
    def __init__(self, state='CLAIMED'):
        self.state = state

    def __str__(self):
        return 'job-1'


class FakeBoard:
    def __init__(self, owner='me', error=None):
        self.owner = owner
        self.error = error
        self.calls = 0

    def find_owner(self, job):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.owner


def claims_engine(engine_kind='serial'):
    return load(lf.Flow('f').add(CatTalk('a'), CatTalk('b')), engine_kind)


def claim_messages(caplog):
    return [(r.levelname, r.getMessage())
            for r in records_of(caplog, 'taskflow.listeners.claims')]


def test_claim_kept_lets_the_engine_run(caplog, engine_kind):
    caplog.set_level(logging.DEBUG, logger='taskflow.listeners.claims')
    eng = claims_engine(engine_kind)
    board = FakeBoard()
    with claims.CheckingClaimListener(eng, FakeJob(), board, 'me'):
        eng.run()
    assert eng.storage.get_flow_state() == states.SUCCESS
    # One check per flow and task event: 2 flow + 4 task events.
    assert board.calls == 6
    assert claim_messages(caplog) == [
        ('DEBUG', "Job 'job-1' is still claimed (actively owned by 'me')")] * 6


@pytest.mark.parametrize('job, board', [
    (FakeJob(), FakeBoard('someone-else')),
    (FakeJob('UNCLAIMED'), FakeBoard()),
    (FakeJob(), FakeBoard(error=exc.NotFound('gone'))),
    (FakeJob(), FakeBoard(error=exc.JobFailure('board down'))),
], ids=['other-owner', 'unclaimed', 'not-found', 'job-failure'])
def test_claim_lost_suspends_the_engine(caplog, engine_kind, job, board):
    caplog.set_level(logging.DEBUG, logger='taskflow.listeners.claims')
    eng = claims_engine(engine_kind)
    with claims.CheckingClaimListener(eng, job, board, 'me'):
        eng.run()
    assert eng.storage.get_flow_state() == states.SUSPENDED
    assert [eng.storage.get_atom_state(n) for n in 'ab'] == ['PENDING', 'PENDING']
    # Checked on RUNNING, SUSPENDING and SUSPENDED.
    assert claim_messages(caplog) == [
        ('WARNING', "Job 'job-1' has lost its claim (previously owned by 'me')")] * 3


def test_claim_lost_midway_then_regained(engine_kind):
    class LosesAfterA(FakeBoard):
        def find_owner(self, job):
            owner = super().find_owner(job)
            return owner if eng.storage.get_atom_state('a') != 'SUCCESS' else 'thief'

    eng = claims_engine(engine_kind)
    board = LosesAfterA()
    with claims.CheckingClaimListener(eng, FakeJob(), board, 'me'):
        eng.run()
    assert eng.storage.get_flow_state() == states.SUSPENDED
    assert [eng.storage.get_atom_state(n) for n in 'ab'] == ['SUCCESS', 'PENDING']
    eng.run()  # without the listener, the run resumes where it stopped
    assert [eng.storage.get_atom_state(n) for n in 'ab'] == ['SUCCESS', 'SUCCESS']


def test_custom_on_job_loss_handler(engine_kind):
    calls = []
    eng = claims_engine(engine_kind)
    listener = claims.CheckingClaimListener(
        eng, FakeJob(), FakeBoard('thief'), 'me',
        on_job_loss=lambda engine, state, details: calls.append((engine, state, details)))
    with listener:
        eng.run()
    assert eng.storage.get_flow_state() == states.SUCCESS
    assert [state for _e, state, _d in calls] == ['RUNNING', 'RUNNING', 'SUCCESS',
                                                  'RUNNING', 'SUCCESS', 'SUCCESS']
    assert all(engine is eng for engine, _s, _d in calls)
    assert calls[1][2]['task_name'] in ('a', 'b')


def test_on_job_loss_must_be_callable():
    with pytest.raises(ValueError) as info:
        claims.CheckingClaimListener(claims_engine(), FakeJob(), FakeBoard(), 'me',
                                     on_job_loss='suspend please')
    assert str(info.value) == "Custom 'on_job_loss' handler must be callable"


def test_failing_to_suspend_is_logged(caplog):
    class Unsuspendable:
        def suspend(self):
            raise exc.InvalidState('bad state')

        def __str__(self):
            return 'E!'

    caplog.set_level(logging.WARNING, logger='taskflow.listeners.claims')
    listener = claims.CheckingClaimListener(claims_engine(), FakeJob(), FakeBoard(), 'me')
    listener._suspend_engine_on_loss(Unsuspendable(), 'RUNNING', {})
    assert claim_messages(caplog) == [
        ('WARNING', "Failed suspending engine 'E!', (previously owned by 'me'):"
                    + os.linesep + 'bad state')]


def test_unexpected_claim_check_errors_propagate():
    listener = claims.CheckingClaimListener(claims_engine(), FakeJob(),
                                            FakeBoard(error=RuntimeError('boom')), 'me')
    with pytest.raises(RuntimeError):
        listener._task_receiver('RUNNING', {'task_name': 'a', 'task_uuid': 'u',
                                            'old_state': 'PENDING'})


def test_claims_listener_registration():
    eng = claims_engine()
    listener = claims.CheckingClaimListener(eng, FakeJob(), FakeBoard(), 'me')
    listener.register()
    assert registrations(eng) == {'flow': [('*', 1)], 'atom': [('*', 2)]}
    listener.deregister()
    assert (len(eng.notifier), len(eng.atom_notifier)) == (0, 0)


def test_any_event_constant_is_the_notifiers():
    assert base.DEFAULT_LISTEN_FOR == (notifier.Notifier.ANY,)


# -- secrets: masked keys in every listener's output --------------------------------

PASSWORD = 'pw-%s' % os.getpid()   # long enough to be remembered


class Login(task.Task):
    default_provides = 'session'

    def execute(self, password):
        return {'password': password, 'user': 'bob', 'pair': ('x', {'password': password})}


class Refuse(task.Task):
    def execute(self, password, session):
        raise RuntimeError('refused %s' % password)


def login_engine(engine_kind='serial'):
    return load(lf.Flow('login').add(Login('login'), Refuse('refuse')), engine_kind,
                store={'password': PASSWORD + '-stored'})


def test_printing_listener_masks_project_wide_keys(capsys, engine_kind):
    secrets.mask_keys('password')
    eng = login_engine(engine_kind)
    with printing.PrintingListener(eng):
        with pytest.raises(RuntimeError):
            eng.run()
    out = capsys.readouterr().out
    assert PASSWORD not in out
    assert ("with result '{'password': '***', 'user': 'bob', 'pair': ('x', {'password':"
            " '***'})}' (failure=False)") in out
    assert "with result 'Failure: RuntimeError: refused ***' (failure=True)" in out
    assert out.count('RuntimeError: refused ***') == 2   # the line and the traceback


def test_printing_listener_output_is_unchanged_without_masking(capsys):
    eng = login_engine()
    with printing.PrintingListener(eng):
        with pytest.raises(RuntimeError):
            eng.run()
    out = capsys.readouterr().out
    assert "'password': '%s-stored'" % PASSWORD in out
    assert 'RuntimeError: refused %s-stored' % PASSWORD in out


def test_logging_listener_to_any_logger_masks_results_and_tracebacks():
    secrets.mask_keys('password')
    log = logging.getLogger('app.%s' % os.getpid())
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        eng = login_engine()
        with logging_listeners.LoggingListener(eng, log=log):
            with pytest.raises(RuntimeError):
                eng.run()
    finally:
        log.removeHandler(handler)
    text = '\n'.join(logging.Formatter().format(r) for r in records)
    assert PASSWORD not in text
    [failed] = [r for r in records if "into state 'FAILURE'" in r.getMessage()]
    # The traceback quoted the secret: it is logged as scrubbed text instead
    # of exc_info (which a formatter would format from the live exception).
    assert failed.exc_info is None
    assert failed.getMessage().endswith('RuntimeError: refused ***')
    assert 'Traceback (most recent call last):' in failed.getMessage()


def test_logging_listener_keeps_exc_info_when_nothing_is_secret(caplog):
    secrets.mask_keys('password')
    eng = cat_dog_engine()
    caplog.set_level(logging.DEBUG, logger=LISTENER_LOGGER)
    with logging_listeners.LoggingListener(eng):
        with pytest.raises(RuntimeError):
            eng.run()
    [failed] = [r for r in records_of(caplog) if "into state 'FAILURE'" in r.getMessage()]
    assert failed.exc_info[0] is RuntimeError


def test_dynamic_logging_listener_masks_with_its_own_keys(caplog):
    eng = login_engine()
    caplog.set_level(logging.DEBUG, logger=LISTENER_LOGGER)
    with logging_listeners.DynamicLoggingListener(eng, mask_inputs_keys=['password'],
                                                  mask_outputs_keys=['password']):
        with pytest.raises(RuntimeError):
            eng.run()
    assert PASSWORD not in caplog.text
    assert ("with result '{'password': '***', 'user': 'bob', 'pair': ('x', {'password':"
            " '***'})}'") in caplog.text
    assert 'RuntimeError: refused ***' in caplog.text
    assert "'requires': {'password': '***'}" in caplog.text


def test_capture_listener_records_masked_results():
    secrets.mask_keys('password')
    eng = login_engine()
    with capturing.CaptureListener(eng, capture_flow=False) as listener:
        with pytest.raises(RuntimeError) as raised:
            eng.run()
    results = {(name, state): d.get('result') for _kind, state, d in listener.values
               for name in [d['task_name']]}
    assert results[('login', 'SUCCESS')] == {'password': '***', 'user': 'bob',
                                             'pair': ('x', {'password': '***'})}
    captured = results[('refuse', 'FAILURE')]
    assert str(captured) == 'Failure: RuntimeError: refused ***'
    assert captured.exception is raised.value   # still the live failure underneath
    # Tasks still get the real values (the one that failed quoted it).
    assert str(raised.value) == 'refused %s-stored' % PASSWORD


def test_capture_listener_records_the_objects_themselves_without_masking():
    eng = login_engine()
    with capturing.CaptureListener(eng, capture_flow=False) as listener:
        with pytest.raises(RuntimeError):
            eng.run()
    [result] = [d['result'] for _k, state, d in listener.values
                if state == 'SUCCESS' and d['task_name'] == 'login']
    assert result['password'] == PASSWORD + '-stored'


def test_a_result_quoting_a_masked_input_is_scrubbed(capsys):
    # The value was never under a masked key in any result: the listener
    # learned it from the flow's inputs when it was registered.
    class Greet(task.Task):
        def execute(self, password):
            return 'logged in with %s' % password

    secrets.mask_keys('password')
    eng = load(lf.Flow('f').add(Greet('greet')), store={'password': PASSWORD + '-greet'})
    with printing.PrintingListener(eng):
        eng.run()
    out = capsys.readouterr().out
    assert "with result 'logged in with ***' (failure=False)" in out
    assert PASSWORD not in out
