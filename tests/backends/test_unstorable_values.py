"""Values that can never be stored are refused before anything is written.

Each case runs against the JSON backends (dir, SQLite file, PostgreSQL,
MariaDB): the write raises ``UnstorableValue`` naming the atom (name and
uuid), the field and the reason, at once; the stored record is unchanged;
nothing is read from iterators, files, pipes or sockets. Values the
database itself refuses (MySQL data too long or over max_allowed_packet,
JSON PostgreSQL does not take) are ``UnstorableValue`` too, and are not
retried.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
import socket
import sqlite3
import tempfile
import threading
import time

import pytest
import sqlalchemy as sa

from taskflow import engines
from taskflow import exceptions as exc
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.persistence import _serialize
from taskflow.persistence import backends
from taskflow.persistence import models
from tests.backends.conftest import kind_params

KINDS = ['dir', 'sqlite-file', 'postgresql', 'mysql']
STORED = {'stored': [1, 'two']}


def small_book(suffix: str = '') -> models.LogBook:
    book = models.LogBook('b', uuid='book' + suffix)
    fd = models.FlowDetail('f', 'flow' + suffix)
    fd.meta = {'m': 1}
    book.add(fd)
    ad = models.TaskDetail('t', 'atom' + suffix)
    ad.put('SUCCESS', STORED)
    fd.add(ad)
    return book


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def cyclic() -> dict:
    value: dict = {'a': 1}
    value['self'] = [value]
    return value


@contextlib.contextmanager
def open_pipe():
    """A pipe reader with data waiting and its writer still open: reading
    it to the end would block forever."""
    reader, writer = os.pipe()
    os.write(writer, b'first line\n')
    with os.fdopen(reader) as fh:
        yield fh
        os.set_blocking(reader, False)
        assert fh.buffer.read() == b'first line\n'  # nothing was consumed
    os.close(writer)


@contextlib.contextmanager
def open_file():
    # A named one is a wrapper object (the original iterates its lines).
    with tempfile.NamedTemporaryFile('w+') as fh:
        fh.write('a\nb\n')
        fh.seek(0)
        yield fh
        assert fh.read() == 'a\nb\n'


@contextlib.contextmanager
def an_iterator(make):
    it = make()
    yield it
    assert list(it) == [1, 2]  # nothing was consumed


@contextlib.contextmanager
def a_socket():
    one, two = socket.socketpair()
    two.sendall(b'x')
    with one, two:
        yield one
        assert one.recv(1) == b'x'


@contextlib.contextmanager
def plain(value):
    yield value


def _generator():
    yield 1
    yield 2


CASES = {
    'cyclic': (lambda: plain(cyclic()), 'it is cyclic (it contains itself)'),
    'too deep': (lambda: plain({'x': nested(201)}),
                 'it is nested deeper than 200 levels (the backend option'
                 ' max_value_depth)'),
    'bytes not utf-8': (lambda: plain({'x': b'ok\xff\xfe'}),
                        'it holds bytes that are not valid UTF-8 (\'utf-8\''
                        ' codec can\'t decode byte 0xff in position 2:'
                        ' invalid start byte)'),
    'list iterator': (lambda: an_iterator(lambda: iter([1, 2])),
                      'it holds an iterator (list_iterator): storing it would'
                      ' consume it; store a list instead'),
    'generator': (lambda: an_iterator(_generator),
                  'it holds an iterator (generator): storing it would'
                  ' consume it; store a list instead'),
    'map': (lambda: an_iterator(lambda: map(int, '12')),
            'it holds an iterator (map): storing it would consume it; store a'
            ' list instead'),
    'endless iterator': (lambda: plain([itertools.count()]),
                         'it holds an iterator (itertools.count): storing it'
                         ' would consume it; store a list instead'),
    'pipe': (open_pipe, 'it holds a file, pipe or socket (TextIOWrapper):'
             ' nothing is read from it; store its name or contents instead'),
    'file': (open_file, 'it holds a file, pipe or socket (tempfile.'
             '_TemporaryFileWrapper): nothing is read from it; store its name'
             ' or contents instead'),
    'BytesIO': (lambda: plain(io.BytesIO(b'x')),
                'it holds a file, pipe or socket (BytesIO): nothing is read'
                ' from it; store its name or contents instead'),
    'socket': (a_socket, 'it holds a file, pipe or socket (socket.socket):'
               ' nothing is read from it; store its name or contents'
               ' instead'),
    'complex': (lambda: plain([1j]), 'it holds a value of type complex,'
                ' which has no JSON form'),
    'tuple key': (lambda: plain({(1, 2): 'x'}), 'a dict key of type tuple is'
                  ' not a str, int, float, bool or None'),
    'huge range': (lambda: plain(range(10 ** 12)),
                   'its JSON text takes at least 1000000000000 bytes, over'
                   ' the limit of 16777216 (the backend option'
                   ' max_value_size)'),
}


@pytest.fixture(params=kind_params(KINDS))
def kind(request) -> str:
    return request.param


@pytest.mark.parametrize('case', list(CASES))
def test_unstorable_result_is_refused_before_writing(kind, case,
                                                     make_backend):
    make_value, reason = CASES[case]
    backend = make_backend(kind)
    with contextlib.closing(backend.get_connection()) as conn:
        book = small_book()
        conn.save_logbook(book)
        ad = book.find('flow').find('atom')
        with make_value() as value:
            ad.put('SUCCESS', value)
            started = time.monotonic()
            with pytest.raises(exc.UnstorableValue) as info:
                conn.update_atom_details(ad)
            assert time.monotonic() - started < 5
        assert str(info.value) == ("Cannot store the results of atom detail"
                                   " 't' (uuid 'atom'): " + reason)
        assert conn.get_atom_details('atom').results == STORED


def test_every_field_and_object_is_named(kind, make_backend):
    backend = make_backend(kind)
    with contextlib.closing(backend.get_connection()) as conn:
        book = small_book()
        conn.save_logbook(book)
        fd = book.find('flow')
        ad = fd.find('atom')
        for field in ('meta', 'revert_results'):
            setattr(ad, field, {'x': iter([])})
            with pytest.raises(exc.UnstorableValue, match=r"^Cannot store the"
                               r" %s of atom detail 't' \(uuid 'atom'\): it"
                               r" holds an iterator" % field):
                conn.update_atom_details(ad)
            setattr(ad, field, {})
        fd.meta['bad'] = b'\xff'
        with pytest.raises(exc.UnstorableValue, match=r"^Cannot store the meta"
                           r" of flow detail 'f' \(uuid 'flow'\): it holds"
                           r" bytes"):
            conn.update_flow_details(fd)
        fd.meta.pop('bad')
        book.meta = cyclic()
        with pytest.raises(exc.UnstorableValue, match=r"^Cannot store the meta"
                           r" of logbook 'b' \(uuid 'book'\): it is cyclic"):
            conn.save_logbook(book)
        # A new book holding an unstorable value: nothing at all is written.
        other = small_book('-2')
        other.find('flow-2').find('atom-2').put('SUCCESS', iter([1]))
        with pytest.raises(exc.UnstorableValue, match="atom detail 't'"
                           r" \(uuid 'atom-2'\)"):
            conn.save_logbook(other)
        with pytest.raises(exc.NotFound):
            conn.get_logbook('book-2')
        stored = conn.get_logbook('book')
        assert stored.meta == {}
        assert stored.find('flow').meta == {'m': 1}
        assert stored.find('flow').find('atom').meta == {}


def test_limits_are_backend_options(kind, make_backend):
    backend = make_backend(kind, max_value_size=100, max_value_depth=5)
    with contextlib.closing(backend.get_connection()) as conn:
        book = small_book()
        conn.save_logbook(book)
        ad = book.find('flow').find('atom')
        for fits in ('x' * 98, nested(5), {'a': {'b': [[1]]}}):
            ad.put('SUCCESS', fits)
            conn.update_atom_details(ad)
            assert conn.get_atom_details('atom').results == fits
        ad.put('SUCCESS', 'x' * 99)
        with pytest.raises(exc.UnstorableValue, match=r"its JSON text takes"
                           r" 101 bytes, over the limit of 100 \(the backend"
                           r" option max_value_size\)$"):
            conn.update_atom_details(ad)
        ad.put('SUCCESS', {'a': {'b': [[[[1]]]]}})
        with pytest.raises(exc.UnstorableValue, match='nested deeper than 5'
                           ' levels'):
            conn.update_atom_details(ad)
        assert conn.get_atom_details('atom').results == {'a': {'b': [[1]]}}


def test_values_at_the_default_limits_round_trip(kind, make_backend):
    backend = make_backend(kind)
    with contextlib.closing(backend.get_connection()) as conn:
        book = small_book()
        conn.save_logbook(book)
        ad = book.find('flow').find('atom')
        deep = {'deep': nested(199), 'text': 'ü' * 1000}
        ad.put('SUCCESS', deep)
        conn.update_atom_details(ad)
        assert conn.get_atom_details('atom').results == deep


# -- the encoder itself -------------------------------------------------------

def test_encoding_is_the_original_json_text():
    encoder = _serialize.Encoder()
    value = {'t': (1, 2.5, None, True), 's': {3}, 'b': b'x', 'k': {1: 'one'},
             'u': 'ünï', 'r': range(2), 'v': {'a': 1}.keys()}
    assert encoder.dumps(value) == (
        '{"t": [1, 2.5, null, true], "s": [3], "b": "x", "k": {"1": "one"},'
        ' "u": "\\u00fcn\\u00ef", "r": [0, 1], "v": ["a"]}')


def test_a_large_value_is_refused_without_encoding_it():
    encoder = _serialize.Encoder(max_size=1000)
    big = ['x'] * 10 ** 6
    started = time.perf_counter()
    with pytest.raises(_serialize.Unstorable, match='at least 1000000 bytes'):
        encoder.dumps(big)
    # A generous bound: encoding it would take ~50 times as long.
    assert time.perf_counter() - started < 0.05


def test_an_endless_iterable_that_is_not_an_iterator_is_bounded():
    class Endless:
        def __iter__(self):
            return itertools.count()

    with pytest.raises(_serialize.Unstorable, match='more than 1000 bytes'):
        _serialize.Encoder(max_size=1000).dumps(Endless())


# -- through an engine (repro_c_unserialisable_results) ------------------------

def test_engine_run_with_unstorable_results_never_hangs(tmp_path):
    calls = []
    reader, writer = os.pipe()
    os.write(writer, b'first line\n')
    results = {'cyclic': cyclic, 'bytes': lambda: b'\xff\xfe',
               'pipe': lambda: os.fdopen(reader, closefd=False)}

    class P(task.Task):
        def execute(self):
            calls.append('P')
            return 'p'

        def revert(self, **kwargs):
            calls.append('revert P')

    class X(task.Task):
        def execute(self, case):
            calls.append('X')
            return results[case]()

        def revert(self, **kwargs):
            calls.append('revert X')

    backend = backends.fetch('sqlite:///%s' % (tmp_path / 'x.db'))
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
    try:
        for case in results:
            calls.clear()
            engine = engines.load(lf.Flow('f').add(P('P'), X('X')),
                                  backend=backend, store={'case': case})
            done = threading.Event()
            outcome: list = []

            def run():
                try:
                    engine.run()
                except BaseException as e:  # noqa: B902 - recorded
                    outcome.append(e)
                done.set()

            threading.Thread(target=run, daemon=True).start()
            assert done.wait(30), 'run() blocked (%s)' % case
            assert len(outcome) == 1 and isinstance(
                outcome[0], exc.UnstorableValue), outcome
            assert "of atom detail 'X'" in str(outcome[0])
            # X was never recorded with its value, nor left RUNNING.
            assert engine.storage.get_atom_state('X') != 'RUNNING'
            assert calls[:2] == ['P', 'X']
        os.set_blocking(reader, False)
        assert os.read(reader, 100) == b'first line\n'
    finally:
        os.close(reader)
        os.close(writer)
        backend.close()


# -- values the database refuses ---------------------------------------------

def _statements(backend) -> list[str]:
    seen: list[str] = []
    sa.event.listen(backend.engine, 'before_cursor_execute',
                    lambda conn, cursor, statement, *args: seen.append(
                        statement.split()[0].upper()))
    return seen


@pytest.mark.mysql
def test_mysql_data_too_long_is_unstorable_and_not_retried(make_backend,
                                                           caplog):
    # Databases made by the original have TEXT (64 KiB) meta columns.
    backend = make_backend('mysql')
    with backend.engine.begin() as sa_conn:
        sa_conn.exec_driver_sql('ALTER TABLE atomdetails MODIFY meta TEXT')
    try:
        with contextlib.closing(backend.get_connection()) as conn:
            book = small_book()
            conn.save_logbook(book)
            ad = book.find('flow').find('atom')
            ad.meta = {'big': 'x' * 70000}
            seen = _statements(backend)
            caplog.set_level(logging.DEBUG, logger='taskflow')
            with pytest.raises(exc.UnstorableValue) as info:
                conn.update_atom_details(ad)
            assert str(info.value) == (
                "Cannot store the 'meta' of atom detail 't' (uuid 'atom'):"
                " the database refused it (DataError: (1406) Data too long"
                " for column 'meta' at row 1)")
            assert seen.count('UPDATE') == 1
            assert 'retrying' not in caplog.text
            assert conn.get_atom_details('atom').meta == {}
    finally:
        with backend.engine.begin() as sa_conn:
            sa_conn.exec_driver_sql(
                'ALTER TABLE atomdetails MODIFY meta LONGTEXT')


@pytest.mark.mysql
def test_mysql_row_over_max_allowed_packet_is_refused_before_sending(
        make_backend, caplog):
    backend = make_backend('mysql', max_value_size=256 * 1024 * 1024)
    with backend.engine.connect() as sa_conn:
        packet = sa_conn.exec_driver_sql('SELECT @@max_allowed_packet'
                                         ).scalar()
    with contextlib.closing(backend.get_connection()) as conn:
        book = small_book()
        conn.save_logbook(book)
        ad = book.find('flow').find('atom')
        ad.put('SUCCESS', 'x' * packet)
        seen = _statements(backend)
        caplog.set_level(logging.DEBUG, logger='taskflow')
        with pytest.raises(exc.UnstorableValue, match=r"^Cannot store the"
                           r" results of atom detail 't' \(uuid 'atom'\): the"
                           r" row would take \d+ bytes, over the MySQL"
                           r" server's max_allowed_packet of %d$" % packet):
            conn.update_atom_details(ad)
        assert seen == []
        assert 'retrying' not in caplog.text
        # Under the limit it is stored.
        ad.put('SUCCESS', 'y' * (packet // 4))
        conn.update_atom_details(ad)
        assert len(conn.get_atom_details('atom').results) == packet // 4


@pytest.mark.postgresql
def test_postgresql_refused_json_is_unstorable_and_not_retried(make_backend,
                                                               caplog):
    backend = make_backend('postgresql')
    with contextlib.closing(backend.get_connection()) as conn:
        book = small_book()
        conn.save_logbook(book)
        ad = book.find('flow').find('atom')
        ad.put('SUCCESS', {'x': float('nan')})  # JSON text NaN: PG refuses it
        seen = _statements(backend)
        caplog.set_level(logging.DEBUG, logger='taskflow')
        with pytest.raises(exc.UnstorableValue, match=r"^Cannot store a value"
                           r" of atom detail 't' \(uuid 'atom'\): the database"
                           r" refused it \(InvalidTextRepresentation: invalid"
                           r" input syntax for type json\)$"):
            conn.update_atom_details(ad)
        assert seen.count('UPDATE') == 1
        assert 'retrying' not in caplog.text
        assert conn.get_atom_details('atom').results == STORED


def test_sqlite_keeps_nan_as_the_original_does(tmp_path):
    backend = backends.fetch('sqlite:///%s' % (tmp_path / 'nan.db'))
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
        book = small_book()
        conn.save_logbook(book)
        ad = book.find('flow').find('atom')
        ad.put('SUCCESS', [float('inf')])
        conn.update_atom_details(ad)
        assert conn.get_atom_details('atom').results == [float('inf')]
    backend.close()
    row = sqlite3.connect(tmp_path / 'nan.db').execute(
        'SELECT results FROM atomdetails').fetchone()
    assert row == ('[Infinity]',)
