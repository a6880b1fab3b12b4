"""PostgreSQL: every board write in one statement, in autocommit.

On PostgreSQL a write's cost is its round trips plus one WAL flush per
commit, so each operation is a single statement (data-modifying CTEs)
committed on its own: no ``BEGIN``/``COMMIT`` round trips, one flush.

* ``post``: the ``INSERT`` selects from a subquery calling ``pg_notify``,
  so the notification goes out with (and only with) the committed row;
* ``claim``: ``SELECT ... FOR UPDATE SKIP LOCKED`` of a claimable row (a
  claimer never waits on another's row lock), the ``UPDATE`` incrementing
  its token, the ``INSERT`` of the attempt ``RETURNING`` the new token, and
  the row as it was (to say why a failed claim failed);
* ``consume``: the job's ``DELETE`` and its attempts' in one statement;
* ``abandon``/``trash``: the conditional ``UPDATE`` of the job and of its
  current attempt.

Times are the database's clock, read once per statement.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ['PgStatements']

_NOW = 'extract(epoch from clock_timestamp())::float8'
_JOBS = 'taskflow_ng_jobs'
_ATTEMPTS = 'taskflow_ng_job_attempts'
_HELD = ('uuid = :b_uuid AND status = \'posted\' AND owner = :b_who'
         ' AND claimed_until > %s' % _NOW)


def _held(known_token: bool) -> str:
    return _HELD + (' AND token = :b_token' if known_token else '')


class PgStatements:
    """The single-statement writes of a board on PostgreSQL."""

    def __init__(self) -> None:
        self.post = sa.text(
            'INSERT INTO %s (uuid, board, name, priority, details,'
            ' book_uuid, book_name, created_on, last_modified, status, token)'
            ' SELECT :b_uuid, :b_board, :b_name, :b_priority, :b_details,'
            ' :b_book_uuid, :b_book_name, n.now, n.now, \'posted\', 0'
            ' FROM (SELECT %s AS now, pg_notify(:b_channel, :b_uuid)) AS n'
            ' RETURNING id' % (_JOBS, _NOW))
        self.claim = sa.text(
            'WITH c AS (SELECT uuid, %s AS now FROM %s'
            ' WHERE uuid = :b_uuid AND status = \'posted\''
            ' AND (owner IS NULL OR claimed_until IS NULL'
            ' OR claimed_until <= %s)'
            ' FOR UPDATE SKIP LOCKED),'
            ' t AS (UPDATE %s AS j SET owner = :b_who, token = j.token + 1,'
            ' claimed_until = c.now + :b_expiry, last_modified = c.now'
            ' FROM c WHERE j.uuid = c.uuid RETURNING j.token, c.now),'
            ' i AS (INSERT INTO %s (job_uuid, token, who, claimed_at)'
            ' SELECT :b_uuid, t.token, :b_who, t.now FROM t RETURNING token)'
            # With the outcome, what the row held before this statement: why
            # a claim that took nothing failed, without another round trip.
            ' SELECT (SELECT token FROM i) AS token, j.status,'
            ' CASE WHEN j.claimed_until > %s THEN j.owner END AS owner'
            ' FROM (SELECT 1) AS one LEFT JOIN %s AS j ON j.uuid = :b_uuid'
            % (_NOW, _JOBS, _NOW, _JOBS, _ATTEMPTS, _NOW, _JOBS))
        self.consume = {
            known: sa.text(
                'WITH d AS (DELETE FROM %s WHERE %s RETURNING uuid),'
                ' x AS (DELETE FROM %s WHERE job_uuid IN'
                ' (SELECT uuid FROM d))'
                ' SELECT count(*) FROM d' % (_JOBS, _held(known), _ATTEMPTS))
            for known in (True, False)}
        self.release = {
            known: sa.text(
                'WITH u AS (UPDATE %s SET owner = NULL, claimed_until = NULL,'
                ' last_modified = %s, status = :b_status WHERE %s'
                ' RETURNING uuid, token, last_modified),'
                ' x AS (UPDATE %s AS a SET ended_at = u.last_modified,'
                ' outcome = :b_outcome, reason = :b_reason FROM u'
                ' WHERE a.job_uuid = u.uuid AND a.token = u.token)'
                ' SELECT count(*) FROM u'
                % (_JOBS, _NOW, _held(known), _ATTEMPTS))
            for known in (True, False)}
