"""A flow run by separate processes in ``test_processes.py``.

``python -m tests.security._crashing_flow start URL BOOK_UUID MARKER`` starts
the flow (its password in the store); the second task kills its own process
the first time it runs (``SIGKILL``: nothing is cleaned up).
``python -m tests.security._crashing_flow resume URL BOOK_UUID MARKER``
resumes it in a new process, where that task fails, quoting its password.

Both print every event (``PrintingListener``), log everything at TRACE to
stderr with ``DynamicLoggingListener``, and print the type of what ``run()``
raised.
Masked keys come only from the ``TASKFLOW_MASK_KEYS`` environment variable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys

import taskflow.engines
from taskflow import task
from taskflow.listeners import logging as logging_listeners
from taskflow.listeners import printing
from taskflow.patterns import linear_flow as lf
from taskflow.persistence import backends
from taskflow.persistence import models


class Login(task.Task):
    def execute(self, password):
        return {'session': password + '-session', 'user': 'bob'}


class Crash(task.Task):
    def __init__(self, marker):
        super().__init__('crash')
        self.marker = marker

    def execute(self, password, login):
        if not os.path.exists(self.marker):
            with open(self.marker, 'w'):
                pass
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError('login %s refused (session %s)' % (password, login['session']))


def make_flow(marker):
    return lf.Flow('crashing').add(Login('login', provides='login'), Crash(marker))


def _run(engine):
    with printing.PrintingListener(engine), \
            logging_listeners.DynamicLoggingListener(engine, level=5):
        try:
            engine.run()
        except Exception as e:
            # The task's own exception comes back as it was raised (its text
            # is the program's business): only its type is printed.
            print('raised %s' % type(e).__name__)


def main(argv):
    phase, url, book_uuid, marker = argv
    logging.basicConfig(level=1, stream=sys.stderr)
    backend = backends.fetch({'connection': url})
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
    if phase == 'start':
        book = models.LogBook('processes', uuid=book_uuid)
        engine = taskflow.engines.load_from_factory(
            make_flow, factory_args=[marker], store={'password': os.environ['SECRET']},
            book=book, backend=backend)
    else:
        with contextlib.closing(backend.get_connection()) as conn:
            [flow_detail] = list(conn.get_logbook(book_uuid))
        engine = taskflow.engines.load_from_detail(flow_detail, backend=backend)
    _run(engine)
    backend.close()


if __name__ == '__main__':
    main(sys.argv[1:])
