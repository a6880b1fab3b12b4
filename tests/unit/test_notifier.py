"""taskflow.types.notifier (messages observed on the reference 6.5.0)."""

import logging
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow.types import notifier as nm

Notifier = nm.Notifier


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, event_type, *args, details=None, **kwargs):
        self.calls.append((event_type, args, details, kwargs))


def test_constants():
    assert Notifier.ANY == '*'
    assert Notifier.RESERVED_KEYS == ('details',)


def test_register_errors_in_order():
    n = Notifier()
    with pytest.raises(ValueError) as info:
        n.register('x', 5, details_filter=5)
    assert str(info.value) == 'Event callback must be callable'
    with pytest.raises(ValueError) as info:
        n.register('x', Recorder(), details_filter=5)
    assert str(info.value) == 'Details filter must be callable'
    cb = Recorder()
    n.register('x', cb)
    with pytest.raises(ValueError) as info:
        n.register('x', cb, kwargs={'details': 1})
    assert str(info.value) == ('Event callback already registered with'
                               ' equivalent details filter')
    with pytest.raises(KeyError) as info:
        n.register('y', cb, kwargs={'details': 1})
    assert info.value.args == ("Reserved key 'details' not allowed in kwargs",)
    assert len(n) == 1


def test_callbacks_get_args_kwargs_and_a_copy_of_details():
    n = Notifier()
    cb = Recorder()
    n.register('y', cb, args=[1, 2], kwargs={'a': 3})
    details = {'k': 1}
    n.notify('y', details)
    assert cb.calls == [('y', (1, 2), {'k': 1}, {'a': 3})]
    assert cb.calls[0][2] is not details


def test_listener_passes_kwargs_before_details():
    # The reference calls callback(event_type, *args, **kwargs, details=...):
    # argument errors name the same keyword, and 'details' always wins.
    seen = []

    def spy(*args, **kwargs):
        seen.append((args, list(kwargs.items())))

    nm.Listener(spy, args=(1,), kwargs={'q': 2, 'details': 'x', 'a': 3})('evt', {'d': 1})
    assert seen == [(('evt', 1), [('q', 2), ('details', {'d': 1}), ('a', 3)])]

    def on_event(event_type, details):
        pass

    with pytest.raises(TypeError, match="unexpected keyword argument 'q'"):
        nm.Listener(on_event, args=(1,), kwargs={'q': 2})('evt', {})
    with pytest.raises(TypeError, match="multiple values for argument 'details'"):
        nm.Listener(on_event, args=(1,))('evt', {})


def test_plain_two_argument_callbacks_work():
    seen = []

    def on_event(state, details):
        seen.append((state, details))

    n = Notifier()
    n.register('SUCCESS', on_event)
    n.notify('SUCCESS', {'task_name': 't'})
    assert seen == [('SUCCESS', {'task_name': 't'})]


@pytest.mark.parametrize('details', [None, {}])
def test_empty_details_become_empty_dict(details):
    n = Notifier()
    cb = Recorder()
    n.register('y', cb)
    n.notify('y', details)
    assert cb.calls == [('y', (), {}, {})]


def test_any_listeners_are_called_first_then_in_registration_order():
    order = []
    n = Notifier()
    n.register('e', lambda e, details: order.append('e1'))
    n.register(Notifier.ANY, lambda e, details: order.append('any'))
    n.register('e', lambda e, details: order.append('e2'))
    n.notify('e', {})
    assert order == ['any', 'e1', 'e2']
    order.clear()
    n.notify('other', {})
    assert order == ['any']


def test_any_can_not_be_notified(caplog):
    n = Notifier()
    cb = Recorder()
    n.register(Notifier.ANY, cb)
    with caplog.at_level(logging.DEBUG, logger='taskflow.types.notifier'):
        n.notify(Notifier.ANY, {'k': 2})
    assert cb.calls == []
    assert ("Event type '*' is not allowed to trigger notifications"
            in caplog.messages)
    assert n.can_trigger_notification('*') is False
    assert n.can_trigger_notification('x') is True
    assert n.can_be_registered('*') is True


def test_details_filter():
    n = Notifier()
    cb = Recorder()
    n.register('y', cb, details_filter=lambda d: d.get('ok'))
    n.notify('y', {'ok': False})
    n.notify('y', {'ok': True})
    assert cb.calls == [('y', (), {'ok': True}, {})]


def test_filter_sees_the_same_copy_as_the_callback():
    def marking_filter(details):
        details['filtered'] = True
        return True

    n = Notifier()
    cb = Recorder()
    n.register('y', cb, details_filter=marking_filter)
    original = {'y': 1}
    n.notify('y', original)
    assert cb.calls[0][2] == {'y': 1, 'filtered': True}
    assert original == {'y': 1}


def test_failing_callbacks_are_logged_and_do_not_stop_others(caplog):
    def bad(event_type, details):
        raise RuntimeError('boom')

    n = Notifier()
    good = Recorder()
    n.register(Notifier.ANY, bad)
    n.register('q', good)
    with caplog.at_level(logging.WARNING, logger='taskflow.types.notifier'):
        n.notify('q', {'a': 1})
    assert good.calls == [('q', (), {'a': 1}, {})]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith('Failure calling listener <Listener')
    assert record.getMessage().endswith("to notify about event q, details: {'a': 1}")
    assert record.exc_info[0] is RuntimeError


def test_is_registered_deregister_and_len():
    n = Notifier()
    cb, other = Recorder(), Recorder()

    def flt(d):
        return True

    n.register('y', cb)
    n.register('y', cb, details_filter=flt)
    n.register('z', other)
    assert len(n) == 3
    assert n.is_registered('y', cb)
    assert n.is_registered('y', cb, details_filter=flt)
    assert not n.is_registered('y', other)
    assert not n.is_registered('nope', cb)
    assert n.deregister('y', cb, details_filter=flt) is True
    assert n.is_registered('y', cb)
    assert not n.is_registered('y', cb, details_filter=flt)
    assert n.deregister('y', cb, details_filter=flt) is False
    assert n.deregister('nope', cb) is False
    assert n.deregister_event('y') == 1
    assert n.deregister_event('y') == 0
    assert len(n) == 1


def test_bound_methods_compare_by_object():
    class Obj:
        def method(self, event_type, details):
            pass

    obj = Obj()
    n = Notifier()
    n.register('e', obj.method)
    assert n.is_registered('e', obj.method)
    assert not n.is_registered('e', Obj().method)
    assert n.deregister('e', obj.method)


def test_reset_and_copy():
    n = Notifier()
    n.register('a', Recorder())
    n.register(Notifier.ANY, Recorder())
    c = n.copy()
    assert c is not n and type(c) is Notifier
    assert [(e, len(ls)) for e, ls in c.listeners_iter()] == [('a', 1), ('*', 1)]
    n.reset()
    assert len(n) == 0 and len(c) == 2
    assert list(n.listeners_iter()) == []


def test_listeners_iter():
    n = Notifier()
    cb = Recorder()
    n.register('a', cb)
    n.register('a', Recorder())
    items = list(n.listeners_iter())
    assert [e for e, _ in items] == ['a']
    assert isinstance(items[0][1], list)
    assert items[0][1][0].callback is cb
    n.deregister('a', cb)
    n.deregister_event('a')
    assert list(n.listeners_iter()) == []


def test_has_listeners():
    n = Notifier()
    cb = Recorder()
    assert not n.has_listeners('SUCCESS')
    n.register('SUCCESS', cb)
    assert n.has_listeners('SUCCESS')
    assert not n.has_listeners('FAILURE')
    n.register(Notifier.ANY, cb)
    assert n.has_listeners('FAILURE')
    n.deregister(Notifier.ANY, cb)
    n.deregister('SUCCESS', cb)
    assert not n.has_listeners('SUCCESS')


def test_restricted_notifier():
    r = nm.RestrictedNotifier(['b', 'a', 'b'])
    assert list(r.events_iter()) == ['b', 'a']
    with pytest.raises(ValueError) as info:
        r.register('c', Recorder())
    assert str(info.value) == ("Disallowed event type 'c' can not have a"
                               " callback registered")
    cb = Recorder()
    r.register('*', cb)
    r.register('a', Recorder())
    assert r.can_be_registered('*') and not r.can_trigger_notification('*')
    # Notifying is not restricted: ANY listeners hear other events too.
    r.notify('c', {'x': 1})
    assert cb.calls == [('c', (), {'x': 1}, {})]
    clone = r.copy()
    assert type(clone) is nm.RestrictedNotifier
    assert list(clone.events_iter()) == ['b', 'a'] and len(clone) == 2


def test_restricted_notifier_without_any():
    r = nm.RestrictedNotifier(['a'], allow_any=False)
    with pytest.raises(ValueError) as info:
        r.register('*', Recorder())
    assert str(info.value) == ("Disallowed event type '*' can not have a"
                               " callback registered")


def test_listener_record():
    def cb(event_type, details):
        pass

    def flt(details):
        return True

    listener = nm.Listener(cb, args=[1], kwargs={'a': 1})
    assert listener.args == (1,)
    assert listener.kwargs == {'a': 1}
    assert listener.callback is cb and listener.details_filter is None
    assert repr(listener) == ("<Listener object at 0x%x calling into '%r'>"
                              % (id(listener), cb))
    filtered = nm.Listener(cb, details_filter=flt)
    assert repr(filtered) == ("<Listener object at 0x%x calling into '%r'"
                              " using details filter '%r'>"
                              % (id(filtered), cb, flt))
    assert nm.Listener(cb) == listener  # args do not matter
    assert nm.Listener(cb) != filtered
    assert listener.is_equivalent(cb) and not listener.is_equivalent(flt)
    assert filtered.is_equivalent(cb, flt) and not filtered.is_equivalent(cb)
    assert (listener == 1) is False
    with pytest.raises(TypeError):
        hash(listener)


def test_listener_copies_kwargs_and_passes_details_as_is():
    kwargs = {'a': 1}
    cb = Recorder()
    listener = nm.Listener(cb, args=(9,), kwargs=kwargs)
    kwargs['b'] = 2
    assert listener.kwargs == {'a': 1}
    listener('ev', None)
    assert cb.calls == [('ev', (9,), None, {'a': 1})]


def test_register_deregister_context_manager():
    n = Notifier()
    cb = Recorder()
    with nm.register_deregister(n, 'w', cb) as value:
        assert value is None
        assert n.is_registered('w', cb)
    assert not n.is_registered('w', cb)
    with nm.register_deregister(n, 'w'):
        assert len(n) == 0


def test_concurrent_notify_and_register():
    n = Notifier()
    received = []
    stop = threading.Event()

    def notifier_thread():
        while not stop.is_set():
            n.notify('e', {})

    threads = [threading.Thread(target=notifier_thread) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        callbacks = []
        for i in range(200):
            def cb(event_type, details, i=i):
                received.append(i)
            callbacks.append(cb)
            n.register('e', cb)
        for _ in range(500):  # let the notifying threads run
            if received:
                break
            stop.wait(0.01)
        for cb in callbacks:
            assert n.deregister('e', cb)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(n) == 0 and not n.has_listeners('e')
    assert received


@given(st.lists(st.tuples(st.sampled_from(['reg', 'dereg']),
                          st.sampled_from(['a', 'b', '*']),
                          st.integers(0, 3)), max_size=40))
def test_property_register_deregister_bookkeeping(ops):
    callbacks = [Recorder() for _ in range(4)]
    n = Notifier()
    model = set()
    for op, event, idx in ops:
        cb = callbacks[idx]
        if op == 'reg':
            if (event, idx) in model:
                with pytest.raises(ValueError):
                    n.register(event, cb)
            else:
                n.register(event, cb)
                model.add((event, idx))
        else:
            assert n.deregister(event, cb) == ((event, idx) in model)
            model.discard((event, idx))
    assert len(n) == len(model)
    for event in ('a', 'b', '*'):
        for idx, cb in enumerate(callbacks):
            assert n.is_registered(event, cb) == ((event, idx) in model)
    for event in ('a', 'b'):
        expected = any(e in (event, '*') for e, _ in model)
        assert n.has_listeners(event) == expected
