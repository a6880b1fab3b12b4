"""Persistence models: behaviour observed on the original TaskFlow 6.5.0."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow import exceptions as exc
from taskflow.persistence import models
from taskflow.types import failure


def make_failure(message: str = 'boom') -> failure.Failure:
    try:
        raise ValueError(message)
    except ValueError:
        return failure.Failure()


FAIL = make_failure()


def fields(ad: models.AtomDetail) -> tuple:
    return (ad.state, ad.intention, ad.results, ad.failure, ad.revert_results,
            ad.revert_failure)


def dirty(cls: type) -> models.AtomDetail:
    ad = cls('t', 'u')
    ad.results = 'old' if cls is models.TaskDetail else [('old', {})]
    ad.failure = FAIL
    ad.revert_results = 'oldr'
    ad.revert_failure = FAIL
    return ad


# -- defaults -------------------------------------------------------------------

def test_atom_detail_defaults():
    ad = models.TaskDetail('t', uuid='u-1')
    assert (ad.name, ad.uuid, ad.state, ad.intention, ad.results, ad.failure,
            ad.revert_results, ad.revert_failure, ad.meta, ad.version) == (
        't', 'u-1', None, 'EXECUTE', None, None, None, None, {}, None)
    assert models.RetryDetail('r', 'u-2').results == []
    with pytest.raises(TypeError):
        models.AtomDetail('a', 'b')


def test_logbook_defaults():
    book = models.LogBook('b')
    assert len(book.uuid) == 36
    assert isinstance(book.created_at, datetime.datetime)
    assert book.created_at.tzinfo is None
    assert book.updated_at is None and book.meta == {}
    fd = models.FlowDetail('f', 'fu')
    book.add(fd)
    assert book.updated_at is not None
    assert (len(book), list(book), book.find('fu'), book.find('x')) == (
        1, [fd], fd, None)


# -- put() ------------------------------------------------------------------------

# state -> (results, failure, revert_results, revert_failure) after
# TaskDetail.put(state, 'R') on a detail with every field set (observed).
TASK_PUT = {
    'SUCCESS': ('R', None, None, None),
    'FAILURE': (None, 'R', None, None),
    'REVERTED': ('old', FAIL, 'R', None),
    'REVERT_FAILURE': (None, FAIL, None, 'R'),
    'PENDING': ('old', FAIL, 'oldr', FAIL),
    'RUNNING': ('old', FAIL, 'oldr', FAIL),
    'REVERTING': ('old', FAIL, 'oldr', FAIL),
    'IGNORE': ('old', FAIL, 'oldr', FAIL),
    'RETRYING': ('old', FAIL, 'oldr', FAIL),
}


@pytest.mark.parametrize('state', sorted(TASK_PUT))
def test_task_put_sets_and_clears_fields(state):
    ad = dirty(models.TaskDetail)
    assert ad.put(state, 'R') is True
    assert (ad.results, ad.failure, ad.revert_results,
            ad.revert_failure) == TASK_PUT[state]
    assert (ad.state, ad.intention) == (state, 'EXECUTE')


RETRY_PUT = {
    'SUCCESS': ([('old', {}), ('R', {})], None, None, None),
    'FAILURE': ([('old', {})], 'R', None, None),
    'REVERTED': ([('old', {})], FAIL, 'R', None),
    'REVERT_FAILURE': ([('old', {})], FAIL, None, 'R'),
    'PENDING': ([('old', {})], FAIL, 'oldr', FAIL),
    'RETRYING': ([('old', {})], FAIL, 'oldr', FAIL),
}


@pytest.mark.parametrize('state', sorted(RETRY_PUT))
def test_retry_put_sets_and_clears_fields(state):
    ad = dirty(models.RetryDetail)
    assert ad.put(state, 'R') is True
    assert (ad.results, ad.failure, ad.revert_results,
            ad.revert_failure) == RETRY_PUT[state]


def test_put_reports_changes():
    ad = models.TaskDetail('t', 'u')
    assert ad.put('PENDING', None) is True
    assert ad.put('PENDING', None) is False
    assert ad.put('PENDING', 5) is False and ad.results is None
    assert [ad.put('SUCCESS', 1), ad.put('SUCCESS', 1)] == [True, False]
    # Results compare by identity...
    assert [ad.put('SUCCESS', [1]), ad.put('SUCCESS', [1])] == [True, True]
    # ... failures by value.
    assert [ad.put('FAILURE', FAIL), ad.put('FAILURE', FAIL.copy())] == [
        True, False]
    assert ad.failure is FAIL
    ad.put('SUCCESS', 1)
    ad.failure = FAIL
    assert ad.put('SUCCESS', 1) is True and ad.failure is None
    ad.state = 'X'
    assert ad.put(None, 1) is True and ad.state is None
    retry = models.RetryDetail('r', 'u')
    assert [retry.put('SUCCESS', 1), retry.put('SUCCESS', 1)] == [True, True]
    assert retry.results == [(1, {}), (1, {})]


def test_reset():
    for cls, empty in ((models.TaskDetail, None), (models.RetryDetail, [])):
        ad = dirty(cls)
        ad.state, ad.intention = 'SUCCESS', 'REVERT'
        ad.meta, ad.version = {'x': 1}, '1'
        assert ad.reset('PENDING') is None
        assert fields(ad) == ('PENDING', 'EXECUTE', empty, None, None, None)
        assert (ad.meta, ad.version) == ({'x': 1}, '1')


def test_last_results_and_failures():
    ad = models.TaskDetail('t', 'u')
    ad.put('SUCCESS', 5)
    assert ad.last_results == 5
    retry = models.RetryDetail('r', 'u')
    with pytest.raises(exc.NotFound, match='^Last results not found'):
        retry.last_results
    with pytest.raises(exc.NotFound, match='^Last failures not found'):
        retry.last_failures
    retry.results = [(1, {'a': FAIL}), (2, {'b': FAIL})]
    assert retry.last_results == 2
    assert retry.last_failures == {'b': FAIL}


# -- merge / update / copy ----------------------------------------------------------

def full_task() -> models.TaskDetail:
    ad = models.TaskDetail('t2', 'tu2')
    ad.state, ad.intention = 'SUCCESS', 'REVERT'
    ad.results, ad.failure = {'r': [1]}, FAIL
    ad.revert_results, ad.revert_failure = 'rr', FAIL
    ad.meta, ad.version = {'y': [2]}, '2.0'
    return ad


def test_task_merge_shallow_shares_values():
    a, b = models.TaskDetail('t', 'tu'), full_task()
    a.meta = {'x': [1]}
    assert a.merge(b) is a
    assert (a.name, a.uuid) == ('t', 'tu')
    assert fields(a)[:2] == ('SUCCESS', 'REVERT')
    assert a.results is b.results and a.failure is b.failure
    assert a.meta is b.meta and a.version == '2.0'
    assert a.merge(a) is a


def test_task_merge_deep_copies_meta_and_failures_not_results():
    a, b = models.TaskDetail('t', 'tu'), full_task()
    a.merge(b, deep_copy=True)
    assert a.results is b.results  # as the original
    assert a.revert_results is b.revert_results
    assert a.failure is not b.failure and a.failure == b.failure
    assert a.meta == b.meta and a.meta['y'] is not b.meta['y']


def test_merge_takes_empty_fields_too():
    a = models.TaskDetail('t', 'tu')
    a.state, a.results, a.failure, a.version, a.meta = (
        'RUNNING', 5, FAIL, '1', {'x': 1})
    a.merge(models.TaskDetail('t', 'tu'))
    assert (a.state, a.results, a.failure, a.version, a.meta,
            a.intention) == (None, None, None, None, {}, 'EXECUTE')


def test_merge_keeps_equal_failure_object():
    a = models.TaskDetail('t', 'tu')
    a.failure = FAIL
    b = models.TaskDetail('t', 'tu')
    b.failure = FAIL.copy()
    a.merge(b)
    assert a.failure is FAIL
    c = models.TaskDetail('t', 'tu')
    c.failure = failure.Failure.from_dict(FAIL.to_dict())  # no exc_info
    a.merge(c)
    assert a.failure is c.failure


def test_merge_type_mismatch():
    with pytest.raises(exc.NotImplementedError,
                       match='^Can only merge with other task details$'):
        models.TaskDetail('t', 'u').merge(models.RetryDetail('t', 'u'))
    with pytest.raises(exc.NotImplementedError,
                       match='^Can only merge with other retry details$'):
        models.RetryDetail('t', 'u').merge(models.TaskDetail('t', 'u'))


def test_retry_merge_and_copy():
    r = models.RetryDetail('r', 'ru')
    value = [1]
    r.results = [(value, {'a': FAIL})]
    r.revert_results = [2]
    shallow = models.RetryDetail('r', 'ru').merge(r)
    assert shallow.results[0] is not r.results[0]
    assert shallow.results[0][0] is value
    assert shallow.results[0][1] is not r.results[0][1]
    assert shallow.results[0][1]['a'] is FAIL
    assert shallow.revert_results == [2]
    assert shallow.revert_results is not r.revert_results
    deep = models.RetryDetail('r', 'ru').merge(r, deep_copy=True)
    assert deep.results[0][0] is value
    assert deep.results[0][1]['a'] is not FAIL
    clone = r.copy()
    assert clone is not r and clone.results == r.results
    assert clone.results[0] is not r.results[0]
    assert clone.results[0][1] is not r.results[0][1]


def test_atom_update_shares_everything_but_identity():
    a, b = models.TaskDetail('t', 'tu'), full_task()
    a.update(b)
    assert (a.name, a.uuid) == ('t', 'tu')
    assert a.meta is b.meta and a.results is b.results and a.failure is FAIL
    # update() does not check the detail type.
    models.TaskDetail('t', 'tu').update(models.RetryDetail('t', 'tu'))


def test_task_copy():
    a = full_task()
    clone = a.copy()
    assert clone is not a and clone.results is a.results
    assert clone.meta is not a.meta and clone.meta['y'] is a.meta['y']
    assert clone.failure is a.failure


def test_flow_detail_merge_update_copy():
    t1, t2 = models.TaskDetail('t1', 't1u'), models.TaskDetail('t2', 't2u')
    fa = models.FlowDetail('f', 'fu')
    fa.meta, fa.state = {'a': [1]}, 'X'
    fa.add(t1)
    fb = models.FlowDetail('g', 'gu')
    fb.meta, fb.state = {'b': [1]}, 'Y'
    fb.add(t2)
    assert fa.merge(fb) is fa
    assert (fa.name, fa.uuid, fa.state, fa.meta) == ('f', 'fu', 'Y',
                                                    {'b': [1]})
    assert fa.meta is fb.meta and [ad.name for ad in fa] == ['t1']
    fa.merge(fb, deep_copy=True)
    fc = models.FlowDetail('f', 'fu')
    fc.meta, fc.state = {'a': [1]}, 'Z'
    fc.add(t1)
    assert fc.update(fb) is fc
    assert (fc.state, [ad.name for ad in fc], fc.find('t2u')) == (
        'Y', ['t2'], t2)
    clone = fa.copy()
    assert clone.find('t1u') is t1 and clone.meta is not fa.meta
    assert len(fa.copy(retain_contents=False)) == 0
    fa.add(models.TaskDetail('renamed', 't1u'))
    assert [ad.name for ad in fa] == ['renamed']


def test_logbook_merge_and_copy():
    la, lb = models.LogBook('l', 'lu'), models.LogBook('m', 'mu')
    la.meta, lb.meta = {'a': [1]}, {'b': [1]}
    fd = models.FlowDetail('f', 'fu')
    la.add(fd)
    lb.add(models.FlowDetail('g', 'gu'))
    assert la.merge(lb) is la
    assert (la.name, la.uuid, la.meta) == ('l', 'lu', {'b': [1]})
    assert la.meta is lb.meta
    assert (la.created_at, la.updated_at) == (lb.created_at, lb.updated_at)
    assert [f.name for f in la] == ['f']
    clone = la.copy()
    assert clone.find('fu') is fd and clone.meta is not la.meta
    assert clone.created_at == la.created_at
    assert len(la.copy(retain_contents=False)) == 0
    assert not hasattr(la, 'update')


def test_copies_share_an_empty_meta():
    # As the original: meta is copied only when it holds something.
    for obj in (models.LogBook('l'), models.FlowDetail('f', 'fu'),
                models.TaskDetail('t', 'tu'), models.RetryDetail('r', 'ru')):
        assert obj.copy().meta is obj.meta
        obj.meta['k'] = 1
        assert obj.copy().meta is not obj.meta
    book = models.LogBook('l')
    assert book.copy(retain_contents=False).meta is book.meta


# -- dict forms ----------------------------------------------------------------------

def test_atom_to_dict_keys_and_failures():
    ad = models.TaskDetail('t', 'u')
    ad.put('FAILURE', FAIL)
    data = ad.to_dict()
    assert list(data) == ['failure', 'revert_failure', 'meta', 'name',
                          'results', 'revert_results', 'state', 'version',
                          'intention', 'uuid']
    assert data['failure'] == FAIL.to_dict()
    again = models.TaskDetail.from_dict(data)
    assert again.failure.matches(FAIL) and again.failure.exc_info is None


def test_atom_from_dict_defaults():
    ad = models.TaskDetail.from_dict({'name': 'x', 'uuid': 'y'})
    assert (ad.intention, ad.meta, ad.results) == (None, {}, None)
    assert models.RetryDetail.from_dict({'name': 'x', 'uuid': 'y'}).results \
        == []
    with pytest.raises(KeyError):
        models.TaskDetail.from_dict({'name': 'x'})


def test_retry_results_serialise_as_pairs():
    r = models.RetryDetail('r', 'u')
    r.results = [(1, {'a': FAIL}), (2, {})]
    data = r.to_dict()
    assert data['results'] == [(1, {'a': FAIL.to_dict()}), (2, {})]
    assert r.results[0][1]['a'] is FAIL  # to_dict does not mutate
    back = models.RetryDetail.from_dict(data)
    # NOTE: the original 6.5.0 returns the failure dict as the value of an
    # attempt that has failures; we keep the value (see models.py).
    assert back.results[0][0] == 1 and back.results[1] == (2, {})
    assert back.results[0][1]['a'].matches(FAIL)


def test_logbook_dict_forms():
    book = models.LogBook('b', uuid='bu')
    book.created_at = datetime.datetime(2020, 1, 2, 3, 4, 5)
    book.updated_at = datetime.datetime(2020, 1, 2, 3, 4, 5, 6,
                                        tzinfo=datetime.timezone.utc)
    assert list(book.to_dict()) == ['name', 'meta', 'uuid', 'updated_at',
                                    'created_at']
    data = book.to_dict(marshal_time=True)
    assert data['created_at'] == {'day': 2, 'month': 1, 'year': 2020,
                                  'hour': 3, 'minute': 4, 'second': 5,
                                  'microsecond': 0}
    assert data['updated_at']['tzname'] == 'UTC'
    back = models.LogBook.from_dict(data, unmarshal_time=True)
    assert back.created_at == book.created_at
    assert back.updated_at == book.updated_at
    with pytest.raises(KeyError):
        models.LogBook.from_dict({'name': 'x', 'uuid': 'y'})
    none_meta = models.LogBook.from_dict({'name': 'x', 'uuid': 'y',
                                          'meta': None, 'created_at': None,
                                          'updated_at': None})
    assert none_meta.meta == {}


def test_flow_detail_dict_forms():
    fd = models.FlowDetail('f', 'fu')
    assert fd.to_dict() == {'name': 'f', 'meta': {}, 'state': None,
                            'uuid': 'fu'}
    back = models.FlowDetail.from_dict({'name': 'n', 'uuid': 'u',
                                        'meta': None, 'state': 'X'})
    assert (back.meta, back.state) == ({}, 'X')


def test_atom_type_helpers():
    assert models.ATOM_TYPES == ['RETRY_DETAIL', 'TASK_DETAIL']
    assert models.atom_detail_class('TASK_DETAIL') is models.TaskDetail
    assert models.atom_detail_class('RETRY_DETAIL') is models.RetryDetail
    assert models.atom_detail_type(models.RetryDetail('r', 'u')) == \
        'RETRY_DETAIL'
    with pytest.raises(TypeError, match="^Unknown atom type 'X'$"):
        models.atom_detail_class('X')
    with pytest.raises(TypeError, match="^Unknown atom '"):
        models.atom_detail_type(object())


# -- pformat -------------------------------------------------------------------------

def test_pformat_layout():
    book = models.LogBook('b', uuid='bu')
    book.created_at = datetime.datetime(2020, 1, 2, 3, 4, 5, 123456)
    book.meta = {'m': 1}
    fd = models.FlowDetail('f', 'fu')
    fd.state, fd.meta = 'RUNNING', {'x': 'y'}
    td = models.TaskDetail('t', 'tu')
    td.version, td.results = '1.0', {'a': 1}
    td.meta = {'progress': 0.5, 'other': [1, 2]}
    rd = models.RetryDetail('r', 'ru')
    rd.results, rd.failure = [(2, {})], FAIL
    fd.add(td)
    fd.add(rd)
    book.add(fd)
    book.updated_at = None
    assert book.pformat() .splitlines() == [
        "LogBook: 'b'",
        ' - uuid = bu',
        ' - metadata:',
        '   + m = 1',
        ' - created_at = 2020-01-02T03:04:05.123456',
        " FlowDetail: 'f'",
        '  - uuid = fu',
        '  - state = RUNNING',
        '  - metadata:',
        '    + x = y',
        "  TaskDetail: 't'",
        '   - uuid = tu',
        '   - state = None',
        '   - version = 1.0',
        "   - results = {'a': 1}",
        '   - failure = False',
        '   - metadata:',
        '     + progress = 50.00%',
        '     + other = [1, 2]',
        "  RetryDetail: 'r'",
        '   - uuid = ru',
        '   - state = None',
        '   - version = None',
        '   - results = [(2, {})]',
        '   - failure = True',
    ]
    assert fd.pformat(linesep='|').startswith("FlowDetail: 'f'| - uuid = fu")
    td.results = (1, 2)
    assert '- results = (1, 2)' in td.pformat()
    assert td.pformat(indent=2).startswith("  TaskDetail: 't'\n   - uuid")
    with pytest.raises(ValueError):
        td.pformat(indent=-1)


@pytest.mark.parametrize('version, shown', [
    ((1, 0), '1.0'), ([1, 2, 3], '1.2.3'), (('1', 'a'), '1.a'), ((), ''),
    ('2.1', '2.1'), (None, 'None'), (3, '3'), (1.5, '1.5'),
    ((((1, 2), 3)), '(1, 2).3'),
])
def test_pformat_version(version, shown):
    # Versions print as misc.get_version_string() gives them (observed).
    td = models.TaskDetail('t', 'tu')
    td.version = version
    assert '   - version = %s' % shown in td.pformat(indent=2).splitlines()


# -- properties ------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12)
states = st.sampled_from([None, 'PENDING', 'RUNNING', 'SUCCESS', 'FAILURE',
                          'REVERTING', 'REVERTED', 'REVERT_FAILURE', 'IGNORE',
                          'RETRYING'])
maybe_failure = st.sampled_from([None, FAIL])


@st.composite
def task_details(draw) -> models.TaskDetail:
    ad = models.TaskDetail(draw(st.text(min_size=1, max_size=10)),
                           draw(st.uuids()).hex)
    ad.state = draw(states)
    ad.intention = draw(st.sampled_from(['EXECUTE', 'IGNORE', 'REVERT',
                                         'RETRY']))
    ad.results = draw(json_values)
    ad.failure = draw(maybe_failure)
    ad.revert_results = draw(json_values)
    ad.revert_failure = draw(maybe_failure)
    ad.meta = draw(st.dictionaries(st.text(max_size=5), json_values,
                                   max_size=3))
    ad.version = draw(st.none() | st.text(max_size=5))
    return ad


@st.composite
def retry_details(draw) -> models.RetryDetail:
    ad = models.RetryDetail(draw(st.text(min_size=1, max_size=10)),
                            draw(st.uuids()).hex)
    ad.state = draw(states)
    ad.results = draw(st.lists(st.tuples(
        json_values, st.dictionaries(st.text(max_size=5), st.just(FAIL),
                                     max_size=2)), max_size=4))
    ad.failure = draw(maybe_failure)
    return ad


@given(st.one_of(task_details(), retry_details()))
def test_atom_dict_round_trip(ad):
    back = type(ad).from_dict(ad.to_dict())
    assert back.to_dict() == ad.to_dict()
    assert (back.name, back.uuid) == (ad.name, ad.uuid)


@given(task_details(), task_details(), st.booleans())
def test_task_merge_equals_other_but_identity(target, other, deep):
    name, uuid = target.name, target.uuid
    target.merge(other, deep_copy=deep)
    expected = other.to_dict()
    expected.update(name=name, uuid=uuid)
    assert target.to_dict() == expected


@given(retry_details(), retry_details(), st.booleans())
def test_retry_merge_equals_other_but_identity(target, other, deep):
    name, uuid = target.name, target.uuid
    target.merge(other, deep_copy=deep)
    expected = other.to_dict()
    expected.update(name=name, uuid=uuid)
    assert target.to_dict() == expected


@given(task_details(), states, json_values)
def test_put_twice_with_same_object_is_no_change(ad, state, value):
    ad.put(state, value)
    snapshot = ad.to_dict()
    assert ad.put(state, value) is False
    assert ad.to_dict() == snapshot


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=3),
       st.datetimes(timezones=st.none() | st.just(datetime.timezone.utc)))
def test_logbook_round_trip(meta, when):
    book = models.LogBook('b')
    book.meta = meta
    book.created_at = when
    back = models.LogBook.from_dict(book.to_dict(marshal_time=True),
                                    unmarshal_time=True)
    assert back.to_dict() == book.to_dict()
