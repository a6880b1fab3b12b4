"""Small helpers shared by the library (and imported by some programs)."""

from __future__ import annotations

import contextlib
import datetime
import enum
import functools
import io
import json
import re
import socket
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from taskflow.types import failure

UNKNOWN_HOSTNAME = '<unknown>'

NUMERIC_TYPES = (int, float)

StringIO = io.StringIO
BytesIO = io.BytesIO

# RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME_REGEX = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")

if sys.version_info >= (3, 11):
    StrEnum = enum.StrEnum
else:  # pragma: no cover - python 3.10
    class StrEnum(str, enum.Enum):
        """An enum whose members are (and print as) strings."""

        def __str__(self) -> str:
            return str(self.value)


class SplitResult(urllib.parse.SplitResult):
    """``urllib.parse.SplitResult`` plus :meth:`params` (the parsed query)."""

    __slots__ = ()

    def params(self, collapse: bool = True) -> dict[str, list[str] | str]:
        """The query parameters; repeated keys keep their last value when
        ``collapse`` is true, else a list of all values.
        """
        if not self.query:
            return {}
        params: dict[str, list[str] | str] = {}
        for key, values in urllib.parse.parse_qs(self.query).items():
            if collapse or len(values) == 1:
                params[key] = values[-1]
            else:
                params[key] = values
        return params


def parse_uri(uri: str) -> SplitResult:
    """Split ``uri`` (which must start with an RFC 3986 scheme) into parts.

    :raises TypeError: if ``uri`` is not a string.
    :raises ValueError: if ``uri`` does not start with ``scheme:``.
    """
    if not isinstance(uri, str):
        raise TypeError("Can only parse string types to uri data, and not"
                        " '%s' (%s)" % (uri, type(uri)))
    if not _SCHEME_REGEX.match(uri):
        raise ValueError("Uri '%s' does not start with a RFC 3986 compliant"
                         " scheme" % (uri,))
    return SplitResult(*urllib.parse.urlsplit(uri))


def merge_uri(uri: SplitResult, conf: dict) -> dict:
    """Add the uri's username, password, port, hostname (``host:port``) and
    query parameters to ``conf`` (keys already in ``conf`` win); returns it.
    """
    uri_port = uri.port
    specials = [
        ('username', uri.username, bool),
        ('password', uri.password, bool),
        ('port', uri_port, lambda v: v is not None),
    ]
    hostname = uri.hostname
    if hostname:
        if uri_port is not None:
            hostname += ':%s' % (uri_port,)
        specials.append(('hostname', hostname, bool))
    for key, value, is_valid in specials:
        if key not in conf and is_valid(value):
            conf[key] = value
    for key, value in uri.params().items():
        conf.setdefault(key, value)
    return conf


def extract_driver_and_conf(conf: dict | str, conf_key: str
                            ) -> tuple[Any, dict]:
    """``(driver, conf)`` from ``conf[conf_key]``: a uri's scheme (with the
    uri merged into a copy of ``conf``), or the value itself when it is not
    a uri. A string ``conf`` stands for ``{conf_key: conf}``.
    """
    if isinstance(conf, str):
        conf = {conf_key: conf}
    maybe_uri = conf[conf_key]
    try:
        uri = parse_uri(maybe_uri)
    except (TypeError, ValueError):
        return maybe_uri, conf
    return uri.scheme, merge_uri(uri, dict(conf))


def binary_encode(text: str | bytes, encoding: str = 'utf-8',
                  errors: str = 'strict') -> bytes:
    """Encode ``text`` to bytes (bytes pass through unchanged)."""
    if isinstance(text, bytes):
        return text
    if not isinstance(text, str):
        raise TypeError("%s can't be encoded" % type(text))
    return text.encode(encoding, errors)


def binary_decode(data: bytes | str, encoding: str = 'utf-8',
                  errors: str = 'strict') -> str:
    """Decode ``data`` to text (text passes through unchanged)."""
    if isinstance(data, str):
        return data
    if not isinstance(data, bytes):
        raise TypeError("%s can't be decoded" % type(data))
    return data.decode(encoding, errors)


def _check_decoded_type(data: Any, root_types: Any = (dict,)) -> Any:
    if root_types:
        if not isinstance(root_types, tuple):
            root_types = tuple(root_types)
        if not isinstance(data, root_types):
            if len(root_types) == 1:
                raise ValueError("Expected '%s' root type not '%s'"
                                 % (root_types[0], type(data)))
            raise ValueError("Expected %s root types not '%s'"
                             % (list(root_types), type(data)))
    return data


def decode_json(raw_data: str | bytes, root_types: Any = (dict,)) -> Any:
    """Parse JSON text/bytes, checking the type of the top-level value."""
    try:
        data = json.loads(binary_decode(raw_data))
    except UnicodeDecodeError as e:
        raise ValueError('Expected UTF-8 decodable data: %s' % e) from e
    except ValueError as e:
        raise ValueError('Expected JSON decodable data: %s' % e) from e
    return _check_decoded_type(data, root_types=root_types)


def as_int(obj: Any, quiet: bool = False) -> Any:
    """``int(obj)``, else ``int(float(obj))``.

    :raises TypeError: when neither works, unless ``quiet`` (then ``obj``
        is returned unchanged).
    """
    try:
        return int(obj)
    except (ValueError, TypeError):
        pass
    try:
        return int(float(obj))
    except (ValueError, TypeError):
        pass
    if not quiet:
        raise TypeError("Can not translate '%s' (%s) to an integer"
                        % (obj, type(obj)))
    return obj


def get_hostname(unknown_hostname: str = UNKNOWN_HOSTNAME) -> str:
    """This machine's host name (``unknown_hostname`` if it has none)."""
    try:
        hostname = socket.getfqdn()
    except OSError:
        return unknown_hostname
    return hostname or unknown_hostname


def get_version_string(obj: Any) -> str | None:
    """``obj.version`` as text (a tuple ``(1, 0)`` gives ``'1.0'``)."""
    version = getattr(obj, 'version', None)
    if isinstance(version, (list, tuple)):
        version = '.'.join(str(item) for item in version)
    if version is not None and not isinstance(version, str):
        version = str(version)
    return version


def clamp(value: Any, minimum: Any, maximum: Any,
          on_clamped: Callable[[], Any] | None = None) -> Any:
    """``value`` limited to ``[minimum, maximum]``; calls ``on_clamped()`` if it was."""
    if minimum > maximum:
        raise ValueError("Provided minimum '%s' must be less than or equal to"
                         " the provided maximum '%s'" % (minimum, maximum))
    if value > maximum:
        value = maximum
    elif value < minimum:
        value = minimum
    else:
        return value
    if on_clamped is not None:
        on_clamped()
    return value


def is_iterable(obj: Any) -> bool:
    """Whether ``obj`` is iterable (strings excluded)."""
    if isinstance(obj, str):
        return False
    try:
        iter(obj)
    except TypeError:
        return False
    return True


@contextlib.contextmanager
def capture_failure() -> Iterator[failure.Failure]:
    """Yield a ``Failure`` of the exception being handled.

    :raises RuntimeError: when no exception is being handled.
    """
    exc_info = sys.exc_info()
    if exc_info[1] is None:
        raise RuntimeError('No active exception is being handled')
    try:
        yield failure.Failure(exc_info=exc_info)
    finally:
        del exc_info  # do not keep the traceback (and its frames) alive


def pick_first_not_none(*values: Any) -> Any:
    """The first value that is not ``None`` (else ``None``)."""
    for value in values:
        if value is not None:
            return value
    return None


def sequence_minus(seq1: Iterable[Any], seq2: Iterable[Any]) -> list:
    """``seq1`` as a list, minus one occurrence of each item of ``seq2``."""
    result = list(seq1)
    for item in seq2:
        try:
            result.remove(item)
        except ValueError:
            pass
    return result


def reverse_enumerate(items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
    """Like ``enumerate`` but from the last item to the first."""
    for i in range(len(items) - 1, -1, -1):
        yield i, items[i]


def countdown_iter(start_at: int, decr: int = 1) -> Iterator[int]:
    """Yield ``start_at``, ``start_at - decr``... while above zero."""
    if decr <= 0:
        raise ValueError("Decrement value must be greater than zero and not"
                         " %s" % (decr,))
    while start_at > 0:
        yield start_at
        start_at -= decr


def fix_newlines(text: str, replacement: str = '\n') -> str:
    """Replace every kind of line ending in ``text`` with ``replacement``."""
    return replacement.join(text.splitlines())


def millis_to_datetime(milliseconds: float) -> datetime.datetime:
    """A (naive, local time) datetime from milliseconds since the epoch."""
    return datetime.datetime.fromtimestamp(float(milliseconds) / 1000)


def safe_copy_dict(obj: Any) -> dict:
    """A shallow ``dict`` copy of ``obj`` (``{}`` for ``None``/empty)."""
    if not obj:
        return {}
    return dict(obj)


def match_type(obj: Any, matchers: Iterable[tuple[Any, Any]]) -> Any:
    """The value paired with the first type(s) ``obj`` is an instance of."""
    for match_types, match_value in matchers:
        if isinstance(obj, match_types):
            return match_value
    return None


class cachedproperty:
    """A read-only property computed once per instance.

    The value is stored on the instance as ``_<name>``.  Use as
    ``@cachedproperty`` or ``@cachedproperty(require_lock=False)`` (without
    the lock two threads may both compute the value on first access).
    """

    def __init__(self, fget: Callable | None = None,
                 require_lock: bool = True) -> None:
        self._lock = threading.RLock() if require_lock else None
        self.fget: Callable | None = None
        self._attr_name = ''
        self.__doc__ = None
        if fget is not None:
            self._set_fget(fget)

    def _set_fget(self, fget: Callable) -> None:
        self.fget = fget
        self._attr_name = '_%s' % getattr(fget, '__name__', '')
        self.__doc__ = getattr(fget, '__doc__', None)

    def __call__(self, fget: Callable) -> cachedproperty:
        self._set_fget(fget)
        return self

    def __set__(self, instance: Any, value: Any) -> None:
        raise AttributeError("can't set attribute")

    def __delete__(self, instance: Any) -> None:
        raise AttributeError("can't delete attribute")

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        name = self._attr_name
        try:
            return getattr(instance, name)
        except AttributeError:
            pass
        if self._lock is None:
            value = self.fget(instance)
            setattr(instance, name, value)
            return value
        with self._lock:
            try:
                return getattr(instance, name)
            except AttributeError:
                value = self.fget(instance)
                setattr(instance, name, value)
                return value


def disallow_when_frozen(excp_cls: Callable[[], BaseException]) -> Callable:
    """Decorate a method so it raises ``excp_cls()`` when ``self.frozen``."""

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(self, 'frozen', False):
                raise excp_cls()
            return func(self, *args, **kwargs)
        return wrapper

    return decorator
