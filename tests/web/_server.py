"""Running the real ``taskflow`` command (a web server, a flow) as subprocesses."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def taskflow_command() -> list[str]:
    """The installed ``taskflow`` console script (next to this interpreter)."""
    script = Path(sys.executable).parent / 'taskflow'
    if script.exists():
        return [str(script)]
    return [sys.executable, '-m', 'taskflow.cli']


def env() -> dict[str, str]:
    """Environment where the test flows (``tests.operate.flows``) import."""
    return dict(os.environ, PYTHONPATH=str(REPO), TASKFLOW_DEBUG='1')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def web_server(backend_url: str, *args: str) -> Iterator[str]:
    """``taskflow web`` on a free loopback port; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(taskflow_command() + ['web', '--backend', backend_url, '--port',
                                                  str(port), *args],
                            cwd=str(REPO), env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = 'http://127.0.0.1:%d' % port
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + '/api/books', timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError('taskflow web did not start: %s'
                                         % (proc.stdout.read() if proc.poll() is not None
                                            else 'timeout'))
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
