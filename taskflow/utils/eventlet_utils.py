"""Whether eventlet (green threads) is available.  Deprecated, as upstream."""

from __future__ import annotations

import importlib.util
import warnings

# Only look eventlet up: importing it is slow and has side effects.
EVENTLET_AVAILABLE = importlib.util.find_spec('eventlet') is not None


def check_for_eventlet(exc: BaseException | None = None) -> None:
    """Raise ``exc`` (default ``RuntimeError``) when eventlet is missing."""
    warnings.warn("Using function/method 'check_for_eventlet()' is"
                  " deprecated: Eventlet support is deprecated.",
                  DeprecationWarning, stacklevel=2)
    if not EVENTLET_AVAILABLE:
        if exc is None:
            raise RuntimeError('Eventlet is not currently available')
        raise exc
