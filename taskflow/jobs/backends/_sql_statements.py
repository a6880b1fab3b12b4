"""The statements of the SQL jobboard, built once per board.

Every operation is one transaction of one to three short statements;
SQLAlchemy caches their compiled form. Times are seconds since the epoch by
the *database's* clock (the expression ``now``), so claimers on machines
with skewed clocks agree on when a claim expires.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from taskflow.persistence.backends.sqlalchemy import ng_tables

__all__ = ['POSTED', 'TRASHED', 'Statements', 'database_now']

#: ``status`` of a job on the board / in the dead-letter.
POSTED = 'posted'
TRASHED = 'trashed'


def database_now(dialect: str) -> sa.ColumnElement[Any]:
    """Seconds since the epoch, by the database's clock."""
    if dialect == 'postgresql':
        return sa.cast(sa.extract('epoch', sa.func.clock_timestamp()),
                       sa.Double)
    if dialect in ('mysql', 'mariadb'):
        return sa.cast(sa.func.unix_timestamp(sa.func.now(6)), sa.Double)
    # SQLite: Julian days (millisecond precision) to Unix seconds.
    return (sa.func.julianday('now') - 2440587.5) * 86400.0


class Statements:
    """Parametrised statements of one board (``b_*`` are bound parameters)."""

    def __init__(self, dialect: str) -> None:
        j = ng_tables.jobs
        a = ng_tables.job_attempts
        b = sa.bindparam
        now = database_now(dialect)
        seconds = sa.bindparam('b_expiry', type_=sa.Double)
        at = sa.bindparam('b_now', type_=sa.Double)
        self.jobs, self.attempts = j, a
        self.now = sa.select(now)
        live = sa.and_(j.c.owner.is_not(None), j.c.claimed_until > now)
        self.listing_columns = (j.c.id, j.c.uuid, j.c.name, j.c.priority,
                                j.c.details, j.c.book_uuid, j.c.book_name,
                                j.c.created_on, j.c.last_modified)
        on_board = sa.and_(j.c.board == b('b_board'), j.c.status == b('b_status'))
        self.list_all = sa.select(
            *self.listing_columns, sa.case((live, j.c.owner)).label('owner'),
        ).where(on_board).order_by(j.c.priority, j.c.id)
        self.list_unclaimed = sa.select(
            *self.listing_columns, sa.null().label('owner'),
        ).where(on_board, sa.not_(live)).order_by(j.c.priority, j.c.id)
        # Jobs whose posting a notification announced (still on the board).
        self.by_uuids = sa.select(*self.listing_columns).where(
            j.c.uuid.in_(b('b_uuids', expanding=True)),
            j.c.status == POSTED).order_by(j.c.priority, j.c.id)
        self.count = sa.select(sa.func.count()).select_from(j).where(
            j.c.board == b('b_board'), j.c.status == POSTED)
        # The live owner of a job (NULL when unclaimed or expired).
        self.owner = sa.select(
            j.c.status, sa.case((live, j.c.owner)).label('owner'),
            j.c.owner.label('holder'), j.c.token, j.c.last_modified).where(
            j.c.uuid == b('b_uuid'))
        self.insert = j.insert().values(
            uuid=b('b_uuid'), board=b('b_board'), name=b('b_name'),
            priority=b('b_priority'), details=b('b_details'),
            book_uuid=b('b_book_uuid'), book_name=b('b_book_name'),
            created_on=now, last_modified=now, status=POSTED, token=0)
        # Claiming: lock the row (never waiting on another claimer's lock
        # where the database can skip it), check, then take it.
        lock = sa.select(j.c.status, j.c.owner, j.c.token,
                         j.c.claimed_until, now.label('now')).where(
            j.c.uuid == b('b_uuid'))
        if dialect in ('postgresql', 'mysql', 'mariadb'):
            lock = lock.with_for_update(skip_locked=True)
        self.lock = lock
        self.take = j.update().where(j.c.uuid == b('b_uuid')).values(
            owner=b('b_who'), token=j.c.token + 1,
            claimed_until=at + seconds, last_modified=at)
        self.add_attempt = a.insert().values(
            job_uuid=b('b_uuid'), token=b('b_token'), who=b('b_who'),
            claimed_at=at)
        # Conditional updates: only the live owner (with the expected token,
        # when the caller knows it) matches.
        held = (j.c.uuid == b('b_uuid'), j.c.status == POSTED,
                j.c.owner == b('b_who'), j.c.claimed_until > now)
        held_token = held + (j.c.token == b('b_token'),)
        self.renew = {
            known: j.update().where(*(held_token if known else held)).values(
                claimed_until=now + seconds, last_modified=now)
            for known in (True, False)}
        self.release = {
            known: j.update().where(*(held_token if known else held)).values(
                owner=None, claimed_until=None, last_modified=now,
                status=b('b_status'))
            for known in (True, False)}
        self.delete = {
            known: j.delete().where(*(held_token if known else held))
            for known in (True, False)}
        # The job's current claim (its token is kept when it is released).
        current = sa.select(j.c.token).where(
            j.c.uuid == b('b_uuid')).scalar_subquery()
        self.end_attempt = a.update().where(
            a.c.job_uuid == b('b_uuid'), a.c.token == current).values(
            ended_at=now, outcome=b('b_outcome'), reason=b('b_reason'))
        self.end_attempt_token = a.update().where(
            a.c.job_uuid == b('b_uuid'), a.c.token == b('b_token')).values(
            ended_at=now, outcome=b('b_outcome'), reason=b('b_reason'))
        self.delete_attempts = a.delete().where(a.c.job_uuid == b('b_uuid'))
        self.history = sa.select(
            a.c.who, a.c.claimed_at, a.c.token, a.c.ended_at, a.c.outcome,
            a.c.reason).where(a.c.job_uuid == b('b_uuid')).order_by(a.c.token)
        self.state = sa.select(
            j.c.status, live.label('held')).where(j.c.uuid == b('b_uuid'))
        self.clear_board = (
            a.delete().where(a.c.job_uuid.in_(
                sa.select(j.c.uuid).where(j.c.board == b('b_board')))),
            j.delete().where(j.c.board == b('b_board')))
