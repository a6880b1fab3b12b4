"""What the writes return, on every backend kind, as the original 6.5.0 does.

* ``update_atom_details(ad)``: a new object, the stored atom detail merged
  with ``ad`` (so the stored name is kept); merging details of two types
  fails and saves nothing.
* ``update_flow_details(fd)`` / ``save_logbook(book)``: SQL backends return
  a new object, the stored one merged with the given one and holding every
  stored child (new children are the given objects); memory and dir return
  the given object. A new book is returned as given everywhere.
"""

from __future__ import annotations

import datetime

import pytest

from taskflow import exceptions as exc
from taskflow.persistence import models

SQL_KINDS = ('sqlite-file', 'sqlite-memory', 'postgresql', 'mysql')


def stored_book(conn) -> models.LogBook:
    book = models.LogBook('book', uuid='b-1')
    book.meta = {'stored': 1}
    for fd_uuid in ('f-1', 'f-0'):
        fd = models.FlowDetail('flow-' + fd_uuid, fd_uuid)
        fd.meta = {'fm': 1}
        book.add(fd)
    for i in range(3):
        ad = models.TaskDetail('t%d' % i, 'a-%d' % i)
        ad.results = [i]
        book.find('f-1').add(ad)
    assert conn.save_logbook(book) is book  # new: the given object
    return book


def test_update_atom_details_returns_merged_copy(conn):
    stored_book(conn)
    ad = models.TaskDetail('renamed', 'a-1')
    ad.put('SUCCESS', {'k': 1})
    ad.meta = {'progress': 1.0}
    got = conn.update_atom_details(ad)
    assert got is not ad and type(got) is models.TaskDetail
    assert (got.uuid, got.name, got.state) == ('a-1', 't1', 'SUCCESS')
    assert got.results is ad.results and got.meta == {'progress': 1.0}
    assert conn.get_atom_details('a-1').name == 't1'


def test_update_atom_details_of_another_type(conn, kind):
    stored_book(conn)
    retry = models.RetryDetail('t0', 'a-0')
    retry.state = 'SUCCESS'
    if kind == 'memory':
        with pytest.raises(exc.StorageFailure) as info:
            conn.update_atom_details(retry)
        assert info.value.args == ('Storage backend internal error',)
        assert isinstance(info.value.cause, NotImplementedError)
    else:
        with pytest.raises(NotImplementedError,
                           match='^Can only merge with other task details$'):
            conn.update_atom_details(retry)
    got = conn.get_atom_details('a-0')
    assert type(got) is models.TaskDetail and got.state is None


def test_update_flow_details_returns(conn, kind):
    stored_book(conn)
    fd = models.FlowDetail('renamed', 'f-1')
    fd.state = 'SUCCESS'
    fd.meta = {'new': 1}
    given = models.TaskDetail('x', 'a-1')
    given.results = 'given'
    new = models.TaskDetail('n', 'a-n')
    fd.add(given)
    fd.add(new)
    got = conn.update_flow_details(fd)
    if kind not in SQL_KINDS:
        assert got is fd
        return
    assert got is not fd
    assert (got.name, got.state, got.meta) == ('flow-f-1', 'SUCCESS',
                                               {'new': 1})
    assert got.meta is fd.meta
    assert sorted(ad.uuid for ad in got) == ['a-0', 'a-1', 'a-2', 'a-n']
    assert [ad.uuid for ad in got][-1] == 'a-n'
    assert got.find('a-n') is new  # new atom details are the given ones
    merged = got.find('a-1')
    assert merged is not given and merged.name == 't1'
    assert merged.results is given.results
    assert got.find('a-0').results == [0]  # loaded from the store


def test_save_existing_logbook_returns(conn, kind):
    stored_book(conn)
    book = models.LogBook('renamed', uuid='b-1')
    book.meta = {'given': 1}
    book.created_at = datetime.datetime(2020, 1, 1)
    fd = models.FlowDetail('renamed-flow', 'f-1')
    fd.add(models.TaskDetail('x', 'a-1'))
    book.add(fd)
    book.updated_at = datetime.datetime(2021, 1, 1)
    got = conn.save_logbook(book)
    if kind not in SQL_KINDS:
        assert got is book
        return
    assert got is not book
    assert (got.name, got.meta) == ('book', {'given': 1})
    assert (got.created_at, got.updated_at) == (book.created_at,
                                                book.updated_at)
    assert sorted(f.uuid for f in got) == ['f-0', 'f-1']
    assert got.find('f-1').name == 'flow-f-1'
    assert sorted(ad.uuid for ad in got.find('f-1')) == ['a-0', 'a-1', 'a-2']
    # Adding a new flow detail touches updated_at, as add() does.
    extra = models.FlowDetail('extra', 'f-new')
    book.add(extra)
    book.updated_at = datetime.datetime(2021, 1, 1)
    got = conn.save_logbook(book)
    assert got.find('f-new') is extra
    assert got.updated_at > datetime.datetime(2021, 1, 1)


def test_write_methods_return_nothing(conn):
    book = stored_book(conn)
    fd = book.find('f-1')
    fd.state = 'RUNNING'
    fd.add(models.TaskDetail('n', 'a-n'))
    assert conn._write_flow_details(fd) is None
    assert conn.get_flow_details('f-1').state == 'RUNNING'
    assert len(conn.get_flow_details('f-1')) == 4
    book.meta = {'written': True}
    assert conn._write_logbook(book) is None
    assert conn.get_logbook('b-1').meta == {'written': True}
    with pytest.raises(exc.NotFound):
        conn._write_flow_details(models.FlowDetail('x', 'nope'))


def test_a_uuid_stored_under_another_parent_is_refused_not_overwritten(conn, kind):
    """As the original's SQL backends: the primary key refuses the row, so a
    detail saved under a new book (or flow) never takes over another's."""
    stored_book(conn)
    intruder = models.LogBook('intruder')
    intruder.add(models.FlowDetail('stolen', 'f-1'))
    if kind not in SQL_KINDS:
        # Memory and dir backends (the original's too) key details by uuid
        # alone: the new book lists the stored flow detail.
        conn.save_logbook(intruder)
        assert [fd.uuid for fd in conn.get_logbook(intruder.uuid)] == ['f-1']
        return
    with pytest.raises(exc.StorageFailure):
        conn.save_logbook(intruder)
    other = models.LogBook('other')
    fd = models.FlowDetail('other-flow', 'f-9')
    other.add(fd)
    conn.save_logbook(other)
    fd.add(models.TaskDetail('stolen', 'a-1'))
    with pytest.raises(exc.StorageFailure):
        conn.update_flow_details(fd)
    book = conn.get_logbook('b-1')
    assert book.find('f-1').name == 'flow-f-1'
    assert book.find('f-1').find('a-1').name == 't1'
    assert [ad.uuid for ad in conn.get_flow_details('f-9')] == []
