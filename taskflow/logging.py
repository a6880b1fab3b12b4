"""Taskflow's thin layer over :mod:`logging`.

Adds the ``TRACE`` (alias ``BLATHER``) level, 5, below ``DEBUG`` for very
verbose engine logging, and a logger adapter with ``trace()`` (and the old
``warn()``).  Every library logger gets a ``NullHandler`` when it has none, so
the library never prints records (not even warnings, via logging's "last
resort" handler) unless the application configures logging; all loggers live
under the ``taskflow`` namespace, e.g.
``logging.basicConfig(level=taskflow.logging.TRACE)`` shows everything.
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
