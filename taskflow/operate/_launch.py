"""Starting a new flow from a factory, persisted so the tools can follow it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from taskflow import engines
from taskflow.operate import _actions
from taskflow.operate import _errors
from taskflow.operate import _factories
from taskflow.persistence import models


def parse_store(pairs: Iterable[str]) -> dict[str, Any]:
    """``['k=v', ...]`` as a dict; each value is JSON when it parses, else a string."""
    store: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition('=')
        key = key.strip()
        if not sep or not key:
            raise _errors.OperatorError('expected KEY=VALUE for --store, got %r' % pair)
        try:
            store[key] = json.loads(text)
        except ValueError:
            store[key] = text
    return store


def start(backend: Any, factory_ref: str, *, store: Mapping[str, Any] | None = None,
          book: str | None = None, engine: str | None = None,
          listeners: Iterable[_actions.ListenerFactory] = (),
          on_loaded: Any = None) -> tuple[str, str, str | None]:
    """Build a flow with ``factory_ref`` (``MODULE:FACTORY``), persist it and run it.

    Returns ``(flow uuid, final state, error or None)``.  ``on_loaded`` is
    called with the engine before it runs (e.g. to print the flow's uuid).
    """
    backend = _actions._backend(backend)
    factory, added_path = _factories.import_factory(factory_ref)
    logbook = models.LogBook(book or str(getattr(factory, '__name__', 'flows')))
    try:
        eng = engines.load_from_factory(factory, store=dict(store or {}), book=logbook,
                                        backend=backend, engine=engine or 'serial')
    except (ImportError, ValueError, TypeError) as problem:
        raise _errors.OperatorError('cannot start %s: %s' % (factory_ref, problem)) from problem
    if added_path:
        eng.storage.update_flow_metadata({_factories.META_FACTORY_PATH: added_path})
    if on_loaded is not None:
        on_loaded(eng)
    state, error = _actions.run_engine(eng, listeners)
    return eng.storage.flow_uuid, state, error
