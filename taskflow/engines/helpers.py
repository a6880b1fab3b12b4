"""Helpers that build engines: ``load``, ``run`` and the factory (resumption) helpers."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import traceback
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from taskflow import exceptions as exc

ENGINES_NAMESPACE = 'taskflow.engines'
ENGINE_DEFAULT = 'default'

# Built-in engine kinds -> 'module:Class'; other kinds come from entry points.
_BUILTIN_ENGINES = {
    'default': 'taskflow.engines.action_engine.engine:SerialActionEngine',
    'serial': 'taskflow.engines.action_engine.engine:SerialActionEngine',
    'parallel': 'taskflow.engines.action_engine.engine:ParallelActionEngine',
    'worker-based': 'taskflow.engines.worker_based.engine:WorkerBasedActionEngine',
    'workers': 'taskflow.engines.worker_based.engine:WorkerBasedActionEngine',
}


def _engine_kind_and_options(engine: str | None,
                             kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Split ``engine`` (a kind, or a URI whose scheme is the kind) into kind and options.

    Like the reference: a falsy ``engine`` means the default kind; anything
    ``urlsplit`` finds a scheme in is a URI (``'serial:'`` and
    ``'parallel:?max_workers=2'`` too), and its user, password, host, port
    and query become options, overridden by ``kwargs``.
    """
    if not engine:
        return ENGINE_DEFAULT, dict(kwargs)
    uri = urllib.parse.urlsplit(engine)
    if not uri.scheme:
        return engine, dict(kwargs)
    options: dict[str, Any] = {}
    if uri.username:
        options['username'] = uri.username
    if uri.password:
        options['password'] = uri.password
    port = uri.port
    if port is not None:
        options['port'] = port
    if uri.hostname:
        options['hostname'] = uri.hostname if port is None else '%s:%s' % (uri.hostname, port)
    options.update(urllib.parse.parse_qsl(uri.query))
    options.update(kwargs)
    return uri.scheme, options


def _load_class(target: str) -> type:
    module_name, _, attr = target.partition(':')
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and module_name.startswith(error.name):
            # One of ours that this version does not ship (the worker-based engine).
            raise ImportError('The engine %s is not available in this version of'
                              ' taskflow-ng' % target) from error
        raise
    found: type = getattr(module, attr)
    return found


def _engine_class(kind: str, namespace: str) -> type:
    target = _BUILTIN_ENGINES.get(kind)
    if target is not None and namespace == ENGINES_NAMESPACE:
        return _load_class(target)
    for entry_point in importlib.metadata.entry_points(group=namespace):
        if entry_point.name == kind:
            loaded: type = entry_point.load()
            return loaded
    if target is not None:
        return _load_class(target)
    raise exc.NotFound("Could not find engine '%s'" % kind)


def load(flow: Any, store: Mapping[str, Any] | None = None, flow_detail: Any = None,
         book: Any = None, backend: Any = None, namespace: str = ENGINES_NAMESPACE,
         engine: str | None = ENGINE_DEFAULT, **kwargs: Any) -> Any:
    """Build an engine for ``flow`` (not compiled, not run).

    :param store: flow-level input values (persisted with the flow).
    :param flow_detail: an existing flow detail to use (e.g. to resume).
    :param book: the logbook to add a new flow detail to.
    :param backend: a persistence backend, or a configuration dict for
        :func:`taskflow.persistence.backends.fetch`.
    :param engine: the engine kind (``'serial'``, ``'parallel'``...; empty or
        ``None``: the default) or a URI ``kind://host:port/?option=value``;
        other keyword arguments are options.
    """
    kind, options = _engine_kind_and_options(engine, kwargs)
    if isinstance(backend, dict):
        from taskflow.persistence import backends as p_backends
        backend = p_backends.fetch(backend)
    if flow_detail is None:
        from taskflow.utils import persistence_utils as p_utils
        flow_detail = p_utils.create_flow_detail(flow, book=book, backend=backend)
    engine_cls = _engine_class(kind, namespace)
    engine_obj = engine_cls(flow, flow_detail, backend, options)
    if store:
        engine_obj.storage.inject(store)
    return engine_obj


def run(flow: Any, store: Mapping[str, Any] | None = None, flow_detail: Any = None,
        book: Any = None, backend: Any = None, namespace: str = ENGINES_NAMESPACE,
        engine: str | None = ENGINE_DEFAULT, **kwargs: Any) -> dict[str, Any]:
    """Load an engine for ``flow``, run it and return ``storage.fetch_all()``."""
    engine_obj = load(flow, store=store, flow_detail=flow_detail, book=book, backend=backend,
                      namespace=namespace, engine=engine, **kwargs)
    engine_obj.run()
    results: dict[str, Any] = engine_obj.storage.fetch_all()
    return results


# -- factories (flows that can be rebuilt to resume them) --------------------

def _qualified_name(function: Callable[..., Any]) -> str:
    if not hasattr(function, '__qualname__'):  # partials, callable objects...
        function = type(function)  # named after their type: never reimportable
    return '%s.%s' % (function.__module__, function.__qualname__)


def _import_by_name(name: str) -> Any:
    """Import ``package.module.attr.attr...``: the longest importable module prefix.

    Errors read as the original's (``Empty module name``, ``No module named
    ...``, ``Class ... cannot be found (traceback)``).
    """
    module_name = name.rpartition('.')[0]
    if not module_name:
        raise ImportError('Empty module name')
    parts = name.split('.')
    first_error: ImportError | None = None
    for split in range(len(parts) - 1, 0, -1):
        try:
            target = importlib.import_module('.'.join(parts[:split]))
        except ImportError as error:
            first_error = first_error or error
            continue
        try:
            for attr in parts[split:]:
                target = getattr(target, attr)
        except AttributeError:
            raise ImportError('Class %s cannot be found (%s)'
                              % (parts[-1], traceback.format_exception(*sys.exc_info())))
        return target
    assert first_error is not None  # (the loop ran at least once)
    raise first_error  # the whole module path's: it names the missing module


def _factory_name(flow_factory: Any) -> str:
    if isinstance(flow_factory, str):
        try:
            _import_by_name(flow_factory)
        except (ImportError, AttributeError) as e:
            raise ImportError('Could not import factory %r: %s' % (flow_factory, e)) from e
        return flow_factory
    name = _qualified_name(flow_factory)
    try:
        found = _import_by_name(name)
    except (ImportError, AttributeError):
        found = None
    if found is not flow_factory:
        raise ValueError('Flow factory %r is not reimportable by name %s'
                         % (flow_factory, name))
    return name


def save_factory_details(flow_detail: Any, flow_factory: Any, factory_args: Any,
                         factory_kwargs: Any, backend: Any = None) -> None:
    """Record in ``flow_detail.meta`` how to rebuild its flow (and save it)."""
    name = _factory_name(flow_factory)
    flow_detail.meta.update({'factory': {'name': name,
                                         'args': list(factory_args or []),
                                         'kwargs': dict(factory_kwargs or {})}})
    if backend is not None:
        if isinstance(backend, dict):
            from taskflow.persistence import backends as p_backends
            backend = p_backends.fetch(backend)
        connection = backend.get_connection()
        try:
            connection.update_flow_details(flow_detail)
        finally:
            connection.close()


def load_from_factory(flow_factory: Any, factory_args: Any = None, factory_kwargs: Any = None,
                      store: Mapping[str, Any] | None = None, book: Any = None,
                      backend: Any = None, namespace: str = ENGINES_NAMESPACE,
                      engine: str | None = ENGINE_DEFAULT, **kwargs: Any) -> Any:
    """Build the flow with ``flow_factory`` and load an engine that can be resumed later."""
    if isinstance(backend, dict):
        from taskflow.persistence import backends as p_backends
        backend = p_backends.fetch(backend)
    factory = _import_by_name(_factory_name(flow_factory)) \
        if isinstance(flow_factory, str) else flow_factory
    flow = factory(*(factory_args or []), **(factory_kwargs or {}))
    from taskflow.utils import persistence_utils as p_utils
    flow_detail = p_utils.create_flow_detail(flow, book=book, backend=backend)
    save_factory_details(flow_detail, flow_factory, factory_args, factory_kwargs,
                         backend=backend)
    return load(flow, store=store, flow_detail=flow_detail, book=book, backend=backend,
                namespace=namespace, engine=engine, **kwargs)


def flow_from_detail(flow_detail: Any) -> Any:
    """Rebuild a flow from the factory recorded in ``flow_detail.meta``."""
    try:
        factory_data = flow_detail.meta['factory']
    except (KeyError, AttributeError, TypeError):
        raise ValueError('Cannot reconstruct flow %s %s: no factory information saved.'
                         % (flow_detail.name, flow_detail.uuid)) from None
    try:
        factory = _import_by_name(factory_data['name'])
    except (KeyError, ImportError, AttributeError) as e:
        raise ImportError('Could not import factory for flow %s %s'
                          % (flow_detail.name, flow_detail.uuid)) from e
    return factory(*factory_data.get('args', ()), **factory_data.get('kwargs', {}))


def load_from_detail(flow_detail: Any, store: Mapping[str, Any] | None = None,
                     backend: Any = None, namespace: str = ENGINES_NAMESPACE,
                     engine: str | None = ENGINE_DEFAULT, **kwargs: Any) -> Any:
    """Load an engine that continues the flow saved in ``flow_detail``."""
    return load(flow_from_detail(flow_detail), store=store, flow_detail=flow_detail,
                backend=backend, namespace=namespace, engine=engine, **kwargs)
