"""Stores are interchangeable with the original TaskFlow 6.5.0.

The same two small programs (``WRITER`` and ``READER`` below) run on the
original (through ``scripts/oracle``) and on taskflow-ng:

* the original writes, taskflow-ng reads: both implementations' dumps of the
  store must match (and taskflow-ng must get the values that were written);
* taskflow-ng writes, the original reads (after its own ``upgrade()``, which
  must change nothing): the dumps must match.

Covered stores: SQLite file, PostgreSQL, MariaDB and the ``dir`` backend.
These tests skip when the oracle cannot be set up (they fail under CI=true).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sqlalchemy as sa

from tests import _services
from tests.backends.conftest import kind_params, server_url

pytestmark = pytest.mark.oracle

WRITER = r'''
import contextlib, datetime, sys
from taskflow.persistence import backends, models
from taskflow.types import failure

conf = {'connection': sys.argv[1]}
if len(sys.argv) > 2:
    conf['path'] = sys.argv[2]

def make_failure(message, cause=None):
    data = {'exception_str': message, 'traceback_str': '  File "x.py"\n',
            'exc_type_names': ['ValueError', 'Exception'], 'version': 1,
            'exc_args': (message,), 'causes': []}
    if cause is not None:
        data['causes'] = [cause.to_dict()]
    return failure.Failure.from_dict(data)

backend = backends.fetch(conf)
with contextlib.closing(backend.get_connection()) as conn:
    conn.upgrade()
    book = models.LogBook('compat-book', uuid='compat-book-uuid')
    book.created_at = datetime.datetime(2024, 1, 2, 3, 4, 5)
    book.meta = {'owner': 'compat', 'nested': {'list': [1, 2.5, None, True]}}
    fd = models.FlowDetail('compat-flow', uuid='compat-fd-uuid')
    fd.state = 'RUNNING'
    fd.meta = {'factory': {'name': '__main__.make_flow', 'args': [],
                           'kwargs': {}}, 'store': {'who': 'world'}}
    book.add(fd)
    book.updated_at = datetime.datetime(2024, 1, 2, 3, 4, 6)
    inject = models.TaskDetail('_TaskFlow_INJECTOR', uuid='compat-inject')
    inject.put('SUCCESS', {'who': 'world'})
    done = models.TaskDetail('done', uuid='compat-done')
    done.put('SUCCESS', {'x': [1, 'a'], 'unicode': 'ünï ✓', 'n': None})
    done.version = '1.0'
    done.meta = {'progress': 1.0, 'progress_details': None}
    failed = models.TaskDetail('failed', uuid='compat-failed')
    failed.put('FAILURE', make_failure('task broke',
                                       make_failure('root cause')))
    failed.put('REVERTED', 'rolled back')
    failed.intention = 'REVERT'
    revert_failed = models.TaskDetail('revert-failed',
                                      uuid='compat-revert-failed')
    revert_failed.put('REVERT_FAILURE', make_failure('revert broke'))
    retry = models.RetryDetail('retry', uuid='compat-retry')
    retry.results = [(1, {'failed': make_failure('attempt 1')}),
                     ('two', {})]
    retry.state = 'SUCCESS'
    retry.intention = 'RETRY'
    for ad in (inject, done, failed, revert_failed, retry):
        fd.add(ad)
    conn.save_logbook(book)
    # The write-through calls an engine makes.
    done.put('SUCCESS', {'final': True, 'tuple': (1, 2)})
    conn.update_atom_details(done)
    added = models.TaskDetail('added-later', uuid='compat-added')
    added.state = 'PENDING'
    added.version = '2.1'
    fd.add(added)
    fd.state = 'SUCCESS'
    fd.meta['duration'] = 1.5
    conn.update_flow_details(fd)
    other = models.LogBook('second-book', uuid='compat-book-2')
    other.created_at = datetime.datetime(2024, 2, 3, 4, 5, 6)
    conn.save_logbook(other)
backend.close()
print('written')
'''

READER = r'''
import contextlib, json, sys
from taskflow.persistence import backends, models

conf = {'connection': sys.argv[1]}
if len(sys.argv) > 2:
    conf['path'] = sys.argv[2]

def when(value):
    return value.isoformat() if value is not None else None

backend = backends.fetch(conf)
out = []
with contextlib.closing(backend.get_connection()) as conn:
    conn.upgrade()
    for book in sorted(conn.get_logbooks(), key=lambda b: b.uuid):
        data = book.to_dict()
        data['created_at'] = when(book.created_at)
        data['updated_at'] = when(book.updated_at)
        data['flows'] = []
        for fd in sorted(book, key=lambda f: f.uuid):
            fdata = fd.to_dict()
            fdata['atoms'] = []
            for ad in sorted(fd, key=lambda a: a.uuid):
                adata = ad.to_dict()
                adata['type'] = models.atom_detail_type(ad)
                fdata['atoms'].append(adata)
            data['flows'].append(fdata)
        out.append(data)
    single = conn.get_atom_details('compat-done')
    out.append({'get_atom_details': single.to_dict()})
    out.append({'lazy_flows': len(conn.get_logbook('compat-book-uuid',
                                                   lazy=True))})
backend.close()
print(json.dumps(out, sort_keys=True))
'''


def run_ng(program: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, '-c', program, *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def comparable(dump: list) -> list:
    """Blank out what the original gets wrong when *reading* (6.5.0 bugs):

    * a retry attempt that has failures reads back with the last failure's
      dict as its value;
    * a book read with its flows gets ``updated_at`` = now (adding the flows
      touches it); taskflow-ng returns the stored value.
    """
    dump = json.loads(json.dumps(dump))
    for book in dump[:-2]:
        if book['flows']:
            book['updated_at'] = '<touched by the original>'
        for fd in book['flows']:
            for ad in fd['atoms']:
                if ad['type'] == 'RETRY_DETAIL':
                    for pair in ad['results']:
                        if pair[1]:
                            pair[0] = '<lost by the original>'
    return dump


def check_ng_dump(dump: list, mysql: bool) -> None:
    """taskflow-ng read exactly what WRITER wrote."""
    (book,) = [b for b in dump[:-2] if b['uuid'] == 'compat-book-uuid']
    assert (book['name'], book['uuid']) == ('compat-book', 'compat-book-uuid')
    assert book['created_at'] == '2024-01-02T03:04:05'
    assert book['updated_at'] == '2024-01-02T03:04:06'
    assert book['meta'] == {'owner': 'compat',
                            'nested': {'list': [1, 2.5, None, True]}}
    (fd,) = book['flows']
    assert (fd['state'], fd['meta']['duration']) == ('SUCCESS', 1.5)
    atoms = {ad['name']: ad for ad in fd['atoms']}
    assert sorted(atoms) == ['_TaskFlow_INJECTOR', 'added-later', 'done',
                             'failed', 'retry', 'revert-failed']
    assert atoms['done']['results'] == {'final': True, 'tuple': [1, 2]}
    assert atoms['done']['version'] == '1.0'
    assert atoms['added-later']['version'] == '2.1'
    assert atoms['failed']['failure']['exception_str'] == 'task broke'
    assert atoms['failed']['failure']['causes'][0]['exception_str'] == \
        'root cause'
    assert atoms['failed']['revert_results'] == 'rolled back'
    assert atoms['failed']['intention'] == 'REVERT'
    assert atoms['revert-failed']['revert_failure']['exception_str'] == \
        'revert broke'
    retry = atoms['retry']
    assert [pair[0] for pair in retry['results']] == [1, 'two']
    assert retry['results'][0][1]['failed']['exception_str'] == 'attempt 1'
    assert (retry['state'], retry['intention']) == ('SUCCESS', 'RETRY')
    assert dump[-1] == {'lazy_flows': 0}


def store_args(kind: str, tmp_path, server_urls, implementation: str
               ) -> list[str]:
    if kind == 'sqlite-file':
        return ['sqlite:///%s' % (tmp_path / 'compat.db')]
    if kind == 'dir':
        return ['dir', str(tmp_path / 'compat-dir')]
    url = sa.engine.make_url(server_url(kind, server_urls))
    if kind == 'postgresql':
        # The oracle has psycopg2, taskflow-ng's test venv psycopg 3.
        driver = 'psycopg2' if implementation == 'oracle' else 'psycopg'
        url = url.set(drivername='postgresql+' + driver)
    return [url.render_as_string(hide_password=False)]


def fresh_store(kind: str, tmp_path, server_urls) -> None:
    if kind in ('postgresql', 'mysql'):
        url = sa.engine.make_url(server_url(kind, server_urls))
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for table in ('atomdetails', 'flowdetails', 'logbooks',
                          'alembic_version'):
                conn.exec_driver_sql('DROP TABLE IF EXISTS %s' % table)
            if kind == 'postgresql':
                conn.exec_driver_sql('DROP TYPE IF EXISTS atom_types')
                conn.exec_driver_sql('DROP TYPE IF EXISTS intention_type')
        engine.dispose()


def schema_snapshot(kind: str, tmp_path, server_urls) -> object:
    """The original's tables, columns, types and alembic revision in a store.

    taskflow-ng's own tables (``taskflow_ng_*``, with their own version
    table) are left out: the original never reads them.
    """
    if kind == 'dir':
        return None
    url = ('sqlite:///%s' % (tmp_path / 'compat.db') if kind == 'sqlite-file'
           else server_url(kind, server_urls))
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        tables = {}
        for table in sorted(inspector.get_table_names()):
            if table.startswith('taskflow_ng_'):
                continue
            tables[table] = [(c['name'], str(c['type']), c['nullable'])
                             for c in inspector.get_columns(table)]
        revision = None
        if 'alembic_version' in tables:
            with engine.connect() as conn:
                revision = conn.exec_driver_sql(
                    'SELECT version_num FROM alembic_version').scalar()
        return tables, revision
    finally:
        engine.dispose()


STORES = kind_params(['sqlite-file', 'dir', 'postgresql', 'mysql'])


@pytest.mark.parametrize('kind', STORES)
def test_original_writes_taskflow_ng_reads(kind, tmp_path, server_urls):
    _services.require_oracle()
    fresh_store(kind, tmp_path, server_urls)
    oracle_args = store_args(kind, tmp_path, server_urls, 'oracle')
    ng_args = store_args(kind, tmp_path, server_urls, 'ng')
    _services.run_oracle(WRITER, *oracle_args)
    before = schema_snapshot(kind, tmp_path, server_urls)
    ng_dump = json.loads(run_ng(READER, *ng_args).stdout)
    # taskflow-ng's upgrade() (run by READER) changed nothing.
    assert schema_snapshot(kind, tmp_path, server_urls) == before
    if kind in ('postgresql', 'mysql'):
        assert before[1] == '00af93df9d77'
    elif kind == 'sqlite-file':
        assert before[1] is None  # the original does not version SQLite
    check_ng_dump(ng_dump, mysql=kind == 'mysql')
    oracle_dump = json.loads(_services.run_oracle(READER,
                                                  *oracle_args).stdout)
    assert comparable(ng_dump) == comparable(oracle_dump)


@pytest.mark.parametrize('kind', STORES)
def test_taskflow_ng_writes_original_reads(kind, tmp_path, server_urls):
    _services.require_oracle()
    fresh_store(kind, tmp_path, server_urls)
    oracle_args = store_args(kind, tmp_path, server_urls, 'oracle')
    ng_args = store_args(kind, tmp_path, server_urls, 'ng')
    run_ng(WRITER, *ng_args)
    before = schema_snapshot(kind, tmp_path, server_urls)
    # The original's upgrade() (run by READER) must find nothing to do.
    oracle_dump = json.loads(_services.run_oracle(READER,
                                                  *oracle_args).stdout)
    assert schema_snapshot(kind, tmp_path, server_urls) == before
    ng_dump = json.loads(run_ng(READER, *ng_args).stdout)
    check_ng_dump(ng_dump, mysql=kind == 'mysql')
    assert comparable(oracle_dump) == comparable(ng_dump)


@pytest.mark.parametrize('kind', kind_params(['sqlite-file', 'postgresql',
                                              'mysql']))
def test_same_schema_as_the_original(kind, tmp_path, server_urls):
    """Columns and types the original creates, compared with ours."""
    _services.require_oracle()
    fresh_store(kind, tmp_path, server_urls)
    _services.run_oracle(WRITER, *store_args(kind, tmp_path, server_urls,
                                             'oracle'))
    theirs = schema_snapshot(kind, tmp_path, server_urls)
    fresh_store(kind, tmp_path, server_urls)
    (tmp_path / 'compat.db').unlink(missing_ok=True)
    run_ng(WRITER, *store_args(kind, tmp_path, server_urls, 'ng'))
    ours = schema_snapshot(kind, tmp_path, server_urls)

    def normalise(snapshot):
        tables, revision = snapshot
        out = {}
        for table, columns in tables.items():
            cols = {}
            for name, type_, nullable in columns:
                # MySQL: we use LONGTEXT for every JSON column (the original
                # has TEXT for some, which caps a value at 64 KiB).
                type_ = type_.replace('LONGTEXT', 'TEXT')
                cols[name] = (type_.split(' COLLATE')[0], nullable)
            out[table] = cols
        return out, revision

    assert normalise(ours) == normalise(theirs)


# -- the JSON text of stored values ------------------------------------------

VALUES_PROGRAM = r'''
import collections, contextlib, datetime, decimal, ipaddress, json, sqlite3
import sys, uuid
from taskflow.persistence import backends, models

class WithItems:
    def items(self):
        return [('k', (1, 2))]

class Iterable:
    def __iter__(self):
        return iter([7, {8}])

values = [
    None, True, 1, -2.5, 10 ** 30, float('inf'), 'text', 'ünïcode ✓',
    '\x00\n"\\', (1, (2, 3)), [1, [2, {'a': None}]], {3}, frozenset(),
    b'bytes', bytearray(b'ab'), memoryview(b'cd'), range(3),
    {'k': 1}.keys(), {'k': 1}.values(), {'k': 1}.items(),
    collections.OrderedDict(b=1, a=2), collections.defaultdict(int, x=1),
    collections.deque([1, 2]), {1: 'int key', 2.5: 'float key',
                                True: 'bool key', None: 'none key'},
    datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
    datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc),
    datetime.date(2024, 1, 2), uuid.UUID(int=5), decimal.Decimal('1.10'),
    ipaddress.ip_address('10.0.0.1'),
    ValueError('boom', 2), WithItems(), Iterable(), json.dumps, len,
    {'nested': [{'deep': [b'x', (1,), {2}]}]},
]
path = sys.argv[1]
backend = backends.fetch('sqlite:///' + path)
with contextlib.closing(backend.get_connection()) as conn:
    conn.upgrade()
    book = models.LogBook('b', uuid='b')
    fd = models.FlowDetail('f', 'f')
    book.add(fd)
    ad = models.TaskDetail('t', 't')
    fd.add(ad)
    conn.save_logbook(book)
    texts = []
    for value in values:
        ad.results = value
        conn.update_atom_details(ad)
        texts.append(sqlite3.connect(path).execute(
            'SELECT results FROM atomdetails').fetchone()[0])
print(json.dumps(texts))
'''


def test_stored_json_text_is_the_originals(tmp_path):
    """Values both implementations store give the same JSON text."""
    ours = json.loads(run_ng(VALUES_PROGRAM, str(tmp_path / 'ng.db')).stdout)
    theirs = json.loads(_services.run_oracle(
        VALUES_PROGRAM, str(tmp_path / 'original.db')).stdout)
    # (An ip network is one difference: the original stores the list of
    # its addresses, taskflow-ng its str(); see docs/behaviour.md.)
    assert len(ours) == len(theirs) == 36
    for index, (mine, original) in enumerate(zip(ours, theirs)):
        if original and ('<function' in original or '<built-in' in original):
            # str() of a function holds its address.
            assert mine.split(' at ')[0] == original.split(' at ')[0]
            continue
        assert mine == original, index
