"""The dir backend's ``max_cache_size`` option and ``file_cache``.

Reads are cached by file path; a cached file is only used while it is the
file that was read (files are replaced on every write), so changes made by
another backend or another process are always seen, however fast they come.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap

import pytest

from taskflow import exceptions as exc
from taskflow.persistence import backends
from taskflow.persistence import models
from taskflow.persistence.backends import impl_dir


@pytest.mark.parametrize('size', [0, -1, '0', -5.5, 0.9])
def test_sizes_below_one_are_refused_before_anything_else(size):
    for conf in ({'path': '/nonexistent', 'max_cache_size': size},
                 {'max_cache_size': size}):   # no path: the size is checked first
        with pytest.raises(ValueError, match='^Maximum cache size must be greater than'
                                             ' or equal to one$'):
            impl_dir.DirBackend(conf)
    with pytest.raises(ValueError, match='^Maximum cache size'):
        backends.fetch({'connection': 'dir', 'path': '/nonexistent', 'max_cache_size': size})


@pytest.mark.parametrize('size, error', [('x', ValueError), ([], TypeError)])
def test_sizes_that_are_not_numbers(size, error):
    with pytest.raises(error):
        impl_dir.DirBackend({'path': '/nonexistent', 'max_cache_size': size})


@pytest.mark.parametrize('size, maxsize', [(1, 1), (2, 2), ('2', 2), (2.5, 2), (True, 1)])
def test_a_size_makes_an_lru_cache(size, maxsize, tmp_path):
    cache = impl_dir.DirBackend({'path': str(tmp_path), 'max_cache_size': size}).file_cache
    assert type(cache).__name__ == 'LRUCache'
    assert (cache.maxsize, cache.currsize) == (maxsize, 0)
    assert repr(cache) == 'LRUCache({}, maxsize=%d, currsize=0)' % maxsize


def test_no_size_makes_an_unbounded_dict(tmp_path):
    assert impl_dir.DirBackend({'path': str(tmp_path)}).file_cache == {}
    assert type(impl_dir.DirBackend({'path': str(tmp_path)}).file_cache) is dict


def save_book(backend, meta=None):
    book = models.LogBook('b', uuid='bk')
    book.meta = meta or {}
    detail = models.FlowDetail('f', 'fu')
    detail.add(models.TaskDetail('t', 'tu'))
    book.add(detail)
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
        conn.save_logbook(book)


def cached_files(backend):
    return sorted(os.path.relpath(path, backend.path) for path in backend.file_cache)


def test_reads_fill_the_cache_and_writes_leave_it(tmp_path):
    backend = impl_dir.DirBackend({'path': str(tmp_path)})
    save_book(backend)
    assert cached_files(backend) == []
    with contextlib.closing(backend.get_connection()) as conn:
        conn.get_logbook('bk')
    assert cached_files(backend) == ['atom_details/tu/metadata', 'books/bk/metadata',
                                     'flow_details/fu/metadata']
    entry = backend.file_cache[os.path.join(backend.path, 'books', 'bk', 'metadata')]
    assert sorted(entry) == ['data', 'mtime']
    assert isinstance(entry['data'], str) and isinstance(entry['mtime'], float)
    assert '"uuid": "bk"' in entry['data']


def test_an_lru_cache_keeps_the_latest_files(tmp_path):
    save_book(impl_dir.DirBackend({'path': str(tmp_path)}))
    backend = impl_dir.DirBackend({'path': str(tmp_path), 'max_cache_size': 2})
    with contextlib.closing(backend.get_connection()) as conn:
        assert conn.get_logbook('bk').find('fu').find('tu').name == 't'
    assert cached_files(backend) == ['atom_details/tu/metadata', 'flow_details/fu/metadata']


def test_changes_by_another_backend_are_seen_at_once(tmp_path):
    reader = impl_dir.DirBackend({'path': str(tmp_path)})
    writer = impl_dir.DirBackend({'path': str(tmp_path)})
    save_book(writer)
    with contextlib.closing(reader.get_connection()) as conn:
        for i in range(50):   # faster than the file system's clock ticks
            save_book(writer, meta={'round': i})
            assert conn.get_logbook('bk').meta == {'round': i}


def test_changes_by_another_process_are_seen(tmp_path):
    backend = impl_dir.DirBackend({'path': str(tmp_path)})
    save_book(backend)
    writer = textwrap.dedent('''
        import contextlib, sys
        from taskflow.persistence.backends import impl_dir
        backend = impl_dir.DirBackend({'path': sys.argv[1]})
        with contextlib.closing(backend.get_connection()) as conn:
            book = conn.get_logbook('bk')
            book.meta = {'by': 'other process'}
            conn.save_logbook(book)
            detail = book.find('fu')
            detail.state = 'RUNNING'
            conn.update_flow_details(detail)
    ''')
    with contextlib.closing(backend.get_connection()) as conn:
        assert conn.get_logbook('bk').meta == {}
        subprocess.run([sys.executable, '-c', writer, str(tmp_path)], check=True, timeout=60)
        book = conn.get_logbook('bk')
        assert book.meta == {'by': 'other process'} and book.find('fu').state == 'RUNNING'


def test_a_deleted_book_is_not_served_from_the_cache(tmp_path):
    backend = impl_dir.DirBackend({'path': str(tmp_path)})
    save_book(backend)
    with contextlib.closing(backend.get_connection()) as conn:
        conn.get_logbook('bk')
        conn.destroy_logbook('bk')
        with pytest.raises(exc.NotFound):
            conn.get_logbook('bk')


def test_a_file_corrupted_after_it_was_cached_is_reported(tmp_path):
    backend = impl_dir.DirBackend({'path': str(tmp_path)})
    save_book(backend)
    metadata = os.path.join(backend.path, 'books', 'bk', 'metadata')
    with contextlib.closing(backend.get_connection()) as conn:
        conn.get_logbook('bk', lazy=True)
        with open(metadata, 'w') as fh:
            fh.write('{"trunc')
        with pytest.raises(exc.StorageFailure):
            conn.get_logbook('bk', lazy=True)
