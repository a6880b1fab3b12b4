"""Helpers to make logbooks and flow details (used by ``engines.load``)."""

from __future__ import annotations

import contextlib
import uuid as uuidlib
from typing import Any

from taskflow.persistence import base
from taskflow.persistence import models

__all__ = ['create_flow_detail', 'temporary_flow_detail',
           'temporary_log_book']


def temporary_log_book(backend: base.Backend | None = None) -> models.LogBook:
    """A new ``LogBook('tmp')``, saved when a backend is given."""
    book = models.LogBook('tmp')
    if backend is not None:
        with contextlib.closing(backend.get_connection()) as conn:
            conn.save_logbook(book)
    return book


def temporary_flow_detail(backend: base.Backend | None = None,
                          meta: dict | None = None
                          ) -> tuple[models.LogBook, models.FlowDetail]:
    """A new temporary book holding a new ``'tmp-flow-detail'`` flow detail
    (saved when a backend is given); returns ``(book, flow_detail)``."""
    flow_id = str(uuidlib.uuid4())
    book = temporary_log_book(backend=backend)
    flow_detail = models.FlowDetail(name='tmp-flow-detail', uuid=flow_id)
    if meta is not None:
        flow_detail.meta.update(meta)
    book.add(flow_detail)
    if backend is not None:
        with contextlib.closing(backend.get_connection()) as conn:
            conn.save_logbook(book)
    # Return the one from the saved logbook instead of the local one so
    # that the freshest version is given back.
    return book, book.find(flow_id)


def create_flow_detail(flow: Any, book: models.LogBook | None = None,
                       backend: base.Backend | None = None,
                       meta: dict | None = None) -> models.FlowDetail:
    """A new flow detail named after ``flow.name`` (its uuid when the flow
    has no name), added to ``book`` (a temporary book is made when only a
    backend is given) and saved when a backend is given."""
    flow_id = str(uuidlib.uuid4())
    flow_name = getattr(flow, 'name', None)
    if flow_name is None:
        flow_name = flow_id
    flow_detail = models.FlowDetail(name=flow_name, uuid=flow_id)
    if meta is not None:
        flow_detail.meta.update(meta)
    if backend is not None and book is None:
        book = temporary_log_book(backend)
    if book is not None:
        book.add(flow_detail)
        if backend is not None:
            with contextlib.closing(backend.get_connection()) as conn:
                conn.save_logbook(book)
        # Return the one from the saved logbook instead of the local one so
        # that the freshest version is given back.
        return book.find(flow_id)
    return flow_detail
