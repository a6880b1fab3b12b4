"""Every SQL statement the connection runs, built once per backend.

SQLAlchemy caches the compiled form of each statement in the engine, so
building them once and reusing the same objects keeps the hot path to
binding parameters and executing.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from taskflow.persistence.backends.sqlalchemy import tables as _tables

__all__ = ['ATOM_UPDATE_COLUMNS', 'Statements']

# Columns an atom update writes (merge semantics: all but name and type).
ATOM_UPDATE_COLUMNS = ('updated_at', 'meta', 'version', 'state', 'intention',
                       'failure', 'results', 'revert_results',
                       'revert_failure')


class Statements:
    """Every statement the connection runs, built once per backend."""

    def __init__(self, t: _tables.Tables) -> None:
        b = sa.bindparam
        lb, fd, ad = t.logbooks, t.flowdetails, t.atomdetails
        self.tables = t
        self.select_book = sa.select(lb).where(lb.c.uuid == b('b_uuid'))
        self.select_books = sa.select(lb)
        self.insert_book = lb.insert()
        self.update_book = lb.update().where(lb.c.uuid == b('b_uuid')).values(
            meta=b('b_meta'), created_at=b('b_created_at'),
            updated_at=b('b_updated_at'))
        self.delete_book = lb.delete().where(lb.c.uuid == b('b_uuid'))

        self.select_flow = sa.select(fd).where(fd.c.uuid == b('b_uuid'))
        self.select_flows_of_book = sa.select(fd).where(
            fd.c.parent_uuid == b('b_parent'))
        self.select_flows = sa.select(fd)
        # Rows of this parent only: a uuid used under another parent is
        # inserted, and the primary key refuses it (nothing is overwritten).
        self.existing_flows = sa.select(fd.c.uuid).where(
            fd.c.uuid.in_(b('b_uuids', expanding=True)),
            fd.c.parent_uuid == b('b_parent'))
        self.insert_flow = fd.insert()
        self.update_flow = fd.update().where(fd.c.uuid == b('b_uuid')).values(
            meta=b('b_meta'), state=b('b_state'),
            updated_at=b('b_updated_at'))
        self.delete_flows_of_book = fd.delete().where(
            fd.c.parent_uuid == b('b_parent'))

        # Enum columns are read as plain strings: an unknown value is then
        # refused by _decode, naming the atom (SQLAlchemy's Enum would raise
        # a bare LookupError while fetching the row).
        atom = {c.name: (sa.type_coerce(c, sa.String).label(c.name)
                         if isinstance(c.type, sa.Enum) else c)
                for c in ad.c}
        self.select_atom = sa.select(*atom.values()).where(
            ad.c.uuid == b('b_uuid'))
        self.select_atoms_of_flow = sa.select(*atom.values()).where(
            ad.c.parent_uuid == b('b_parent'))
        self.select_atoms_of_flows = sa.select(*atom.values()).where(
            ad.c.parent_uuid.in_(b('b_parents', expanding=True)))
        self.select_atoms = sa.select(*atom.values())
        self.select_atoms_in = sa.select(*atom.values()).where(
            ad.c.uuid.in_(b('b_uuids', expanding=True)))
        # Names and types: all a merge keeps from a stored atom detail.
        self.atom_kind = sa.select(ad.c.name, atom['atom_type']).where(
            ad.c.uuid == b('b_uuid'))
        self.atom_kinds_of_flow = sa.select(
            ad.c.uuid, ad.c.name, atom['atom_type']).where(
            ad.c.parent_uuid == b('b_parent'))
        self.existing_atoms = sa.select(ad.c.uuid).where(
            ad.c.uuid.in_(b('b_uuids', expanding=True)),
            ad.c.parent_uuid == b('b_parent'))
        self.insert_atom = ad.insert()
        atom_values: dict[str, Any] = {name: b('b_' + name)
                                       for name in ATOM_UPDATE_COLUMNS}
        self.update_atom = ad.update().where(
            ad.c.uuid == b('b_uuid')).values(**atom_values)
        # Matches only a row with the given name and type.
        self.update_atom_if_same = ad.update().where(
            ad.c.uuid == b('b_uuid'), ad.c.name == b('b_name'),
            ad.c.atom_type == b('b_type')).values(**atom_values)
        self.delete_atoms_of_book = ad.delete().where(
            ad.c.parent_uuid.in_(
                sa.select(fd.c.uuid).where(fd.c.parent_uuid == b('b_parent'))
                .scalar_subquery()))
        self.clear = [ad.delete(), fd.delete(), lb.delete()]
