"""Flow and atom notifications, their detail dicts, and task progress."""

from __future__ import annotations

import threading

import pytest

from taskflow import states
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.types import failure
from taskflow.types import notifier
from tests.engines.helpers import Log, Step, atom_events, events_of, flow_events, real_engine

R, P, S, F = states.RUNNING, states.PENDING, states.SUCCESS, states.FAILURE


def test_flow_details_have_engine_name_uuid_and_old_state_in_order(kind):
    engine = kind.load(lf.Flow('named-flow').add(Step('a', Log())))
    seen = []
    engine.notifier.register(notifier.Notifier.ANY,
                             lambda state, details: seen.append((state, details)))
    engine.run()
    assert [state for state, _details in seen] == [R, S]
    for state, details in seen:
        assert list(details) == ['engine', 'flow_name', 'flow_uuid', 'old_state']
        assert details['engine'] is real_engine(engine)
        assert details['flow_name'] == 'named-flow'
        assert details['flow_uuid'] == engine.storage.flow_uuid
    assert [details['old_state'] for _state, details in seen] == [P, R]


def test_flow_events_when_reverted(kind):
    engine = kind.load(lf.Flow('f').add(Step('a', Log(), fail=ValueError())))
    seen = flow_events(engine)
    with pytest.raises(ValueError):
        engine.run()
    assert seen == [(R, P), (states.REVERTED, R)]


def test_task_details_keys_in_order_with_result_on_finishing_states(kind):
    error = ValueError('b')
    flow = lf.Flow('f').add(Step('a', Log(), result=41), Step('b', Log(), fail=error))
    engine = kind.load(flow)
    seen = []
    engine.atom_notifier.register('*', lambda state, details: seen.append((state, details)))
    with pytest.raises(ValueError):
        engine.run()
    with_result = (S, F, states.REVERTED, states.REVERT_FAILURE)
    for state, details in seen:
        keys = ['task_name', 'task_uuid', 'old_state']
        assert list(details) == (keys + ['result'] if state in with_result else keys)
        assert details['task_uuid'] == engine.storage.get_atom_uuid(details['task_name'])
    results = {(d['task_name'], state): d.get('result') for state, d in seen}
    assert results[('a', S)] == 41
    assert results[('a', states.REVERTED)] is None
    assert isinstance(results[('b', F)], failure.Failure)
    assert results[('b', F)].exception is error


def test_atom_event_sequence_of_a_failing_linear_flow(kind):
    flow = lf.Flow('f').add(Step('a', Log()), Step('b', Log(), fail=ValueError()),
                            Step('c', Log()))
    engine = kind.load(flow)
    seen = atom_events(engine)
    with pytest.raises(ValueError):
        engine.run()
    assert seen == [
        ('a', R, P), ('a', S, R),
        ('b', R, P), ('b', F, R),
        ('b', states.REVERTING, F), ('b', states.REVERTED, states.REVERTING),
        ('a', states.REVERTING, S), ('a', states.REVERTED, states.REVERTING),
    ]


def test_specific_event_listeners_run_after_any_listeners(kind):
    engine = kind.load(Step('a', Log()))
    calls = []
    engine.atom_notifier.register(S, lambda state, details: calls.append('specific'))
    engine.atom_notifier.register('*', lambda state, details: calls.append('any:' + state))
    engine.run()
    assert calls == ['any:RUNNING', 'any:SUCCESS', 'specific']


def test_details_filter_selects_which_events_reach_a_callback(kind):
    flow = lf.Flow('f').add(Step('a', Log()), Step('b', Log()))
    engine = kind.load(flow)
    seen = []
    engine.atom_notifier.register('*', lambda state, details: seen.append(state),
                                  details_filter=lambda d: d['task_name'] == 'b')
    engine.run()
    assert seen == [R, S]


def test_callback_errors_do_not_break_the_run(kind):
    engine = kind.load(lf.Flow('f').add(Step('a', Log()), Step('b', Log())))

    def broken(state, details):
        raise RuntimeError('listener bug')

    engine.notifier.register('*', broken)
    engine.atom_notifier.register('*', broken)
    engine.run()
    assert engine.storage.get_flow_state() == S


def test_callbacks_get_args_and_kwargs(kind):
    engine = kind.load(Step('a', Log()))
    seen = []

    def callback(state, extra, details, tag):
        seen.append((state, extra, tag, details['task_name']))

    engine.atom_notifier.register(S, callback, args=['positional'], kwargs={'tag': 't'})
    engine.run()
    assert seen == [(S, 'positional', 't', 'a')]


def test_callbacks_of_the_same_run_can_deregister_themselves(kind):
    engine = kind.load(lf.Flow('f').add(Step('a', Log()), Step('b', Log())))
    seen = []

    def once(state, details):
        seen.append(details['task_name'])
        engine.atom_notifier.deregister(S, once)

    engine.atom_notifier.register(S, once)
    engine.run()
    assert seen == ['a']


# -- task progress ------------------------------------------------------------


class Progressing(task.Task):
    def execute(self):
        self.update_progress(0.25)
        self.update_progress(0.75)
        return 'done'


def test_progress_events_are_zero_then_own_values_then_one(kind):
    progressing = Progressing(name='p')
    seen = []
    progressing.notifier.register(task.EVENT_UPDATE_PROGRESS,
                                  lambda event, details: seen.append((event, details)))
    engine = kind.load(progressing)
    engine.run()
    assert seen == [('update_progress', {'progress': 0.0}),
                    ('update_progress', {'progress': 0.25}),
                    ('update_progress', {'progress': 0.75}),
                    ('update_progress', {'progress': 1.0})]
    assert engine.storage.get_task_progress('p') == 1.0


def test_progress_is_clamped_and_stored_with_details(kind):
    class Chatty(task.Task):
        def execute(self):
            self.update_progress(5)
            assert engine.storage.get_task_progress('chatty') == 1.0
            self.update_progress(-1)
            assert engine.storage.get_task_progress('chatty') == 0.0
            self.notifier.notify(task.EVENT_UPDATE_PROGRESS,
                                 {'progress': 0.5, 'note': 'halfway'})
            recorded['details'] = engine.storage.get_task_progress_details('chatty')
            recorded['progress'] = engine.storage.get_task_progress('chatty')

    recorded = {}
    engine = kind.load(Chatty(name='chatty'))
    engine.run()
    assert recorded == {'progress': 0.5,
                        'details': {'at_progress': 0.5, 'details': {'note': 'halfway'}}}


def test_stored_progress_is_one_after_a_revert(kind):
    class Half(task.Task):
        def execute(self):
            self.update_progress(0.5)

        def revert(self, result, flow_failures):
            pass

    class Halt(task.Task):
        def execute(self):
            raise ValueError('stop here')

    engine = kind.load(lf.Flow('f').add(Half(name='half'), Halt(name='halt')))
    with pytest.raises(ValueError):
        engine.run()
    # After the revert the engine reported 1.0 again.
    assert engine.storage.get_task_progress('half') == 1.0


def test_progress_around_a_revert(kind):
    class Undo(task.Task):
        def execute(self):
            pass

        def revert(self, result, flow_failures):
            self.update_progress(0.5)

    undo = Undo(name='undo')
    values = []
    undo.notifier.register('*', lambda event, details: values.append(details['progress']))
    with pytest.raises(ValueError):
        kind.run(lf.Flow('f').add(undo, Step('boom', Log(), fail=ValueError())))
    assert values == [0.0, 1.0, 0.0, 0.5, 1.0]


def test_engine_driven_progress_comes_from_the_thread_running_the_engine(kind):
    caller = threading.get_ident()
    threads = []

    class Reporter(task.Task):
        def execute(self):
            self.update_progress(0.5)

    reporter = Reporter(name='reporter')
    reporter.notifier.register('*', lambda event, details: threads.append(
        (details['progress'], threading.get_ident() == caller)))
    kind.run(reporter)
    assert [progress for progress, _ in threads] == [0.0, 0.5, 1.0]
    # Engine-driven progress is reported from the thread that called run()
    # (run_async(): from the engine's own thread, never the caller's loop).
    assert threads[0][1] == threads[-1][1] == (not kind.run_async)


def test_atom_notifier_does_not_get_progress_events(kind):
    engine = kind.load(Progressing(name='p'))
    seen = atom_events(engine)
    engine.run()
    assert events_of(seen, 'p') == [(R, P), (S, R)]
