"""Backends for the operator-control tests: every kind, real servers included."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from taskflow import operate
from taskflow.persistence import backends
from tests import _services

_MARKS = {'postgresql': [pytest.mark.postgresql], 'mysql': [pytest.mark.mysql]}
ALL_KINDS = ['sqlite', 'dir', 'memory', 'postgresql', 'mysql']
# Kinds another process can open by URL.
SHARED_KINDS = ['sqlite', 'dir', 'postgresql']


def kinds(names: list[str]) -> list:
    return [pytest.param(name, id=name, marks=_MARKS.get(name, [])) for name in names]


@pytest.fixture(scope='session')
def server_databases() -> Iterator[dict[str, str]]:
    made: dict[str, str] = {}
    yield made
    for url in made.values():
        with contextlib.suppress(Exception):
            _services.drop_scratch_database(url)


@pytest.fixture
def backend_url(request, tmp_path, server_databases) -> str:
    """A URL for the backend kind the test is parametrized with (``kind``)."""
    kind = request.param if hasattr(request, 'param') else 'sqlite'
    return url_for(kind, tmp_path, server_databases)


def url_for(kind: str, tmp_path, server_databases: dict[str, str]) -> str:
    if kind == 'sqlite':
        return 'sqlite:///%s' % (tmp_path / 'operate.db')
    if kind == 'dir':
        path = tmp_path / 'operate-dir'
        path.mkdir(exist_ok=True)
        return 'dir://%s' % path
    if kind == 'memory':
        return 'memory://'
    if kind not in server_databases:
        server_databases[kind] = _services.scratch_database(kind)
    return server_databases[kind]


@pytest.fixture
def open_backend(tmp_path, server_databases):
    """``open_backend(kind)`` -> an upgraded backend object (closed after the test)."""
    opened = []

    def make(kind: str):
        url = url_for(kind, tmp_path, server_databases)
        if kind == 'memory':
            backend = backends.fetch('memory://')
            with contextlib.closing(backend.get_connection()) as conn:
                conn.upgrade()
        else:
            backend = operate.open_backend(url, create=True)
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        with contextlib.suppress(Exception):
            backend.close()
