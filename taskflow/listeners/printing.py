"""A listener that prints flow and task state changes to stdout or stderr.

Masked values (see :mod:`taskflow.secrets`) are hidden in the lines and
tracebacks it prints.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterable
from typing import Any

from taskflow import secrets
from taskflow.listeners import base


class PrintingListener(base.DumpingListener):
    """Prints every flow and task state change (and failure tracebacks).

    :param stderr: print to ``sys.stderr`` instead of ``sys.stdout`` (the
        stream current when the listener is created).
    """

    def __init__(self, engine: Any,
                 task_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR,
                 flow_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR,
                 retry_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR,
                 stderr: bool = False) -> None:
        super().__init__(engine, task_listen_for=task_listen_for,
                         flow_listen_for=flow_listen_for,
                         retry_listen_for=retry_listen_for)
        self._file = sys.stderr if stderr else sys.stdout

    def _dump(self, message: str, *args: Any, **kwargs: Any) -> None:
        text = message % args
        if secrets.is_active():
            text = secrets.scrub(text)
        print(text, file=self._file)
        exc_info = kwargs.get('exc_info')
        if exc_info is not None:
            clean = secrets.safe_traceback(exc_info)
            if clean is None:
                traceback.print_exception(exc_info[0], exc_info[1], exc_info[2],
                                          file=self._file)
            else:
                self._file.write(clean)
