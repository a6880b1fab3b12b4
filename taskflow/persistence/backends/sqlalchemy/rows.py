"""Building models from table rows (JSON columns hold JSON text).

Every row goes through ``_decode``, which refuses a corrupt one with
``CorruptRecord`` naming the object, the field and the problem.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from taskflow.persistence import _decode
from taskflow.persistence import models

__all__ = ['atom_from_row', 'book_from_row', 'flow_from_row', 'group']

_ATOM_JSON_COLUMNS = ('meta', 'results', 'failure', 'revert_results',
                      'revert_failure')


def group(rows: Iterable[Any]) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(row.parent_uuid, []).append(row)
    return grouped


def book_from_row(row: Any) -> models.LogBook:
    record = _decode.Record('logbook', row.name, row.uuid)
    return _decode.logbook({
        'name': row.name, 'uuid': row.uuid,
        'meta': record.json('meta', row.meta),
        'created_at': row.created_at, 'updated_at': row.updated_at,
    })


def flow_from_row(row: Any, atom_rows: Iterable[Any]) -> models.FlowDetail:
    record = _decode.Record('flow detail', row.name, row.uuid)
    fd = _decode.flow_detail({
        'name': row.name, 'uuid': row.uuid, 'state': row.state,
        'meta': record.json('meta', row.meta),
    })
    where = "in flow detail '%s' (uuid '%s')" % (row.name, row.uuid)
    for atom_row in atom_rows:
        fd.add(atom_from_row(atom_row, where))
    return fd


def atom_from_row(row: Any, where: str = '') -> models.AtomDetail:
    record = _decode.Record('atom detail', row.name, row.uuid, where)
    fields = {column: record.json(column, getattr(row, column))
              for column in _ATOM_JSON_COLUMNS}
    fields.update(name=row.name, uuid=row.uuid, state=row.state,
                  intention=row.intention, version=row.version)
    return _decode.atom_detail(row.atom_type, fields, where)
