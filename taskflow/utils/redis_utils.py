"""Redis helpers: server version checks, key expiry, a closable client.

``RedisClient`` needs the optional ``redis`` package; it is only imported
when ``RedisClient`` is first used, so the rest of this module works without
it.
"""

from __future__ import annotations

import enum
import functools
from typing import Any


class UnknownExpire(enum.IntEnum):
    """Special (negative) ``ttl``/``pttl`` results of redis."""

    #: The key exists but has no expiry.
    DOES_NOT_EXPIRE = -1
    #: The key does not exist.
    KEY_NOT_FOUND = -2


DOES_NOT_EXPIRE = UnknownExpire.DOES_NOT_EXPIRE
KEY_NOT_FOUND = UnknownExpire.KEY_NOT_FOUND


def is_server_new_enough(client: Any, min_version: tuple,
                         default: Any = False,
                         prior_version: str | None = None) -> tuple[Any, Any]:
    """``(is_new_enough, version_text)`` for the redis server of ``client``.

    The version is read from ``client.info()['redis_version']`` unless
    ``prior_version`` is given; ``(default, version_text)`` when there is no
    version.

    :raises ValueError: when the version text is not dotted integers.
    """
    if prior_version is None:
        version_text = client.info().get('redis_version', '')
    else:
        version_text = prior_version
    if not version_text:
        return default, version_text
    version = tuple(int(part) for part in version_text.split('.'))
    return version >= min_version, version_text


def get_expiry(client: Any, key: str | bytes,
               prior_version: str | None = None) -> float | UnknownExpire:
    """Seconds until ``key`` expires, or an :class:`UnknownExpire`."""
    result = client.pttl(key)
    try:
        return UnknownExpire(result)
    except ValueError:
        return result / 1000.0


def apply_expiry(client: Any, key: str | bytes, expiry: float,
                 prior_version: str | None = None) -> bool:
    """Make ``key`` expire in ``expiry`` seconds (negative means now)."""
    ms_expiry = max(0, int(expiry * 1000.0))
    return bool(client.pexpire(key, ms_expiry))


def _make_redis_client_class() -> type:
    try:
        import redis
        from redis import exceptions as redis_exceptions
    except ImportError as e:
        raise ImportError("RedisClient needs the redis package, which is not"
                          " installed: pip install redis") from e

    def _raise_on_closed(meth: Any) -> Any:
        @functools.wraps(meth)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if self.closed:
                raise redis_exceptions.ConnectionError(
                    "Connection has been closed")
            return meth(self, *args, **kwargs)
        return wrapper

    class RedisClient(redis.Redis):
        """A redis client that refuses commands once :meth:`close` is called."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.closed = False

        def close(self) -> None:
            self.closed = True
            super().close()

        execute_command = _raise_on_closed(redis.Redis.execute_command)
        transaction = _raise_on_closed(redis.Redis.transaction)
        pubsub = _raise_on_closed(redis.Redis.pubsub)

    RedisClient.__module__ = __name__
    RedisClient.__qualname__ = 'RedisClient'
    return RedisClient


def __getattr__(name: str) -> Any:
    # PEP 562: build RedisClient (and import redis) on first use only.
    if name == 'RedisClient':
        cls = _make_redis_client_class()
        globals()['RedisClient'] = cls
        return cls
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
