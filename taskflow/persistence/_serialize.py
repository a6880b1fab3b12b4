"""Turning model values into JSON text, the way the original does.

The original TaskFlow converts values with ``oslo.serialization``'s
``to_primitive`` before ``json.dumps``, so what a program reads back after a
round trip through a JSON-backed store (``dir``, SQL, zookeeper) is:

==========================================  =====================================
stored value                                read back as
==========================================  =====================================
``tuple``, ``set``, ``frozenset``, ``range``, other iterables   ``list``
``bytes``                                   ``str`` (UTF-8 decoded)
``datetime.datetime``                       ``'%Y-%m-%dT%H:%M:%S.%f'`` string (tz dropped)
``datetime.date``, ``UUID``, ``Decimal``, ip addresses   ``str(value)``
exceptions                                  ``repr(value)``
functions, classes, modules, generators    ``str(value)``
mappings / objects with ``items()``         ``dict`` (non-str keys become str)
anything else (enums, ``complex``, custom objects...)   not serialisable
==========================================  =====================================

Unserialisable values raise :class:`Unserialisable`, which names the type at
fault; backends raise ``StorageFailure`` with it (restated by
:func:`describe` to name the atom detail) as the cause.
"""

from __future__ import annotations

import datetime
import decimal
import inspect
import ipaddress
import json
import uuid
from collections.abc import Mapping
from typing import Any

_PASS_THROUGH = (str, int, float, type(None))
_STR_TYPES = (datetime.date, uuid.UUID, decimal.Decimal,
              ipaddress.IPv4Address, ipaddress.IPv6Address,
              ipaddress.IPv4Network, ipaddress.IPv6Network)
# Objects the original writes as their str() rather than walking into them.
_NASTY_TESTS = (inspect.ismodule, inspect.isclass, inspect.ismethod,
                inspect.isfunction, inspect.isgeneratorfunction,
                inspect.isgenerator, inspect.istraceback, inspect.isframe,
                inspect.iscode, inspect.isbuiltin, inspect.isabstract)


class Unserialisable(ValueError):
    """A value cannot be written as JSON; ``value_type`` names the culprit."""

    def __init__(self, message: str, value_type: str) -> None:
        super().__init__(message)
        self.value_type = value_type


def to_primitive(value: Any) -> Any:
    """Convert ``value`` to JSON-compatible primitives (see module doc)."""
    if isinstance(value, _PASS_THROUGH):
        return value
    if isinstance(value, dict):
        return {k: to_primitive(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_primitive(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode('utf-8')
        except UnicodeDecodeError as e:
            raise Unserialisable('bytes that are not valid UTF-8 cannot be'
                                 ' stored as JSON (%s)' % e, 'bytes') from e
    if isinstance(value, datetime.datetime):
        return value.strftime('%Y-%m-%dT%H:%M:%S.%f')
    if isinstance(value, _STR_TYPES):
        return str(value)
    if isinstance(value, BaseException):
        return repr(value)
    if any(test(value) for test in _NASTY_TESTS):
        return str(value)
    if isinstance(value, Mapping) or hasattr(value, 'items'):
        try:
            items = value.items()
        except TypeError:
            items = None
        if items is not None:
            return {k: to_primitive(v) for k, v in items}
    if hasattr(value, '__iter__'):
        return [to_primitive(v) for v in value]
    raise Unserialisable('cannot convert %r to a JSON primitive' % (value,),
                         type(value).__name__)


def dumps(value: Any) -> str:
    """``json.dumps`` of :func:`to_primitive` (same text as the original)."""
    primitive = to_primitive(value)
    try:
        return json.dumps(primitive)
    except TypeError as e:
        # Only non-primitive dict keys get here (values were converted).
        bad = _find_bad_key(primitive)
        raise Unserialisable('%s' % e, bad) from e
    except ValueError as e:  # circular references
        raise Unserialisable('%s' % e, type(value).__name__) from e


def _find_bad_key(value: Any) -> str:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool, type(None))):
                return '%s (as a dict key)' % type(k).__name__
            found = _find_bad_key(v)
            if found:
                return found
    elif isinstance(value, list):
        for v in value:
            found = _find_bad_key(v)
            if found:
                return found
    return ''


def loads(text: str | bytes | None) -> Any:
    """Parse JSON text (``None`` stays ``None``)."""
    if text is None:
        return None
    return json.loads(text)


def dump_field(kind: str, obj: Any, field: str, value: Any) -> str | None:
    """JSON text for ``obj.<field>``, or :class:`Unserialisable` naming the
    object (``kind`` is e.g. ``'atom detail'``), the field and the type."""
    if value is None:
        return None
    try:
        return dumps(value)
    except Unserialisable as e:
        raise describe(kind, obj, field, e)


def describe(kind: str, obj: Any, field: str,
             error: Unserialisable) -> Unserialisable:
    """``error`` restated (and chained to it) to name the object and field
    it comes from.

    Backends attach it as the ``cause`` of their ``StorageFailure`` (whose
    message is the original's short one)."""
    message = ("Cannot store the %s of %s '%s' (uuid '%s'): a value of type"
               " %s is not JSON serialisable (%s)"
               % (field, kind, obj.name, obj.uuid, error.value_type, error))
    described = Unserialisable(message, error.value_type)
    described.__cause__ = error
    return described
