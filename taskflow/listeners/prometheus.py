"""Prometheus metrics of flows and atoms (needs the ``prometheus`` extra).

:class:`PrometheusListener` counts and times what an engine does::

    from prometheus_client import start_http_server
    from taskflow.listeners.prometheus import PrometheusListener

    start_http_server(9100)
    with PrometheusListener(engine):             # the default registry
        engine.run()

Metrics (``taskflow`` is the default ``namespace``):

=====================================  ==========================================
``taskflow_atom_starts_total``         atoms started; labels ``flow``, ``atom``,
                                       ``kind`` (task/retry), ``action``
                                       (execute/revert)
``taskflow_atom_finishes_total``       atoms finished; ``flow``, ``atom``,
                                       ``kind``, ``state`` (SUCCESS, FAILURE,
                                       REVERTED, REVERT_FAILURE)
``taskflow_atom_duration_seconds``     histogram; ``flow``, ``atom``, ``kind``,
                                       ``action``
``taskflow_atom_retries_total``        a retry controller ran its subflow again;
                                       ``flow``, ``atom``
``taskflow_flows_total``               flow runs by final state; ``flow``,
                                       ``state`` (SUCCESS, FAILURE, REVERTED,
                                       SUSPENDED)
``taskflow_flow_duration_seconds``     histogram; ``flow``, ``state``
=====================================  ==========================================

Labels hold flow and atom *names* and states only: no values, so nothing
masked can leak.  Flows whose atoms are generated in great numbers can pass
``atom_label=False`` (the ``atom`` label is then ``''``).  Several listeners
(engines) share the metrics of one registry.  Importing ``taskflow`` never
imports prometheus_client.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from taskflow import states as st
from taskflow.listeners import base

try:
    import prometheus_client
except ImportError as _error:  # pragma: no cover - depends on extras
    raise ImportError("taskflow.listeners.prometheus needs prometheus_client: pip install"
                      " 'taskflow-ng[prometheus]'") from _error

__all__ = ['PrometheusListener', 'metrics_for']

DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
_FLOW_ENDS = frozenset((st.SUCCESS, st.FAILURE, st.REVERTED, st.SUSPENDED))
_ATOM_ENDS = {st.SUCCESS: 'execute', st.FAILURE: 'execute', st.REVERTED: 'revert',
              st.REVERT_FAILURE: 'revert'}
# registry -> namespace -> metrics (a registry refuses the same metric twice).
_made: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_made_lock = threading.Lock()


def metrics_for(registry: Any = None, namespace: str = 'taskflow',
                buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> dict[str, Any]:
    """The metric objects of ``namespace`` in ``registry`` (made once per registry)."""
    registry = prometheus_client.REGISTRY if registry is None else registry
    with _made_lock:
        by_namespace = _made.setdefault(registry, {})
        found = by_namespace.get(namespace)
        if found is not None:
            return found
        common = {'namespace': namespace, 'registry': registry}
        found = by_namespace[namespace] = {
            'atom_starts': prometheus_client.Counter(
                'atom_starts', 'Atoms started (executions and reverts).',
                ['flow', 'atom', 'kind', 'action'], **common),
            'atom_finishes': prometheus_client.Counter(
                'atom_finishes', 'Atoms that finished executing or reverting, by state.',
                ['flow', 'atom', 'kind', 'state'], **common),
            'atom_duration': prometheus_client.Histogram(
                'atom_duration_seconds', 'How long atoms executed or reverted.',
                ['flow', 'atom', 'kind', 'action'], buckets=buckets, **common),
            'atom_retries': prometheus_client.Counter(
                'atom_retries', 'Times a retry controller ran its subflow again.',
                ['flow', 'atom'], **common),
            'flows': prometheus_client.Counter(
                'flows', 'Flow runs by final state.', ['flow', 'state'], **common),
            'flow_duration': prometheus_client.Histogram(
                'flow_duration_seconds', 'How long flow runs took, by final state.',
                ['flow', 'state'], buckets=buckets, **common),
        }
        return found


class PrometheusListener(base.Listener):
    """Counts and times an engine's flow and atoms in Prometheus metrics.

    :param registry: a ``CollectorRegistry`` (default: the global one).
    :param namespace: metric name prefix.
    :param buckets: histogram buckets (seconds), used when the metrics are
        first made in this registry.
    :param atom_label: label atom metrics with the atom name.
    """

    def __init__(self, engine: Any, registry: Any = None, namespace: str = 'taskflow',
                 buckets: tuple[float, ...] = DEFAULT_BUCKETS,
                 atom_label: bool = True) -> None:
        super().__init__(engine)
        self._metrics = metrics_for(registry, namespace, buckets)
        self._atom_label = atom_label
        self._lock = threading.Lock()
        self._flow_started: float | None = None
        self._atom_started: dict[tuple[str, str], float] = {}
        # (metric, labels) -> labelled child: labels() validates and locks on
        # every call, and each atom event needs two or three of them.
        self._children: dict[tuple[str, tuple[str, ...]], Any] = {}

    def _child(self, metric: str, *labels: str) -> Any:
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._metrics[metric].labels(*labels)
        return child

    def _flow_name(self) -> str:
        return self._engine.storage.flow_name

    def _flow_receiver(self, state: str, details: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._lock:
            if state == st.RUNNING:
                self._flow_started = now
                return
            if state not in _FLOW_ENDS:
                return
            flow = details['flow_name']
            self._child('flows', flow, state).inc()
            if self._flow_started is not None:
                self._child('flow_duration', flow, state).observe(now - self._flow_started)
                self._flow_started = None

    def _task_receiver(self, state: str, details: dict[str, Any]) -> None:
        self._atom('task', details['task_name'], state)

    def _retry_receiver(self, state: str, details: dict[str, Any]) -> None:
        self._atom('retry', details['retry_name'], state)

    def _atom(self, kind: str, name: str, state: str) -> None:
        now = time.monotonic()
        flow = self._flow_name()
        label = name if self._atom_label else ''
        with self._lock:
            if state in (st.RUNNING, st.REVERTING):
                action = 'execute' if state == st.RUNNING else 'revert'
                self._atom_started[(name, action)] = now
                self._child('atom_starts', flow, label, kind, action).inc()
            elif state in _ATOM_ENDS:
                action = _ATOM_ENDS[state]
                self._child('atom_finishes', flow, label, kind, state).inc()
                started = self._atom_started.pop((name, action), None)
                if started is not None:
                    self._child('atom_duration', flow, label, kind, action).observe(
                        now - started)
            elif state == st.RETRYING:
                self._child('atom_retries', flow, label).inc()
