"""taskflow.types.failure.Failure (strings observed on the reference 6.5.0)."""

import copy
import gc
import os
import pickle
import sys
import traceback
import weakref

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow import exceptions as exc
from taskflow.types import failure

Failure = failure.Failure


class AppError(ValueError):
    pass


def _capture(error):
    try:
        raise error
    except BaseException:
        return Failure()


def _capture_elsewhere(error):
    try:
        raise error
    except BaseException:
        return Failure()


def _chained():
    try:
        try:
            try:
                raise KeyError('k')
            except KeyError as k:
                raise IOError('io') from k
        except IOError:
            raise RuntimeError('rt')
    except RuntimeError:
        return Failure()


# -- construction -----------------------------------------------------------

def test_live_failure_captures_current_exception():
    error = AppError('bad value', 42)
    f = _capture(error)
    assert f.exception is error
    assert f.exc_info[0] is AppError
    assert f.exc_info[1] is error
    assert f.exc_info[2] is error.__traceback__
    assert f.exception_str == "('bad value', 42)"
    assert f.exception_args == ('bad value', 42)
    assert list(f) == ['%s.AppError' % AppError.__module__, 'ValueError',
                       'Exception']
    assert f.exc_type_names == tuple(f)


def test_traceback_str_is_formatted_frames():
    f = _capture(ValueError('v'))
    tb = f.exc_info[2]
    assert f.traceback_str == ''.join(traceback.format_tb(tb))
    assert 'in _capture' in f.traceback_str
    assert not f.traceback_str.startswith('Traceback')


@pytest.mark.parametrize('error, names', [
    (IOError('i'), ['OSError', 'Exception']),
    (KeyError('k'), ['KeyError', 'LookupError', 'Exception']),
    (exc.NotFound('n'), ['taskflow.exceptions.NotFound',
                         'taskflow.exceptions.TaskFlowException', 'Exception']),
])
def test_exc_type_names(error, names):
    assert list(_capture(error)) == names


def test_exc_type_names_use_class_name_not_qualname():
    class Outer:
        class Inner(Exception):
            pass

    f = Failure.from_exception(Outer.Inner('x'))
    assert list(f) == ['%s.Inner' % Outer.__module__, 'Exception']


@pytest.mark.parametrize('bad', [(), (1, 2), (1, 2, 3, 4)])
def test_exc_info_must_have_three_elements(bad):
    with pytest.raises(ValueError) as info:
        Failure(exc_info=bad)
    assert str(info.value) == "Provided 'exc_info' must contain three elements"


def test_no_active_exception():
    assert sys.exc_info() == (None, None, None)
    with pytest.raises(TypeError) as info:
        Failure()
    assert str(info.value) == "Invalid exception type 'None' (<class 'NoneType'>)"


def test_base_exceptions_are_refused():
    with pytest.raises(TypeError) as info:
        _capture(KeyboardInterrupt())
    assert str(info.value) == ("Invalid exception type '<class"
                               " 'KeyboardInterrupt'>' (<class 'type'>)")
    with pytest.raises(TypeError) as info:
        Failure(exc_info='abc')
    assert str(info.value) == "Invalid exception type 'a' (<class 'str'>)"


def test_exc_info_without_traceback():
    f = Failure(exc_info=(ValueError, ValueError('x'), None))
    assert f.traceback_str == ''
    assert f.exc_info == (ValueError, f.exception, None)


def test_data_mode_defaults():
    f = Failure(exception_str='x')
    assert str(f) == 'Failure: x'
    assert list(f) == []
    assert f.traceback_str is None
    assert f.exception_args == ()
    assert f.causes == ()
    assert f.exc_info is None
    assert f.exception is None
    assert f.to_dict() == {'exception_str': 'x', 'traceback_str': None,
                           'exc_type_names': [], 'version': 1,
                           'exc_args': (), 'causes': []}


def test_data_mode_normalises_sequences():
    f = Failure(exception_str='x', exc_type_names=('A', 'Exception'),
                exc_args=['a'])
    assert list(f) == ['A', 'Exception']
    assert f.exception_args == ('a',)
    assert f.to_dict()['exc_type_names'] == ['A', 'Exception']


def test_data_mode_errors():
    with pytest.raises(KeyError) as info:
        Failure(foo=1)
    assert info.value.args == ('exception_str',)
    with pytest.raises(TypeError) as info:
        Failure(exception_str='x', foo=1, bar=2)
    assert str(info.value) == ('Failure.__init__ got unexpected keyword'
                               ' argument(s): foo, bar')


def test_data_mode_keeps_given_exc_info():
    value = ValueError('q')
    f = Failure(exc_info=(ValueError, value, None), exception_str='zzz')
    assert str(f) == 'Failure: zzz'
    assert f.exception is value
    assert list(f) == []


def test_from_exception():
    error = KeyError('k')
    f = Failure.from_exception(error)
    assert str(f) == "Failure: KeyError: 'k'"
    assert f.exception_str == "'k'"
    assert f.traceback_str == ''
    raised = _capture(ValueError('v'))
    again = Failure.from_exception(raised.exception)
    assert again == raised


# -- causes -----------------------------------------------------------------

def test_causes_follow_the_chain():
    f = _chained()
    assert [str(c) for c in f.causes] == ['Failure: OSError: io',
                                          "Failure: KeyError: 'k'"]
    assert [str(c) for c in f.causes[0].causes] == ["Failure: KeyError: 'k'"]
    assert f.causes[1].causes == ()
    assert f.causes[0].exc_info is not None
    assert 'raise IOError' in f.causes[0].traceback_str


def test_causes_honour_suppress_context():
    try:
        try:
            raise KeyError('k')
        except KeyError:
            raise IOError('io') from None
    except IOError:
        f = Failure()
    assert f.causes == ()
    err = ValueError('a')
    err.__context__ = KeyError('b')
    assert [str(c) for c in Failure.from_exception(err).causes] == [
        "Failure: KeyError: 'b'"]


def test_causes_stop_at_cycles_and_base_exceptions():
    x, y = ValueError('a'), KeyError('b')
    x.__cause__, y.__cause__ = y, x
    f = Failure.from_exception(x)
    assert [str(c) for c in f.causes] == ["Failure: KeyError: 'b'"]
    z = ValueError('z')
    z.__context__ = KeyboardInterrupt()
    assert Failure.from_exception(z).causes == ()


def test_to_dict_nests_causes_and_always_keeps_their_args():
    d = _chained().to_dict(include_args=False)
    assert d['exc_args'] == ()
    assert [c['exception_str'] for c in d['causes']] == ['io', "'k'"]
    assert d['causes'][0]['exc_args'] == ('io',)
    assert d['causes'][0]['causes'][0]['exc_type_names'] == [
        'KeyError', 'LookupError', 'Exception']


# -- strings ------------------------------------------------------------------

def test_str_and_pformat():
    f = _capture(AppError('bad value', 42))
    assert str(f) == f.pformat() == (
        "Failure: %s.AppError: ('bad value', 42)" % AppError.__module__)
    lines = f.pformat(traceback=True).split(os.linesep)
    assert lines[0] == str(f)
    assert lines[1] == 'Traceback (most recent call last):'
    assert os.linesep.join(lines[2:]) == f.traceback_str.rstrip()
    assert str(_capture(ValueError())) == 'Failure: ValueError: '
    assert repr(f).startswith('<taskflow.types.failure.Failure object at 0x')


@pytest.mark.parametrize('tb', [None, '', '  \n'])
def test_pformat_without_traceback_text(tb):
    f = Failure(exception_str='x', exc_type_names=['A'], traceback_str=tb)
    assert f.pformat(traceback=True) == 'Failure: A: x\nTraceback not available.'


def test_pformat_strips_traceback_text():
    f = Failure(exception_str='x', exc_type_names=['A'],
                traceback_str='  tb\n\n  ')
    assert f.pformat(traceback=True) == (
        'Failure: A: x\nTraceback (most recent call last):\n  tb')


# -- check / matches / equality -----------------------------------------------

def test_check():
    f = _capture(AppError('a'))
    assert f.check(AppError) is AppError
    qualified = '%s.AppError' % AppError.__module__
    assert f.check(qualified) == qualified
    assert f.check('AppError') is None
    assert f.check(Exception) is Exception
    assert f.check(BaseException) is None
    assert f.check('ValueError', AppError) == 'ValueError'
    assert f.check() is None
    assert f.check(5, AppError('a')) is None


def test_equality_and_matches():
    error = ValueError('v')
    f = _capture(error)
    same_place = _capture(ValueError('v'))
    elsewhere = _capture_elsewhere(ValueError('v'))
    assert f == same_place and f.matches(same_place)
    assert f != elsewhere and not f.matches(elsewhere)
    assert f.__eq__(1) is NotImplemented
    assert f != 'x'
    with pytest.raises(TypeError):
        hash(f)


def test_equality_compares_exception_repr():
    class R(Exception):
        count = 0

        def __repr__(self):
            R.count += 1
            return 'R%d' % R.count

    assert _capture(R('x')) != _capture(R('x'))


def test_matches_ignores_missing_exc_info():
    f = _capture(ValueError('v'))
    d = Failure.from_dict(f.to_dict())
    assert d != f and f != d
    assert d.matches(f) and f.matches(d)
    assert d == Failure.from_dict(f.to_dict())
    assert not f.matches(_capture(ValueError('w')))
    assert not f.matches('Failure: ValueError: v')


def test_matches_compares_causes_with_equality():
    f = _chained()
    d = Failure.from_dict(f.to_dict())
    # Reference quirk: the causes are compared with ==, and live causes are
    # never equal to deserialised ones.
    assert not f.matches(d)
    assert d.matches(Failure.from_dict(f.to_dict()))


def test_data_failures_compare_args_and_traceback():
    a = Failure(exception_str='x', exc_type_names=['A'], exc_args=(1,),
                traceback_str='')
    assert a != Failure(exception_str='x', exc_type_names=['A'],
                        exc_args=(2,), traceback_str='')
    assert a != Failure(exception_str='x', exc_type_names=['A'],
                        exc_args=(1,), traceback_str=None)
    assert a == Failure(exception_str='x', exc_type_names=('A',),
                        exc_args=[1], traceback_str='')


# -- copy / reraise ---------------------------------------------------------------

def test_copy():
    error = ValueError('v')
    f = _capture(error)
    c = f.copy()
    assert c == f and f == c
    assert c.exception is not error
    assert c.exc_info[2] is f.exc_info[2]
    chained = _chained()
    assert chained.copy() == chained


def test_reraise_live_gives_back_original():
    error = AppError('bad')
    f = _capture(error)
    with pytest.raises(AppError) as info:
        f.reraise()
    assert info.value is error
    names = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert names[-2:] == ['reraise', '_capture']


def test_reraise_data_mode_wraps():
    d = Failure(exception_str='x', exc_type_names=['ValueError', 'Exception'])
    with pytest.raises(exc.WrappedFailure) as info:
        d.reraise()
    assert list(info.value) == [d]
    assert str(info.value) == 'WrappedFailure: [Failure: ValueError: x]'


def test_reraise_if_any():
    assert Failure.reraise_if_any([]) is None
    assert Failure.reraise_if_any(()) is None
    f = _capture(ValueError('v'))
    with pytest.raises(ValueError) as info:
        Failure.reraise_if_any([f])
    assert info.value is f.exception
    d = Failure(exception_str='x', exc_type_names=['ValueError', 'Exception'])
    with pytest.raises(exc.WrappedFailure) as info:
        Failure.reraise_if_any(iter([f, d]))
    assert len(info.value) == 2
    assert str(info.value) == ('WrappedFailure: [Failure: ValueError: v,'
                               ' Failure: ValueError: x]')


# -- serialisation ----------------------------------------------------------------

def test_to_dict_layout():
    f = _capture(AppError('bad value', 42))
    d = f.to_dict()
    assert list(d) == ['exception_str', 'traceback_str', 'exc_type_names',
                       'version', 'exc_args', 'causes']
    assert d['exc_args'] == ('bad value', 42)
    assert d['version'] == Failure.DICT_VERSION == 1
    assert f.to_dict(include_args=False)['exc_args'] == ()


def test_from_dict_round_trip():
    f = _capture(AppError('bad value', 42))
    g = Failure.from_dict(f.to_dict())
    assert str(g) == str(f)
    assert g.exception is None and g.exc_info is None
    assert g.traceback_str == f.traceback_str
    assert g.to_dict() == f.to_dict()


@pytest.mark.parametrize('version', [2, None, 'missing'])
def test_from_dict_bad_version(version):
    d = {'exception_str': 'x', 'traceback_str': '', 'exc_type_names': ['A']}
    if version != 'missing':
        d['version'] = version
    expected = version if version != 'missing' else None
    with pytest.raises(ValueError) as info:
        Failure.from_dict(d)
    assert str(info.value) == 'Invalid dict version of failure object: %r' % (
        expected,)


def test_from_dict_nested_errors():
    with pytest.raises(ValueError) as info:
        Failure.from_dict({'exception_str': 'x', 'version': 1,
                           'causes': [{'exception_str': 'c', 'version': 7}]})
    assert str(info.value) == 'Invalid dict version of failure object: 7'
    with pytest.raises(TypeError) as info:
        Failure.from_dict({'exception_str': 'x', 'version': 1, 'extra': 1})
    assert str(info.value) == ('Failure.__init__ got unexpected keyword'
                               ' argument(s): extra')


def test_pickle_keeps_type_and_value_but_not_traceback():
    f = _capture(AppError('bad value', 42))
    p = pickle.loads(pickle.dumps(f))
    assert str(p) == str(f)
    assert repr(p.exception) == "AppError('bad value', 42)"
    assert p.exc_info[0] is AppError and p.exc_info[2] is None
    assert p.traceback_str == f.traceback_str
    assert p != f  # the live traceback is gone
    assert copy.copy(f) != f


def test_pickle_keeps_causes_as_data():
    f = _chained()
    p = pickle.loads(pickle.dumps(f))
    assert [str(c) for c in p.causes] == [str(c) for c in f.causes]
    assert p.causes[0].exc_info is None


def test_pickle_data_mode_is_equal():
    d = Failure(exception_str='x', exc_type_names=['A', 'Exception'],
                traceback_str='tb', exc_args=(1,))
    assert pickle.loads(pickle.dumps(d)) == d


# -- validate ---------------------------------------------------------------------

GOOD = {'exception_str': 'x', 'traceback_str': '',
        'exc_type_names': ['A', 'Exception']}


@pytest.mark.parametrize('data', [
    GOOD,
    dict(GOOD, exc_type_names=['A', 'BaseException']),
    dict(GOOD, exc_type_names=('Exception',)),
    dict(GOOD, version=1.0),
    dict(GOOD, exc_args=(1,)),
    dict(GOOD, causes=[GOOD]),
    dict(GOOD, causes=(GOOD,)),
])
def test_validate_accepts(data):
    assert Failure.validate(data) is None


@pytest.mark.parametrize('data, problem', [
    (dict(GOOD, exc_type_names=[]), '[] should be non-empty'),
    (dict(GOOD, traceback_str=None), "None is not of type 'string'"),
    (dict(GOOD, exception_str=1), "1 is not of type 'string'"),
    ({'traceback_str': '', 'exc_type_names': ['Exception']},
     "'exception_str' is a required property"),
    ({'exception_str': 'x', 'exc_type_names': ['Exception']},
     "'traceback_str' is a required property"),
    (dict(GOOD, version=-1), '-1 is less than the minimum of 0'),
    (dict(GOOD, version='a'), "'a' is not of type 'integer'"),
    (dict(GOOD, version=True), "True is not of type 'integer'"),
    (dict(GOOD, exc_args='ab'), "'ab' is not of type 'array'"),
    (dict(GOOD, exc_type_names=[1, 'Exception']), "1 is not of type 'string'"),
    (dict(GOOD, causes=[{'exception_str': 'x'}]),
     "'traceback_str' is a required property"),
    (dict(GOOD, causes='abc'), "'abc' is not of type 'array'"),
    (['not', 'a dict'], "['not', 'a dict'] is not of type 'object'"),
    (None, "None is not of type 'object'"),
])
def test_validate_schema_problems(data, problem):
    with pytest.raises(exc.InvalidFormat) as info:
        Failure.validate(data)
    assert str(info.value) == 'Failure data not of the expected format: ' + problem


@pytest.mark.parametrize('data, culprit', [
    (dict(GOOD, exc_type_names=['A']), 'A'),
    (dict(GOOD, causes=[dict(GOOD, exc_type_names=['A'])]), 'A'),
    (dict(GOOD, causes=[dict(GOOD, causes=[dict(GOOD, exc_type_names=['Q'])])]),
     'Q'),
])
def test_validate_root_exception_type(data, culprit):
    with pytest.raises(exc.InvalidFormat) as info:
        Failure.validate(data)
    assert str(info.value) == (
        "Failure data 'exc_type_names' must have an initial exception type"
        " that is one of ('BaseException', 'Exception') types: '%s' is not"
        " one of those types" % culprit)


def test_validate_accepts_real_failures():
    Failure.validate(_chained().to_dict())


def test_class_constants():
    assert Failure.BASE_EXCEPTIONS == ('BaseException', 'Exception')
    assert Failure.SCHEMA['definitions']['cause']['required'] == [
        'exception_str', 'traceback_str', 'exc_type_names']


# -- cost and lifetime ------------------------------------------------------------

def test_traceback_is_formatted_lazily(monkeypatch):
    calls = []
    real = traceback.format_tb
    monkeypatch.setattr(failure.traceback, 'format_tb',
                        lambda tb: calls.append(tb) or real(tb))
    f = _capture(ValueError('v'))
    str(f)
    f.pformat()
    f.exception_str
    assert calls == []
    assert 'in _capture' in f.traceback_str
    f.traceback_str
    assert len(calls) == 1


def test_failure_releases_frames_when_dropped():
    class Marker:
        pass

    def fail():
        marker = Marker()  # noqa: F841 - kept alive by the frame
        raise ValueError('v')

    def capture():
        try:
            fail()
        except ValueError:
            return Failure()

    f = capture()
    marker_ref = weakref.ref(f.exc_info[2].tb_next.tb_frame.f_locals['marker'])
    f.traceback_str  # formatting must not pin the frames either
    assert marker_ref() is not None
    del f
    gc.collect()
    assert marker_ref() is None


# -- properties ---------------------------------------------------------------------

names = st.text(alphabet='abcdefghijklmnopqrstuvwxyz._', min_size=1, max_size=12)
scalars = st.one_of(st.integers(), st.text(max_size=10), st.none(),
                    st.booleans(), st.floats(allow_nan=False))


def _failure_dicts(depth):
    leaf = st.fixed_dictionaries({
        'exception_str': st.text(max_size=20),
        'traceback_str': st.one_of(st.none(), st.text(max_size=40)),
        'exc_type_names': st.lists(names, max_size=3).map(
            lambda ns: ns + ['Exception']),
        'version': st.just(1),
        'exc_args': st.lists(scalars, max_size=3).map(tuple),
    })
    if depth == 0:
        return leaf.map(lambda d: dict(d, causes=[]))
    return st.tuples(leaf, st.lists(_failure_dicts(depth - 1), max_size=2)).map(
        lambda t: dict(t[0], causes=t[1]))


def _all_tracebacks_are_text(data):
    return (data['traceback_str'] is not None
            and all(_all_tracebacks_are_text(c) for c in data['causes']))


@given(_failure_dicts(2))
def test_property_dict_round_trip(data):
    f = Failure.from_dict(data)
    assert f.to_dict() == data
    assert Failure.from_dict(f.to_dict()) == f
    assert pickle.loads(pickle.dumps(f)) == f
    assert f.copy() == f
    if _all_tracebacks_are_text(data):
        Failure.validate(data)


@given(st.text(max_size=30), st.lists(scalars, max_size=3))
def test_property_live_failure_round_trip(message, args):
    error = ValueError(message, *args) if args else ValueError(message)
    f = _capture(error)
    d = Failure.from_dict(f.to_dict())
    assert d.matches(f) and f.matches(d)
    assert str(d) == str(f) == 'Failure: ValueError: %s' % (error,)
    Failure.validate(f.to_dict())
