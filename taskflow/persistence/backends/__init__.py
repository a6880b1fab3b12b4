"""Finding and building persistence backends from a configuration.

``fetch(conf)`` accepts ``'memory'``, ``'memory:'``, ``'memory://'``, an
SQLAlchemy URL such as ``'sqlite:///tf.db'``, or a dict with a
``'connection'`` key (plus backend options); see
``misc.extract_driver_and_conf``. Built-in backends are looked up in a
table; unknown names fall back to ``importlib.metadata`` entry points in the
``namespace`` group, so third party backends register the same way they do
for the original.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from taskflow import exceptions as exc
from taskflow import logging
from taskflow.persistence import base
from taskflow.utils import misc
from taskflow.utils import plugins

__all__ = ['BACKEND_NAMESPACE', 'backend', 'fetch']

LOG = logging.getLogger(__name__)

BACKEND_NAMESPACE = 'taskflow.persistence'

# name -> 'module:Class' (imported lazily: the SQL backend needs SQLAlchemy).
_BUILTIN = {
    'memory': 'taskflow.persistence.backends.impl_memory:MemoryBackend',
    'dir': 'taskflow.persistence.backends.impl_dir:DirBackend',
    'file': 'taskflow.persistence.backends.impl_dir:DirBackend',
    'sqlite': 'taskflow.persistence.backends.impl_sqlalchemy:SQLAlchemyBackend',
    'mysql': 'taskflow.persistence.backends.impl_sqlalchemy:SQLAlchemyBackend',
    'postgresql':
        'taskflow.persistence.backends.impl_sqlalchemy:SQLAlchemyBackend',
    'zookeeper': 'taskflow.persistence.backends.impl_zookeeper:ZkBackend',
}


def _parse_conf(conf: str | dict) -> tuple[str, dict]:
    """Return ``(backend name, conf dict)`` (URI parts merged into conf)."""
    name, conf = misc.extract_driver_and_conf(conf, 'connection')
    # 'mysql+pymysql' selects 'mysql'; the dialect stays in the URL. (find()
    # as the original: a non-string name fails the same way.)
    plus = name.find('+')
    if plus != -1:
        name = name[:plus]
    return name, conf


def _load_class(name: str, namespace: str) -> type:
    cls = plugins.find_class(name, namespace, _BUILTIN, BACKEND_NAMESPACE)
    if cls is not None:
        return cls
    raise exc.NotFound("Could not find backend %s: No '%s' driver found,"
                       " looking for '%s'" % (name, namespace, name))


def fetch(conf: str | dict, namespace: str = BACKEND_NAMESPACE,
          **kwargs: Any) -> base.Backend:
    """Build the backend that ``conf`` names (see the module docstring).

    ``kwargs`` go to the backend constructor. Unknown backends raise
    ``exceptions.NotFound``.
    """
    name, conf = _parse_conf(conf)
    LOG.debug('Looking for %r backend driver in %r', name, namespace)
    cls = _load_class(name, namespace)
    return cls(conf, **kwargs)


@contextlib.contextmanager
def backend(conf: str | dict, namespace: str = BACKEND_NAMESPACE,
            **kwargs: Any) -> Iterator[base.Backend]:
    """Fetch a backend, upgrade its schema, yield it and close it on exit."""
    be = fetch(conf, namespace=namespace, **kwargs)
    try:
        with contextlib.closing(be.get_connection()) as conn:
            conn.upgrade()
        yield be
    finally:
        be.close()
