"""taskflow.exceptions: hierarchy, messages, cause chains, WrappedFailure.

Expected strings were observed on the reference (taskflow 6.5.0).
"""

import builtins
import pickle
import sys

import pytest

from taskflow import exceptions as exc
from taskflow.types import failure


def _failure_of(error):
    try:
        raise error
    except Exception:
        return failure.Failure()


@pytest.mark.parametrize('cls, parent', [
    (exc.StorageFailure, exc.TaskFlowException),
    (exc.ConductorFailure, exc.TaskFlowException),
    (exc.JobFailure, exc.TaskFlowException),
    (exc.UnclaimableJob, exc.JobFailure),
    (exc.ExecutionFailure, exc.TaskFlowException),
    (exc.RequestTimeout, exc.ExecutionFailure),
    (exc.InvalidState, exc.ExecutionFailure),
    (exc.DependencyFailure, exc.TaskFlowException),
    (exc.AmbiguousDependency, exc.DependencyFailure),
    (exc.MissingDependencies, exc.DependencyFailure),
    (exc.CompilationFailure, exc.TaskFlowException),
    (exc.IncompatibleVersion, exc.TaskFlowException),
    (exc.Duplicate, exc.TaskFlowException),
    (exc.NotFound, exc.TaskFlowException),
    (exc.Empty, exc.TaskFlowException),
    (exc.MultipleChoices, exc.TaskFlowException),
    (exc.InvalidFormat, exc.TaskFlowException),
    (exc.DisallowedAccess, exc.TaskFlowException),
    (exc.TaskFlowException, Exception),
])
def test_hierarchy_direct_parent(cls, parent):
    assert cls.__mro__[1] is parent


def test_wrapped_failure_is_not_a_taskflow_exception():
    assert exc.WrappedFailure.__mro__[1:] == Exception.__mro__
    assert not issubclass(exc.WrappedFailure, exc.TaskFlowException)


def test_not_implemented_error_subclasses_builtin():
    assert exc.NotImplementedError is not builtins.NotImplementedError
    assert issubclass(exc.NotImplementedError, builtins.NotImplementedError)
    assert str(exc.NotImplementedError('x')) == 'x'


def test_taskflow_exception_basics():
    e = exc.TaskFlowException('top')
    assert repr(e) == "TaskFlowException('top')"
    assert str(e) == 'top'
    assert e.args == ('top',)
    assert e.cause is None


def test_pformat_walks_cause_chain():
    top = exc.TaskFlowException(
        'top', cause=exc.NotFound('mid', cause=ValueError('low')))
    assert str(top) == 'top\n  NotFound: mid\n    ValueError: low'
    assert top.pformat(indent=4, indent_text='-', show_root_class=True) == (
        'TaskFlowException: top\n----NotFound: mid\n--------ValueError: low')
    assert top.pformat(indent=0) == 'top\nNotFound: mid\nValueError: low'


def test_pformat_negative_indent():
    with pytest.raises(ValueError) as info:
        exc.TaskFlowException('x').pformat(indent=-1)
    assert str(info.value) == (
        "Provided 'indent' must be greater than or equal to zero instead of -1")


def test_pformat_stops_at_non_taskflow_cause():
    low = ValueError('low')
    low.__cause__ = KeyError('lower')
    assert str(exc.TaskFlowException('top', cause=low)) == 'top\n  ValueError: low'
    assert str(exc.TaskFlowException('top', cause=KeyError('k'))) == "top\n  KeyError: 'k'"
    assert str(exc.TaskFlowException('top', cause=KeyError())) == 'top\n  KeyError'


def test_pformat_multiline_parts():
    e = exc.TaskFlowException(
        'a\nb', cause=exc.NotFound('c\nd', cause=ValueError('e\nf')))
    assert str(e) == 'a\nb\n  NotFound: c\nd\n    ValueError: e\nf'


@pytest.mark.skipif(sys.version_info < (3, 11), reason='exception notes')
def test_pformat_includes_exception_notes():
    note = ValueError('n')
    note.add_note('note1')
    assert str(exc.TaskFlowException('top', cause=note)) == (
        'top\n  ValueError: n\n  note1')


def test_pformat_uses_unqualified_class_names():
    class My(exc.NotFound):
        pass

    e = exc.TaskFlowException('top', cause=My('m', cause=KeyError()))
    assert str(e) == 'top\n  My: m\n    KeyError'


def test_pformat_survives_cause_cycles():
    a = exc.NotFound('a')
    b = exc.NotFound('b', cause=a)
    a._cause = b
    assert str(exc.TaskFlowException('top', cause=b)) == (
        'top\n  NotFound: b\n    NotFound: a')


def test_constructor_cause_does_not_chain():
    e = exc.NotFound('mid', cause=ValueError('low'))
    assert e.__cause__ is None


def test_raise_from_alone_does_not_set_cause():
    with pytest.raises(exc.NotFound) as info:
        try:
            raise ValueError('inner')
        except ValueError as inner:
            raise exc.NotFound('outer') from inner
    assert info.value.cause is None
    assert str(info.value) == 'outer'


def test_raise_with_cause_uses_active_exception():
    with pytest.raises(exc.StorageFailure) as info:
        try:
            raise ValueError('inner')
        except ValueError:
            exc.raise_with_cause(exc.StorageFailure, 'saving failed')
    e = info.value
    assert repr(e.cause) == "ValueError('inner')"
    assert e.__cause__ is e.cause
    assert str(e) == 'saving failed\n  ValueError: inner'


def test_raise_with_cause_without_active_exception():
    with pytest.raises(exc.StorageFailure) as info:
        exc.raise_with_cause(exc.StorageFailure, 'no active')
    assert info.value.cause is None
    assert info.value.__cause__ is None


def test_raise_with_cause_explicit_cause_wins():
    explicit = KeyError('explicit')
    with pytest.raises(exc.StorageFailure) as info:
        try:
            raise ValueError('inner')
        except ValueError:
            exc.raise_with_cause(exc.StorageFailure, 'msg', cause=explicit)
    assert info.value.cause is explicit
    assert info.value.__cause__ is explicit


def test_raise_with_cause_passes_extra_arguments():
    with pytest.raises(exc.DisallowedAccess) as info:
        try:
            raise ValueError('inner')
        except ValueError:
            exc.raise_with_cause(exc.DisallowedAccess, 'no', state='RUNNING')
    assert info.value.state == 'RUNNING'
    assert repr(info.value) == "DisallowedAccess('no')"


@pytest.mark.parametrize('bad', [ValueError, object, 'NotFound'])
def test_raise_with_cause_requires_taskflow_exception(bad):
    with pytest.raises(ValueError) as info:
        exc.raise_with_cause(bad, 'bad')
    assert str(info.value) == 'Subclass of taskflow exception is required'


def test_missing_dependencies_message():
    e = exc.MissingDependencies('who', ['a', 'b'])
    msg = "'who' requires ['a', 'b'] but no other entity produces said requirements"
    assert str(e) == msg
    assert e.args == (msg,)
    assert e.missing_requirements == ['a', 'b']
    assert exc.MissingDependencies.MESSAGE_TPL == (
        "'%(who)s' requires %(requirements)s but no other entity produces"
        " said requirements")
    assert exc.MissingDependencies.METHOD_TPL == "'%(method)s' method on "


def test_missing_dependencies_with_method_and_cause():
    e = exc.MissingDependencies('who', ['a'], method='execute',
                                cause=ValueError('c'))
    assert str(e) == ("'execute' method on 'who' requires ['a'] but no other"
                      " entity produces said requirements\n  ValueError: c")
    assert str(exc.MissingDependencies('who', ('a',))) == (
        "'who' requires ('a',) but no other entity produces said requirements")


def test_disallowed_access_state():
    e = exc.DisallowedAccess('nope', state='X')
    assert (e.state, str(e), repr(e)) == ('X', 'nope', "DisallowedAccess('nope')")
    assert exc.DisallowedAccess('n').state is None


@pytest.mark.parametrize('error', [
    exc.TaskFlowException('top', cause=exc.NotFound('mid')),
    exc.MissingDependencies('who', ['a'], method='execute'),
    exc.DisallowedAccess('nope', state='X'),
])
def test_exceptions_pickle(error):
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert str(clone) == str(error)
    assert clone.args == error.args
    assert getattr(clone, 'state', None) == getattr(error, 'state', None)


def test_wrapped_failure_basics():
    a = _failure_of(ValueError('left broke'))
    b = _failure_of(KeyError('k'))
    wf = exc.WrappedFailure([a, b])
    assert repr(wf) == 'WrappedFailure()'
    assert wf.args == ()
    assert str(wf) == ("WrappedFailure: [Failure: ValueError: left broke,"
                       " Failure: KeyError: 'k']")
    assert bytes(wf) == str(wf).encode('utf-8')
    assert list(wf) == [a, b]
    assert len(wf) == 2


def test_wrapped_failure_check():
    wf = exc.WrappedFailure([_failure_of(ValueError('v')),
                             _failure_of(KeyError('k'))])
    assert wf.check(ValueError) is ValueError
    assert wf.check('KeyError') == 'KeyError'
    assert wf.check(TypeError) is None
    assert wf.check() is None
    assert wf.check('ValueError', KeyError) == 'ValueError'


def test_wrapped_failure_empty_and_iterable_causes():
    assert str(exc.WrappedFailure([])) == 'WrappedFailure: []'
    assert len(exc.WrappedFailure(iter([_failure_of(ValueError('x'))]))) == 1


def test_wrapped_failure_flattens_live_wrapped_failures():
    a = _failure_of(ValueError('left broke'))
    b = _failure_of(KeyError('k'))
    inner = _failure_of(exc.WrappedFailure([a, b]))
    assert list(inner) == ['taskflow.exceptions.WrappedFailure', 'Exception']
    wf = exc.WrappedFailure([inner, _failure_of(TypeError('t'))])
    assert len(wf) == 3
    assert list(wf)[:2] == [a, b]


def test_wrapped_failure_keeps_deserialised_wrapped_failures():
    inner = _failure_of(exc.WrappedFailure([_failure_of(ValueError('v'))]))
    remote = failure.Failure.from_dict(inner.to_dict())
    wf = exc.WrappedFailure([remote])
    assert list(wf) == [remote]
    assert str(wf) == ('WrappedFailure: [Failure: taskflow.exceptions.WrappedFailure:'
                       ' WrappedFailure: [Failure: ValueError: v]]')


def test_wrapped_failure_str_of_subclass_keeps_name():
    class W2(exc.WrappedFailure):
        pass

    assert str(W2([_failure_of(ValueError('v'))])) == (
        'WrappedFailure: [Failure: ValueError: v]')


def test_wrapped_failure_pickles():
    wf = exc.WrappedFailure([_failure_of(ValueError('v'))])
    clone = pickle.loads(pickle.dumps(wf))
    assert str(clone) == str(wf)
    assert len(clone) == 1
