"""Shared by the ``sql_*`` kinds: one scratch database per server and test
process (dropped at exit); boards of one name share a namespace."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import tempfile

from taskflow.jobs.backends import impl_sql
from tests import _services

_DATABASES: dict[str, str] = {}
_SQLITE_DIR = tempfile.mkdtemp(prefix='taskflow-ng-sqlboards-')
atexit.register(shutil.rmtree, _SQLITE_DIR, True)


def database_url(kind: str) -> str:
    """A scratch database on ``kind``'s server ('sqlite': a file per process)."""
    if kind == 'sqlite':
        return 'sqlite:///%s' % os.path.join(_SQLITE_DIR, 'boards.db')
    if kind not in _DATABASES:
        url = _services.scratch_database(kind)
        _DATABASES[kind] = url
        atexit.register(_services.drop_scratch_database, url)
    return _DATABASES[kind]


def make_board(kind: str, name: str, persistence=None, **conf) -> impl_sql.SQLJobBoard:
    namespace = 'ns-%s' % hashlib.sha1(name.encode()).hexdigest()[:16]
    conf = {'board': 'sql', 'connection': database_url(kind),
            'namespace': namespace, **conf}
    return impl_sql.SQLJobBoard(name, conf, persistence=persistence)


def cleanup(board: impl_sql.SQLJobBoard) -> None:
    with contextlib.suppress(Exception):
        if not board.connected:
            board.connect()
        board.clear()
