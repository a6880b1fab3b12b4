"""fetch()/backend(), base classes, the memory file system, the SQL
backend's configuration (SQLite pragmas, password masking), helpers."""

from __future__ import annotations

import contextlib
import logging
import sqlite3

import pytest
import sqlalchemy as sa

from taskflow import exceptions as exc
from taskflow.persistence import backends
from taskflow.persistence import base
from taskflow.persistence import models
from taskflow.persistence.backends import impl_dir
from taskflow.persistence.backends import impl_memory
from taskflow.persistence.backends import impl_sqlalchemy
from taskflow.utils import persistence_utils as p_utils
from tests import _services


# -- fetch ----------------------------------------------------------------------

@pytest.mark.parametrize('conf', ['memory', 'memory://', 'memory:',
                                  'memory:foo', {'connection': 'memory'},
                                  {'connection': 'memory:'}])
def test_fetch_memory_spellings(conf):
    assert isinstance(backends.fetch(conf), impl_memory.MemoryBackend)


def test_fetch_takes_any_uri_scheme():
    # As the original: 'name:' is a URI whose scheme names the backend.
    with pytest.raises(ValueError, match='^Empty path is disallowed$'):
        backends.fetch('dir:')
    with pytest.raises(ValueError, match='^Empty path is disallowed$'):
        backends.fetch('file:')
    with pytest.raises(sa.exc.ArgumentError):
        backends.fetch('sqlite:')
    # Not a URI: the whole string is the name (IPv6 hosts as the original).
    with pytest.raises(exc.NotFound, match="looking for '//h/p'$"):
        backends.fetch('//h/p')
    backend = backends.fetch('memory://u@[::1]:80/p')
    assert backend._conf['hostname'] == '::1:80'


def test_fetch_merges_uri_parts_into_conf():
    backend = backends.fetch('memory://u:p@h:12/path?a=1&b=2&a=3')
    assert backend._conf == {
        'connection': 'memory://u:p@h:12/path?a=1&b=2&a=3',
        'username': 'u', 'password': 'p', 'port': 12, 'hostname': 'h:12',
        'a': '3', 'b': '2'}
    keep = backends.fetch({'connection': 'memory://a:b@c:9/x?y=z',
                           'username': 'keep'})
    assert keep._conf['username'] == 'keep'
    assert keep._conf['hostname'] == 'c:9'


@pytest.mark.parametrize('conf, name', [('nope', 'nope'),
                                        ('nope://x', 'nope'),
                                        ('nope+driver://x', 'nope')])
def test_fetch_unknown_backend(conf, name):
    with pytest.raises(exc.NotFound, match=r"^Could not find backend %s: No"
                       r" 'taskflow.persistence' driver found, looking for"
                       r" '%s'$" % (name, name)):
        backends.fetch(conf)


def test_fetch_other_namespace_uses_entry_points_only():
    with pytest.raises(exc.NotFound, match="No 'nope' driver found"):
        backends.fetch('memory', namespace='nope')


def test_fetch_dialect_suffix_and_kwargs(tmp_path):
    backend = backends.fetch('sqlite+pysqlite:///%s' % (tmp_path / 'x.db'))
    assert isinstance(backend, impl_sqlalchemy.SQLAlchemyBackend)
    backend.close()
    with pytest.raises(TypeError):
        backends.fetch('memory', deep_copy=False)


def test_fetch_dir_needs_a_path(tmp_path):
    with pytest.raises(ValueError, match='^Empty path is disallowed$'):
        backends.fetch({'connection': 'dir'})
    with pytest.raises(ValueError, match='^Empty path is disallowed$'):
        backends.fetch('file:///%s' % tmp_path)
    backend = backends.fetch({'connection': 'file:///%s' % tmp_path,
                              'path': str(tmp_path / 'd')})
    assert isinstance(backend, impl_dir.DirBackend)


def test_zookeeper_explains_it_is_unavailable():
    with pytest.raises((ImportError, NotImplementedError), match='kazoo|'
                       'not implemented'):
        backends.fetch('zookeeper://localhost:2181')


def test_backend_conf_must_be_a_dict():
    class Minimal(base.Backend):
        def get_connection(self):
            raise NotImplementedError

        def close(self):
            pass

    assert Minimal(None)._conf == {} and Minimal([])._conf == {}
    with pytest.raises(TypeError, match=r"^Configuration dictionary expected"
                       r" not '5' \(<class 'int'>\)$"):
        Minimal(5)
    with pytest.raises(TypeError):
        base.Backend({})


def test_backend_context_manager_upgrades_and_closes(tmp_path):
    with backends.backend({'connection': 'dir',
                           'path': str(tmp_path / 'd')}) as backend:
        assert (tmp_path / 'd' / 'books').is_dir()
        assert isinstance(backend, impl_dir.DirBackend)


# -- memory file system ------------------------------------------------------------

def test_memory_filesystem_api():
    fs = impl_memory.FakeFilesystem()
    with pytest.raises(exc.NotFound, match=r"^Path '/a' not found$"):
        fs['/a/b'] = 1
    fs['/a/../c'] = 2
    assert fs.ls('/') == ['c'] and fs['/c'] == 2
    assert fs.get('/zz', 'dflt') == 'dflt'
    assert fs.join('/a', 'b', 'c') == '/a/b/c'
    assert fs.split('/a/b/c') == ('/a/b', 'c')
    assert fs.normpath('/a//b/./c/../d/') == '/a/b/d'
    with pytest.raises(ValueError, match='start with /'):
        fs.ls('books')
    fs.ensure_path('/x/y/z')
    fs.symlink('/c', '/x/link')
    assert fs['/x/link'] == 2
    assert fs.pformat() == ('/\n|__c\n|__x\n   |__y\n   |  |__z\n'
                            '   |__link (link to /c)')
    assert fs.ls_r('/') == ['x', 'c', 'x/link', 'x/y', 'x/y/z']
    assert fs.ls_r('/x', absolute=True) == ['/x/link', '/x/y', '/x/y/z']
    with pytest.raises(ValueError, match="^Can not delete '/x', it has 2"
                       " children$"):
        fs.delete('/x')
    fs.delete('/x', recursive=True)
    del fs['/c']
    assert fs.ls('/') == [] and fs.pformat() == '/'
    value = {'a': [1]}
    fs['/k'] = value
    assert fs['/k'] == value and fs['/k'] is not value
    assert fs['/k']['a'] is not value['a']


def test_memory_backend_layout():
    backend = backends.fetch('memory')
    with contextlib.closing(backend.get_connection()) as conn:
        assert backend.memory.ls('/') == ['books', 'flow_details',
                                          'atom_details']
        book = models.LogBook('b', uuid='bu')
        fd = models.FlowDetail('f', uuid='fu')
        fd.add(models.TaskDetail('t', uuid='tu'))
        book.add(fd)
        conn.save_logbook(book)
        assert backend.memory.pformat() == '\n'.join([
            '/', '|__books', '|  |__bu', '|     |__fu (link to'
            ' /flow_details/fu)', '|__flow_details', '|  |__fu',
            '|     |__tu (link to /atom_details/tu)', '|__atom_details',
            '   |__tu'])
        assert backend.memory['/books/bu/fu'] == fd.to_dict()
        assert backend.memory['/atom_details/tu']['type'] == 'TASK_DETAIL'
        with pytest.raises(exc.NotFound, match=r"^Path '/books/zz' not"
                           r" found$"):
            conn.get_logbook('zz')
        conn.clear_all()
        assert backend.memory.ls('/') == []


# -- SQL backend configuration ------------------------------------------------------

def test_sqlite_file_is_durable_by_default(tmp_path):
    """WAL with synchronous=FULL unless NORMAL is asked for explicitly."""
    path = tmp_path / 'wal.db'
    backend = backends.fetch('sqlite:///%s' % path)
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
        with backend.engine.connect() as sa_conn:
            assert sa_conn.exec_driver_sql('PRAGMA journal_mode').scalar() \
                == 'wal'
            # 2 == FULL
            assert sa_conn.exec_driver_sql('PRAGMA synchronous').scalar() \
                == 2
    backend.close()
    assert sqlite3.connect(path).execute('PRAGMA journal_mode').fetchone() \
        == ('wal',)
    normal = backends.fetch({'connection': 'sqlite:///%s' % path,
                             'sqlite_synchronous': 'normal'})
    with normal.engine.connect() as sa_conn:
        assert sa_conn.exec_driver_sql('PRAGMA synchronous').scalar() == 1
        assert sa_conn.exec_driver_sql('PRAGMA journal_mode').scalar() \
            == 'wal'
    normal.close()
    with pytest.raises(ValueError, match='sqlite_synchronous'):
        backends.fetch({'connection': 'sqlite:///%s' % path,
                        'sqlite_synchronous': 'sometimes'})


def test_sqlite_has_no_alembic_version_table(tmp_path):
    path = tmp_path / 'plain.db'
    backend = backends.fetch('sqlite:///%s' % path)
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
    backend.close()
    names = {row[0] for row in sqlite3.connect(path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    # The original's three, and taskflow-ng's own (which the original ignores).
    assert names == {'logbooks', 'flowdetails', 'atomdetails', 'taskflow_ng_flow_leases',
                     'taskflow_ng_jobs', 'taskflow_ng_job_attempts'}


def test_password_is_masked_everywhere(caplog):
    url = 'postgresql+psycopg://tfuser:s3cr3t-pw@127.0.0.1:1/nodb'
    caplog.set_level(logging.DEBUG)
    backend = backends.fetch({'connection': url, 'max_retries': 0})
    assert 's3cr3t-pw' not in repr(backend)
    assert '***' in repr(backend)
    with contextlib.closing(backend.get_connection()) as conn:
        with pytest.raises(exc.StorageFailure) as info:
            conn.validate()
    assert 's3cr3t-pw' not in str(info.value)
    assert 's3cr3t-pw' not in info.value.args[0]
    assert 's3cr3t-pw' not in caplog.text
    backend.close()


def test_storage_failure_chains_the_database_error(tmp_path):
    path = tmp_path / 'broken.db'
    path.write_bytes(b'this is not a database' * 100)
    backend = backends.fetch('sqlite:///%s' % path)
    with contextlib.closing(backend.get_connection()) as conn:
        with pytest.raises(exc.StorageFailure) as info:
            conn.get_logbook('x')
    assert info.value.cause is info.value.__cause__
    assert info.value.cause is not None
    backend.close()


def test_existing_engine_is_not_disposed(tmp_path):
    import sqlalchemy as sa

    engine = sa.create_engine('sqlite:///%s' % (tmp_path / 'e.db'))
    backend = impl_sqlalchemy.SQLAlchemyBackend({'connection': 'unused'},
                                                engine=engine)
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
        conn.save_logbook(models.LogBook('b', uuid='b'))
    backend.close()
    with engine.connect() as sa_conn:
        assert sa_conn.exec_driver_sql('SELECT name FROM logbooks'
                                       ).scalar() == 'b'


@pytest.mark.postgresql
def test_postgresql_upgrade_records_the_original_head(make_backend):
    backend = make_backend('postgresql')
    from taskflow.persistence.backends.sqlalchemy import migration
    with backend.engine.connect() as sa_conn:
        assert migration.current_revision(sa_conn) == '00af93df9d77'


# -- persistence_utils --------------------------------------------------------------

class _Flow:
    def __init__(self, name):
        self.name = name


def test_create_flow_detail():
    fd = p_utils.create_flow_detail(_Flow('made'))
    assert (fd.name, fd.state, len(fd)) == ('made', None, 0)
    unnamed = p_utils.create_flow_detail(_Flow(None))
    assert unnamed.name == unnamed.uuid
    assert p_utils.create_flow_detail(_Flow('')).name == ''
    book = models.LogBook('b')
    fd = p_utils.create_flow_detail(_Flow('in-book'), book=book,
                                    meta={'k': 1})
    assert book.find(fd.uuid) is fd and fd.meta == {'k': 1}


def test_temporary_helpers_save_to_the_backend():
    backend = backends.fetch('memory')
    book = p_utils.temporary_log_book(backend)
    assert book.name == 'tmp'
    book2, fd = p_utils.temporary_flow_detail(backend, meta={'a': 1})
    assert (book2.name, fd.name, fd.meta, len(book2)) == (
        'tmp', 'tmp-flow-detail', {'a': 1}, 1)
    fd3 = p_utils.create_flow_detail(_Flow('q'), backend=backend)
    with contextlib.closing(backend.get_connection()) as conn:
        assert sorted(b.name for b in conn.get_logbooks()) == ['tmp'] * 3
        assert conn.get_flow_details(fd3.uuid).name == 'q'
    assert p_utils.temporary_log_book().name == 'tmp'
