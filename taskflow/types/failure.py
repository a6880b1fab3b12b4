"""The :class:`Failure` value type: an immutable capture of an exception.

A failure is made for every failed atom, so construction is kept cheap: the
traceback text is formatted lazily from the live traceback on first use (the
formatted text is what equality, ``to_dict``, pickling and ``pformat`` see, so
laziness is not observable), and the cause chain is only walked when the
exception has one.

Lifetime: a live failure holds the traceback (``reraise()`` needs it), and so
the frames it references, for as long as the failure lives; nothing else is
kept, and the helpers that capture or re-raise drop their own references so
no extra frame <-> exception reference cycles are created.  A pickled or
``to_dict()`` copy holds no frames at all.

Two modes:

* **live** (no keyword arguments): captures ``exc_info`` (default
  ``sys.exc_info()``); ``exception`` and ``reraise()`` give back the original.
* **data** (keyword arguments, e.g. from :meth:`Failure.from_dict`): only
  names, message, args, traceback text and causes are known.
"""

from __future__ import annotations

import copy as _copy
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn

from taskflow import exceptions as exc
from taskflow import secrets as _secrets

# Marks a value that is computed on first access.
_LAZY: Any = object()

def _class_name(cls: type) -> str:
    module = cls.__module__
    if module == 'builtins':
        return cls.__name__
    return '%s.%s' % (module, cls.__name__)


def _exc_type_names(exc_type: Any) -> tuple[str, ...]:
    """Names of the classes of ``exc_type``'s MRO, up to ``Exception``."""
    if not (isinstance(exc_type, type) and issubclass(exc_type, Exception)):
        raise TypeError("Invalid exception type '%s' (%s)"
                        % (exc_type, type(exc_type)))
    names = []
    for cls in exc_type.__mro__:
        names.append(_class_name(cls))
        if cls is Exception:
            break
    return tuple(names)


def _next_in_chain(value: BaseException) -> BaseException | None:
    cause = value.__cause__
    if cause is None and not value.__suppress_context__:
        cause = value.__context__
    return cause


def _format_tb(tb: Any) -> str:
    return ''.join(traceback.format_tb(tb))


def _copy_exc_info(exc_info: tuple | None) -> tuple | None:
    if exc_info is None:
        return None
    exc_type, value, tb = exc_info
    try:
        value = _copy.copy(value)
    except Exception:
        pass  # keep the original object rather than fail the copy
    return (exc_type, value, tb)


class Failure:
    """An immutable capture of an exception (see the module docstring).

    :param exc_info: a ``(type, value, traceback)`` triple; defaults to
        ``sys.exc_info()`` so ``Failure()`` inside ``except`` captures the
        exception being handled.
    :param kwargs: data mode: ``exception_str`` (required),
        ``exc_type_names``, ``traceback_str``, ``exc_args``, ``causes``.
    """

    DICT_VERSION = 1
    BASE_EXCEPTIONS = ('BaseException', 'Exception')

    #: JSON schema of :meth:`to_dict` output (informative: :meth:`validate`
    #: checks it by hand, without a jsonschema dependency).
    SCHEMA: dict = {
        '$ref': '#/definitions/cause',
        'definitions': {
            'cause': {
                'type': 'object',
                'properties': {
                    'version': {'type': 'integer', 'minimum': 0},
                    'exc_args': {'type': 'array', 'minItems': 0},
                    'exception_str': {'type': 'string'},
                    'traceback_str': {'type': 'string'},
                    'exc_type_names': {'type': 'array',
                                       'items': {'type': 'string'},
                                       'minItems': 1},
                    'causes': {'type': 'array',
                               'items': {'$ref': '#/definitions/cause'}},
                },
                'required': ['exception_str', 'traceback_str',
                             'exc_type_names'],
                'additionalProperties': True,
            },
        },
    }

    __slots__ = ('_exc_info', '_exc_type_names', '_exception_str',
                 '_exc_args', '_traceback_str', '_causes', '_tb_from_exc_info',
                 '__weakref__')

    def __init__(self, exc_info: tuple | None = None, **kwargs: Any) -> None:
        if not kwargs:
            if exc_info is None:
                exc_info = sys.exc_info()
            elif len(exc_info) != 3:
                raise ValueError("Provided 'exc_info' must contain three"
                                 " elements")
            self._init_live(exc_info)
        else:
            self._init_data(exc_info, kwargs)

    def _init_live(self, exc_info: Any,
                   causes: tuple[Failure, ...] | None = None) -> None:
        self._exc_type_names = _exc_type_names(exc_info[0])
        value = exc_info[1]
        self._exc_info = exc_info
        self._exception_str = str(value)
        self._exc_args = tuple(getattr(value, 'args', ()))
        if _secrets.is_active():   # keep masked values out of stored/shown text
            self._exception_str, self._exc_args = _secrets.redact_exception(
                value, exc_info[2], self._exception_str, self._exc_args)
        self._traceback_str = _LAZY
        self._tb_from_exc_info = True
        # Most exceptions have no chain: skip the walk (and its allocations).
        if causes is not None:
            self._causes = causes
        elif (not isinstance(value, BaseException)
                or _next_in_chain(value) is None):
            self._causes = ()
        else:
            self._causes = self._extract_causes(value)

    def _init_data(self, exc_info: Any, kwargs: dict) -> None:
        self._exc_info = exc_info
        self._exception_str = kwargs.pop('exception_str')
        self._exc_type_names = tuple(kwargs.pop('exc_type_names', ()))
        self._traceback_str = kwargs.pop('traceback_str', None)
        self._exc_args = tuple(kwargs.pop('exc_args', ()))
        self._causes = tuple(kwargs.pop('causes', None) or ())
        self._tb_from_exc_info = False
        if kwargs:
            raise TypeError('Failure.__init__ got unexpected keyword'
                            ' argument(s): %s' % ', '.join(kwargs))

    @classmethod
    def _extract_causes(cls, value: BaseException) -> tuple[Failure, ...]:
        # The direct cause first, then its cause and so on.  The chain of a
        # cause is the tail of this chain, so the failures are built from the
        # end and share their tails (no recursion, O(chain length)).  A link
        # that is not an ``Exception`` (e.g. KeyboardInterrupt) can not be a
        # Failure, so the chain stops there; so does a cycle.
        chain: list[BaseException] = []
        cause = _next_in_chain(value)
        while (isinstance(cause, Exception) and cause is not value
               and not any(cause is c for c in chain)):
            chain.append(cause)
            cause = _next_in_chain(cause)
        causes: tuple[Failure, ...] = ()
        for cause in reversed(chain):
            failure = cls.__new__(cls)
            failure._init_live((type(cause), cause, cause.__traceback__),
                               causes=causes)
            causes = (failure,) + causes
        return causes

    @classmethod
    def from_exception(cls, exception: BaseException) -> Failure:
        """Create a failure from an exception object (uses its ``__traceback__``)."""
        return cls((type(exception), exception, exception.__traceback__))

    @classmethod
    def validate(cls, data: Any) -> None:
        """Check that ``data`` is a valid :meth:`to_dict` result.

        :raises taskflow.exceptions.InvalidFormat: with the first problem.
        """
        problem = _schema_problem(data)
        if problem is not None:
            raise exc.InvalidFormat('Failure data not of the expected'
                                    ' format: %s' % problem)
        pending = [data]
        while pending:
            cause = pending.pop(0)
            root_type = cause['exc_type_names'][-1]
            if root_type not in cls.BASE_EXCEPTIONS:
                raise exc.InvalidFormat(
                    "Failure data 'exc_type_names' must have an initial"
                    " exception type that is one of %s types: '%s' is not"
                    " one of those types" % (cls.BASE_EXCEPTIONS, root_type))
            pending[0:0] = cause.get('causes') or ()

    @classmethod
    def from_dict(cls, data: dict) -> Failure:
        """Build a (data mode) failure from the output of :meth:`to_dict`."""
        data = dict(data)
        version = data.pop('version', None)
        if version != cls.DICT_VERSION:
            raise ValueError('Invalid dict version of failure object: %r'
                             % version)
        causes = data.get('causes')
        if causes is not None:
            data['causes'] = tuple(cls.from_dict(c) for c in causes)
        failure = cls.__new__(cls)
        failure._init_data(None, data)
        return failure

    def to_dict(self, include_args: bool = True) -> dict:
        """Serialise to a plain dict (:meth:`from_dict` reverses it)."""
        return {
            'exception_str': self._exception_str,
            'traceback_str': self.traceback_str,
            'exc_type_names': list(self._exc_type_names),
            'version': self.DICT_VERSION,
            'exc_args': self._exc_args if include_args else (),
            # Causes always carry their args (as the reference does).
            'causes': [c.to_dict() for c in self._causes],
        }

    def copy(self) -> Failure:
        """Return an equal failure (the exception value is shallow copied)."""
        other = Failure.__new__(Failure)
        other._exc_info = _copy_exc_info(self._exc_info)
        other._exc_type_names = self._exc_type_names
        other._exception_str = self._exception_str
        other._exc_args = self._exc_args
        other._traceback_str = self._traceback_str
        other._causes = self._causes
        other._tb_from_exc_info = self._tb_from_exc_info
        return other

    def _matches(self, other: Failure) -> bool:
        if self is other:
            return True
        return (self._exc_type_names == other._exc_type_names
                and self._exc_args == other._exc_args
                and self._exception_str == other._exception_str
                and self._causes == other._causes
                and self.traceback_str == other.traceback_str)

    def matches(self, other: Any) -> bool:
        """Equivalence that tolerates a missing live traceback.

        When either side has no ``exc_info`` (e.g. it was deserialised) the
        captured data is compared; otherwise this is ``==``.
        """
        if not isinstance(other, Failure):
            return False
        if self._exc_info is None or other._exc_info is None:
            return self._matches(other)
        return self == other

    def _exc_info_tb_str(self) -> str:
        if self._tb_from_exc_info:
            return self.traceback_str
        return _format_tb(self._exc_info[2])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Failure):
            return NotImplemented
        if not self._matches(other):
            return False
        ei1, ei2 = self._exc_info, other._exc_info
        if ei1 is ei2:
            return True
        if ei1 is None or ei2 is None:
            return False
        if ei1[0] is not ei2[0]:
            return False
        v1, v2 = ei1[1], ei2[1]
        if v1 is not v2 and (str(v1) != str(v2) or repr(v1) != repr(v2)):
            return False
        return (ei1[2] is ei2[2]
                or self._exc_info_tb_str() == other._exc_info_tb_str())

    __hash__ = None  # type: ignore[assignment]

    @property
    def exception(self) -> BaseException | None:
        """The exception object, or ``None`` when not available."""
        if self._exc_info is None:
            return None
        return self._exc_info[1]

    @property
    def exception_str(self) -> str:
        """``str()`` of the exception."""
        return self._exception_str

    @property
    def exception_args(self) -> tuple:
        """Tuple of the exception's args."""
        return self._exc_args

    @property
    def exc_info(self) -> tuple | None:
        """``(type, value, traceback)`` or ``None``."""
        return self._exc_info

    @property
    def exc_type_names(self) -> tuple[str, ...]:
        """Qualified class names of the exception type's MRO, up to ``Exception``.

        (A taskflow-ng extension: the reference only exposes them by
        iterating the failure.)
        """
        return self._exc_type_names

    @property
    def traceback_str(self) -> str | None:
        """The formatted traceback frames (no header line)."""
        tb_str = self._traceback_str
        if tb_str is _LAZY:
            tb_str = self._traceback_str = _secrets.scrub(_format_tb(self._exc_info[2]))
        return tb_str

    @property
    def causes(self) -> tuple[Failure, ...]:
        """Failures of the chained ``__cause__``/``__context__`` exceptions."""
        return self._causes

    def __iter__(self) -> Iterator[str]:
        return iter(self._exc_type_names)

    def check(self, *exc_classes: type | str) -> type | str | None:
        """Return the first of ``exc_classes`` this failure is an instance of.

        Each item is a class or a fully qualified class name; ``None`` when
        nothing matches.
        """
        names = self._exc_type_names
        for cls in exc_classes:
            if isinstance(cls, type):
                name = _class_name(cls)
            elif isinstance(cls, str):
                name = cls
            else:
                continue
            if name in names:
                return cls
        return None

    def reraise(self) -> NoReturn:
        """Re-raise the original exception, or a ``WrappedFailure`` of self."""
        if self._exc_info is not None and self._exc_info[1] is not None:
            value = self._exc_info[1]
            try:
                raise value.with_traceback(self._exc_info[2])
            finally:
                del value  # avoid a frame <-> exception reference cycle
        raise exc.WrappedFailure([self])

    @staticmethod
    def reraise_if_any(failures: Iterable[Failure]) -> None:
        """Re-raise the only failure, or ``WrappedFailure`` of several."""
        failures = list(failures)
        if len(failures) == 1:
            failures[0].reraise()
        elif len(failures) > 1:
            raise exc.WrappedFailure(failures)

    def pformat(self, traceback: bool = False) -> str:
        """``'Failure: Type: message'``, optionally with the traceback."""
        if self._exc_type_names:
            text = 'Failure: %s: %s' % (self._exc_type_names[0],
                                        self._exception_str)
        else:
            text = 'Failure: %s' % (self._exception_str,)
        if traceback:
            tb_str = (self.traceback_str or '').rstrip()
            if tb_str:
                text += (os.linesep + 'Traceback (most recent call last):'
                         + os.linesep + tb_str)
            else:
                text += os.linesep + 'Traceback not available.'
        return text

    def __str__(self) -> str:
        return self.pformat()

    def __getstate__(self) -> dict:
        state = self.to_dict()
        if self._exc_info is not None:
            # Tracebacks can not be pickled; the type and value can.
            state['exc_info'] = tuple(self._exc_info[:2])
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        state.pop('version', None)
        exc_info = state.pop('exc_info', None)
        if exc_info is not None:
            exc_info = (exc_info[0], exc_info[1], None)
        state['causes'] = tuple(Failure.from_dict(c)
                                for c in state.get('causes') or ())
        self._init_data(exc_info, state)


def _type_ok(value: Any, json_type: str) -> bool:
    if json_type == 'string':
        return isinstance(value, str)
    if json_type == 'array':
        return isinstance(value, (list, tuple))
    if json_type == 'object':
        return isinstance(value, dict)
    # 'integer' (the only other type the schema uses); JSON has no bools
    # as integers but does accept integral floats.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float)
                                      and value.is_integer())


_JSON_TYPE_NAMES = {
    'version': 'integer', 'exc_args': 'array', 'exception_str': 'string',
    'traceback_str': 'string', 'exc_type_names': 'array', 'causes': 'array',
}


def _schema_problem(data: Any) -> str | None:
    """Describe the first way ``data`` breaks ``Failure.SCHEMA`` (or ``None``)."""
    if not _type_ok(data, 'object'):
        return '%r is not of type %r' % (data, 'object')
    for key in ('exception_str', 'traceback_str', 'exc_type_names'):
        if key not in data:
            return '%r is a required property' % (key,)
    for key, json_type in _JSON_TYPE_NAMES.items():
        if key not in data:
            continue
        value = data[key]
        if not _type_ok(value, json_type):
            return '%r is not of type %r' % (value, json_type)
        if key == 'version' and value < 0:
            return '%r is less than the minimum of 0' % (value,)
        if key == 'exc_type_names':
            if not value:
                return '%r should be non-empty' % (value,)
            for name in value:
                if not isinstance(name, str):
                    return '%r is not of type %r' % (name, 'string')
        if key == 'causes':
            for cause in value:
                problem = _schema_problem(cause)
                if problem is not None:
                    return problem
    return None
