"""A worker: runs the task classes it was given for worker-based engines.

```python
w = Worker(exchange='test-exchange', topic='test-tasks',
           tasks=['my_tasks:Adder'], url='amqp://guest:guest@localhost:5672//')
w.run()     # blocks; w.stop() from another thread ends it
```

Also runnable: ``python -m taskflow.engines.worker_based.worker --exchange X
--connection-url URL --topic T --task mod:Cls [--task ...] [-v]``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import platform
import socket
import sys
import threading
import types
import uuid
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import Any

from taskflow import task as task_module
from taskflow import version
from taskflow.engines.worker_based import _server
from taskflow.engines.worker_based import protocol

LOG = logging.getLogger(__name__)

_BANNER_HEADER = r"""
___    __
 |    |_
 |ask |low v%s
"""


def _class_name(cls: type) -> str:
    return '%s.%s' % (cls.__module__, cls.__qualname__)


def _task_classes(item: Any) -> list[type]:
    """The task classes one ``tasks`` item stands for (see :class:`Worker`)."""
    if isinstance(item, str):
        module_name, colon, attr = item.partition(':')
        if colon:
            cls = getattr(importlib.import_module(module_name), attr)
            if not (inspect.isclass(cls) and issubclass(cls, task_module.Task)):
                raise TypeError("'%s' is not a task class (a subclass of %s)"
                                % (item, _class_name(task_module.Task)))
            return [cls]
        item = importlib.import_module(item)
    if isinstance(item, types.ModuleType):
        found = []
        for name, value in sorted(vars(item).items()):
            if (not name.startswith('_') and inspect.isclass(value)
                    and issubclass(value, task_module.Task)
                    and value.__module__ == item.__name__ and not inspect.isabstract(value)):
                found.append(value)
        return found
    if inspect.isclass(item) and issubclass(item, task_module.Task):
        return [item]
    raise TypeError("Unknown task item %r: expected a 'module:Class' string, a module"
                    " name, a module or a task class" % (item,))


def endpoints_from(tasks: Iterable[Any]) -> dict[str, type]:
    endpoints: dict[str, type] = {}
    for item in tasks:
        for cls in _task_classes(item):
            endpoints[_class_name(cls)] = cls
    return endpoints


class Worker:
    """Serves task requests from worker-based engines on one topic of an exchange.

    Args:
        exchange: exchange name shared with the engines.
        topic: this worker's topic (its queue is ``<exchange>_<topic>``;
            workers sharing a topic share the work).
        tasks: what it may run: ``'module:Class'`` strings, module names or
            modules (every public task class defined in them), task classes.
        executor: a ``concurrent.futures.Executor`` to run requests on (not
            shut down by the worker); default: a thread pool of
            ``threads_count`` threads owned by the worker.
        url, transport, transport_options: kombu connection settings.
        retry_options: publishing retries (see ``Proxy.DEFAULT_RETRY_OPTIONS``).
        max_message_size: taskflow-ng: larger requests are refused, larger
            results are replaced by a failure (bytes; ``None`` = no limit).
    """

    def __init__(self, exchange: str, topic: str, tasks: Iterable[Any],
                 executor: futures.Executor | None = None, threads_count: int | None = None,
                 url: str | None = None, transport: str | None = None,
                 transport_options: dict[str, Any] | None = None, retry_options: dict[str, Any] | None = None,
                 *, max_message_size: int | None = protocol.MAX_MESSAGE_SIZE) -> None:
        self._topic = topic
        self._exchange = exchange
        self._endpoints = endpoints_from(tasks)
        self._threads_count = threads_count or min(32, (os.cpu_count() or 1) * 5)
        self._owns_executor = executor is None
        if executor is None:
            executor = futures.ThreadPoolExecutor(max_workers=self._threads_count,
                                                  thread_name_prefix='taskflow-worker')
        self._executor = executor
        self.worker_id = '%s:%s:%s' % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8])
        self._server = _server.Server(
            topic, exchange, executor, self._endpoints, url=url, transport=transport,
            transport_options=transport_options, retry_options=retry_options,
            worker_id=self.worker_id, max_message_size=max_message_size,
            # Enough requests in hand to keep every thread busy; the rest stay
            # in the queue for other workers (and are not lost with us).
            prefetch_count=max(2 * self._threads_count, 8))
        self._stopped = threading.Event()

    @property
    def banner(self) -> str:
        details = self._server.proxy.connection_details
        lines = [_BANNER_HEADER.strip('\n') % version.version_string(), '*WBE worker*',
                 'Connection details:',
                 '  Driver => %s' % details['driver'],
                 '  Exchange => %s' % self._exchange,
                 '  Topic => %s' % self._topic,
                 '  Transport => %s' % details['transport'],
                 '  Uri => %s' % details['uri'],
                 'Powered by:',
                 '  Executor => %s' % _class_name(type(self._executor)),
                 '  Thread count => %s' % (self._threads_count if self._owns_executor
                                           else '???'),
                 'Supported endpoints:']
        for index, name in enumerate(sorted(self._endpoints), 1):
            lines.append('  %d. %s' % (index, name))
        lines += ['System details:',
                  '  Hostname => %s' % socket.gethostname(),
                  '  Pid => %s' % os.getpid(),
                  '  Platform => %s' % platform.platform(),
                  '  Python => %s' % sys.version.split('\n')[0],
                  '  Thread id => %s' % threading.get_ident(),
                  '  Worker id => %s' % self.worker_id]
        return '\n'.join(lines)

    def run(self, display_banner: bool = True,
            banner_writer: Callable[[str], Any] | None = None) -> None:
        """Serve requests until :meth:`stop` is called (blocks)."""
        if display_banner:
            banner = self.banner
            if banner_writer is None:
                for line in banner.splitlines():
                    LOG.info(line)
            else:
                banner_writer(banner)
        self._stopped.clear()
        self._server.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker is listening (or ``timeout``)."""
        return self._server.wait(timeout)

    def stop(self) -> None:
        """Stop serving; requests already running finish and are answered first."""
        if self._owns_executor:
            self._executor.shutdown(wait=True)
        self._server.stop()
        self._stopped.set()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='worker.py')
    parser.add_argument('--exchange', required=True)
    parser.add_argument('--connection-url', required=True)
    parser.add_argument('--topic', required=True)
    parser.add_argument('--task', action='append', default=[])
    parser.add_argument('-v', '--verbose', action='store_true')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    worker = Worker(exchange=args.exchange, topic=args.topic, tasks=args.task,
                    url=args.connection_url)
    try:
        worker.run()
    except KeyboardInterrupt:
        worker.stop()


if __name__ == '__main__':
    main()
