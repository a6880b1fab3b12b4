"""``board.notifier`` of every jobboard: it tells the board when a callback
registers, so the board opens its event connection only once it is wanted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from taskflow.types import notifier

__all__ = ['WatchedNotifier']


class WatchedNotifier(notifier.Notifier):
    """A notifier that calls ``on_first_listener`` when registered on."""

    def __init__(self, on_first_listener: Callable[[], None]) -> None:
        super().__init__()
        self._on_first_listener = on_first_listener

    def register(self, event_type: Any, callback: Callable, *args: Any,
                 **kwargs: Any) -> None:
        super().register(event_type, callback, *args, **kwargs)
        self._on_first_listener()
