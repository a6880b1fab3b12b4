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

Secrets: once masking is switched on (:func:`mask_keys`, the
``TASKFLOW_MASK_KEYS`` environment variable, or a listener that met a masked
value), every record of a ``taskflow`` logger is masked and scrubbed as it is
created, whatever its level and wherever it goes (see
:mod:`taskflow.secrets`).
"""

from __future__ import annotations

import logging
from typing import Any

from taskflow import _secrets_memory
from taskflow import secrets as _secrets
from taskflow.secrets import mask_keys as mask_keys  # re-exported: the usual place to look

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


class _TraceLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]

    def trace(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log ``msg % args`` at the ``TRACE`` level."""
        self.log(TRACE, msg, *args, **kwargs)

    def warn(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log ``msg % args`` at the ``WARNING`` level."""
        self.warning(msg, *args, **kwargs)


def getLogger(name: str = _BASE, extra: dict[str, Any] | None = None) -> _TraceLoggerAdapter:
    """Return a logger adapter (with ``trace``/``warn``) for ``name``.

    A ``NullHandler`` is added to the logger when it has no handler.
    """
    logger = logging.getLogger(name)
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return _TraceLoggerAdapter(logger, extra=extra)


def _install_redacting_record_factory() -> None:
    """Mask and scrub records of ``taskflow`` loggers as they are made.

    A record factory sees every record, whichever module (``logging`` or
    ``taskflow.logging``) created its logger, before any filter or handler
    (including logging's last-resort handler); one logger filter per logger
    would miss loggers created later.  Installed once, the first time
    masking is switched on; the factory in place before is still called.
    """
    previous = logging.getLogRecordFactory()

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _secrets.is_active() and _is_taskflow_record(record.name):
            _secrets.redact_record(record)
        return record

    logging.setLogRecordFactory(make_record)


def _is_taskflow_record(name: str) -> bool:
    return name == _BASE or name.startswith(_BASE + '.')


_secrets_memory.activation_hook(_install_redacting_record_factory)
