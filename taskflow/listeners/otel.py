"""OpenTelemetry tracing of flows and atoms (needs the ``otel`` extra).

:class:`OpenTelemetryListener` makes one span per flow run and, as its
children, one span per atom execution (``execute <atom>``) and per atom
revert (``revert <atom>``)::

    from opentelemetry import trace
    from taskflow.listeners.otel import OpenTelemetryListener

    with OpenTelemetryListener(engine):          # the global tracer provider
        engine.run()

Spans carry ``taskflow.flow.name``/``.uuid``, ``taskflow.atom.name``/
``.uuid``/``.kind`` and, at the end, ``taskflow.flow.state``/
``taskflow.atom.state``.  A failure is recorded the OpenTelemetry way: an
``exception`` event (``exception.type``, ``exception.message``,
``exception.stacktrace``), the ``error.type`` attribute and an ``ERROR``
status.  A flow that ends ``FAILURE`` or ``REVERTED`` has an ``ERROR``
status too.  Retries (``taskflow.retry``: a retry controller runs its
subflow again), reverts (``taskflow.revert``) and skipped atoms
(``taskflow.ignore``) are events on the flow's span.

Results are not recorded unless ``record_results=True``; then values under
secret keys (:mod:`taskflow.listeners._masking`, plus ``mask_keys``) are
``'***'``, and results published under a secret name are hidden entirely.
Like every listener it costs nothing until registered, and importing
``taskflow`` never imports OpenTelemetry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from taskflow import states as st
from taskflow.listeners import _masking
from taskflow.listeners import base
from taskflow.types import failure as failure_module

try:
    from opentelemetry import trace
except ImportError as _error:  # pragma: no cover - depends on extras
    raise ImportError("taskflow.listeners.otel needs OpenTelemetry: pip install"
                      " 'taskflow-ng[otel]'") from _error

__all__ = ['OpenTelemetryListener']

_FLOW_ENDS = frozenset((st.SUCCESS, st.FAILURE, st.REVERTED, st.SUSPENDED))
_FLOW_FAILED = frozenset((st.FAILURE, st.REVERTED))
_EXECUTE, _REVERT = 'execute', 'revert'


def _tracer(tracer_provider: Any) -> Any:
    from taskflow import version
    return trace.get_tracer('taskflow', version.version_string(),
                            tracer_provider=tracer_provider)


class OpenTelemetryListener(base.Listener):
    """Traces the engine's flow and atoms as OpenTelemetry spans.

    :param engine: the engine to trace.
    :param tracer_provider: the provider to get a tracer from (default:
        the global one).
    :param tracer: a tracer to use instead.
    :param record_results: record atom results (masked) as
        ``taskflow.atom.result``.
    :param mask_keys: more secret keys (beyond the default ones).
    """

    def __init__(self, engine: Any, tracer_provider: Any = None, tracer: Any = None,
                 record_results: bool = False, mask_keys: Iterable[str] = ()) -> None:
        super().__init__(engine)
        self._tracer = tracer if tracer is not None else _tracer(tracer_provider)
        self._record_results = record_results
        self._keys = _masking.SecretKeys(mask_keys)
        self._lock = threading.Lock()
        self._flow_span: Any = None
        self._atom_spans: dict[tuple[str, str], Any] = {}
        self._secret_outputs: set[str] | None = None

    # -- flows ----------------------------------------------------------------

    def _flow_receiver(self, state: str, details: dict[str, Any]) -> None:
        with self._lock:
            if state == st.RUNNING:
                self._end_flow(None)   # a span left open by an interrupted run
                self._flow_span = self._tracer.start_span(
                    'flow %s' % details['flow_name'],
                    attributes={'taskflow.flow.name': details['flow_name'],
                                'taskflow.flow.uuid': details['flow_uuid'],
                                'taskflow.engine': type(self._engine).__name__})
            elif state in _FLOW_ENDS:
                self._end_flow(state)

    def _end_flow(self, state: str | None) -> None:
        span, self._flow_span = self._flow_span, None
        if span is None:
            return
        for key in list(self._atom_spans):   # atoms still open end with the flow
            self._atom_spans.pop(key).end()
        if state is not None:
            span.set_attribute('taskflow.flow.state', state)
            if state in _FLOW_FAILED:
                span.set_status(trace.Status(trace.StatusCode.ERROR,
                                             'flow ended %s' % state))
        span.end()

    # -- atoms ----------------------------------------------------------------

    def _task_receiver(self, state: str, details: dict[str, Any]) -> None:
        self._atom('task', details['task_name'], details['task_uuid'], state, details)

    def _retry_receiver(self, state: str, details: dict[str, Any]) -> None:
        self._atom('retry', details['retry_name'], details['retry_uuid'], state, details)

    def _atom(self, kind: str, name: str, uuid: str, state: str,
              details: dict[str, Any]) -> None:
        with self._lock:
            if state in (st.RUNNING, st.REVERTING):
                action = _EXECUTE if state == st.RUNNING else _REVERT
                self._start_atom(kind, name, uuid, action)
                if action == _REVERT:
                    self._flow_event('taskflow.revert', kind, name, uuid)
            elif state in (st.SUCCESS, st.FAILURE):
                self._end_atom(name, _EXECUTE, state, details.get('result'))
            elif state in (st.REVERTED, st.REVERT_FAILURE):
                self._end_atom(name, _REVERT, state, details.get('result'))
            elif state == st.RETRYING:
                self._flow_event('taskflow.retry', kind, name, uuid)
            elif state == st.IGNORE:
                self._flow_event('taskflow.ignore', kind, name, uuid)

    def _start_atom(self, kind: str, name: str, uuid: str, action: str) -> None:
        context = (trace.set_span_in_context(self._flow_span)
                   if self._flow_span is not None else None)
        old = self._atom_spans.pop((name, action), None)
        if old is not None:
            old.end()
        self._atom_spans[(name, action)] = self._tracer.start_span(
            '%s %s' % (action, name), context=context,
            attributes={'taskflow.atom.name': name, 'taskflow.atom.uuid': uuid,
                        'taskflow.atom.kind': kind, 'taskflow.atom.action': action,
                        'taskflow.flow.name': self._engine.storage.flow_name,
                        'taskflow.flow.uuid': self._engine.storage.flow_uuid})

    def _end_atom(self, name: str, action: str, state: str, result: Any) -> None:
        span = self._atom_spans.pop((name, action), None)
        if span is None:
            return
        span.set_attribute('taskflow.atom.state', state)
        if isinstance(result, failure_module.Failure):
            _record_failure(span, result)
        elif self._record_results and result is not None and action == _EXECUTE:
            span.set_attribute('taskflow.atom.result', self._shown(name, result))
        span.end()

    def _flow_event(self, event: str, kind: str, name: str, uuid: str) -> None:
        if self._flow_span is not None:
            self._flow_span.add_event(event, {'taskflow.atom.name': name,
                                              'taskflow.atom.uuid': uuid,
                                              'taskflow.atom.kind': kind})

    def _shown(self, name: str, result: Any) -> str:
        if self._secret_outputs is None:
            # Atoms that publish their result under a secret name: all of it hidden.
            compilation = getattr(self._engine, 'compilation', None)
            graph = compilation.execution_graph if compilation is not None else None
            self._secret_outputs = {
                atom.name for atom, data in (graph.nodes(data=True) if graph else ())
                if data.get('kind') in ('task', 'retry')
                and any(key in self._keys for key in atom.save_as)}
        if name in self._secret_outputs:
            return _masking.MASK
        shown = _masking.mask(result, self._keys)
        return shown if isinstance(shown, str) else repr(shown)

    def deregister(self) -> None:
        super().deregister()
        with self._lock:
            self._end_flow(None)


def _record_failure(span: Any, failure: failure_module.Failure) -> None:
    names = failure.exc_type_names
    type_name = names[0] if names else 'Exception'
    exception = failure.exception
    if exception is not None and exception.__traceback__ is not None:
        span.record_exception(exception)
    else:
        # A failure loaded from storage has no live exception: same event by hand.
        span.add_event('exception', {'exception.type': type_name,
                                     'exception.message': failure.exception_str,
                                     'exception.stacktrace': failure.traceback_str or ''})
    span.set_attribute('error.type', type_name)
    span.set_status(trace.Status(trace.StatusCode.ERROR,
                                 '%s: %s' % (type_name, failure.exception_str)))
