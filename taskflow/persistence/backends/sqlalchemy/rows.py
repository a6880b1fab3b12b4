"""Building models from table rows (JSON columns hold JSON text)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from taskflow.persistence import _serialize
from taskflow.persistence import models

__all__ = ['atom_from_row', 'book_from_row', 'flow_from_row', 'group']


def group(rows: Iterable[Any]) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(row.parent_uuid, []).append(row)
    return grouped


def _loads(value: Any) -> Any:
    # Text from our columns; already-decoded values are tolerated in case
    # an engine passed in by the caller decodes JSON itself.
    if isinstance(value, (str, bytes)):
        return _serialize.loads(value)
    return value


def book_from_row(row: Any) -> models.LogBook:
    book = models.LogBook(row.name, uuid=row.uuid)
    book.created_at = row.created_at
    book.updated_at = row.updated_at
    book.meta = _loads(row.meta) or {}
    return book


def flow_from_row(row: Any, atom_rows: Iterable[Any]) -> models.FlowDetail:
    fd = models.FlowDetail(row.name, row.uuid)
    fd.state = row.state
    fd.meta = _loads(row.meta) or {}
    for atom_row in atom_rows:
        fd.add(atom_from_row(atom_row))
    return fd


def atom_from_row(row: Any) -> models.AtomDetail:
    cls = models.atom_detail_class(row.atom_type)
    return cls.from_dict({
        'name': row.name, 'uuid': row.uuid, 'state': row.state,
        'intention': row.intention, 'version': row.version,
        'meta': _loads(row.meta),
        'results': _loads(row.results),
        'failure': _loads(row.failure),
        'revert_results': _loads(row.revert_results),
        'revert_failure': _loads(row.revert_failure),
    })
