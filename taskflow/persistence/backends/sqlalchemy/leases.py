"""Flow leases in an SQL database (see ``taskflow.persistence.ownership``).

Each operation runs inside the caller's write transaction: taking a lease
locks its row (``SELECT ... FOR UPDATE``; SQLite's write transactions
already exclude each other), and a fenced write starts with a no-op
``UPDATE`` of the lease row matching the writer's token. That update locks
the row until the write commits, so a new owner taking the lease waits for
it -- and a write that comes after the new owner changed the token matches
no row and is refused. Times are the database's clock (seconds since the
epoch), so machines with skewed clocks agree on when a lease expires.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from taskflow.persistence import ownership
from taskflow.persistence.backends.sqlalchemy import ng_tables

__all__ = ['LeaseStatements']


def _database_now(dialect: str) -> sa.ColumnElement[Any]:
    """Seconds since the epoch, by the database's clock."""
    if dialect == 'postgresql':
        return sa.cast(sa.extract('epoch', sa.func.clock_timestamp()), sa.Double)
    if dialect in ('mysql', 'mariadb'):
        return sa.cast(sa.func.unix_timestamp(sa.func.now(6)), sa.Double)
    # SQLite (and anything else): Julian days to Unix seconds.
    return (sa.func.julianday('now') - 2440587.5) * 86400.0


class LeaseStatements:
    """The statements of every lease operation, built once per backend."""

    def __init__(self, dialect: str) -> None:
        t = ng_tables.flow_leases
        b = sa.bindparam
        self.table = t
        self.now = sa.select(_database_now(dialect))
        columns = (t.c.owner, t.c.token, t.c.claim_token, t.c.expires_at)
        self.select = sa.select(*columns).where(t.c.flow_uuid == b('b_flow'))
        self.select_for_update = self.select.with_for_update()
        self.insert = t.insert()
        self.take = t.update().where(
            t.c.flow_uuid == b('b_flow'), t.c.token == b('b_old_token')).values(
            owner=b('b_owner'), token=b('b_token'), claim_token=b('b_claim'),
            expires_at=b('b_expires'))
        self.extend = t.update().where(
            t.c.flow_uuid == b('b_flow'), t.c.token == b('b_token')).values(
            expires_at=b('b_expires'))
        self.fence = t.update().where(
            t.c.flow_uuid == b('b_flow'), t.c.token == b('b_token')).values(token=t.c.token)

    def read(self, conn: sa.Connection, flow_uuid: str, lock: bool = False
             ) -> ownership.Lease | None:
        row = conn.execute(self.select_for_update if lock else self.select,
                           {'b_flow': flow_uuid}).first()
        if row is None:
            return None
        return ownership.Lease(flow_uuid, row.owner, int(row.token), float(row.expires_at),
                               None if row.claim_token is None else int(row.claim_token))

    def clock(self, conn: sa.Connection) -> float:
        return float(conn.execute(self.now).scalar_one())

    def acquire(self, conn: sa.Connection, flow_uuid: str, owner: str, ttl: float,
                claim_token: int | None) -> ownership.Lease:
        current = self.read(conn, flow_uuid, lock=True)
        lease = ownership.grant(current, flow_uuid, owner, ttl, self.clock(conn), claim_token)
        if current is None:
            # A racing first owner makes this INSERT fail (the caller retries).
            conn.execute(self.insert, lease._asdict())
        else:
            conn.execute(self.take, {'b_flow': flow_uuid, 'b_old_token': current.token,
                                     'b_owner': lease.owner, 'b_token': lease.token,
                                     'b_claim': lease.claim_token,
                                     'b_expires': lease.expires_at})
        return lease

    def renew(self, conn: sa.Connection, lease: ownership.Lease, ttl: float
              ) -> ownership.Lease:
        renewed = lease._replace(expires_at=self.clock(conn) + ttl)
        if not conn.execute(self.extend, {'b_flow': lease.flow_uuid, 'b_token': lease.token,
                                          'b_expires': renewed.expires_at}).rowcount:
            raise ownership.lost(lease, self.read(conn, lease.flow_uuid))
        return renewed

    def release(self, conn: sa.Connection, lease: ownership.Lease) -> None:
        conn.execute(self.extend, {'b_flow': lease.flow_uuid, 'b_token': lease.token,
                                   'b_expires': 0.0})

    def check_fence(self, conn: sa.Connection, lease: ownership.Lease) -> None:
        """Lock the lease row for this write, or refuse a stale owner's write."""
        if not conn.execute(self.fence, {'b_flow': lease.flow_uuid,
                                         'b_token': lease.token}).rowcount:
            raise ownership.lost(lease, self.read(conn, lease.flow_uuid))
