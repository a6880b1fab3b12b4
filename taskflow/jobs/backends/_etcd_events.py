"""POSTED / REMOVAL notifications of the etcd board, from an etcd watch.

Nothing watches until someone registers on the board's notifier: then one
daemon thread per board holds a watch on the board's job keys and turns the
creation of a ``job<N>.data`` key into ``POSTED`` and its deletion into
``REMOVAL``. Unlike Redis pub/sub this sees every board's moves, the
original's included. The watch resumes from the last revision it saw after a
reconnect, so nothing posted meanwhile is missed (unless etcd compacted that
far: then it starts again from the present).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from taskflow import logging
from taskflow.jobs.backends import _background

__all__ = ['Watcher']

LOG = logging.getLogger(__name__)

#: Seconds one watch request lives while nothing happens (how fast
#: :meth:`Watcher.stop` takes effect); the next resumes where it ended.
READ_TIMEOUT = 1.0


class Watcher:
    """A daemon thread that calls ``deliver(event)`` for every event (the
    gateway's JSON: ``type``, ``kv``, ``prev_kv``) under ``prefix`` until
    :meth:`stop`.

    ``open_watch(payload, timeout)`` posts a watch request and returns the
    streaming response (a context manager with ``iter_lines()``);
    ``range_end`` is the end of the prefix's range (base64, as etcd wants).
    """

    def __init__(self, name: str, key: str, range_end: str,
                 open_watch: Callable[[dict, float], Any],
                 deliver: Callable[[dict], None]) -> None:
        self._name = name
        self._key = key
        self._range_end = range_end
        self._open_watch = open_watch
        self._deliver = deliver
        #: Set once the first watch is in place (later changes are seen).
        self.watching = threading.Event()
        self._next_revision = 0  # 0: from now on
        self._loop = _background.ReconnectingLoop(
            'etcd-jobboard-events-%s' % name,
            'Jobboard %r: the etcd watch' % name, self._watch_once)

    def start(self) -> None:
        self._loop.start()

    def stop(self, timeout: float = 2 * READ_TIMEOUT) -> bool:
        """Stop; whether the thread ended within ``timeout`` seconds."""
        return self._loop.stop(timeout)

    def _watch_once(self, connected: _background.Connected) -> None:
        """One watch request, read until it times out or the watcher stops
        (a read timeout is its normal end, not a failure)."""
        import requests

        request: dict[str, Any] = {'key': self._key,
                                   'range_end': self._range_end,
                                   'prev_kv': True}
        if self._next_revision:
            request['start_revision'] = self._next_revision
        try:
            with self._open_watch({'create_request': request},
                                  READ_TIMEOUT) as resp:
                for line in resp.iter_lines():
                    if self._loop.stopping:
                        return
                    if line and not self._handle(json.loads(line), connected):
                        return
        except (requests.ConnectionError, requests.Timeout) as e:
            if not _timed_out(e):
                raise

    def _handle(self, message: dict[str, Any],
                connected: _background.Connected) -> bool:
        """Deliver one response's events; ``False`` when etcd compacted the
        revisions we were to resume from (the next watch starts from now)."""
        result = message.get('result') or {}
        if result.get('compact_revision'):
            LOG.warning('Jobboard %r: etcd compacted its history up to'
                        ' revision %s: changes before it were not seen',
                        self._name, result['compact_revision'])
            self._next_revision = 0
            return False
        revision = int(result.get('header', {}).get('revision', 0))
        if result.get('created'):
            if not self._next_revision and revision:
                self._next_revision = revision + 1
            self.watching.set()
            connected()
        for event in result.get('events') or ():
            kv = event.get('kv') or {}
            mod = int(kv.get('mod_revision', 0))
            try:
                self._deliver(event)
            except Exception:
                LOG.debug('Jobboard %r: ignoring an unusable watch event',
                          self._name, exc_info=True)
            if mod:
                self._next_revision = max(self._next_revision, mod + 1)
        return True


def _timed_out(error: Exception) -> bool:
    import requests

    if isinstance(error, requests.Timeout):
        return True
    # A read timeout of a streamed body surfaces as a ConnectionError that
    # wraps urllib3's ReadTimeoutError.
    return 'timed out' in str(error).lower() or 'timeout' in type(
        error.args[0] if error.args else error).__name__.lower()
