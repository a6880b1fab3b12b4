"""The three tables, as SQLAlchemy Core ``Table`` objects.

Column names, types and order are the original TaskFlow's, so databases are
shared both ways::

    logbooks     (created_at, updated_at, meta, name, uuid PK)
    flowdetails  (created_at, updated_at, parent_uuid -> logbooks, meta,
                  name, state, uuid PK)
    atomdetails  (created_at, updated_at, meta, parent_uuid -> flowdetails,
                  name, version, state, uuid PK, failure, results,
                  revert_results, revert_failure, atom_type, intention)

JSON columns hold JSON *text* that this package encodes and decodes itself
(``_serialize``), so the hot path never round-trips through Python objects
twice. On PostgreSQL those columns have the native ``json`` type (as the
original's migrations create them): values are bound with ``CAST(... AS
JSON)`` and read back with ``CAST(... AS TEXT)``, which keeps the exact text.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import UserDefinedType

__all__ = ['ATOM_TYPES', 'INTENTIONS', 'Tables', 'make_tables']

UUID_LENGTH = 64
NAME_LENGTH = 255
STATE_LENGTH = 255
VERSION_LENGTH = 64

ATOM_TYPES = ('RETRY_DETAIL', 'TASK_DETAIL')
INTENTIONS = ('EXECUTE', 'IGNORE', 'REVERT', 'RETRY')


class PgJsonText(UserDefinedType):
    """PostgreSQL ``json`` column carried as text in both directions."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return 'JSON'

    def bind_expression(self, bindvalue):  # type: ignore[no-untyped-def]
        return sa.cast(bindvalue, postgresql.JSON)

    def column_expression(self, colexpr):  # type: ignore[no-untyped-def]
        return sa.cast(colexpr, sa.Text)


def _json_type(dialect_name: str) -> sa.types.TypeEngine:
    return PgJsonText() if dialect_name == 'postgresql' else sa.Text()


def atom_type_enum() -> sa.Enum:
    return sa.Enum(*ATOM_TYPES, name='atom_types', create_constraint=False)


def intention_enum() -> sa.Enum:
    return sa.Enum(*INTENTIONS, name='intention_type', create_constraint=False)


class Tables:
    """The tables bound to one ``MetaData`` (``logbooks``, ``flowdetails``,
    ``atomdetails``)."""

    def __init__(self, metadata: sa.MetaData, logbooks: sa.Table,
                 flowdetails: sa.Table, atomdetails: sa.Table) -> None:
        self.metadata = metadata
        self.logbooks = logbooks
        self.flowdetails = flowdetails
        self.atomdetails = atomdetails


def make_tables(dialect_name: str = 'sqlite') -> Tables:
    """Build the tables for a dialect (only JSON column types differ)."""
    metadata = sa.MetaData()
    json_type = _json_type(dialect_name)

    def timestamps() -> list[sa.Column]:
        return [sa.Column('created_at', sa.DateTime),
                sa.Column('updated_at', sa.DateTime)]

    def uuid_pk() -> sa.Column:
        return sa.Column('uuid', sa.String(UUID_LENGTH), primary_key=True,
                         nullable=False, unique=True)

    logbooks = sa.Table(
        'logbooks', metadata, *timestamps(),
        sa.Column('meta', json_type),
        sa.Column('name', sa.String(NAME_LENGTH)),
        uuid_pk())
    flowdetails = sa.Table(
        'flowdetails', metadata, *timestamps(),
        sa.Column('parent_uuid', sa.String(UUID_LENGTH),
                  sa.ForeignKey('logbooks.uuid', ondelete='CASCADE')),
        sa.Column('meta', json_type),
        sa.Column('name', sa.String(NAME_LENGTH)),
        sa.Column('state', sa.String(STATE_LENGTH)),
        uuid_pk())
    atomdetails = sa.Table(
        'atomdetails', metadata, *timestamps(),
        sa.Column('meta', json_type),
        sa.Column('parent_uuid', sa.String(UUID_LENGTH),
                  sa.ForeignKey('flowdetails.uuid', ondelete='CASCADE')),
        sa.Column('name', sa.String(NAME_LENGTH)),
        sa.Column('version', sa.String(VERSION_LENGTH)),
        sa.Column('state', sa.String(STATE_LENGTH)),
        uuid_pk(),
        sa.Column('failure', json_type),
        sa.Column('results', json_type),
        sa.Column('revert_results', json_type),
        sa.Column('revert_failure', json_type),
        sa.Column('atom_type', atom_type_enum()),
        sa.Column('intention', intention_enum(), default='EXECUTE'))
    return Tables(metadata, logbooks, flowdetails, atomdetails)
