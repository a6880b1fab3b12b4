"""The SQL jobboard on postgresql (see tests/jobs/kinds/_sql.py)."""

from __future__ import annotations

from tests.jobs.kinds import _sql


def make_board(name: str, persistence=None):
    return _sql.make_board('postgresql', name, persistence=persistence)


def cleanup(board) -> None:
    _sql.cleanup(board)
