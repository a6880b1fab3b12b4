"""Taskflow's thin layer over :mod:`logging`.

Adds the ``TRACE`` (alias ``BLATHER``) level, 5, below ``DEBUG`` for very
verbose engine logging, and a logger adapter with ``trace()`` (and the old
``warn()``).  All loggers live under the ``taskflow`` namespace, e.g.
``logging.basicConfig(level=taskflow.logging.TRACE)`` shows everything.

:func:`getLogger` gives the logger it wraps a ``NullHandler`` when it has
none, as the original's does.  Modules that log through it (tasks, engines,
persistence, most listeners) therefore never print unless the application
configures logging, while the few modules the original logs from with plain
loggers (``taskflow.types.notifier``, ``taskflow.listeners.claims``) do:
with no logging configured, their warnings reach stderr through Python's
last-resort handler.  Nothing is added to the ``taskflow`` logger itself
unless ``getLogger()`` is called for it.
"""

from __future__ import annotations

import logging
from typing import Any

_BASE = __name__.split('.', 1)[0]

# Same values as the stdlib levels.
CRITICAL = logging.CRITICAL
DEBUG = logging.DEBUG
ERROR = logging.ERROR
FATAL = logging.FATAL
INFO = logging.INFO
NOTSET = logging.NOTSET
WARN = logging.WARN
WARNING = logging.WARNING

# Lower than DEBUG: extremely verbose output.
BLATHER = 5
TRACE = BLATHER


class _TraceLoggerAdapter(logging.LoggerAdapter):

    def trace(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log ``msg % args`` at the ``TRACE`` level."""
        self.log(TRACE, msg, *args, **kwargs)

    def warn(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log ``msg % args`` at the ``WARNING`` level."""
        self.warning(msg, *args, **kwargs)


def getLogger(name: str = _BASE, extra: dict | None = None) -> _TraceLoggerAdapter:
    """Return a logger adapter (with ``trace``/``warn``) for ``name``.

    A ``NullHandler`` is added to the logger when it has no handler.
    """
    logger = logging.getLogger(name)
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return _TraceLoggerAdapter(logger, extra=extra)
