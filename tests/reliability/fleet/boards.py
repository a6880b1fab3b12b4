"""The boards a fleet runs on, and the persistence each trial gets.

``--board`` names: ``sql-sqlite`` (the SQL board in the trial's SQLite
persistence file), ``sql-postgresql`` (the SQL board in a scratch PostgreSQL
database that is also the persistence), ``redis``, ``zookeeper``, ``etcd``
(the board on that server, persistence in a SQLite file).

A trial's board is identified by its *board name*, unique per trial: the
driver and every conductor process build their board from (kind, name,
persistence URL), so they all share the trial's jobs and nobody else's.
Redis, ZooKeeper and etcd boards come from ``tests/jobs/kinds/<kind>.py``
when that module exists (the boards' own test registration), else from the
spec's configuration keys.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
from collections.abc import Iterator
from typing import Any

from taskflow.jobs import backends as job_backends
from taskflow.persistence import backends as persistence_backends

KINDS = ('sql-sqlite', 'sql-postgresql', 'redis', 'zookeeper', 'etcd')
_SERVERS = {'redis': 'redis', 'zookeeper': 'zookeeper', 'etcd': 'etcd'}


class Unavailable(Exception):
    """The board's server cannot be used here (the reason says why)."""


def check_available(kind: str) -> None:
    """Raise :class:`Unavailable` when ``kind``'s server does not answer."""
    from tests import _services
    if kind not in KINDS:
        raise ValueError('unknown board %r (known: %s)' % (kind, ', '.join(KINDS)))
    if kind == 'sql-postgresql':
        problem = _services._probe('postgresql')
        if problem:
            raise Unavailable('postgresql: %s' % problem)
    elif kind in _SERVERS:
        host, port = _services.endpoint(_SERVERS[kind])
        if not _services._port_open(host, port):
            raise Unavailable('%s: nothing listens on %s:%s' % (kind, host, port))
    try:
        job_backends.fetch('probe', _conf(kind, 'probe', 'sqlite://'))
    except Exception as e:  # the board's implementation is not there (yet)
        raise Unavailable('%s board cannot be built: %s: %s'
                          % (kind, type(e).__name__, e)) from e


@contextlib.contextmanager
def persistence_url(kind: str, folder: str) -> Iterator[str]:
    """A fresh persistence database for one trial (dropped afterwards)."""
    if kind == 'sql-postgresql':
        from tests import _services
        url = _services.scratch_database('postgresql')
        try:
            yield url
        finally:
            with contextlib.suppress(Exception):
                _services.drop_scratch_database(url)
    else:
        yield 'sqlite:///' + os.path.join(folder, 'persistence.db')


def open_persistence(url: str, upgrade: bool = False) -> Any:
    """The SQL persistence backend at ``url`` (schema upgraded if asked)."""
    store = persistence_backends.fetch({'connection': url})
    if upgrade:
        with contextlib.closing(store.get_connection()) as conn:
            conn.upgrade()
    return store


def _kinds_module(kind: str) -> Any:
    if kind not in _SERVERS:
        return None
    try:
        return importlib.import_module('tests.jobs.kinds.%s' % kind)
    except ImportError:
        return None


def _conf(kind: str, board_name: str, url: str) -> dict:
    from tests import _services
    if kind.startswith('sql-'):
        return {'board': 'sql', 'connection': url, 'namespace': board_name}
    host, port = _services.endpoint(_SERVERS[kind])
    if kind == 'redis':
        return {'board': 'redis', 'host': host, 'port': port,
                'namespace': board_name}
    if kind == 'zookeeper':
        return {'board': 'zookeeper', 'hosts': '%s:%s' % (host, port),
                'path': '/taskflow-fleet/%s' % board_name, 'timeout': 4}
    return {'board': 'etcd', 'host': host, 'port': port,
            'path': 'taskflow-fleet/%s' % board_name}


def make_board(kind: str, board_name: str, persistence: Any, url: str) -> Any:
    """The trial's board (not connected): the same jobs in every process."""
    module = _kinds_module(kind)
    if module is not None:
        return module.make_board(board_name, persistence=persistence)
    return job_backends.fetch(board_name, _conf(kind, board_name, url),
                              persistence=persistence)


def cleanup(kind: str, board: Any) -> None:
    """Remove what the trial left on the board's server."""
    module = _kinds_module(kind)
    if module is not None:
        module.cleanup(board)


_PID = re.compile(r'pid(\d+)')


def conductor_name(slot: int) -> str:
    """The name a conductor process claims with (its pid inside, so the
    driver knows whom to kill from ``find_owner``)."""
    return 'fleet%d-pid%d' % (slot, os.getpid())


def owner_pid(owner: str | None) -> int | None:
    """The pid in a claim owner's name (``None`` if not a fleet conductor)."""
    if not owner:
        return None
    found = _PID.search(owner)
    return int(found.group(1)) if found else None
