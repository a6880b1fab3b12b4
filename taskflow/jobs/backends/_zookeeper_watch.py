"""Watching the children of the ZooKeeper board's path, at a bounded cost.

ZooKeeper's child watches fire once and say only *that* the children
changed: learning what changed means listing them all again. kazoo's
``ChildrenWatch`` re-lists on every change, so a board holding N jobs pays
N names per post, claim and consume (and so does every other board watching
the same path): quadratic, most of a busy board's CPU.

:class:`ChildrenWatch` re-lists as soon as a change arrives when the board
is quiet, but after a listing it waits ``gap_factor`` times as long as that
listing took (``MIN_GAP`` at least) before the next one; changes arriving
meanwhile are folded into that next listing. Small boards see every change within a millisecond
or two; a board with thousands of jobs spends at most about
``1 / (1 + gap_factor)`` of one thread on watching, and lags by at most
``max_gap`` seconds. Nothing is lost: the listing after a gap reflects
every change before it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from taskflow import logging

try:
    from kazoo import exceptions as k_exc
    from kazoo.protocol.states import KazooState
except ImportError as e:  # the 'zookeeper' extra is missing
    raise ImportError('The ZooKeeper jobboard needs kazoo, which is not'
                      ' installed: pip install taskflow[zookeeper]') from e

LOG = logging.getLogger(__name__)

#: A listing is followed by a pause of this many times its duration.
GAP_FACTOR = 4.0
#: The shortest and the longest pause between listings (seconds) when
#: changes keep coming: how stale the watch may get.
MIN_GAP = 0.025
MAX_GAP = 0.1
#: Pause after a failed listing (seconds), doubling up to MAX_BACKOFF.
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 2.0


class ChildrenWatch:
    """Calls ``func(children)`` with the children of ``path`` now and after
    each change (from a daemon thread; see the module's doc), until
    :meth:`stop`."""

    def __init__(self, client: Any, path: str,
                 func: Callable[[list[str]], Any], name: str = '',
                 gap_factor: float = GAP_FACTOR,
                 max_gap: float = MAX_GAP) -> None:
        self._client = client
        self._path = path
        self._func = func
        self._gap_factor = gap_factor
        self._max_gap = max_gap
        self._cond = threading.Condition()
        self._changed = False      # a change arrived since the last listing
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, daemon=True,
            name='zookeeper-jobboard-watch-%s' % name)

    def start(self) -> None:
        """Start watching: the first listing follows at once (from the
        watching thread, which retries it while the connection is away)."""
        self._client.add_listener(self._on_state)
        self._changed = True
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (a listing under way still delivers)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._client.remove_listener(self._on_state)

    # -- kazoo's callbacks (its event thread: they must not block) ----------

    def _on_event(self, event: Any) -> None:
        if event.type != 'NONE':  # 'NONE': a session event, see _on_state
            self._wake()

    def _on_state(self, state: Any) -> None:
        # Reconnected: changes made while away fired no watch; look again.
        if state == KazooState.CONNECTED:
            self._wake()

    def _wake(self) -> None:
        with self._cond:
            self._changed = True
            self._cond.notify_all()

    # -- the watching thread ---------------------------------------------------

    def _list(self) -> float:
        """List (re-arming the watch) and deliver; the seconds it took."""
        started = time.monotonic()
        children = self._client.get_children(self._path, watch=self._on_event)
        self._func(children)
        return time.monotonic() - started

    def _run(self) -> None:
        gap = 0.0
        backoff = FIRST_BACKOFF
        while True:
            with self._cond:
                # Pause first (changes arriving meanwhile do not end it, a
                # stop does), then wait for a change.
                resume = time.monotonic() + gap
                while not self._stopped:
                    left = resume - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                while not self._changed and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                self._changed = False
            try:
                took = self._list()
            except k_exc.NoNodeError:
                LOG.warning('ZooKeeper board path %s is gone: no longer'
                            ' watching it', self._path)
                return
            except Exception:
                # Connection trouble: the reconnection wakes us; until then
                # retry now and then (the session may have been replaced).
                LOG.debug('Listing %s for its watch failed', self._path,
                          exc_info=True)
                with self._cond:
                    self._changed = True
                gap, backoff = backoff, min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = FIRST_BACKOFF
            gap = min(self._max_gap, max(MIN_GAP, took * self._gap_factor))
