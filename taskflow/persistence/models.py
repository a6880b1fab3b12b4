"""Persistence models: what a backend stores about books, flows and atoms.

The containment model::

    LogBook ──< FlowDetail ──< AtomDetail (TaskDetail | RetryDetail)

Objects are plain in-memory values; they reach storage only through a
backend connection (the engine's storage writes through on every change).

The dict forms produced by ``to_dict()`` are the original TaskFlow's, so data
written by either implementation reads back in the other:

* ``LogBook.to_dict(marshal_time=False)`` ->
  ``{'name', 'meta', 'uuid', 'updated_at', 'created_at'}``; with
  ``marshal_time=True`` datetimes become ``{'day', 'month', 'year', 'hour',
  'minute', 'second', 'microsecond'[, 'tzname']}`` dicts.
* ``FlowDetail.to_dict()`` -> ``{'name', 'meta', 'state', 'uuid'}``.
* ``AtomDetail.to_dict()`` -> ``{'failure', 'revert_failure', 'meta', 'name',
  'results', 'revert_results', 'state', 'version', 'intention', 'uuid'}``
  with failures as ``Failure.to_dict()``; a retry's results are a list of
  ``(value, {atom_name: failure_dict})`` pairs.
"""

from __future__ import annotations

import abc
import copy
import datetime
import os
import uuid as uuidlib
from collections.abc import Callable, Iterator
from typing import Any, cast

from taskflow import exceptions as exc
from taskflow import states
from taskflow.types import failure as ft
from taskflow.utils import misc

__all__ = [
    'ATOM_TYPES', 'AtomDetail', 'FlowDetail', 'LogBook', 'RetryDetail',
    'TaskDetail', 'atom_detail_class', 'atom_detail_type',
]


# --- helpers -----------------------------------------------------------------

def _now() -> datetime.datetime:
    # Naive UTC, as the original stores it (and as SQL DATETIME columns keep it).
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _copy_function(deep_copy: bool) -> Callable[[Any], Any]:
    # A shallow merge shares the other object's values (no copy at all).
    return copy.deepcopy if deep_copy else (lambda value: value)


def _copy_meta(meta: dict) -> dict:
    # As the original: an empty meta dict is shared with the copy, not copied.
    return meta.copy() if meta else meta


def _fix_meta(data: dict) -> dict:
    meta = data.get('meta')
    return meta if meta is not None else {}


def _marshal_time(when: datetime.datetime | None) -> dict | None:
    if when is None:
        return None
    out: dict[str, Any] = {
        'day': when.day, 'month': when.month, 'year': when.year,
        'hour': when.hour, 'minute': when.minute, 'second': when.second,
        'microsecond': when.microsecond}
    if when.tzinfo is not None:
        out['tzname'] = when.tzname()
    return out


def _unmarshal_time(data: dict | None) -> datetime.datetime | None:
    if data is None:
        return None
    # Leap seconds (60) are clamped, as the original does.
    when = datetime.datetime(day=data['day'], month=data['month'],
                             year=data['year'], hour=data['hour'],
                             minute=data['minute'],
                             second=min(data['second'], 59),
                             microsecond=data['microsecond'])
    tzname = data.get('tzname')
    if tzname:
        import zoneinfo
        when = when.replace(tzinfo=zoneinfo.ZoneInfo(tzname))
    return when


def _format_meta(meta: dict, indent: int) -> list[str]:
    lines = ['%s- metadata:' % (' ' * indent)]
    for key, value in meta.items():
        if key == 'progress':
            try:
                value = '%0.2f%%' % (value * 100.0)
            except (TypeError, ValueError):
                pass
        lines.append('%s+ %s = %s' % (' ' * (indent + 2), key, value))
    return lines


def _format_shared(obj: Any, indent: int) -> list[str]:
    return ['%s%s: %r' % (' ' * indent, type(obj).__name__, obj.name),
            '%s- uuid = %s' % (' ' * (indent + 1), obj.uuid)]


def _check_indent(indent: int) -> None:
    if indent < 0:
        raise ValueError('indent must be >= 0, not %r' % (indent,))


def _failure_to_dict(value: Any) -> Any:
    return value.to_dict() if isinstance(value, ft.Failure) else value


def _failure_from_dict(value: Any) -> Any:
    return ft.Failure.from_dict(value) if isinstance(value, dict) else value


# --- LogBook -----------------------------------------------------------------

class LogBook:
    """A named collection of flow details (and metadata) kept together."""

    def __init__(self, name: str, uuid: str | None = None) -> None:
        self._uuid = uuid if uuid else str(uuidlib.uuid4())
        self._name = name
        self._flowdetails_by_id: dict[str, FlowDetail] = {}
        self.created_at: datetime.datetime | None = _now()
        self.updated_at: datetime.datetime | None = None
        self.meta: dict = {}

    @property
    def uuid(self) -> str:
        return self._uuid

    @property
    def name(self) -> str:
        return self._name

    def add(self, fd: FlowDetail) -> None:
        """Add (or replace, by uuid) a flow detail."""
        self._flowdetails_by_id[fd.uuid] = fd
        self.updated_at = _now()

    def find(self, flow_uuid: str) -> FlowDetail | None:
        """Return the flow detail with ``flow_uuid`` or ``None``."""
        return self._flowdetails_by_id.get(flow_uuid)

    def merge(self, lb: LogBook, deep_copy: bool = False) -> LogBook:
        """Copy ``lb``'s meta and timestamps into this book (not its flows)."""
        if lb is self:
            return self
        copy_fn = _copy_function(deep_copy)
        if self.meta != lb.meta:
            self.meta = copy_fn(lb.meta)
        if lb.created_at != self.created_at:
            self.created_at = copy_fn(lb.created_at)
        if lb.updated_at != self.updated_at:
            self.updated_at = copy_fn(lb.updated_at)
        return self

    def copy(self, retain_contents: bool = True) -> LogBook:
        """A new book; shares the flow details unless ``retain_contents``
        is false (then it has none). ``meta`` is copied shallowly (unless
        empty)."""
        clone = copy.copy(self)
        if not retain_contents:
            clone._flowdetails_by_id = {}
        else:
            clone._flowdetails_by_id = self._flowdetails_by_id.copy()
        clone.meta = _copy_meta(self.meta)
        return clone

    def to_dict(self, marshal_time: bool = False) -> dict:
        """The book (without its flow details) as a dict."""
        marshal = _marshal_time if marshal_time else (lambda when: when)
        return {
            'name': self.name,
            'meta': self.meta,
            'uuid': self.uuid,
            'updated_at': marshal(self.updated_at),
            'created_at': marshal(self.created_at),
        }

    @classmethod
    def from_dict(cls, data: dict, unmarshal_time: bool = False) -> LogBook:
        """Build a book (without flow details) from ``to_dict()`` output."""
        unmarshal = _unmarshal_time if unmarshal_time else (lambda when: when)
        obj = cls(data['name'], uuid=data['uuid'])
        obj.updated_at = unmarshal(data['updated_at'])
        obj.created_at = unmarshal(data['created_at'])
        obj.meta = _fix_meta(data)
        return obj

    def pformat(self, indent: int = 0, linesep: str = os.linesep) -> str:
        """A human readable, indented description of the book and its
        contents."""
        _check_indent(indent)
        lines = _format_shared(self, indent)
        if self.meta:
            lines.extend(_format_meta(self.meta, indent + 1))
        if self.created_at is not None:
            lines.append('%s- created_at = %s' % (
                ' ' * (indent + 1), self.created_at.isoformat()))
        if self.updated_at is not None:
            lines.append('%s- updated_at = %s' % (
                ' ' * (indent + 1), self.updated_at.isoformat()))
        for fd in self:
            lines.append(fd.pformat(indent=indent + 1, linesep=linesep))
        return linesep.join(lines)

    def __iter__(self) -> Iterator[FlowDetail]:
        return iter(list(self._flowdetails_by_id.values()))

    def __len__(self) -> int:
        return len(self._flowdetails_by_id)


# --- FlowDetail --------------------------------------------------------------

class FlowDetail:
    """The persisted state of one flow: its state, meta and atom details."""

    def __init__(self, name: str, uuid: str) -> None:
        self._uuid = uuid
        self._name = name
        self._atomdetails_by_id: dict[str, AtomDetail] = {}
        self.state: str | None = None
        self.meta: dict = {}

    @property
    def uuid(self) -> str:
        return self._uuid

    @property
    def name(self) -> str:
        return self._name

    def update(self, fd: FlowDetail) -> FlowDetail:
        """Take state, meta and atom details (shared) from ``fd``."""
        if fd is self:
            return self
        self._atomdetails_by_id = fd._atomdetails_by_id
        self.state = fd.state
        self.meta = fd.meta
        return self

    def merge(self, fd: FlowDetail, deep_copy: bool = False) -> FlowDetail:
        """Copy ``fd``'s state and meta into this detail (not its atoms)."""
        if fd is self:
            return self
        copy_fn = _copy_function(deep_copy)
        if self.meta != fd.meta:
            self.meta = copy_fn(fd.meta)
        if self.state != fd.state:
            # States are strings, never worth copying.
            self.state = fd.state
        return self

    def copy(self, retain_contents: bool = True) -> FlowDetail:
        """A new detail; shares the atom details unless ``retain_contents``
        is false. ``meta`` is copied shallowly (unless empty)."""
        clone = copy.copy(self)
        if not retain_contents:
            clone._atomdetails_by_id = {}
        else:
            clone._atomdetails_by_id = self._atomdetails_by_id.copy()
        clone.meta = _copy_meta(self.meta)
        return clone

    def to_dict(self) -> dict:
        """The flow detail (without its atom details) as a dict."""
        return {'name': self.name, 'meta': self.meta,
                'state': self.state, 'uuid': self.uuid}

    @classmethod
    def from_dict(cls, data: dict) -> FlowDetail:
        """Build a flow detail (without atom details) from a dict."""
        obj = cls(data['name'], data['uuid'])
        obj.state = data.get('state')
        obj.meta = _fix_meta(data)
        return obj

    def add(self, ad: AtomDetail) -> None:
        """Add (or replace, by uuid) an atom detail."""
        self._atomdetails_by_id[ad.uuid] = ad

    def find(self, ad_uuid: str) -> AtomDetail | None:
        """Return the atom detail with ``ad_uuid`` or ``None``."""
        return self._atomdetails_by_id.get(ad_uuid)

    def pformat(self, indent: int = 0, linesep: str = os.linesep) -> str:
        """A human readable, indented description of the flow detail."""
        _check_indent(indent)
        lines = _format_shared(self, indent)
        lines.append('%s- state = %s' % (' ' * (indent + 1), self.state))
        if self.meta:
            lines.extend(_format_meta(self.meta, indent + 1))
        for ad in self:
            lines.append(ad.pformat(indent=indent + 1, linesep=linesep))
        return linesep.join(lines)

    def __iter__(self) -> Iterator[AtomDetail]:
        return iter(list(self._atomdetails_by_id.values()))

    def __len__(self) -> int:
        return len(self._atomdetails_by_id)


# --- AtomDetail --------------------------------------------------------------

class AtomDetail(abc.ABC):
    """The persisted state of one atom (abstract: see the two subclasses).

    Fields: ``state`` (``None`` until the engine sets ``PENDING``),
    ``intention`` (``'EXECUTE'``), ``results``, ``failure`` (execute
    ``Failure``), ``revert_results``, ``revert_failure``, ``meta`` (dict) and
    ``version`` (the atom's version string).
    """

    # Flows may hold many thousands of these: slots keep them small.
    __slots__ = ('_uuid', '_name', 'state', 'intention', 'results', 'failure',
                 'revert_results', 'revert_failure', 'meta', 'version')

    def __init__(self, name: str, uuid: str) -> None:
        self._uuid = uuid
        self._name = name
        self.state: str | None = None
        self.intention: str | None = states.EXECUTE
        self.results: Any = None
        self.failure: Any = None
        self.revert_results: Any = None
        self.revert_failure: Any = None
        self.meta: dict = {}
        self.version: Any = None

    @property
    def uuid(self) -> str:
        return self._uuid

    @property
    def name(self) -> str:
        return self._name

    @property
    def last_results(self) -> Any:
        """The most recent result."""
        return self.results

    def update(self, ad: AtomDetail) -> AtomDetail:
        """Take every field but name and uuid from ``ad`` (values shared)."""
        if ad is self:
            return self
        self.state = ad.state
        self.intention = ad.intention
        self.meta = ad.meta
        self.failure = ad.failure
        self.results = ad.results
        self.revert_results = ad.revert_results
        self.revert_failure = ad.revert_failure
        self.version = ad.version
        return self

    @abc.abstractmethod
    def merge(self, other: AtomDetail, deep_copy: bool = False) -> AtomDetail:
        """Copy every field but name and uuid from ``other``."""
        copy_fn = _copy_function(deep_copy)
        # Strings (state, intention) are immutable: no copy needed.
        self.state = other.state
        self.intention = other.intention
        if self.failure != other.failure:
            self.failure = _copy_failure(other.failure, deep_copy)
        if self.revert_failure != other.revert_failure:
            self.revert_failure = _copy_failure(other.revert_failure, deep_copy)
        if self.meta != other.meta:
            self.meta = copy_fn(other.meta)
        if self.version != other.version:
            self.version = copy_fn(other.version)
        return self

    @abc.abstractmethod
    def put(self, state: str, result: Any) -> bool:
        """Record ``result`` for ``state`` (clearing fields it makes stale);
        return whether anything changed."""

    @abc.abstractmethod
    def reset(self, state: str) -> None:
        """Clear results and failures, set ``state`` and intention EXECUTE."""

    @abc.abstractmethod
    def copy(self) -> AtomDetail:
        """A new detail with the same values (meta copied shallowly)."""

    def to_dict(self) -> dict:
        """The atom detail as a dict (failures as ``Failure.to_dict()``)."""
        return self._to_dict_shared(self.results)

    def _to_dict_shared(self, results: Any) -> dict:
        return {
            'failure': _failure_to_dict(self.failure),
            'revert_failure': _failure_to_dict(self.revert_failure),
            'meta': self.meta,
            'name': self.name,
            'results': results,
            'revert_results': self.revert_results,
            'state': self.state,
            'version': self.version,
            'intention': self.intention,
            'uuid': self.uuid,
        }

    @classmethod
    def from_dict(cls, data: dict) -> AtomDetail:
        """Build an atom detail from ``to_dict()`` output."""
        obj = cls(data['name'], data['uuid'])
        obj.state = data.get('state')
        obj.intention = data.get('intention')
        obj.results = data.get('results')
        obj.revert_results = data.get('revert_results')
        obj.version = data.get('version')
        obj.meta = _fix_meta(data)
        obj.failure = _failure_from_dict(data.get('failure'))
        obj.revert_failure = _failure_from_dict(data.get('revert_failure'))
        return obj

    def pformat(self, indent: int = 0, linesep: str = os.linesep) -> str:
        """A human readable, indented description of the atom detail."""
        _check_indent(indent)
        pad = ' ' * (indent + 1)
        lines = _format_shared(self, indent)
        lines.append('%s- state = %s' % (pad, self.state))
        lines.append('%s- version = %s' % (pad, misc.get_version_string(self)))
        lines.append('%s- results = %s' % (pad, self.results))
        lines.append('%s- failure = %s' % (pad, bool(self.failure)))
        if self.meta:
            lines.extend(_format_meta(self.meta, indent + 1))
        return linesep.join(lines)

    # Shared put() machinery: each setter notes whether it changed anything.
    def _set_state(self, state: str) -> bool:
        if self.state != state:
            self.state = state
            return True
        return False

    def _clear(self, *fields: str) -> bool:
        altered = False
        for field in fields:
            if getattr(self, field) is not None:
                setattr(self, field, None)
                altered = True
        return altered

    def _put_failure(self, field: str, value: Any) -> bool:
        # Failures compare by value (an equal failure is not a change);
        # results below compare by identity, as the original does.
        if getattr(self, field) != value:
            setattr(self, field, value)
            return True
        return False

    def _put_revert(self, state: str, result: Any) -> bool:
        altered = self._set_state(state)
        if state == states.REVERTED:
            if self.revert_results is not result:
                self.revert_results = result
                altered = True
            altered |= self._clear('revert_failure')
        else:
            altered |= self._put_failure('revert_failure', result)
            altered |= self._clear('revert_results')
        return altered


def _copy_failure(value: Any, deep_copy: bool) -> Any:
    if deep_copy and isinstance(value, ft.Failure):
        return value.copy()
    return value


class TaskDetail(AtomDetail):
    """The persisted state of a task."""

    __slots__ = ()

    def reset(self, state: str) -> None:
        self.results = None
        self.failure = None
        self.revert_results = None
        self.revert_failure = None
        self.state = state
        self.intention = states.EXECUTE

    def put(self, state: str, result: Any) -> bool:
        if state == states.SUCCESS:
            altered = self._set_state(state)
            if self.results is not result:
                self.results = result
                altered = True
            return self._clear('failure', 'revert_results',
                               'revert_failure') or altered
        if state == states.FAILURE:
            altered = self._set_state(state)
            altered |= self._put_failure('failure', result)
            return self._clear('results', 'revert_results',
                               'revert_failure') or altered
        if state == states.REVERTED:
            return self._put_revert(state, result)
        if state == states.REVERT_FAILURE:
            altered = self._put_revert(state, result)
            return self._clear('results') or altered
        return self._set_state(state)

    def merge(self, other: AtomDetail, deep_copy: bool = False) -> TaskDetail:
        if not isinstance(other, TaskDetail):
            raise exc.NotImplementedError('Can only merge with other'
                                          ' task details')
        if other is self:
            return self
        super().merge(other, deep_copy=deep_copy)
        # Results are shared even by a deep merge (as the original does).
        self.results = other.results
        self.revert_results = other.revert_results
        return self

    def copy(self) -> TaskDetail:
        clone = copy.copy(self)
        clone.meta = _copy_meta(self.meta)
        return clone


class RetryDetail(AtomDetail):
    """The persisted state of a retry.

    ``results`` is the retry's history: a list of ``(value, failures)`` pairs,
    one per attempt, where ``failures`` maps atom names to the ``Failure``
    they raised during that attempt.
    """

    __slots__ = ()

    def __init__(self, name: str, uuid: str) -> None:
        super().__init__(name, uuid)
        self.results: list = []

    def reset(self, state: str) -> None:
        self.results = []
        self.failure = None
        self.revert_results = None
        self.revert_failure = None
        self.state = state
        self.intention = states.EXECUTE

    def copy(self) -> RetryDetail:
        clone = copy.copy(self)
        clone.results = [(value, dict(failures))
                         for value, failures in self.results]
        clone.meta = _copy_meta(self.meta)
        return clone

    @property
    def last_results(self) -> Any:
        """The value returned by the last attempt (``NotFound`` if none)."""
        try:
            return self.results[-1][0]
        except IndexError as e:
            raise exc.NotFound('Last results not found', e) from e

    @property
    def last_failures(self) -> dict:
        """The failures of the last attempt (``NotFound`` if none)."""
        try:
            return self.results[-1][1]
        except IndexError as e:
            raise exc.NotFound('Last failures not found', e) from e

    def put(self, state: str, result: Any) -> bool:
        # Every successful attempt is appended: always a change.
        if state == states.SUCCESS:
            self._set_state(state)
            self.results.append((result, {}))
            self._clear('failure', 'revert_results', 'revert_failure')
            return True
        if state == states.FAILURE:
            altered = self._set_state(state)
            altered |= self._put_failure('failure', result)
            return self._clear('revert_results',
                               'revert_failure') or altered
        if state in (states.REVERTED, states.REVERT_FAILURE):
            return self._put_revert(state, result)
        return self._set_state(state)

    @classmethod
    def from_dict(cls, data: dict) -> RetryDetail:
        # NOTE: the original 6.5.0 loses each attempt's value when that
        # attempt has failures (it keeps the last failure dict instead); we
        # restore the value, which is what resumed retries need.
        obj = super().from_dict(data)
        results = []
        for value, failures in obj.results or ():
            results.append((value, {name: _failure_from_dict(f)
                                    for name, f in failures.items()}))
        obj.results = results
        return cast(RetryDetail, obj)

    def to_dict(self) -> dict:
        results = [(value, {name: _failure_to_dict(f)
                            for name, f in failures.items()})
                   for value, failures in self.results]
        return self._to_dict_shared(results)

    def merge(self, other: AtomDetail, deep_copy: bool = False) -> RetryDetail:
        if not isinstance(other, RetryDetail):
            raise exc.NotImplementedError('Can only merge with other'
                                          ' retry details')
        if other is self:
            return self
        super().merge(other, deep_copy=deep_copy)
        # The pairs and failure dicts are rebuilt, the values shared (even
        # by a deep merge), and revert results always copied: all as the
        # original does.
        self.results = [(value, {name: _copy_failure(f, deep_copy)
                                 for name, f in failures.items()})
                        for value, failures in other.results]
        copy_fn = copy.deepcopy if deep_copy else copy.copy
        self.revert_results = copy_fn(other.revert_results)
        return self


# --- atom type names ---------------------------------------------------------

_DETAIL_TO_NAME: dict[type, str] = {
    RetryDetail: 'RETRY_DETAIL',
    TaskDetail: 'TASK_DETAIL',
}
_NAME_TO_DETAIL: dict[str, type] = {
    name: cls for cls, name in _DETAIL_TO_NAME.items()}
ATOM_TYPES: list[str] = sorted(_NAME_TO_DETAIL)


def atom_detail_class(atom_type: str) -> type[AtomDetail]:
    """The detail class for a stored type name (``'TASK_DETAIL'``...)."""
    try:
        return _NAME_TO_DETAIL[atom_type]
    except KeyError:
        raise TypeError("Unknown atom type '%s'" % (atom_type,)) from None


def atom_detail_type(atom_detail: AtomDetail) -> str:
    """The stored type name of an atom detail (``'TASK_DETAIL'``...)."""
    for cls, name in _DETAIL_TO_NAME.items():
        if isinstance(atom_detail, cls):
            return name
    raise TypeError("Unknown atom '%s' (%s)"
                    % (atom_detail, type(atom_detail)))
