"""Fixtures giving each persistence backend kind to the contract tests.

Server databases are created fresh once per test session (and dropped at
the end); each test then starts from an empty, upgraded store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from taskflow.persistence import backends
from tests import _services

ALL_KINDS = ['memory', 'dir', 'sqlite-file', 'sqlite-memory', 'postgresql',
             'mysql']
# Kinds several processes/connections can share.
SHARED_KINDS = ['dir', 'sqlite-file', 'postgresql', 'mysql']
SQL_SERVER_KINDS = ['postgresql', 'mysql']
_MARKS = {'postgresql': [pytest.mark.postgresql], 'mysql': [pytest.mark.mysql]}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        'markers', 'oracle: runs the original TaskFlow 6.5.0 (scripts/oracle)'
        ' as a black box')


def kind_params(kinds: list[str]) -> list:
    return [pytest.param(kind, id=kind, marks=_MARKS.get(kind, []))
            for kind in kinds]


@pytest.fixture(scope='session')
def server_urls() -> Iterator[dict[str, str]]:
    """Lazily created scratch databases, dropped when the session ends."""
    created: dict[str, str] = {}
    yield created
    for url in created.values():
        with contextlib.suppress(Exception):
            _services.drop_scratch_database(url)


def server_url(kind: str, server_urls: dict[str, str]) -> str:
    if kind not in server_urls:
        server_urls[kind] = _services.scratch_database(kind)
    return server_urls[kind]


def make_conf(kind: str, tmp_path, server_urls: dict[str, str]) -> dict:
    """A ``fetch()`` configuration for a backend kind."""
    if kind == 'memory':
        return {'connection': 'memory'}
    if kind == 'dir':
        return {'connection': 'dir', 'path': str(tmp_path / 'tf-dir')}
    if kind == 'sqlite-file':
        return {'connection': 'sqlite:///%s' % (tmp_path / 'tf.db')}
    if kind == 'sqlite-memory':
        return {'connection': 'sqlite://'}
    return {'connection': server_url(kind, server_urls)}


@pytest.fixture
def make_backend(tmp_path, server_urls):
    """``make_backend(kind, **options)`` -> an upgraded, empty backend
    (closed after); ``options`` are added to its configuration."""
    made = []

    def factory(kind: str, fresh: bool = True, **options):
        conf = make_conf(kind, tmp_path, server_urls)
        conf.update(options)
        backend = backends.fetch(conf)
        made.append(backend)
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
            if fresh:
                conn.clear_all()
                conn.upgrade()
        return backend

    yield factory
    for backend in made:
        backend.close()


@pytest.fixture(params=kind_params(ALL_KINDS))
def kind(request) -> str:
    return request.param


@pytest.fixture
def backend(kind, make_backend):
    return make_backend(kind)


@pytest.fixture
def conn(backend):
    with contextlib.closing(backend.get_connection()) as connection:
        yield connection
