"""Corrupt stored data is refused, never reinterpreted.

Rows (SQLite, PostgreSQL, MariaDB) and files (dir) written by a backend are
corrupted directly, then read back: every read raises ``CorruptRecord`` --
a ``StorageFailure`` and a ``ValueError`` (what the original raises for
most of these) -- naming the object (name and uuid), the field and the
problem; never a ``KeyError``/``TypeError``/``JSONDecodeError``, and never
a value handed on as if it were good (the original turns a meta that is
not a dict into ``{}`` and accepts unknown states).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3

import pytest
import sqlalchemy as sa

from taskflow import engines
from taskflow import exceptions as exc
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.persistence import _decode
from taskflow.persistence import backends
from taskflow.persistence import models
from taskflow.types import failure as ft
from taskflow.utils import persistence_utils as p_utils
from tests.backends.conftest import kind_params

SQL_KINDS = ['sqlite-file', 'postgresql', 'mysql']


def a_failure() -> ft.Failure:
    try:
        raise ValueError('x')
    except ValueError:
        return ft.Failure()


def write_sample(backend) -> None:
    book = models.LogBook('b', uuid='book-1')
    book.meta = {'k': 'v'}
    fd = models.FlowDetail('f', 'flow-1')
    fd.state = 'RUNNING'
    fd.meta = {'k': 1}
    book.add(fd)
    t = models.TaskDetail('t', 'task-1')
    t.put('FAILURE', a_failure())
    t.meta = {'m': 1}
    t.version = '1.0'
    r = models.RetryDetail('r', 'retry-1')
    r.state = 'SUCCESS'
    r.results = [(1, {'t': a_failure()})]
    fd.add(t)
    fd.add(r)
    with contextlib.closing(backend.get_connection()) as conn:
        conn.save_logbook(book)


NAMES = {'task-1': ('atom detail', 't'), 'retry-1': ('atom detail', 'r'),
         'flow-1': ('flow detail', 'f'), 'book-1': ('logbook', 'b')}
TABLES = {'task-1': 'atomdetails', 'retry-1': 'atomdetails',
          'flow-1': 'flowdetails', 'book-1': 'logbooks'}

NOT_A_FAILURE = 'is not a failure: it is a string, not a dict'
# (uuid, column, stored text, problem); None as text stores NULL.
SQL_CASES = [
    ('task-1', 'failure', '"boom"', NOT_A_FAILURE),
    ('task-1', 'failure', '{"a": 1}',
     'is not a failure: its version is None, not 1'),
    ('task-1', 'failure', '[1, 2]',
     'is not a failure: it is a list, not a dict'),
    ('task-1', 'failure', '{"exception_str": 5, "traceback_str": "t",'
     ' "exc_type_names": ["E"], "version": 1}',
     "is not a failure: its 'exception_str' is not a string"),
    ('task-1', 'failure', '{"exception_str": "e", "traceback_str": "t",'
     ' "exc_type_names": ["E"], "version": 1, "causes": ["x"]}',
     'is not a failure: a cause: it is a string, not a dict'),
    ('task-1', 'revert_failure', '"boom"', NOT_A_FAILURE),
    ('task-1', 'failure', '{bad', 'is not valid JSON (Expecting property'
     ' name enclosed in double quotes: line 1 column 2 (char 1))'),
    ('task-1', 'results', '', 'is not valid JSON (Expecting value: line 1'
     ' column 1 (char 0))'),
    ('task-1', 'state', 'BOGUS', "is an unknown atom state 'BOGUS'"),
    ('task-1', 'intention', 'BOGUS', "is an unknown intention 'BOGUS'"),
    ('task-1', 'atom_type', 'BOGUS', "is 'BOGUS', not one of RETRY_DETAIL,"
     ' TASK_DETAIL'),
    ('task-1', 'meta', '"x"', 'is not a dict (it is a string)'),
    ('task-1', 'meta', '[1]', 'is not a dict (it is a list)'),
    ('task-1', 'name', None, 'is missing'),
    ('retry-1', 'results', '"x"',
     'is not a list of retry attempts (it is a string)'),
    ('retry-1', 'results', '[1, 2]', 'holds an attempt that is not a'
     ' [value, {atom name: failure}] pair'),
    ('retry-1', 'results', '[[1]]', 'holds an attempt that is not a'
     ' [value, {atom name: failure}] pair'),
    ('retry-1', 'results', '[[1, 2]]', 'holds an attempt that is not a'
     ' [value, {atom name: failure}] pair'),
    ('retry-1', 'results', '[[1, {"t": "boom"}]]', NOT_A_FAILURE),
    ('flow-1', 'state', 'BOGUS', "is an unknown flow state 'BOGUS'"),
    ('flow-1', 'meta', '[1]', 'is not a dict (it is a list)'),
    ('flow-1', 'meta', '{bad', 'is not valid JSON (Expecting property name'
     ' enclosed in double quotes: line 1 column 2 (char 1))'),
    ('flow-1', 'name', None, 'is missing'),
    ('book-1', 'meta', '"x"', 'is not a dict (it is a string)'),
    ('book-1', 'meta', '7', 'is not a dict (it is a number)'),
]


def _case_id(case) -> str:
    uuid, column, text, _ = case
    return '%s.%s=%s' % (uuid, column, text)


def _corrupt_sql(kind: str, backend, uuid: str, column: str,
                 text: str | None) -> None:
    if kind == 'postgresql':
        if text is not None and column in ('meta', 'failure', 'results',
                                           'revert_failure'):
            try:
                json.loads(text)
            except ValueError:
                pytest.skip('a PostgreSQL json column refuses invalid JSON')
        if column in ('intention', 'atom_type'):
            # Native enum types: teach them the bogus value first.
            type_name = {'intention': 'intention_type',
                         'atom_type': 'atom_types'}[column]
            with backend.engine.connect().execution_options(
                    isolation_level='AUTOCOMMIT') as conn:
                conn.exec_driver_sql("ALTER TYPE %s ADD VALUE IF NOT EXISTS"
                                     " 'BOGUS'" % type_name)
    with backend.engine.begin() as conn:
        if kind == 'mysql':
            # Let MySQL's ENUM columns take the bogus value (as '').
            conn.exec_driver_sql("SET SESSION sql_mode = ''")
        conn.execute(sa.text('UPDATE %s SET %s = :v WHERE uuid = :u'
                             % (TABLES[uuid], column)),
                     {'v': text, 'u': uuid})


def _expected(uuid: str, field: str, problem: str) -> str:
    kind, name = NAMES[uuid]
    if field == 'name':
        named = ''
    else:
        named = " '%s'" % name
    return (r"^Stored %s%s \(uuid '%s'\).* is corrupt: its '%s' %s$"
            % (kind, named, uuid, {'atom_type': 'type'}.get(field, field),
               re.escape(problem)))


def _reads(conn, uuid: str) -> list:
    """Every read that includes the record ``uuid``."""
    reads = [lambda: conn.get_logbook('book-1'),
             lambda: list(conn.get_logbooks())]
    if uuid != 'book-1':
        reads.append(lambda: list(conn.get_flows_for_book('book-1')))
        reads.append(lambda: conn.get_flow_details('flow-1'))
    if uuid in ('task-1', 'retry-1'):
        reads.append(lambda: conn.get_atom_details(uuid))
        reads.append(lambda: list(conn.get_atoms_for_flow('flow-1')))
    return reads


@pytest.fixture(params=kind_params(SQL_KINDS))
def sql_kind(request) -> str:
    return request.param


@pytest.mark.parametrize('case', SQL_CASES, ids=[_case_id(c)
                                                 for c in SQL_CASES])
def test_corrupt_rows_are_refused(sql_kind, case, make_backend):
    uuid, column, text, problem = case
    if sql_kind == 'mysql' and column in ('intention', 'atom_type'):
        problem = problem.replace("'BOGUS'", "''")  # what ENUM kept
    backend = make_backend(sql_kind)
    write_sample(backend)
    _corrupt_sql(sql_kind, backend, uuid, column, text)
    expected = _expected(uuid, column, problem)
    with contextlib.closing(backend.get_connection()) as conn:
        for read in _reads(conn, uuid):
            with pytest.raises(_decode.CorruptRecord, match=expected) as info:
                read()
            assert isinstance(info.value, exc.StorageFailure)
            assert isinstance(info.value, ValueError)


def test_atoms_read_in_a_flow_name_the_flow(make_backend):
    backend = make_backend('sqlite-file')
    write_sample(backend)
    _corrupt_sql('sqlite-file', backend, 'task-1', 'failure', '"boom"')
    with contextlib.closing(backend.get_connection()) as conn:
        with pytest.raises(exc.StorageFailure) as info:
            conn.get_flow_details('flow-1')
    assert str(info.value) == (
        "Stored atom detail 't' (uuid 'task-1') in flow detail 'f' (uuid"
        " 'flow-1') is corrupt: its 'failure' " + NOT_A_FAILURE)


def test_writing_over_a_row_of_unknown_type_is_refused(make_backend):
    backend = make_backend('sqlite-file')
    write_sample(backend)
    _corrupt_sql('sqlite-file', backend, 'task-1', 'atom_type', 'BOGUS')
    ad = models.TaskDetail('t', 'task-1')
    with contextlib.closing(backend.get_connection()) as conn:
        with pytest.raises(_decode.CorruptRecord, match="its 'type' is an"
                           " unknown atom type 'BOGUS'"):
            conn.update_atom_details(ad)


# -- dir files -------------------------------------------------------------------

def _set(path: list, value):
    def mutate(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return data
    return mutate


def _delete(path: list):
    def mutate(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return data
    return mutate


# (uuid, file content or mutation of the stored dict, field, problem, named)
DIR_CASES = [
    ('task-1', b'{bad', 'metadata', 'is not valid JSON (Expecting property'
     ' name enclosed in double quotes: line 1 column 2 (char 1))', False),
    ('task-1', b'', 'metadata',
     'is not valid JSON (Expecting value: line 1 column 1 (char 0))', False),
    ('task-1', b'\xff\xfe', 'metadata',
     'is not valid JSON (its bytes are not utf-8 text)', False),
    ('task-1', b'[]', 'data', 'is not a dict (it is a list)', False),
    ('task-1', _delete(['type']), 'type', 'is null, not one of RETRY_DETAIL,'
     ' TASK_DETAIL', True),
    ('task-1', _set(['type'], 'BOGUS'), 'type', "is 'BOGUS', not one of"
     ' RETRY_DETAIL, TASK_DETAIL', True),
    ('task-1', _delete(['atom']), 'atom', 'is missing', False),
    ('task-1', _set(['atom', 'failure'], 'boom'), 'failure', NOT_A_FAILURE,
     True),
    ('task-1', _set(['atom', 'state'], 'BOGUS'), 'state',
     "is an unknown atom state 'BOGUS'", True),
    ('task-1', _set(['atom', 'intention'], 'BOGUS'), 'intention',
     "is an unknown intention 'BOGUS'", True),
    ('task-1', _set(['atom', 'state'], 3), 'state',
     'is not a name (it is a number)', True),
    ('task-1', _delete(['atom', 'name']), 'name', 'is missing', False),
    ('task-1', _delete(['atom', 'uuid']), 'uuid', 'does not match its path',
     False),
    ('task-1', _set(['atom', 'uuid'], 'other'), 'uuid',
     'does not match its path', False),
    ('task-1', _set(['atom', 'meta'], 'x'), 'meta',
     'is not a dict (it is a string)', True),
    ('retry-1', _set(['atom', 'results'], 'x'), 'results',
     'is not a list of retry attempts (it is a string)', True),
    ('retry-1', _set(['atom', 'results'], [[1, {'t': 'boom'}]]), 'results',
     NOT_A_FAILURE, True),
    ('flow-1', b'{bad', 'metadata', 'is not valid JSON (Expecting property'
     ' name enclosed in double quotes: line 1 column 2 (char 1))', False),
    ('flow-1', _set(['state'], 'BOGUS'), 'state',
     "is an unknown flow state 'BOGUS'", True),
    ('flow-1', _delete(['name']), 'name', 'is missing', False),
    ('flow-1', _set(['meta'], [1]), 'meta', 'is not a dict (it is a list)',
     True),
    ('book-1', b'{bad', 'metadata', 'is not valid JSON (Expecting property'
     ' name enclosed in double quotes: line 1 column 2 (char 1))', False),
    ('book-1', _set(['created_at'], 'x'), 'created_at',
     'is not a stored date and time', True),
    ('book-1', _set(['created_at', 'month'], 13), 'created_at',
     'is not a valid date and time (month must be in 1..12)', True),
    ('book-1', _delete(['created_at']), 'created_at', 'is missing', True),
    ('book-1', _set(['meta'], 'x'), 'meta', 'is not a dict (it is a string)',
     True),
]
DIRS = {'task-1': 'atom_details', 'retry-1': 'atom_details',
        'flow-1': 'flow_details', 'book-1': 'books'}


@pytest.mark.parametrize('case', DIR_CASES,
                         ids=['%s-%d' % (c[0], i)
                              for i, c in enumerate(DIR_CASES)])
def test_corrupt_dir_files_are_refused(case, make_backend):
    uuid, change, field, problem, named = case
    backend = make_backend('dir')
    write_sample(backend)
    filename = os.path.join(backend.path, DIRS[uuid], uuid, 'metadata')
    if isinstance(change, bytes):
        content = change
    else:
        with open(filename, 'rb') as fh:
            content = json.dumps(change(json.loads(fh.read()))).encode()
    with open(filename, 'wb') as fh:
        fh.write(content)
    kind, name = NAMES[uuid]
    expected = (r"^Stored %s%s \(uuid '%s'\) at %s(/metadata)? is corrupt:"
                r" its '%s' %s$" % (kind, " '%s'" % name if named else '',
                                    uuid, re.escape(os.path.dirname(filename)),
                                    field, re.escape(problem)))
    with contextlib.closing(backend.get_connection()) as conn:
        for read in _reads(conn, uuid):
            with pytest.raises(_decode.CorruptRecord, match=expected):
                read()


# -- through an engine (repro_c_failure_string) -------------------------------

class A(task.Task):
    def execute(self):
        return 'real-result-of-A'


class B(task.Task):
    def execute(self, a):
        B.received.append(a)
        return a


def make_flow():
    return lf.Flow('f').add(A('A', provides='a'), B('B', provides='b'))


@pytest.mark.parametrize('kind', kind_params(['sqlite-file', 'postgresql',
                                              'mysql']))
def test_resuming_a_corrupt_failure_hands_nothing_to_tasks(kind,
                                                           make_backend):
    B.received = []
    backend = make_backend(kind)
    flow = make_flow()
    book = models.LogBook('b')
    fd = p_utils.create_flow_detail(flow, book=book, backend=backend)
    engine = engines.load(flow, flow_detail=fd, backend=backend)
    engine.atom_notifier.register(
        'SUCCESS', lambda state, details: details['task_name'] == 'A'
        and engine.suspend())
    engine.run()
    assert engine.storage.get_flow_state() == 'SUSPENDED'
    with backend.engine.begin() as conn:
        conn.execute(sa.text("UPDATE atomdetails SET failure = :f"
                             " WHERE name = 'A'"), {'f': '"boom"'})
    with contextlib.closing(backend.get_connection()) as conn:
        with pytest.raises(_decode.CorruptRecord, match=r"^Stored atom detail"
                           r" 'A' \(uuid '[-0-9a-f]+'\) in flow detail 'f'"
                           r" \(uuid '%s'\) is corrupt: its 'failure' is not a"
                           r" failure" % fd.uuid):
            conn.get_flow_details(fd.uuid)
        with pytest.raises(exc.StorageFailure):
            conn.get_logbook(book.uuid)
    assert B.received == []


def test_a_sqlite_file_that_is_not_a_database_is_a_storage_failure(tmp_path):
    path = tmp_path / 'garbage.db'
    path.write_bytes(b'garbage' * 1000)
    backend = backends.fetch('sqlite:///%s' % path)
    with contextlib.closing(backend.get_connection()) as conn:
        with pytest.raises(exc.StorageFailure) as info:
            conn.get_logbook('x')
    assert isinstance(info.value.cause, sa.exc.DatabaseError)
    assert isinstance(info.value.cause.orig, sqlite3.DatabaseError)
    backend.close()
