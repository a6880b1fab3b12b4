"""Turning model values into JSON text, the way the original does, and
refusing values that can never be stored.

The original TaskFlow converts values with ``oslo.serialization``'s
``to_primitive`` before ``json.dumps``, so what a program reads back after a
round trip through a JSON-backed store (``dir``, SQL) is:

==========================================  =====================================
stored value                                read back as
==========================================  =====================================
``tuple``, ``set``, ``frozenset``, ``range``, other re-iterable containers   ``list``
``bytes``                                   ``str`` (UTF-8 decoded)
``datetime.datetime``                       ``'%Y-%m-%dT%H:%M:%S.%f'`` string (tz dropped)
``datetime.date``, ``UUID``, ``Decimal``, ip addresses   ``str(value)``
exceptions                                  ``repr(value)``
functions, classes, modules                 ``str(value)``
mappings / objects with ``items()``         ``dict`` (non-str keys become str)
==========================================  =====================================

Values that can never be stored raise :class:`Unstorable` (the backends
restate it as ``exceptions.UnstorableValue`` naming the object and field,
see :func:`dump_field`), before anything is written:

* a cyclic structure, or one nested deeper than ``max_value_depth``;
* ``bytes`` that are not UTF-8;
* iterators and generators: storing one would consume it (the original
  consumes iterators, or stores a generator as its ``str()``); nothing is
  ever read from them;
* files, pipes, sockets (anything with a ``fileno``): nothing is read;
* JSON text longer than ``max_value_size`` (per field);
* anything else that has no JSON form (``complex``, enums, plain objects,
  dict keys that are not ``str``/``int``/``float``/``bool``/``None``).

Encoding runs in the C JSON encoder: only values JSON has no type for reach
Python code (:meth:`Encoder._default`).
"""

from __future__ import annotations

import datetime
import decimal
import inspect
import io
import ipaddress
import itertools
import json
import uuid
from collections.abc import Mapping
from typing import Any

from taskflow import exceptions as exc

__all__ = ['DEFAULT_MAX_VALUE_DEPTH', 'DEFAULT_MAX_VALUE_SIZE', 'Encoder',
           'Unstorable', 'dump_field', 'dumps', 'encoder_from_conf', 'loads']

#: Longest JSON text (in bytes; the text is ASCII) one field may take.
DEFAULT_MAX_VALUE_SIZE = 16 * 1024 * 1024
#: Deepest nesting of lists and dicts a value may have.
DEFAULT_MAX_VALUE_DEPTH = 200

_STR_TYPES = (datetime.date, uuid.UUID, decimal.Decimal,
              ipaddress.IPv4Address, ipaddress.IPv6Address,
              ipaddress.IPv4Network, ipaddress.IPv6Network)
# Objects the original writes as their str() rather than walking into them.
_NASTY_TESTS = (inspect.ismodule, inspect.isclass, inspect.ismethod,
                inspect.isfunction, inspect.isgeneratorfunction,
                inspect.istraceback, inspect.isframe, inspect.iscode,
                inspect.isbuiltin, inspect.isabstract)
_KEY_TYPES = (str, int, float, bool, type(None))


class Unstorable(ValueError):
    """A value can never be stored; the message says why."""


class Encoder:
    """JSON encoding with the limits of one backend (see the module doc)."""

    __slots__ = ('max_size', 'max_depth', '_encoder')

    def __init__(self, max_size: int = DEFAULT_MAX_VALUE_SIZE,
                 max_depth: int = DEFAULT_MAX_VALUE_DEPTH) -> None:
        if max_size < 2 or max_depth < 1:
            raise ValueError('max_value_size must be >= 2 and max_value_depth'
                             ' >= 1, not %r and %r' % (max_size, max_depth))
        self.max_size = max_size
        self.max_depth = max_depth
        # Same text as json.dumps() with its defaults (the original's).
        self._encoder = json.JSONEncoder(default=self._default)

    def dumps(self, value: Any) -> str:
        """JSON text of ``value``; :class:`Unstorable` if it can't be
        stored."""
        if isinstance(value, (str, bytes, list, tuple, dict)) and (
                len(value) > self.max_size):
            # Every character or item takes at least one byte of text.
            raise self._too_large('at least %d' % len(value))
        try:
            text = self._encoder.encode(value)
        except Unstorable:
            raise
        except RecursionError:
            raise Unstorable(self._too_deep()) from None
        except ValueError as e:
            if 'Circular reference' in str(e):
                raise Unstorable('it is cyclic (it contains itself)') from None
            raise Unstorable('converting it to JSON failed: %s' % (e,)
                             ) from None
        except TypeError as e:
            # Mostly dict keys: values JSON lacks go to _default.
            raise Unstorable(_bad_key(value) or 'converting it to JSON failed:'
                             ' %s' % (e,)) from None
        except Exception as e:  # raised by a value's own items()/__iter__
            raise Unstorable('converting it to JSON raised %s: %s'
                             % (type(e).__name__, e)) from None
        if len(text) > self.max_size:
            raise self._too_large(len(text))
        # Nesting opens a bracket per level: text with fewer brackets than
        # the limit can't be too deep (brackets inside strings only add).
        if text.count('[') + text.count('{') > self.max_depth:
            self._check_depth(text)
        return text

    def _check_depth(self, text: str) -> None:
        try:
            deep = _depth(json.loads(text)) > self.max_depth
        except RecursionError:
            deep = True
        if deep:
            raise Unstorable(self._too_deep())

    def _too_large(self, size: int | str) -> Unstorable:
        return Unstorable('its JSON text takes %s bytes, over the limit of %d'
                          ' (the backend option max_value_size)'
                          % (size, self.max_size))

    def _too_deep(self) -> str:
        return ('it is nested deeper than %d levels (the backend option'
                ' max_value_depth)' % (self.max_depth,))

    def _default(self, value: Any) -> Any:
        """The JSON form of a value JSON has no type for."""
        if isinstance(value, bytes):
            try:
                return value.decode('utf-8')
            except UnicodeDecodeError as e:
                # Not chained: the decode error holds the bytes, which a
                # stored failure of this error could not hold either.
                raise Unstorable('it holds bytes that are not valid UTF-8'
                                 ' (%s)' % (e,)) from None
        if isinstance(value, datetime.datetime):
            return value.strftime('%Y-%m-%dT%H:%M:%S.%f')
        if isinstance(value, _STR_TYPES):
            return str(value)
        if isinstance(value, BaseException):
            return repr(value)
        if isinstance(value, io.IOBase) or hasattr(value, 'fileno'):
            raise Unstorable('it holds a file, pipe or socket (%s): nothing is'
                             ' read from it; store its name or contents'
                             ' instead' % _type_name(value))
        if hasattr(value, '__next__') or inspect.isgenerator(value):
            raise Unstorable('it holds an iterator (%s): storing it would'
                             ' consume it; store a list instead'
                             % _type_name(value))
        if any(test(value) for test in _NASTY_TESTS):
            return str(value)
        if isinstance(value, Mapping) or hasattr(value, 'items'):
            try:
                items = value.items()
            except TypeError:
                items = None
            if items is not None:
                return dict(items)
        if hasattr(value, '__iter__'):
            return self._bounded_list(value)
        raise Unstorable('it holds a value of type %s, which has no JSON form'
                         % _type_name(value))

    def _bounded_list(self, value: Any) -> list:
        # A container (re-iterable: iterators were refused above) whose
        # items could not fit the size limit is refused without being
        # walked; an endless one stops at the limit.
        limit = self.max_size // 2 + 1
        if hasattr(value, '__len__') and len(value) > limit:
            raise self._too_large('at least %d' % len(value))
        items = list(itertools.islice(value, limit + 1))
        if len(items) > limit:
            raise self._too_large('more than %d' % self.max_size)
        return items


def _type_name(value: Any) -> str:
    cls = type(value)
    if cls.__module__ in ('builtins', '_io', 'io'):
        return cls.__qualname__
    return '%s.%s' % (cls.__module__, cls.__qualname__)


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON (without recursion)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)))
    return deepest if isinstance(value, (dict, list)) else 0


def _bad_key(value: Any) -> str:
    """Describe the first dict key JSON can't hold (or '')."""
    stack = [value]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            for key, child in node.items():
                if not isinstance(key, _KEY_TYPES):
                    return ('a dict key of type %s is not a str, int, float,'
                            ' bool or None' % _type_name(key))
                stack.append(child)
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
    return ''


_DEFAULT = Encoder()


def encoder_from_conf(conf: Mapping[str, Any]) -> Encoder:
    """The encoder for a backend's conf (``max_value_size``,
    ``max_value_depth``)."""
    size = conf.get('max_value_size')
    depth = conf.get('max_value_depth')
    if size is None and depth is None:
        return _DEFAULT
    return Encoder(int(size) if size is not None else DEFAULT_MAX_VALUE_SIZE,
                   int(depth) if depth is not None
                   else DEFAULT_MAX_VALUE_DEPTH)


def dumps(value: Any) -> str:
    """JSON text of ``value`` with the default limits."""
    return _DEFAULT.dumps(value)


def loads(text: str | bytes | None) -> Any:
    """Parse JSON text (``None`` stays ``None``)."""
    if text is None:
        return None
    return json.loads(text)


def dump_field(kind: str, obj: Any, field: str, value: Any,
               encoder: Encoder = _DEFAULT) -> str | None:
    """JSON text for ``obj.<field>`` (``None`` for ``None``), or
    ``exceptions.UnstorableValue`` naming the object (``kind`` is e.g.
    ``'atom detail'``), the field and the reason."""
    if value is None:
        return None
    try:
        return encoder.dumps(value)
    except Unstorable as e:
        # Not chained: the message says it all, and what a stored failure
        # of this error holds must be storable.
        raise unstorable(kind, obj, field, e) from None


def unstorable(kind: str, obj: Any, field: str, reason: BaseException | str
               ) -> exc.UnstorableValue:
    """``UnstorableValue`` naming ``obj`` (name and uuid) and its field."""
    return exc.UnstorableValue("Cannot store the %s of %s '%s' (uuid '%s'):"
                               " %s" % (field, kind, obj.name, obj.uuid,
                                        reason))


def dump_record(kind: str, obj: Any, fields: Mapping[str, Any],
                encoder: Encoder = _DEFAULT) -> str:
    """JSON text of a dict of fields (``json.dumps`` text of the dict),
    each field held to the encoder's limits and named when refused."""
    parts = []
    for field, value in fields.items():
        text = 'null' if value is None else dump_field(kind, obj, field,
                                                      value, encoder)
        parts.append('%s: %s' % (json.dumps(field), text))
    return '{%s}' % ', '.join(parts)
