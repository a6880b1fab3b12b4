"""Building models from stored records, refusing records that are corrupt.

Every backend reads a logbook, flow detail or atom detail as a mapping of
stored fields (SQL columns, the dict in a ``dir`` metadata file, a memory
node). This module checks each field before building the model, so a record
that taskflow could not have written is refused with :class:`CorruptRecord`
naming the object (name and uuid), the field and what is wrong -- never
reinterpreted (the original turns a meta that is not a dict into ``{}`` and
accepts unknown states), and never crashing with an unrelated ``KeyError``
or ``TypeError`` halfway through.

What is checked (``None`` is accepted where the original may store it):

=====================  ========================================================
field                  must be
=====================  ========================================================
name, uuid             a string (a logbook's name may be ``None``)
state                  a state of that kind of object, or ``None``
intention              one of ``EXECUTE``, ``IGNORE``, ``REVERT``, ``RETRY``
meta                   a dict (``None`` reads as ``{}``)
failure,               a ``Failure.to_dict()`` dict (version 1, string
revert_failure         ``exception_str``, a list of string ``exc_type_names``,
                       causes likewise)
results (retry)        a list of ``[value, {atom name: failure dict}]`` pairs
atom type              ``TASK_DETAIL`` or ``RETRY_DETAIL``
JSON columns / files   valid JSON
=====================  ========================================================
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

from taskflow import exceptions as exc
from taskflow import states
from taskflow.persistence import models
from taskflow.types import failure as ft

__all__ = ['ATOM_STATES', 'FLOW_STATES', 'CorruptRecord', 'Record',
           'atom_detail', 'flow_detail', 'logbook']

ATOM_STATES = frozenset([
    states.PENDING, states.RUNNING, states.SUCCESS, states.FAILURE,
    states.REVERTING, states.REVERTED, states.REVERT_FAILURE,
    states.RETRYING, states.IGNORE])
FLOW_STATES = frozenset([
    states.PENDING, states.RUNNING, states.SUCCESS, states.FAILURE,
    states.REVERTED, states.SUSPENDING, states.SUSPENDED, states.RESUMING])
_INTENTIONS = frozenset(states.INTENTIONS)
_ATOM_TYPES = frozenset(models.ATOM_TYPES)
_TIME_KEYS = ('year', 'month', 'day', 'hour', 'minute', 'second',
              'microsecond')


CorruptRecord = exc.CorruptRecord   # (raised here; public in taskflow.exceptions)


class Record:
    """Where the fields being read come from, for error messages."""

    __slots__ = ('kind', 'name', 'uuid', 'where')

    def __init__(self, kind: str, name: Any, uuid: Any,
                 where: str = '') -> None:
        self.kind = kind
        self.name = name
        self.uuid = uuid
        self.where = where

    def corrupt(self, field: str, problem: str) -> CorruptRecord:
        """The error to raise (chain the error that showed the problem
        with ``from``: the message already says what it was)."""
        named = '' if self.name is None else " '%s'" % (self.name,)
        where = ' ' + self.where if self.where else ''
        return CorruptRecord("Stored %s%s (uuid '%s')%s is corrupt: its '%s'"
                             " %s" % (self.kind, named, self.uuid, where,
                                      field, problem))

    def json(self, field: str, text: Any) -> Any:
        """Parse a JSON column (``None`` stays ``None``)."""
        if text is None or not isinstance(text, (str, bytes)):
            return text  # already parsed by a driver that decodes JSON
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as e:
            raise self.corrupt(field, 'is not valid JSON (%s)' % (e,)) from e


def _type_name(value: Any) -> str:
    if value is None:
        return 'null'
    return {str: 'a string', bool: 'a boolean', int: 'a number',
            float: 'a number', list: 'a list', dict: 'a dict'}.get(
                type(value), 'a %s' % type(value).__name__)


def _string(record: Record, field: str, value: Any,
            nullable: bool = False) -> Any:
    if isinstance(value, str) or (nullable and value is None):
        return value
    raise record.corrupt(field, 'is missing' if value is None
                         else 'is not a string (it is %s)' % _type_name(value))


def _one_of(record: Record, field: str, value: Any, allowed: frozenset,
            what: str) -> Any:
    if value is None or value in allowed:
        return value
    if isinstance(value, str):
        raise record.corrupt(field, "is an unknown %s '%s'" % (what, value))
    raise record.corrupt(field, 'is not a name (it is %s)'
                         % _type_name(value))


def _meta(record: Record, value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise record.corrupt('meta', 'is not a dict (it is %s)'
                         % _type_name(value))


def _failure(record: Record, field: str, value: Any) -> Any:
    if value is None:
        return None
    problem = _failure_problem(value)
    if problem is None:
        try:
            return ft.Failure.from_dict(value)
        except Exception as e:  # anything from_dict refuses
            problem = 'cannot be read (%s: %s)' % (type(e).__name__, e)
    raise record.corrupt(field, 'is not a failure: %s' % (problem,))


def _failure_problem(value: Any, depth: int = 0) -> str | None:
    """What makes ``value`` not a ``Failure.to_dict()`` dict (or None)."""
    if not isinstance(value, dict):
        return 'it is %s, not a dict' % _type_name(value)
    if value.get('version') != ft.Failure.DICT_VERSION:
        return 'its version is %r, not %d' % (value.get('version'),
                                              ft.Failure.DICT_VERSION)
    if not isinstance(value.get('exception_str'), str):
        return "its 'exception_str' is not a string"
    names = value.get('exc_type_names')
    if (not isinstance(names, list) or not names
            or not all(isinstance(name, str) for name in names)):
        return "its 'exc_type_names' is not a list of strings"
    if not isinstance(value.get('traceback_str'), (str, type(None))):
        return "its 'traceback_str' is not a string"
    if not isinstance(value.get('exc_args', ()), (list, tuple)):
        return "its 'exc_args' is not a list"
    causes = value.get('causes')
    if causes is not None:
        if not isinstance(causes, list):
            return "its 'causes' is not a list"
        for cause in causes:
            problem = _failure_problem(cause, depth + 1)
            if problem is not None:
                return 'a cause: %s' % (problem,)
    return None


def _retry_results(record: Record, value: Any) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise record.corrupt('results', 'is not a list of retry attempts'
                             ' (it is %s)' % _type_name(value))
    results = []
    for attempt in value:
        if (not isinstance(attempt, (list, tuple)) or len(attempt) != 2
                or not isinstance(attempt[1], dict)):
            raise record.corrupt('results', 'holds an attempt that is not a'
                                 ' [value, {atom name: failure}] pair')
        failures = {}
        for name, failure in attempt[1].items():
            failures[name] = _failure(record, 'results', failure)
        results.append((attempt[0], failures))
    return results


def atom_detail(atom_type: Any, fields: Mapping[str, Any],
                where: str = '') -> models.AtomDetail:
    """An atom detail from its stored fields (``AtomDetail.to_dict()``
    keys, JSON already parsed); :class:`CorruptRecord` if they are not
    valid."""
    record = Record('atom detail', fields.get('name'), fields.get('uuid'),
                    where)
    _string(record, 'uuid', record.uuid)
    _string(record, 'name', record.name)
    if atom_type not in _ATOM_TYPES:
        raise record.corrupt('type', 'is %s, not one of %s'
                             % ("'%s'" % atom_type if isinstance(atom_type, str)
                                else _type_name(atom_type),
                                ', '.join(sorted(_ATOM_TYPES))))
    cls = models.atom_detail_class(atom_type)
    ad = cls(record.name, record.uuid)
    ad.state = _one_of(record, 'state', fields.get('state'), ATOM_STATES,
                       'atom state')
    ad.intention = _one_of(record, 'intention', fields.get('intention'),
                           _INTENTIONS, 'intention')
    ad.meta = _meta(record, fields.get('meta'))
    ad.version = fields.get('version')
    ad.failure = _failure(record, 'failure', fields.get('failure'))
    ad.revert_failure = _failure(record, 'revert_failure',
                                 fields.get('revert_failure'))
    ad.revert_results = fields.get('revert_results')
    if atom_type == 'RETRY_DETAIL':
        ad.results = _retry_results(record, fields.get('results'))
    else:
        ad.results = fields.get('results')
    return ad


def flow_detail(fields: Mapping[str, Any], where: str = ''
                ) -> models.FlowDetail:
    """A flow detail (without atom details) from its stored fields."""
    record = Record('flow detail', fields.get('name'), fields.get('uuid'),
                    where)
    _string(record, 'uuid', record.uuid)
    _string(record, 'name', record.name)
    fd = models.FlowDetail(record.name, record.uuid)
    fd.state = _one_of(record, 'state', fields.get('state'), FLOW_STATES,
                       'flow state')
    fd.meta = _meta(record, fields.get('meta'))
    return fd


def logbook(fields: Mapping[str, Any], unmarshal_time: bool = False,
            where: str = '') -> models.LogBook:
    """A logbook (without flow details) from its stored fields; with
    ``unmarshal_time`` the timestamps are ``LogBook.to_dict(
    marshal_time=True)`` dicts, else datetimes."""
    record = Record('logbook', fields.get('name'), fields.get('uuid'), where)
    _string(record, 'uuid', record.uuid)
    _string(record, 'name', record.name, nullable=True)
    book = models.LogBook(record.name, uuid=record.uuid)
    book.meta = _meta(record, fields.get('meta'))
    for field in ('created_at', 'updated_at'):
        if unmarshal_time and field not in fields:
            raise record.corrupt(field, 'is missing')
        value = fields.get(field)
        if unmarshal_time:
            value = _unmarshal_time(record, field, value)
        elif not isinstance(value, (datetime.datetime, type(None))):
            raise record.corrupt(field, 'is not a date and time (it is %s)'
                                 % _type_name(value))
        setattr(book, field, value)
    return book


def _unmarshal_time(record: Record, field: str, value: Any
                    ) -> datetime.datetime | None:
    if value is None:
        return None
    if (not isinstance(value, dict)
            or not all(isinstance(value.get(key), int) for key in _TIME_KEYS)):
        raise record.corrupt(field, 'is not a stored date and time')
    try:
        return models._unmarshal_time(value)
    except Exception as e:  # out of range fields, unknown time zone...
        raise record.corrupt(field, 'is not a valid date and time (%s)'
                             % (e,)) from e
