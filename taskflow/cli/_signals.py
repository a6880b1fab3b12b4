"""Stopping the long-running commands (``conductor``, ``worker``) the way
supervisors do: SIGTERM."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While the block runs, SIGTERM stops it as Ctrl-C does (a
    ``KeyboardInterrupt`` in the main thread), so systemd, Kubernetes or any
    supervisor gets the same orderly shutdown as a terminal: claimed jobs
    abandoned, connections closed, exit status 0. Unlike SIGINT, which a
    shell leaves ignored for background commands, SIGTERM always reaches
    it. The previous handler is restored afterwards."""
    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread: the caller handles signals
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_until_stopped(run: Callable[[], Any], stop: Callable[[], Any]) -> None:
    """``run()`` until Ctrl-C or SIGTERM interrupts it, then ``stop()``
    (also when ``run()`` fails)."""
    with sigterm_interrupts():
        try:
            run()
        except KeyboardInterrupt:
            pass  # how a conductor or a worker is meant to stop
        finally:
            stop()
