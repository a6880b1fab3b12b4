"""Finding and building jobboards from a configuration.

``conf`` is a dict whose ``'board'`` key names the kind, or a URI string
(``'redis://host:6379/?namespace=x'``: the kind from the scheme, the rest
merged into the configuration). Built-in kinds are looked up in a table;
other names in the ``taskflow.jobboards`` entry points, as with the original.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from taskflow import exceptions as exc
from taskflow import logging
from taskflow.jobs import base
from taskflow.utils import misc
from taskflow.utils import plugins

__all__ = ['BOARD_NAMESPACE', 'backend', 'fetch']

LOG = logging.getLogger(__name__)

BOARD_NAMESPACE = 'taskflow.jobboards'

# kind -> 'module:Class' (imported lazily: each needs its own client library).
_BUILTIN = {
    'redis': 'taskflow.jobs.backends.impl_redis:RedisJobBoard',
    'zookeeper': 'taskflow.jobs.backends.impl_zookeeper:ZookeeperJobBoard',
    'etcd': 'taskflow.jobs.backends.impl_etcd:EtcdJobBoard',
    'sql': 'taskflow.jobs.backends.impl_sql:SQLJobBoard',
    'sqlite': 'taskflow.jobs.backends.impl_sql:SQLJobBoard',
    'postgresql': 'taskflow.jobs.backends.impl_sql:SQLJobBoard',
    'mysql': 'taskflow.jobs.backends.impl_sql:SQLJobBoard',
}


def _load_class(kind: str, namespace: str) -> type:
    cls = plugins.find_class(kind, namespace, _BUILTIN, BOARD_NAMESPACE)
    if cls is None:
        raise exc.NotFound('Could not find jobboard %s' % kind)
    return cls


def fetch(name: str, conf: str | dict, namespace: str = BOARD_NAMESPACE,
          **kwargs: Any) -> base.JobBoard:
    """Build the board ``conf`` names (not connected yet).

    ``kwargs`` (typically ``client=`` and ``persistence=``) go to the
    board's constructor. An unknown kind raises ``exceptions.NotFound``.
    """
    kind, conf = misc.extract_driver_and_conf(conf, 'board')
    if isinstance(kind, str) and kind.split('+', 1)[0] in _BUILTIN:
        kind = kind.split('+', 1)[0]  # 'mysql+pymysql' is the sql board
    LOG.debug('Looking for %r jobboard driver in %r', kind, namespace)
    cls = _load_class(kind, namespace)
    return cls(name, conf, **kwargs)


@contextlib.contextmanager
def backend(name: str, conf: str | dict, namespace: str = BOARD_NAMESPACE,
            **kwargs: Any) -> Iterator[base.JobBoard]:
    """Fetch a board, connect it, yield it and close it on exit."""
    board = fetch(name, conf, namespace=namespace, **kwargs)
    board.connect()
    try:
        yield board
    finally:
        board.close()
