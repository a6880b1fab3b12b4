"""Thread helpers: daemon threads and a bundle of threads started/stopped together."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from typing import Any


def is_alive(thread: threading.Thread | None) -> bool:
    """Whether ``thread`` exists and is alive (``False`` for ``None``)."""
    if not thread:
        return False
    return thread.is_alive()


def get_ident() -> int:
    """The current thread's identifier."""
    return threading.get_ident()


def get_optimal_thread_count(default: int = 2) -> int:
    """A good thread count for the current system (cpu count + 1)."""
    try:
        return multiprocessing.cpu_count() + 1
    except NotImplementedError:
        return default


def daemon_thread(target: Callable[..., Any], *args: Any,
                  **kwargs: Any) -> threading.Thread:
    """An **unstarted** daemon thread running ``target(*args, **kwargs)``."""
    thread = threading.Thread(target=target, args=args, kwargs=kwargs)
    # Daemon threads do not keep the interpreter alive at exit.
    thread.daemon = True
    return thread


def no_op(*args: Any, **kwargs: Any) -> None:
    """Do nothing (a default callback)."""


class _ThreadBuilder:
    """A thread factory and its callbacks, plus the thread it made (if any)."""

    __slots__ = ('thread_factory', 'before_start', 'after_start',
                 'before_join', 'after_join', 'thread')

    def __init__(self, thread_factory: Callable[[], threading.Thread],
                 before_start: Callable, after_start: Callable,
                 before_join: Callable, after_join: Callable) -> None:
        self.thread_factory = thread_factory
        self.before_start = before_start
        self.after_start = after_start
        self.before_join = before_join
        self.after_join = after_join
        self.thread: threading.Thread | None = None


class ThreadBundle:
    """A group of threads that are started and stopped (joined) together."""

    def __init__(self) -> None:
        self._threads: list[_ThreadBuilder] = []
        self._lock = threading.Lock()

    def bind(self, thread_factory: Callable[[], threading.Thread],
             before_start: Callable | None = None,
             after_start: Callable | None = None,
             before_join: Callable | None = None,
             after_join: Callable | None = None) -> None:
        """Add a thread factory; the callbacks get the thread as argument.

        :raises ValueError: if ``thread_factory`` (required) or a given
            callback is not callable.
        """
        for name, callback, optional in (
                ('thread_factory', thread_factory, False),
                ('before_start', before_start, True),
                ('after_start', after_start, True),
                ('before_join', before_join, True),
                ('after_join', after_join, True)):
            if not callable(callback) and not (optional and callback is None):
                raise ValueError("Provided callback for argument '%s' must"
                                 " be callable" % name)
        with self._lock:
            self._threads.append(_ThreadBuilder(
                thread_factory, before_start or no_op, after_start or no_op,
                before_join or no_op, after_join or no_op))

    def start(self) -> int:
        """Create and start the threads not yet started; returns how many."""
        count = 0
        with self._lock:
            for builder in self._threads:
                if builder.thread is not None:
                    continue
                thread = builder.thread_factory()
                builder.before_start(thread)
                thread.start()
                builder.thread = thread
                builder.after_start(thread)
                count += 1
        return count

    def stop(self) -> int:
        """Join the started threads (last started first); returns how many."""
        count = 0
        with self._lock:
            for builder in reversed(self._threads):
                thread = builder.thread
                if thread is None:
                    continue
                builder.before_join(thread)
                thread.join()
                builder.thread = None
                builder.after_join(thread)
                count += 1
        return count

    def __len__(self) -> int:
        return len(self._threads)
