"""The SQL jobboard on sqlite (see tests/jobs/kinds/_sql.py)."""

from __future__ import annotations

from tests.jobs.kinds import _sql


def make_board(name: str, persistence=None):
    return _sql.make_board('sqlite', name, persistence=persistence)


def cleanup(board) -> None:
    _sql.cleanup(board)
