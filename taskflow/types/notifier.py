"""Event notification: :class:`Notifier`, :class:`RestrictedNotifier`, :class:`Listener`.

Callbacks are called as ``callback(event_type, *args, **kwargs,
details=details_copy)``; listeners registered for :attr:`Notifier.ANY` are called first,
then those of the specific event, each in registration order.  A callback
that raises is logged and never stops the others.

Notifying must cost next to nothing when nobody listens (the engine notifies
on every state change), and ``notify`` is also called from worker threads
(task progress).  So the registry is copy-on-write: every change builds a new
``{event_type: (Listener, ...)}`` dict under a lock and swaps it in, while
readers only take a reference to the current dict and never lock.
"""

from __future__ import annotations

import contextlib
import copy as _copy
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any


# A plain logger (no NullHandler), as the original: with no logging configured,
# a callback that raised is still reported on stderr.
LOG = logging.getLogger(__name__)


def _same_callback(a: Callable, b: Callable) -> bool:
    # Bound methods compare equal when they wrap the same function of the
    # same object, which is exactly what "same callback" should mean.
    return a is b or a == b


class Listener:
    """A registered callback (plus its arguments and details filter)."""

    __slots__ = ('_callback', '_args', '_kwargs', '_details_filter')

    def __init__(self, callback: Callable, args: Iterable[Any] | None = None,
                 kwargs: dict | None = None,
                 details_filter: Callable[[Any], Any] | None = None) -> None:
        self._callback = callback
        self._details_filter = details_filter
        self._args = tuple(args) if args else ()
        self._kwargs = dict(kwargs) if kwargs else {}

    @property
    def callback(self) -> Callable:
        """The callback that will be called."""
        return self._callback

    @property
    def details_filter(self) -> Callable[[Any], Any] | None:
        """Callable deciding (from the details) if the callback is called."""
        return self._details_filter

    @property
    def args(self) -> tuple:
        """Extra positional arguments passed to the callback."""
        return self._args

    @property
    def kwargs(self) -> dict:
        """Extra keyword arguments passed to the callback."""
        return self._kwargs

    def __call__(self, event_type: Any, details: Any) -> None:
        """Call the callback, unless the details filter rejects ``details``."""
        if self._details_filter is not None:
            if not self._details_filter(details):
                return
        if self._kwargs:
            # As the reference: ``details`` goes last, replacing any
            # ``'details'`` key, so argument errors name the same keyword.
            kwargs = dict(self._kwargs)
            kwargs['details'] = details
            self._callback(event_type, *self._args, **kwargs)
        else:
            self._callback(event_type, *self._args, details=details)

    def is_equivalent(self, callback: Callable,
                      details_filter: Callable | None = None) -> bool:
        """Whether this listener has the same callback and details filter."""
        if not _same_callback(self._callback, callback):
            return False
        if details_filter is None:
            return self._details_filter is None
        if self._details_filter is None:
            return False
        return _same_callback(self._details_filter, details_filter)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Listener):
            return self.is_equivalent(other._callback, other._details_filter)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        text = "<%s object at 0x%x calling into '%r'" % (
            type(self).__name__, id(self), self._callback)
        if self._details_filter is not None:
            text += " using details filter '%r'" % (self._details_filter,)
        return text + '>'


class Notifier:
    """A notification helper: callbacks registered per event type."""

    #: Registering for this event type means "called for every event".
    ANY = '*'

    #: Keys that can not be used in a callback's ``kwargs``.
    RESERVED_KEYS = ('details',)

    _DISALLOWED_NOTIFICATION_EVENTS = frozenset([ANY])

    def __init__(self) -> None:
        self._topics: dict[Any, tuple[Listener, ...]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Total number of registered callbacks."""
        return sum(len(listeners) for listeners in self._topics.values())

    def has_listeners(self, event_type: Any) -> bool:
        """Whether notifying ``event_type`` would reach any callback.

        True when a callback is registered for ``event_type`` or for
        :attr:`ANY`.  Two dict lookups and no lock, so callers can check it
        before even building the details of a notification.
        (taskflow-ng extension.)
        """
        topics = self._topics
        return event_type in topics or self.ANY in topics

    def is_registered(self, event_type: Any, callback: Callable,
                      details_filter: Callable | None = None) -> bool:
        """Whether ``callback`` (with ``details_filter``) is registered."""
        for listener in self._topics.get(event_type, ()):
            if listener.is_equivalent(callback, details_filter=details_filter):
                return True
        return False

    def reset(self) -> None:
        """Forget all registered callbacks."""
        with self._lock:
            self._topics = {}

    def notify(self, event_type: Any, details: Any) -> None:
        """Call the callbacks of ``event_type`` (and of :attr:`ANY`).

        Each callback gets its own shallow copy of ``details`` (``{}`` when
        ``details`` is empty or ``None``).  ``'*'`` itself can not be
        notified (silently dropped, logged at debug level).
        """
        if not self.can_trigger_notification(event_type):
            LOG.debug("Event type '%s' is not allowed to trigger"
                      " notifications", event_type)
            return
        topics = self._topics
        any_listeners = topics.get(self.ANY, ())
        listeners = topics.get(event_type, ())
        if not any_listeners and not listeners:
            return
        if not details:
            details = {}
        for listener in any_listeners + listeners:
            try:
                listener(event_type, details.copy())
            except Exception:
                LOG.warning("Failure calling listener %s to notify about"
                            " event %s, details: %s", listener, event_type,
                            details, exc_info=True)

    def register(self, event_type: Any, callback: Callable,
                 args: Iterable[Any] | None = None, kwargs: dict | None = None,
                 details_filter: Callable[[Any], Any] | None = None) -> None:
        """Register ``callback`` to be called when ``event_type`` happens.

        :raises ValueError: if the callback or filter is not callable, the
            event can not be registered, or an equivalent registration exists.
        :raises KeyError: if ``kwargs`` uses a reserved key (``'details'``).
        """
        if not callable(callback):
            raise ValueError('Event callback must be callable')
        if details_filter is not None and not callable(details_filter):
            raise ValueError('Details filter must be callable')
        if not self.can_be_registered(event_type):
            raise ValueError("Disallowed event type '%s' can not have a"
                             " callback registered" % (event_type,))
        with self._lock:
            if self.is_registered(event_type, callback,
                                  details_filter=details_filter):
                raise ValueError('Event callback already registered with'
                                 ' equivalent details filter')
            if kwargs:
                for key in self.RESERVED_KEYS:
                    if key in kwargs:
                        raise KeyError("Reserved key '%s' not allowed in"
                                       " kwargs" % key)
            listener = Listener(callback, args=args, kwargs=kwargs,
                                details_filter=details_filter)
            topics = dict(self._topics)
            topics[event_type] = topics.get(event_type, ()) + (listener,)
            self._topics = topics

    def deregister(self, event_type: Any, callback: Callable,
                   details_filter: Callable | None = None) -> bool:
        """Remove a registration; returns whether one was removed."""
        with self._lock:
            listeners = self._topics.get(event_type, ())
            for i, listener in enumerate(listeners):
                if listener.is_equivalent(callback,
                                          details_filter=details_filter):
                    topics = dict(self._topics)
                    remaining = listeners[:i] + listeners[i + 1:]
                    if remaining:
                        topics[event_type] = remaining
                    else:
                        # No empty entries: has_listeners() relies on it.
                        del topics[event_type]
                    self._topics = topics
                    return True
            return False

    def deregister_event(self, event_type: Any) -> int:
        """Remove every callback of ``event_type``; returns how many."""
        with self._lock:
            if event_type not in self._topics:
                return 0
            topics = dict(self._topics)
            removed = topics.pop(event_type)
            self._topics = topics
            return len(removed)

    def copy(self) -> Notifier:
        """A new notifier (of the same class) with the same registrations."""
        clone = _copy.copy(self)
        clone._lock = threading.Lock()
        # The listener tuples are immutable, so sharing them is safe.
        clone._topics = dict(self._topics)
        return clone

    def listeners_iter(self) -> Iterator[tuple[Any, list[Listener]]]:
        """Yield ``(event_type, [Listener, ...])`` for each non-empty event."""
        for event_type, listeners in self._topics.items():
            if listeners:
                yield event_type, list(listeners)

    def can_be_registered(self, event_type: Any) -> bool:
        """Whether callbacks may be registered for ``event_type``."""
        return True

    def can_trigger_notification(self, event_type: Any) -> bool:
        """Whether ``event_type`` can be notified (all but :attr:`ANY`)."""
        return event_type not in self._DISALLOWED_NOTIFICATION_EVENTS


class RestrictedNotifier(Notifier):
    """A notifier that only allows registering for some events.

    :param watchable_events: the events callbacks may be registered for.
    :param allow_any: whether :attr:`Notifier.ANY` may be registered too.
    """

    def __init__(self, watchable_events: Iterable[Any],
                 allow_any: bool = True) -> None:
        super().__init__()
        self._watchable_events = tuple(dict.fromkeys(watchable_events))
        self._watchable_set = frozenset(self._watchable_events)
        self._allow_any = allow_any

    def events_iter(self) -> Iterator[Any]:
        """Yield the events callbacks may be registered for."""
        yield from self._watchable_events

    def can_be_registered(self, event_type: Any) -> bool:
        """Whether ``event_type`` is watchable (or ``'*'`` when allowed)."""
        if event_type in self._watchable_set:
            return True
        return self._allow_any and event_type == self.ANY


@contextlib.contextmanager
def register_deregister(notifier: Notifier, event_type: Any,
                        callback: Callable | None = None,
                        args: Iterable[Any] | None = None,
                        kwargs: dict | None = None,
                        details_filter: Callable | None = None
                        ) -> Iterator[None]:
    """Register ``callback`` for the duration of a ``with`` block.

    Does nothing when ``callback`` is ``None``.
    """
    if callback is None:
        yield
        return
    notifier.register(event_type, callback, args=args, kwargs=kwargs,
                      details_filter=details_filter)
    try:
        yield
    finally:
        notifier.deregister(event_type, callback,
                            details_filter=details_filter)
