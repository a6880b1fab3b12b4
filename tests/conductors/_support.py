"""Boards, persistence and jobs for the conductor tests: the SQL board on
an SQLite file, in the same database as the persistence backend."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from taskflow import engines
from taskflow.jobs import backends as job_backends
from taskflow.persistence import backends as persistence_backends
from taskflow.persistence import models


def sqlite_url(tmp_path: Any) -> str:
    return 'sqlite:///%s' % (tmp_path / 'taskflow.db')


def make_persistence(url: str) -> Any:
    backend = persistence_backends.fetch({'connection': url})
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
    return backend


def make_board(url: str, namespace: str, persistence: Any, **conf: Any) -> Any:
    board = job_backends.fetch('conductor-tests',
                               {'board': 'sql', 'connection': url,
                                'namespace': namespace, **conf},
                               persistence=persistence)
    board.connect()
    return board


def post_job(board: Any, persistence: Any, factory: Any, store: dict | None = None,
             name: str | None = None, factory_name: str | None = None,
             with_book: bool = True) -> Any:
    """Post a job running ``factory``'s flow (or the factory named
    ``factory_name``, stored as is) with ``store``."""
    name = name or 'job-%s' % uuid.uuid4().hex[:8]
    if not with_book:
        return board.post(name, details={'store': store or {}})
    book = models.LogBook('book-%s' % name)
    flow_detail = models.FlowDetail('flow-%s' % name, uuid.uuid4().hex)
    book.add(flow_detail)
    with contextlib.closing(persistence.get_connection()) as conn:
        conn.save_logbook(book)
    if factory_name is None:
        engines.save_factory_details(flow_detail, factory, (), {}, backend=persistence)
    else:
        flow_detail.meta['factory'] = {'name': factory_name, 'args': [], 'kwargs': {}}
        with contextlib.closing(persistence.get_connection()) as conn:
            conn.update_flow_details(flow_detail)
    return board.post(name, book=book, details={'store': store or {}})


def read_ledger(path: Any) -> list[str]:
    try:
        with open(path) as f:
            return [line.rsplit(' ', 1)[0] for line in f.read().splitlines()]
    except FileNotFoundError:
        return []
