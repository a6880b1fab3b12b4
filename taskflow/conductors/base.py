"""The conductor API: a named entity that claims jobs and runs their flows.

A conductor turns the jobs of a jobboard into engine runs: it loads the
job's flow detail from its logbook, rebuilds the flow (through the safe
factory resolution of :mod:`taskflow.engines.helpers`), runs it and then
consumes, abandons or trashes the job.  The loop that does this lives in
:mod:`taskflow.conductors.backends.impl_executor`.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import os
import socket
from typing import Any

from taskflow import engines
from taskflow import exceptions as exc
from taskflow.types import entity
from taskflow.types import notifier

__all__ = ['Conductor']


class Conductor(abc.ABC):
    """Claims jobs from ``jobboard`` and runs them with engines.

    :param name: the conductor's name (its claims are made in the name of
        its entity, ``'<name>@<hostname>:<pid>'``... see :attr:`conductor`).
    :param jobboard: the board jobs come from.
    :param persistence: the persistence backend the jobs' logbooks live in.
    :param engine: the engine kind to run flows with (``'serial'``, ...).
    :param engine_options: options given to every engine.
    """

    #: The kind of entity a conductor registers on its board.
    ENTITY_KIND = 'conductor'

    def __init__(self, name: str, jobboard: Any, persistence: Any = None,
                 engine: str | None = None,
                 engine_options: dict | None = None) -> None:
        self._name = name
        self._jobboard = jobboard
        self._engine = engine
        self._engine_options = dict(engine_options or {})
        self._persistence = persistence
        self._notifier = notifier.Notifier()

    @functools.cached_property
    def conductor(self) -> entity.Entity:
        """This conductor as an entity: ``'<name>@<hostname>:<pid>'``."""
        hostname = socket.gethostname()
        pid = os.getpid()
        return entity.Entity(self.ENTITY_KIND,
                             '%s@%s:%s' % (self._name, hostname, pid),
                             {'hostname': hostname, 'pid': pid})

    @property
    def notifier(self) -> notifier.Notifier:
        """Conductor events (see ``EVENTS_EMITTED`` of the implementations)."""
        return self._notifier

    def _book_from_job(self, job: Any) -> Any:
        """``job``'s logbook as stored now.

        Read afresh from the conductor's persistence at every dispatch: a
        board may hand out the same job object again, and the book it cached
        can hold the atom details of an earlier attempt whose writes were
        refused (its claim was lost), which would make tasks another
        conductor finished since run again."""
        book_uuid = job.book_uuid
        if self._persistence is not None and book_uuid:
            with contextlib.closing(self._persistence.get_connection()) as conn:
                try:
                    return conn.get_logbook(book_uuid)
                except exc.NotFound:
                    pass  # not in our persistence: the board's may have it
        return job.book

    def _flow_detail_from_job(self, job: Any) -> Any:
        """The flow detail ``job`` runs (from its logbook)."""
        book = self._book_from_job(job)
        if book is None:
            raise exc.NotFound('No book found in job')
        flow_uuid = (job.details or {}).get('flow_uuid')
        if flow_uuid is not None:
            flow_detail = book.find(flow_uuid)
            if flow_detail is None:
                raise exc.NotFound('No matching flow detail found in jobs book'
                                   ' for flow detail with uuid %s' % flow_uuid)
            return flow_detail
        choices = len(book)
        if choices == 1:
            return list(book)[0]
        if choices == 0:
            raise exc.NotFound('No flow detail(s) found in jobs book')
        raise exc.MultipleChoices('No matching flow detail found (%s choices)'
                                  ' in jobs book' % choices)

    def _engine_options_for(self, job: Any) -> dict:
        """The engine options of ``job``'s run: the conductor's, plus the
        fencing ones (its entity as the flow's owner, the claim's token)."""
        options = dict(self._engine_options)
        options.setdefault('owner', self.conductor.name)
        token = getattr(job, 'claim_token', None)
        if token is not None:
            options['claim_token'] = token
        return options

    def _engine_from_job(self, job: Any) -> Any:
        """An engine loaded with ``job``'s flow detail and store."""
        flow_detail = self._flow_detail_from_job(job)
        store = {}
        if flow_detail.meta and 'store' in flow_detail.meta:
            store.update(flow_detail.meta['store'])
        if job.details and 'store' in job.details:
            store.update(job.details['store'])
        options = self._engine_options_for(job)
        allowed = getattr(self, '_allowed_factory_modules', None)
        if allowed is not None:
            options['allowed_factory_modules'] = allowed
        return engines.load_from_detail(flow_detail, store=store,
                                        engine=self._engine,
                                        backend=self._persistence, **options)

    def _listeners_from_job(self, job: Any, engine: Any) -> list:
        """Listeners to attach to ``engine`` while it runs ``job`` (override
        to add some; the executor conductors add a logging listener)."""
        return []

    def connect(self) -> None:
        """Connect the jobboard (if it is not connected yet)."""
        if not self._jobboard.connected:
            self._jobboard.connect()

    def close(self) -> None:
        """Close the jobboard."""
        self._jobboard.close()

    @abc.abstractmethod
    def run(self, max_dispatches: int | None = None) -> None:
        """Claim and dispatch jobs until stopped (or ``max_dispatches``
        jobs were dispatched)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Ask :meth:`run` to stop (returns at once)."""

    @abc.abstractmethod
    def wait(self, timeout: float | None = None) -> bool:
        """Wait until :meth:`run` has exited: ``True`` if it has."""

