"""Finding and building conductors: ``fetch('blocking' | 'nonblocking',
name, jobboard, ...)`` (other kinds from the ``taskflow.conductors`` entry
points)."""

from __future__ import annotations

from typing import Any

from taskflow import exceptions as exc
from taskflow import logging
from taskflow.utils import plugins

__all__ = ['CONDUCTOR_NAMESPACE', 'fetch']

LOG = logging.getLogger(__name__)

CONDUCTOR_NAMESPACE = 'taskflow.conductors'

_BUILTIN = {
    'blocking': 'taskflow.conductors.backends.impl_blocking:BlockingConductor',
    'nonblocking': 'taskflow.conductors.backends.impl_nonblocking:NonBlockingConductor',
}


def _load_class(kind: str, namespace: str) -> type:
    cls = plugins.find_class(kind, namespace, _BUILTIN, CONDUCTOR_NAMESPACE)
    if cls is None:
        raise exc.NotFound('Could not find conductor %s' % kind)
    return cls


def fetch(kind: str, name: str, jobboard: Any,
          namespace: str = CONDUCTOR_NAMESPACE, **kwargs: Any) -> Any:
    """Build a conductor of ``kind`` called ``name`` working on ``jobboard``.

    ``kwargs`` go to the conductor's constructor (``persistence=``,
    ``engine=``, ``engine_options=``, ``claim_expiry=``, ``max_attempts=``,
    ``allowed_factory_modules=``, ...). An unknown kind raises
    ``exceptions.NotFound``.
    """
    LOG.debug('Looking for %r conductor driver in %r', kind, namespace)
    cls = _load_class(kind, namespace)
    return cls(name, jobboard, **kwargs)
