"""The etcd board on the real server (``TASKFLOW_TEST_ETCD``)."""

from __future__ import annotations

import contextlib

from taskflow.jobs.backends import impl_etcd
from tests import _services


def make_board(name: str, persistence=None) -> impl_etcd.EtcdJobBoard:
    """A board whose etcd path is derived from ``name`` (not connected)."""
    host, port = _services.require_endpoint('etcd')
    return impl_etcd.EtcdJobBoard(
        name, {'host': host, 'port': port, 'path': 'tf-test-%s' % name},
        persistence=persistence)


def cleanup(board: impl_etcd.EtcdJobBoard) -> None:
    """Delete every key the board's path holds (jobs, trash, history)."""
    import etcd3gw

    host, port = _services.endpoint('etcd')
    client = etcd3gw.client(host=host, port=port, timeout=10)
    for section in ('jobs', '.trash', '.history'):
        with contextlib.suppress(Exception):
            client.delete_prefix('/taskflow/%s/%s/' % (section, board.path))
    with contextlib.suppress(Exception):
        client.session.close()
