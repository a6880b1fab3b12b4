"""The ZooKeeper board for the contract tests (a path per board name)."""

from __future__ import annotations

from taskflow.jobs.backends import impl_zookeeper
from tests import _services


def make_board(name: str, persistence=None) -> impl_zookeeper.ZookeeperJobBoard:
    host, port = _services.require_endpoint('zookeeper')
    conf = {'hosts': '%s:%s' % (host, port),
            'path': '/taskflow-test/%s/jobs' % name}
    return impl_zookeeper.ZookeeperJobBoard(name, conf,
                                            persistence=persistence)


def cleanup(board) -> None:
    # Everything the board made lives under its path's parent.
    parent = board.path.rsplit('/', 1)[0]
    board._client.delete(parent, recursive=True)
