"""The Connection API contract, run against every backend kind.

memory, dir, SQLite (file and in-memory) always run; PostgreSQL and MariaDB
run when their services are up (skipped otherwise, failed under CI=true).
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing
import threading

import pytest

from taskflow import exceptions as exc
from taskflow.persistence import backends
from taskflow.persistence import models
from taskflow.types import failure
from tests.backends.conftest import SHARED_KINDS, kind_params, make_conf

JSON_KINDS = ['dir', 'sqlite-file', 'sqlite-memory', 'postgresql', 'mysql']


def make_failure(message: str = 'boom') -> failure.Failure:
    try:
        raise ValueError(message)
    except ValueError:
        return failure.Failure()


def sample_book(suffix: str = '') -> models.LogBook:
    """A book with one flow holding a failed task, a done task and a retry
    with a history (failures included)."""
    book = models.LogBook('book' + suffix, uuid='book-uuid' + suffix)
    book.meta = {'owner': 'tests', 'n': 1}
    fd = models.FlowDetail('flow' + suffix, uuid='fd-uuid' + suffix)
    fd.state = 'RUNNING'
    fd.meta = {'factory': {'name': 'x.y', 'args': [1], 'kwargs': {}}}
    book.add(fd)
    failed = models.TaskDetail('failed', uuid='ad-failed' + suffix)
    failed.state = 'PENDING'
    failed.put('FAILURE', make_failure('task broke'))
    failed.version = '1.0'
    failed.meta = {'progress': 0.5,
                   'progress_details': {'at_progress': 0.5, 'details': None}}
    done = models.TaskDetail('done', uuid='ad-done' + suffix)
    done.put('SUCCESS', {'answer': 42, 'list': [1, 'two', None], 'f': 1.5})
    done.intention = 'IGNORE'
    retry = models.RetryDetail('retry', uuid='ad-retry' + suffix)
    retry.results = [(1, {'failed': make_failure('attempt 1')}), (2, {})]
    retry.state = 'SUCCESS'
    retry.revert_results = 'undone'
    retry.revert_failure = make_failure('revert broke')
    for ad in (failed, done, retry):
        fd.add(ad)
    return book


def comparable(obj) -> dict:
    """A plain-data view of a model (failures compared as dicts)."""
    if isinstance(obj, models.LogBook):
        data = obj.to_dict()
        data['flows'] = sorted((comparable(fd) for fd in obj),
                               key=lambda d: d['uuid'])
        return data
    if isinstance(obj, models.FlowDetail):
        data = obj.to_dict()
        data['atoms'] = sorted((comparable(ad) for ad in obj),
                               key=lambda d: d['uuid'])
        return data
    data = obj.to_dict()
    data['type'] = models.atom_detail_type(obj)
    if isinstance(obj, models.RetryDetail):
        data['results'] = [list(pair) for pair in data['results']]
    for key in ('failure', 'revert_failure'):
        if data[key] is not None:
            data[key]['exc_args'] = list(data[key]['exc_args'])
    for pair in data['results'] if data['type'] == 'RETRY_DETAIL' else ():
        for fdict in pair[1].values():
            fdict['exc_args'] = list(fdict['exc_args'])
    return data


def same_time(a: datetime.datetime | None, b: datetime.datetime | None,
              kind: str) -> bool:
    if a is None or b is None:
        return a is b
    if kind == 'mysql':  # DATETIME columns keep whole seconds
        return a.replace(microsecond=0) == b.replace(microsecond=0)
    return a == b


# -- save / get ---------------------------------------------------------------

def test_save_and_get_logbook_round_trip(conn, kind):
    book = sample_book()
    assert conn.save_logbook(book) is book
    got = conn.get_logbook(book.uuid)
    expected = comparable(book)
    actual = comparable(got)
    for key in ('created_at', 'updated_at'):
        assert same_time(expected.pop(key), actual.pop(key), kind)
    assert actual == expected
    retry = got.find('fd-uuid').find('ad-retry')
    assert retry.last_results == 2
    assert retry.results[0][0] == 1
    assert retry.results[0][1]['failed'].exception_str == 'attempt 1'
    failed = got.find('fd-uuid').find('ad-failed')
    assert isinstance(failed.failure, failure.Failure)
    assert failed.failure.matches(book.find('fd-uuid').find('ad-failed')
                                  .failure)


def test_get_logbook_lazy_has_no_flows(conn):
    book = sample_book()
    conn.save_logbook(book)
    lazy = conn.get_logbook(book.uuid, lazy=True)
    assert (lazy.name, lazy.uuid, lazy.meta) == (book.name, book.uuid,
                                                 book.meta)
    assert len(lazy) == 0


def test_get_logbooks(conn):
    assert list(conn.get_logbooks()) == []
    conn.save_logbook(sample_book('-1'))
    conn.save_logbook(sample_book('-2'))
    books = sorted(conn.get_logbooks(), key=lambda b: b.uuid)
    assert [b.name for b in books] == ['book-1', 'book-2']
    assert [len(b) for b in books] == [1, 1]
    assert [len(fd) for b in books for fd in b] == [3, 3]
    lazy = list(conn.get_logbooks(lazy=True))
    assert sorted(len(b) for b in lazy) == [0, 0]


def test_get_flows_and_atoms(conn):
    book = sample_book()
    conn.save_logbook(book)
    flows = list(conn.get_flows_for_book(book.uuid))
    assert [fd.name for fd in flows] == ['flow']
    assert len(flows[0]) == 3
    assert [len(fd) for fd in conn.get_flows_for_book(book.uuid,
                                                      lazy=True)] == [0]
    fd = conn.get_flow_details('fd-uuid')
    assert (fd.name, fd.state, fd.meta) == ('flow', 'RUNNING',
                                            book.find('fd-uuid').meta)
    assert sorted(ad.name for ad in fd) == ['done', 'failed', 'retry']
    assert len(conn.get_flow_details('fd-uuid', lazy=True)) == 0
    atoms = sorted(conn.get_atoms_for_flow('fd-uuid'), key=lambda a: a.name)
    assert [type(a).__name__ for a in atoms] == ['TaskDetail', 'TaskDetail',
                                                 'RetryDetail']
    done = conn.get_atom_details('ad-done')
    assert done.results == {'answer': 42, 'list': [1, 'two', None], 'f': 1.5}
    assert (done.state, done.intention) == ('SUCCESS', 'IGNORE')


@pytest.mark.parametrize('call', [
    lambda c: c.get_logbook('missing'),
    lambda c: c.get_flow_details('missing'),
    lambda c: c.get_atom_details('missing'),
    lambda c: c.destroy_logbook('missing'),
    lambda c: c.update_flow_details(models.FlowDetail('x', 'missing')),
    lambda c: c.update_atom_details(models.TaskDetail('x', 'missing')),
], ids=['get_logbook', 'get_flow_details', 'get_atom_details',
        'destroy_logbook', 'update_flow_details', 'update_atom_details'])
def test_unknown_uuid_raises_not_found(conn, call):
    conn.save_logbook(sample_book())
    with pytest.raises(exc.NotFound):
        call(conn)


@pytest.mark.parametrize('kind', kind_params(['sqlite-file', 'sqlite-memory',
                                              'postgresql', 'mysql']))
def test_sql_not_found_messages(kind, make_backend):
    # (Path backends name the missing path instead, as the original does.)
    conn = make_backend(kind).get_connection()
    with pytest.raises(exc.NotFound,
                       match=r"^No logbook found with uuid 'nope'$"):
        conn.get_logbook('nope')
    with pytest.raises(exc.NotFound,
                       match=r"^No flow details found with uuid 'nope'$"):
        conn.get_flow_details('nope')
    with pytest.raises(exc.NotFound,
                       match=r"^No atom details found with uuid 'nope'$"):
        conn.get_atom_details('nope')
    # Unknown parents simply have no children on SQL backends.
    assert list(conn.get_flows_for_book('nope')) == []
    assert list(conn.get_atoms_for_flow('nope')) == []


# -- updates and merge semantics ---------------------------------------------

def test_update_atom_details(conn):
    book = sample_book()
    conn.save_logbook(book)
    ad = book.find('fd-uuid').find('ad-failed')
    ad.reset('PENDING')
    ad.put('RUNNING', None)
    ad.put('SUCCESS', ['ok'])
    ad.meta['progress'] = 1.0
    saved = conn.update_atom_details(ad)
    assert saved is not ad  # a merged copy, as the original returns
    assert (saved.state, saved.results) == ('SUCCESS', ['ok'])
    got = conn.get_atom_details(ad.uuid)
    assert (got.state, got.results, got.failure, got.meta['progress'],
            got.version) == ('SUCCESS', ['ok'], None, 1.0, '1.0')


def test_update_atom_details_keeps_stored_name(conn):
    conn.save_logbook(sample_book())
    renamed = models.TaskDetail('other-name', uuid='ad-done')
    renamed.state = 'REVERTED'
    conn.update_atom_details(renamed)
    got = conn.get_atom_details('ad-done')
    # A merge takes every field but name and uuid from the given detail.
    assert (got.name, got.state, got.results) == ('done', 'REVERTED', None)


def test_update_flow_details_adds_new_atoms(conn):
    book = sample_book()
    conn.save_logbook(book)
    fd = book.find('fd-uuid')
    fd.state = 'SUCCESS'
    fd.meta['duration'] = 1.25
    new = models.TaskDetail('new', uuid='ad-new')
    new.state = 'PENDING'
    fd.add(new)
    saved = conn.update_flow_details(fd)
    assert sorted(ad.name for ad in saved) == ['done', 'failed', 'new',
                                               'retry']
    got = conn.get_flow_details(fd.uuid)
    assert (got.state, got.meta['duration']) == ('SUCCESS', 1.25)
    assert sorted(ad.name for ad in got) == ['done', 'failed', 'new',
                                             'retry']
    assert conn.get_atom_details('ad-new').state == 'PENDING'
    # The new detail belongs to the flow (and so to the book).
    assert 'ad-new' in {ad.uuid for ad in conn.get_logbook(book.uuid)
                        .find(fd.uuid)}


def test_update_flow_details_keeps_atoms_not_given(conn):
    book = sample_book()
    conn.save_logbook(book)
    partial = models.FlowDetail('flow', uuid='fd-uuid')
    partial.state = 'FAILURE'
    conn.update_flow_details(partial)
    got = conn.get_flow_details('fd-uuid')
    assert got.state == 'FAILURE'
    assert got.meta == {}  # meta is taken from the given detail
    assert len(got) == 3


def test_save_logbook_merges_into_stored_book(conn):
    book = sample_book()
    conn.save_logbook(book)
    again = models.LogBook('renamed', uuid=book.uuid)
    again.meta = {'new': True}
    extra = models.FlowDetail('extra', uuid='fd-extra')
    extra.add(models.TaskDetail('x', uuid='ad-x'))
    again.add(extra)
    conn.save_logbook(again)
    got = conn.get_logbook(book.uuid)
    assert got.name == 'book'  # names are not merged
    assert got.meta == {'new': True}
    assert sorted(fd.name for fd in got) == ['extra', 'flow']
    assert len(got.find('fd-uuid')) == 3


def test_save_logbook_updates_existing_flow_and_atoms(conn):
    book = sample_book()
    conn.save_logbook(book)
    fd = book.find('fd-uuid')
    fd.state = 'REVERTED'
    fd.find('ad-done').put('REVERTED', 'rolled back')
    conn.save_logbook(book)
    got = conn.get_flow_details('fd-uuid')
    assert got.state == 'REVERTED'
    assert got.find('ad-done').revert_results == 'rolled back'


# -- destroy / clear / upgrade -----------------------------------------------

def test_destroy_logbook(conn):
    conn.save_logbook(sample_book('-1'))
    conn.save_logbook(sample_book('-2'))
    conn.destroy_logbook('book-uuid-1')
    with pytest.raises(exc.NotFound):
        conn.get_logbook('book-uuid-1')
    with pytest.raises(exc.NotFound):
        conn.get_flow_details('fd-uuid-1')
    with pytest.raises(exc.NotFound):
        conn.get_atom_details('ad-done-1')
    assert [b.uuid for b in conn.get_logbooks()] == ['book-uuid-2']
    assert len(conn.get_flow_details('fd-uuid-2')) == 3


def test_clear_all(conn):
    conn.save_logbook(sample_book('-1'))
    conn.clear_all()
    conn.upgrade()
    assert list(conn.get_logbooks()) == []
    with pytest.raises(exc.NotFound):
        conn.get_atom_details('ad-done-1')
    conn.save_logbook(sample_book('-1'))  # usable again
    assert len(conn.get_logbook('book-uuid-1')) == 1


def test_upgrade_is_idempotent(conn):
    conn.save_logbook(sample_book())
    conn.upgrade()
    conn.upgrade()
    conn.validate()
    assert len(conn.get_logbook('book-uuid')) == 1


def test_backend_context_manager_and_closing(kind, tmp_path, server_urls):
    conf = make_conf(kind, tmp_path, server_urls)
    with backends.backend(conf) as backend:
        with contextlib.closing(backend.get_connection()) as conn:
            assert conn.backend is backend
            conn.save_logbook(models.LogBook('ctx', uuid='ctx-book'))
            assert conn.get_logbook('ctx-book').name == 'ctx'
            conn.destroy_logbook('ctx-book')


# -- values -------------------------------------------------------------------

class NotSerialisable:
    pass


@pytest.mark.parametrize('kind', kind_params(JSON_KINDS))
def test_unserialisable_result_is_an_unstorable_value(kind, make_backend):
    backend = make_backend(kind)
    with contextlib.closing(backend.get_connection()) as conn:
        book = sample_book()
        conn.save_logbook(book)
        ad = book.find('fd-uuid').find('ad-done')
        ad.put('SUCCESS', {'ok': [NotSerialisable()]})
        with pytest.raises(exc.UnstorableValue) as info:
            conn.update_atom_details(ad)
        assert str(info.value) == (
            "Cannot store the results of atom detail 'done' (uuid 'ad-done'):"
            " it holds a value of type tests.backends.test_contract."
            "NotSerialisable, which has no JSON form")
        # The stored row is as it was.
        got = conn.get_atom_details('ad-done')
        assert got.results == {'answer': 42, 'list': [1, 'two', None],
                               'f': 1.5}
        ad.put('SUCCESS', {(1, 2): 'tuple key'})
        with pytest.raises(exc.UnstorableValue, match='tuple'):
            conn.update_atom_details(ad)
        ad.put('SUCCESS', 'fine again')
        fd = book.find('fd-uuid')
        fd.meta['bad'] = NotSerialisable()
        with pytest.raises(exc.UnstorableValue,
                           match="meta of flow detail 'flow'"):
            conn.update_flow_details(fd)
        assert 'bad' not in conn.get_flow_details('fd-uuid').meta


@pytest.mark.parametrize('kind', kind_params(JSON_KINDS))
def test_values_convert_like_the_original(kind, make_backend):
    """What the original reads back after a JSON round trip (observed)."""
    backend = make_backend(kind)
    cases = [
        ((1, 2), [1, 2]),
        ({3}, [3]),
        (b'xx', 'xx'),
        (datetime.datetime(2020, 1, 2), '2020-01-02T00:00:00.000000'),
        (datetime.date(2020, 1, 2), '2020-01-02'),
        ({1: 'a'}, {'1': 'a'}),
        ({'k': (1, [2, (3,)])}, {'k': [1, [2, [3]]]}),
        (ValueError('x'), "ValueError('x')"),
        ('unicode ✓ ünï', 'unicode ✓ ünï'),
    ]
    with contextlib.closing(backend.get_connection()) as conn:
        book = sample_book()
        conn.save_logbook(book)
        ad = book.find('fd-uuid').find('ad-done')
        for value, expected in cases:
            ad.put('SUCCESS', value)
            conn.update_atom_details(ad)
            assert conn.get_atom_details(ad.uuid).results == expected, value


def test_memory_backend_keeps_python_objects(make_backend):
    backend = make_backend('memory')
    with contextlib.closing(backend.get_connection()) as conn:
        book = sample_book()
        conn.save_logbook(book)
        ad = book.find('fd-uuid').find('ad-done')
        ad.put('SUCCESS', (1, {2}))
        conn.update_atom_details(ad)
        stored = conn.get_atom_details(ad.uuid).results
        assert stored == (1, {2})
        assert stored is not ad.results  # deep copied


# -- concurrency --------------------------------------------------------------

@pytest.mark.parametrize('kind', kind_params(SHARED_KINDS + ['memory',
                                                             'sqlite-memory']))
def test_threads_update_different_atoms(kind, make_backend):
    backend = make_backend(kind)
    book = models.LogBook('threads', uuid='threads-book')
    fd = models.FlowDetail('flow', uuid='threads-fd')
    book.add(fd)
    for i in range(8):
        fd.add(models.TaskDetail('t%d' % i, uuid='threads-ad-%d' % i))
    with contextlib.closing(backend.get_connection()) as conn:
        conn.save_logbook(book)
    errors = []

    def worker(i: int) -> None:
        try:
            with contextlib.closing(backend.get_connection()) as conn:
                ad = models.TaskDetail('t%d' % i, uuid='threads-ad-%d' % i)
                for n in range(10):
                    ad.put('SUCCESS', n)
                    conn.update_atom_details(ad)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with contextlib.closing(backend.get_connection()) as conn:
        results = {ad.name: ad.results
                   for ad in conn.get_atoms_for_flow('threads-fd')}
    assert results == {'t%d' % i: 9 for i in range(8)}


def _process_writer(conf: dict, index: int, rounds: int) -> None:
    backend = backends.fetch(conf)
    try:
        with contextlib.closing(backend.get_connection()) as conn:
            ad = models.TaskDetail('p%d' % index, uuid='proc-ad-%d' % index)
            for n in range(rounds):
                ad.put('SUCCESS', {'writer': index, 'round': n})
                conn.update_atom_details(ad)
            fd = models.FlowDetail('flow', uuid='proc-fd-%d' % index)
            fd.add(models.TaskDetail('extra', uuid='proc-extra-%d' % index))
            book = models.LogBook('proc-book-%d' % index,
                                  uuid='proc-book-%d' % index)
            book.add(fd)
            conn.save_logbook(book)
    finally:
        backend.close()


@pytest.mark.parametrize('kind', kind_params(SHARED_KINDS))
def test_processes_share_the_store(kind, make_backend, tmp_path,
                                   server_urls):
    backend = make_backend(kind)
    conf = make_conf(kind, tmp_path, server_urls)
    book = models.LogBook('procs', uuid='proc-book')
    fd = models.FlowDetail('flow', uuid='proc-fd')
    book.add(fd)
    for i in range(4):
        fd.add(models.TaskDetail('p%d' % i, uuid='proc-ad-%d' % i))
    with contextlib.closing(backend.get_connection()) as conn:
        conn.save_logbook(book)
    ctx = multiprocessing.get_context('spawn')
    procs = [ctx.Process(target=_process_writer, args=(conf, i, 25))
             for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with contextlib.closing(backend.get_connection()) as conn:
        results = {ad.name: ad.results
                   for ad in conn.get_atoms_for_flow('proc-fd')}
        assert results == {'p%d' % i: {'writer': i, 'round': 24}
                           for i in range(4)}
        names = sorted(b.name for b in conn.get_logbooks())
        assert names == ['proc-book-%d' % i for i in range(4)] + ['procs']


@pytest.mark.parametrize('kind', kind_params(SHARED_KINDS))
def test_second_backend_sees_committed_writes(kind, make_backend, tmp_path,
                                              server_urls):
    writer = make_backend(kind)
    reader = backends.fetch(make_conf(kind, tmp_path, server_urls))
    try:
        book = sample_book()
        with contextlib.closing(writer.get_connection()) as w, \
                contextlib.closing(reader.get_connection()) as r:
            w.save_logbook(book)
            assert len(r.get_logbook(book.uuid)) == 1
            ad = book.find('fd-uuid').find('ad-done')
            ad.put('SUCCESS', 'second')
            w.update_atom_details(ad)
            assert r.get_atom_details(ad.uuid).results == 'second'
    finally:
        reader.close()
