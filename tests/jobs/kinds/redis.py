"""The Redis board for the contract tests (namespace derived from the name)."""

from __future__ import annotations

from taskflow.jobs.backends import impl_redis
from tests import _services


def make_board(name: str, persistence=None) -> impl_redis.RedisJobBoard:
    host, port = _services.require_endpoint('redis')
    return impl_redis.RedisJobBoard(
        name, {'host': host, 'port': port, 'namespace': 'tf-test-%s' % name},
        persistence=persistence)


def cleanup(board: impl_redis.RedisJobBoard) -> None:
    client = board._client
    keys = list(client.scan_iter(match=board.namespace + b':*', count=1000))
    if keys:
        client.delete(*keys)
