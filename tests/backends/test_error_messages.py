"""``StorageFailure`` texts, as the original 6.5.0 gives them (observed).

The message is the short text of the operation; the error that caused it is
the ``cause``, shown once by ``str()`` on the line after the message.
"""

from __future__ import annotations

import contextlib
import os
import threading

import pytest
import sqlalchemy as sa

from taskflow import exceptions as exc
from taskflow.persistence import backends
from taskflow.persistence import models

INTERNAL = 'Storage backend internal error'


def small_book() -> models.LogBook:
    book = models.LogBook('b', uuid='b-1')
    fd = models.FlowDetail('f', 'f-1')
    fd.add(models.TaskDetail('t', 'a-1'))
    book.add(fd)
    return book


SQL_CALLS = [
    ('get_logbooks', (), 'Failed getting logbooks'),
    ('get_logbook', ('b-1',), "Failed getting logbook 'b-1'"),
    ('save_logbook', (small_book(),), "Failed saving logbook 'b-1'"),
    ('destroy_logbook', ('b-1',), "Failed destroying logbook 'b-1'"),
    ('get_flow_details', ('f-1',),
     "Failed getting flow details with uuid 'f-1'"),
    ('get_atom_details', ('a-1',),
     "Failed getting atom details with uuid 'a-1'"),
    ('update_flow_details', (small_book().find('f-1'),),
     "Failed updating flow details with uuid 'f-1'"),
    ('update_atom_details', (small_book().find('f-1').find('a-1'),),
     "Failed updating atom details with uuid 'a-1'"),
    ('get_flows_for_book', ('b-1',),
     "Failed getting flow details in logbook 'b-1'"),
    ('get_atoms_for_flow', ('f-1',),
     "Failed getting atom details in flow detail 'f-1'"),
    ('clear_all', (), 'Failed clearing all entries'),
    ('upgrade', (), 'Failed upgrading database version'),
    ('validate', (), 'Failed to validate the database connection'),
]


@pytest.mark.parametrize('name, args, message', SQL_CALLS,
                         ids=[call[0] for call in SQL_CALLS])
def test_sql_failure_messages(name, args, message):
    backend = backends.fetch({'connection': 'sqlite://', 'max_retries': 0})
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
        conn.save_logbook(small_book())

        def broken(*args, **kwargs):
            raise sa.exc.OperationalError('SELECT x', {}, Exception('boom'))

        backend.engine.pool.connect = broken
        with pytest.raises(exc.StorageFailure) as info:
            result = getattr(conn, name)(*args)
            list(result or ())
    error = info.value
    assert error.args == (message,)
    assert repr(error) == 'StorageFailure(%r)' % (message,)
    assert isinstance(error.cause, sa.exc.OperationalError)
    assert error.__cause__ is error.cause
    lines = str(error).splitlines()
    assert lines[:2] == [message, '  sqlalchemy.exc.OperationalError:'
                         ' (builtins.Exception) boom']
    assert str(error).count('boom') == 1
    backend.close()


class NotSerialisable:
    pass


def _update_with_results(conn, results) -> pytest.ExceptionInfo:
    """Save a small book, then update its atom 'a-1' with ``results``; the
    StorageFailure that raises."""
    book = small_book()
    conn.save_logbook(book)
    ad = book.find('f-1').find('a-1')
    ad.results = results
    with pytest.raises(exc.StorageFailure) as info:
        conn.update_atom_details(ad)
    return info


UNSERIALISABLE = ("Cannot store the results of atom detail 't' (uuid 'a-1'):"
                  " it holds a value of type tests.backends.test_error_messages"
                  ".NotSerialisable, which has no JSON form")


def test_sql_unserialisable_value_message():
    backend = backends.fetch('sqlite://')
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
        info = _update_with_results(conn, NotSerialisable())
    assert type(info.value) is exc.UnstorableValue
    assert info.value.args == (UNSERIALISABLE,)
    assert str(info.value) == UNSERIALISABLE


def test_memory_failure_message():
    backend = backends.fetch('memory')
    conn = backend.get_connection()
    info = _update_with_results(conn, threading.Lock())  # cannot be deep copied
    assert info.value.args == (INTERNAL,)
    assert str(info.value) == (INTERNAL + "\n  TypeError: cannot pickle"
                               " '_thread.lock' object")


def test_dir_failure_messages(tmp_path):
    path = str(tmp_path / 'd')
    conn = backends.fetch({'connection': 'dir', 'path': path}
                          ).get_connection()
    with pytest.raises(exc.StorageFailure) as info:
        conn.validate()
    assert str(info.value) == (
        INTERNAL + '\n  RuntimeError: Missing required directory: %s'
        % os.path.join(path, 'flow_details'))
    conn.upgrade()
    info = _update_with_results(conn, NotSerialisable())
    assert type(info.value) is exc.UnstorableValue
    assert info.value.args == (UNSERIALISABLE,)
    metadata = os.path.join(path, 'atom_details', 'a-1', 'metadata')
    with open(metadata, 'w') as fh:
        fh.write('{bad')
    with pytest.raises(exc.StorageFailure) as info:
        conn.get_atom_details('a-1')
    assert info.value.args == (
        "Stored atom detail (uuid 'a-1') at %s is corrupt: its 'metadata' is"
        " not valid JSON (Expecting property name enclosed in double quotes:"
        " line 1 column 2 (char 1))" % metadata,)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value.__cause__, ValueError)
