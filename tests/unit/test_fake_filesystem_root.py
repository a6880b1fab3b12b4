"""``FakeFilesystem`` (the memory backend's tree): deleting the root, '//' paths."""

from __future__ import annotations

import pytest

from taskflow import exceptions as exc
from taskflow.persistence.backends import impl_memory


def filled(*paths):
    fs = impl_memory.FakeFilesystem()
    for path in paths:
        fs[path] = path
    return fs


@pytest.mark.parametrize('paths', [(), ('/a',), ('/a', '/a/b', '/c')])
def test_the_root_is_never_deleted_without_recursive(paths):
    fs = filled(*paths)
    with pytest.raises(ValueError, match=r"^Can not delete '/'$"):
        fs.delete('/')
    with pytest.raises(ValueError, match=r"^Can not delete '/'$"):
        fs.delete('/a/..', recursive=False)
    assert sorted(fs.ls('/')) == sorted(p[1:] for p in paths if p.count('/') == 1)


def test_deleting_the_root_detaches_its_children_but_still_lists_them():
    fs = filled('/a', '/a/b')
    fs['/'] = 'root value'
    fs.symlink('/a/b', '/l')
    fs.delete('/', recursive=True)
    # Listed as before...
    assert fs.ls('/') == ['a', 'l']
    assert fs.ls_r('/', absolute=True) == ['/l', '/a', '/a/b']
    assert fs.pformat() == '/\n|__a\n|  |__b\n|__l (link to /a/b)'
    # ...but gone for lookups; the root keeps its value.
    assert fs['/'] == 'root value'
    assert fs.get('/a', 'gone') == 'gone' and fs.get('/l', 'gone') == 'gone'
    with pytest.raises(exc.NotFound, match=r"^Path '/a' not found$"):
        fs.ls('/a')
    with pytest.raises(exc.NotFound, match=r"^Path '/a' not found$"):
        fs['/a/b'] = 'new'


def test_new_children_after_deleting_the_root_are_listed_after_the_detached_ones():
    fs = filled('/a', '/a/b')
    fs.symlink('/a/b', '/l')
    fs.delete('/', recursive=True)
    fs['/z'] = 3
    fs['/a'] = 4
    fs.ensure_path('/a/c')
    assert fs.ls('/') == ['a', 'l', 'z', 'a']
    assert fs.ls('/', absolute=True) == ['/a', '/l', '/z', '/a']
    assert fs.ls_r('/') == ['a', 'z', 'l', 'a', 'a/c', 'a/b']
    assert fs.pformat() == '/\n|__a\n|  |__b\n|__l (link to /a/b)\n|__z\n|__a\n   |__c'
    assert fs['/a'] == 4 and fs.ls('/a') == ['c']
    fs.symlink('/a', '/l2')
    assert fs['/l2'] == 4
    fs.delete('/', recursive=True)
    assert fs.ls('/') == ['a', 'l', 'z', 'a', 'l2'] and fs.get('/z') is None
    fs.clear()
    assert fs.ls('/') == [] and fs.pformat() == '/'


def test_double_slash_paths_are_never_found():
    fs = filled('/a')
    assert fs.normpath('//') == '//' and fs.normpath('//a') == '//a'
    assert fs.normpath('///a//b/./c/..') == '/a/b'
    with pytest.raises(exc.NotFound, match=r"^Path '//' not found$"):
        fs.delete('//')
    with pytest.raises(exc.NotFound, match=r"^Path '//' not found$"):
        fs['//x'] = 1
    with pytest.raises(exc.NotFound, match=r"^Path '//a' not found$"):
        fs['//a']
    with pytest.raises(ValueError, match='^This filesystem can only normalize paths that'
                                         ' are not empty$'):
        fs.normpath('')
