"""How ``engines.load`` reads ``engine=`` and engine options (as observed on TaskFlow 6.5.0)."""

from __future__ import annotations

import concurrent.futures

import pytest

import taskflow.engines
from taskflow import exceptions as exc
from taskflow import task
from taskflow.engines.action_engine import engine as action_engine


class Noop(task.Task):
    def execute(self):
        return 1


@pytest.mark.parametrize('engine', ['', None, False, 0, (), []])
def test_falsy_engine_means_the_default_serial_engine(engine):
    eng = taskflow.engines.load(Noop('a'), engine=engine)
    assert type(eng) is action_engine.SerialActionEngine
    assert eng.options == {}
    assert taskflow.engines.run(Noop('a', provides='x'), engine=engine) == {'x': 1}


@pytest.mark.parametrize('uri, options', [
    ('serial:', {}),
    ('SERIAL:', {}),
    ('serial:?a=1', {'a': '1'}),
    ('serial:/p?c=3#frag', {'c': '3'}),
    ('serial://u@h', {'username': 'u', 'hostname': 'h'}),
    ('serial://:pw@h:5', {'password': 'pw', 'port': 5, 'hostname': 'h:5'}),
    ('serial://HoSt:0', {'port': 0, 'hostname': 'host:0'}),
    ('serial://[::1]:3', {'port': 3, 'hostname': '::1:3'}),
    ('serial://h?x=1&x=2&y', {'hostname': 'h', 'x': '2'}),
])
def test_anything_with_a_scheme_is_an_engine_uri(uri, options):
    eng = taskflow.engines.load(Noop('a'), engine=uri)
    assert type(eng) is action_engine.SerialActionEngine
    assert eng.options == options


@pytest.mark.parametrize('engine, kind', [
    ('://', '://'),            # no valid scheme: the whole text is the kind
    ('://h', '://h'),
    ('1abc://h', '1abc://h'),
    ('serial?x=1', 'serial?x=1'),
    ('nope://h', 'nope'),
    ('x:/y', 'x'),
])
def test_unknown_engines_are_named_as_parsed(engine, kind):
    with pytest.raises(exc.NotFound) as info:
        taskflow.engines.load(Noop('a'), engine=engine)
    assert str(info.value) == "Could not find engine '%s'" % kind


@pytest.mark.parametrize('workers, error', [
    ('x', "invalid literal for int() with base 10: 'x'"),
    ('2.5', "invalid literal for int() with base 10: '2.5'"),
    ([], "int() argument must be a string, a bytes-like object or a real number, not 'list'"),
])
def test_max_workers_is_converted_with_int_at_load(workers, error):
    with pytest.raises((TypeError, ValueError)) as info:
        taskflow.engines.load(Noop('a'), engine='parallel', max_workers=workers)
    assert str(info.value) == error


@pytest.mark.parametrize('workers', [0, -1, '0', 0.5, False])
def test_max_workers_below_one_fails_when_running(workers):
    eng = taskflow.engines.load(Noop('a'), engine='parallel', max_workers=workers)
    assert eng.options == {'max_workers': workers}
    with pytest.raises(ValueError) as info:
        eng.run()
    assert str(info.value) == 'max_workers must be greater than zero'
    assert eng.storage.get_atom_state('a') == 'PENDING'


def test_max_workers_does_not_apply_to_a_given_executor():
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert taskflow.engines.run(Noop('a', provides='x'), engine='parallel',
                                    executor=pool, max_workers=0) == {'x': 1}


@pytest.mark.parametrize('workers', ['2', 2.5, True])
def test_max_workers_accepts_what_int_accepts(workers):
    assert taskflow.engines.run(Noop('a', provides='x'), engine='parallel',
                                max_workers=workers) == {'x': 1}
