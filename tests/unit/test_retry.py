"""Retry controllers on their own: decisions, History, provided values."""

from __future__ import annotations

import pytest

from taskflow import exceptions as exc
from taskflow import retry
from taskflow.types import failure


def _failure(message: str, cls: type = ValueError) -> failure.Failure:
    try:
        raise cls(message)
    except cls:
        return failure.Failure()


def _history(*attempts) -> retry.History:
    return retry.History([(value, dict(failures)) for value, failures in attempts])


def test_decision_values_are_strings():
    assert str(retry.Decision.RETRY) == 'RETRY'
    assert retry.RETRY == 'RETRY' and isinstance(retry.REVERT, str)
    assert '%s|%s' % (retry.REVERT, retry.REVERT_ALL) == 'REVERT|REVERT_ALL'
    assert f'{retry.RETRY}' == 'RETRY'


def test_history_accessors():
    boom = _failure('boom')
    key_error = _failure('k', KeyError)
    history = _history((1, {'a': boom}), (2, {'b': key_error}), (3, {}))
    assert len(history) == 3
    assert history[0] == (1, {'a': boom})
    assert list(history.provided_iter()) == [1, 2, 3]
    assert list(history.outcomes_iter()) == [('a', boom), ('b', key_error)]
    assert list(history.outcomes_iter(1)) == [('b', key_error)]
    assert history.caused_by(KeyError) and not history.caused_by(KeyError, index=0)
    assert not history.caused_by(TypeError)
    own = retry.History([], failure=_failure('own', TypeError))
    assert own.caused_by(TypeError, include_retry=True) and not own.caused_by(TypeError)


def test_times():
    times = retry.Times(2)
    assert times.execute(history=_history()) == 1
    assert times.execute(history=_history((1, {}))) == 2
    assert times.on_failure(history=_history((1, {}))) == retry.RETRY
    assert times.on_failure(history=_history((1, {}), (2, {}))) == retry.REVERT
    assert retry.Times(1, revert_all=True).on_failure(
        history=_history((1, {}))) == retry.REVERT_ALL


def test_for_each_tries_each_value_once_as_a_multiset():
    each = retry.ForEach(['a', 'b', 'a'], name='servers')
    assert each.execute(history=_history()) == 'a'
    assert each.execute(history=_history(('a', {}))) == 'b'
    assert each.execute(history=_history(('a', {}), ('b', {}))) == 'a'
    assert each.on_failure(history=_history(('a', {}), ('b', {}))) == retry.RETRY
    done = _history(('a', {}), ('b', {}), ('a', {}))
    assert each.on_failure(history=done) == retry.REVERT
    with pytest.raises(exc.NotFound) as info:
        each.execute(history=done)
    assert str(info.value) == ('No elements left in collection of iterable retry controller'
                               ' servers')


def test_parameterized_for_each_reads_values_from_arguments():
    each = retry.ParameterizedForEach(rebind={'values': 'servers'}, revert_all=True)
    assert list(each.requires) == ['servers']
    assert each.execute(values=('x', 'y'), history=_history(('x', {}))) == 'y'
    assert each.on_failure(values=('x',), history=_history(('x', {}))) == retry.REVERT_ALL


def test_always_revert_kinds():
    assert retry.AlwaysRevert().on_failure(history=_history()) == retry.REVERT
    assert retry.AlwaysRevertAll().on_failure(history=_history()) == retry.REVERT_ALL
    assert retry.AlwaysRevert().execute(history=_history()) is None


def test_history_is_not_a_requirement_and_names_are_settable():
    r = retry.Times(3, provides='attempt')
    assert list(r.requires) == [] and list(r.provides) == ['attempt']
    assert r.name is None
    r.name = 'mine'
    assert r.name == 'mine'


def test_delay_must_be_a_policy():
    with pytest.raises(TypeError) as info:
        retry.Times(3, name='r', delay=2)
    assert 'delay must be a delay policy' in str(info.value)
    with pytest.raises(TypeError):
        retry.Times(3, None, None, None, True, None, False, None)  # delay is keyword-only
