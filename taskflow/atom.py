"""Atoms: the smallest units a flow is made of (tasks and retries).

An atom declares what it needs (``requires``/``rebind``/``optional``) and what
it publishes (``provides``/``save_as``).  Both are worked out once, here, from
the signatures of ``execute`` and ``revert``; engines only read the results.
"""

from __future__ import annotations

import abc
import collections
import functools
import inspect
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from taskflow.types import sets

# What ``save_as`` maps a provided name to: None = the whole result, an int =
# an index into a sequence result, a str = a key of a mapping result.
SaveAsIndex = int | str | None

# Shared empty values: flows of many atoms keep fewer objects alive (and the
# garbage collector has fewer to scan).  OrderedSet is immutable.
_EMPTY_SET = sets.OrderedSet()
_NO_NAMES: frozenset[str] = frozenset()


def _ordered_set(items: list[str]) -> sets.OrderedSet:
    return sets.OrderedSet(items) if items else _EMPTY_SET


def _union(first: sets.OrderedSet, second: sets.OrderedSet) -> sets.OrderedSet:
    if not second or second == first:
        return first
    return _ordered_set(list(first) + list(second))


def _optional_arguments(mapping: Mapping[str, str], optional: sets.OrderedSet,
                        requires: sets.OrderedSet) -> frozenset[str]:
    """Arguments whose storage name is only optional (none when nothing is)."""
    if not optional:
        return _NO_NAMES
    optional_only = set(optional).difference(requires)
    found = frozenset([arg for arg, name in mapping.items() if name in optional_only])
    return found if found else _NO_NAMES


def _save_as_to_mapping(provides: Any) -> collections.OrderedDict:
    """Translate a ``provides`` value into the ordered ``save_as`` mapping."""
    if provides is None:
        return collections.OrderedDict()
    if isinstance(provides, str):
        return collections.OrderedDict([(provides, None)])
    if isinstance(provides, (tuple, list)):
        return collections.OrderedDict((name, i) for i, name in enumerate(provides))
    if isinstance(provides, (set, frozenset)):
        return collections.OrderedDict((name, name) for name in provides)
    raise TypeError('Atom provides parameter should be str, set or tuple/list, not %r'
                    % (provides,))


class _Signature:
    """The parts of a callable's signature that argument inference needs."""

    __slots__ = ('required', 'all_args', 'has_var_kwargs')

    def __init__(self, required: list[str], all_args: list[str], has_var_kwargs: bool):
        self.required = required
        self.all_args = all_args
        self.has_var_kwargs = has_var_kwargs


@functools.lru_cache(maxsize=4096)
def _inspect_function(function: Callable, bound: bool) -> _Signature:
    # Cached per function object: every instance of a task class shares the
    # same ``execute``, so flows of thousands of atoms inspect it once.
    params = list(inspect.signature(function).parameters.values())
    if bound and params and params[0].kind in _POSITIONAL:
        # A bound method's first parameter receives the instance (or class),
        # whatever it is called (``def execute(me, x)``): never an input.
        # Unbound callables keep theirs, even one named ``self``.
        params = params[1:]
    required, all_args, var_kwargs = [], [], False
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            var_kwargs = True
        elif p.kind is not p.VAR_POSITIONAL:
            all_args.append(p.name)
            if p.default is p.empty:
                required.append(p.name)
    return _Signature(required, all_args, var_kwargs)


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _signature_of(function: Callable) -> _Signature:
    bound = isinstance(function, types.MethodType)
    target = function.__func__ if bound else function
    try:
        return _inspect_function(target, bound)
    except TypeError:  # unhashable callable objects cannot be cached
        return _inspect_function.__wrapped__(target, bound)


def build_arg_mapping(atom_name: str | None, function: Callable, requires: Any,
                      rebind: Any, auto_extract: bool,
                      ignore_list: Iterable[str] = ()) -> tuple[collections.OrderedDict,
                                                                 collections.OrderedDict]:
    """Infer how ``function``'s arguments map onto storage names.

    Returns ``(required, optional)``: ordered mappings of argument name to the
    storage name its value is read from.
    """
    sig = _signature_of(function)
    ignore = set(ignore_list)
    req_args = [a for a in sig.required if a not in ignore]
    required: collections.OrderedDict[str, str] = collections.OrderedDict()
    if auto_extract:
        required.update((a, a) for a in req_args)
    if requires is not None:
        if isinstance(requires, str):
            required[requires] = requires
        else:
            required.update((name, name) for name in requires)
    if rebind is not None:
        if isinstance(rebind, Mapping):
            required.update(rebind)
        elif isinstance(rebind, (list, tuple)):
            for i, storage_name in enumerate(rebind):
                arg = req_args[i] if i < len(req_args) else storage_name
                required[arg] = storage_name
        else:
            raise TypeError("Invalid rebind value '%s' (%s)" % (rebind, type(rebind)))
    optional: collections.OrderedDict[str, str] = collections.OrderedDict()
    if auto_extract:
        optional.update((a, a) for a in sig.all_args
                        if a not in required and a not in ignore)
    if not sig.has_var_kwargs:
        known = set(sig.all_args)
        extra = [a for a in required if a not in known]
        if extra:
            raise ValueError('Extra arguments given to atom %s: %s' % (atom_name, extra))
    missing = [a for a in req_args if a not in required]
    if missing:
        raise ValueError('Missing arguments for atom %s: %s' % (atom_name, missing))
    return required, optional


class Atom(metaclass=abc.ABCMeta):
    """An abstract unit of work with an ``execute`` and an optional ``revert``.

    :param name: unique name inside one engine's flow.
    :param provides: names under which the result is published (str, tuple/list
        of names for a sequence result, set of names for a mapping result).
    :param requires: extra storage names ``execute`` needs (beyond its arguments).
    :param auto_extract: infer requirements from ``execute``'s signature.
    :param rebind: map arguments to other storage names (dict, or a list zipped
        with the required arguments).
    :param inject: values given to this atom only, overriding storage.
    :param ignore_list: argument names to leave out of inference.
    :param revert_rebind: like ``rebind``, for ``revert``.
    :param revert_requires: like ``requires``, for ``revert``.
    """

    priority = 0
    default_provides: Any = None

    def __init__(self, name: str | None = None, provides: Any = None, requires: Any = None,
                 auto_extract: bool = True, rebind: Any = None,
                 inject: Mapping[str, Any] | None = None, ignore_list: Iterable[str] | None = None,
                 revert_rebind: Any = None, revert_requires: Any = None) -> None:
        if provides is None:
            provides = self.default_provides
        if inject is not None and not isinstance(inject, Mapping):
            raise TypeError('Atom %r: inject must be a mapping of argument names to values,'
                            ' not %r' % (name, inject))
        self.name = name
        self.version: tuple | str = (1, 0)
        self.inject = inject
        self.save_as = _save_as_to_mapping(provides)
        self.provides = _ordered_set(self.save_as)
        ignore_list = list(ignore_list or ())
        execute_fn, revert_fn, revert_ignore = self._argument_sources()
        self.rebind, execute_requires, self.optional = self._build_arg_mapping(
            execute_fn, requires, rebind, auto_extract, ignore_list)
        self.revert_rebind, revert_requires, self.revert_optional = self._build_arg_mapping(
            revert_fn, revert_requires or requires, revert_rebind or rebind, auto_extract,
            ignore_list + list(revert_ignore))
        # A name only revert needs is still a requirement of the atom.
        self.requires = _union(execute_requires, revert_requires)
        # Argument names the engine may leave out when nothing provides them.
        self._optional_args = _optional_arguments(self.rebind, self.optional, execute_requires)
        self._revert_optional_args = _optional_arguments(
            self.revert_rebind, self.revert_optional, revert_requires)

    def _argument_sources(self) -> tuple[Callable, Callable, tuple[str, ...]]:
        """The callables whose signatures drive inference, and the revert-only ignores."""
        return self.execute, self.revert, ('result', 'flow_failures')

    def _build_arg_mapping(self, executor: Callable, requires: Any = None, rebind: Any = None,
                           auto_extract: bool = True, ignore_list: Iterable[str] | None = None
                           ) -> tuple[collections.OrderedDict, sets.OrderedSet, sets.OrderedSet]:
        """How ``executor``'s arguments are fetched: ``(rebind, requires, optional)``.

        ``rebind`` maps every argument (required ones first) to the storage
        name its value is read from; ``requires``/``optional`` are the storage
        names of the required/optional arguments, less the atom's ``inject``
        keys.  The constructor calls this for ``execute`` and for ``revert``;
        subclasses written for the original override it.
        """
        required, optional = build_arg_mapping(self.name, executor, requires, rebind,
                                               auto_extract, ignore_list or ())
        mapping = collections.OrderedDict(required)
        if optional:
            for arg, name in optional.items():
                mapping.setdefault(arg, name)
        injected = self.inject
        if injected:
            return (mapping,
                    _ordered_set([n for n in required.values() if n not in injected]),
                    _ordered_set([n for n in optional.values() if n not in injected]))
        return (mapping, _ordered_set(list(required.values())),
                _ordered_set(list(optional.values())))

    def pre_execute(self) -> None:
        """Hook called right before ``execute``."""

    @abc.abstractmethod
    def execute(self, *args, **kwargs) -> Any:
        """Do the atom's work; the return value is its result."""

    def post_execute(self) -> None:
        """Hook called right after ``execute`` (even when it raised)."""

    def pre_revert(self) -> None:
        """Hook called right before ``revert``."""

    def revert(self, *args, **kwargs) -> Any:
        """Undo what ``execute`` did; receives ``result=`` and ``flow_failures=``."""

    def post_revert(self) -> None:
        """Hook called right after ``revert`` (even when it raised)."""

    def __str__(self) -> str:
        version = self.version
        if isinstance(version, tuple):
            version = '.'.join(str(part) for part in version)
        return '"%s==%s"' % (self.name, version)

    def __repr__(self) -> str:
        cls = type(self)
        return '<%s.%s %s>' % (cls.__module__, cls.__name__, self)
