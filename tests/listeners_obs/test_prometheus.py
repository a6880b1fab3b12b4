"""The Prometheus listener, with a fresh CollectorRegistry per test."""

from __future__ import annotations

import subprocess
import sys

from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest

from taskflow import engines
from taskflow.listeners.prometheus import PrometheusListener
from tests.operate import flows


def run(flow, registry, store, **options):
    engine = engines.load(flow, store=store)
    with PrometheusListener(engine, registry=registry, **options):
        try:
            engine.run()
        except RuntimeError:
            pass
    return engine


def value(registry, name, **labels):
    return registry.get_sample_value(name, labels) or 0.0


def test_counts_and_durations(tmp_path):
    registry = CollectorRegistry()
    log = str(tmp_path / 'log')
    flows.break_task(log, 'charge')
    run(flows.make_orders(), registry, {'log': log, 'delay': 0})
    flows.break_task(log, 'charge', broken=False)
    run(flows.make_orders(), registry, {'log': log, 'delay': 0.01})

    assert value(registry, 'taskflow_flows_total', flow='orders', state='REVERTED') == 1
    assert value(registry, 'taskflow_flows_total', flow='orders', state='SUCCESS') == 1
    assert value(registry, 'taskflow_flow_duration_seconds_count', flow='orders',
                 state='SUCCESS') == 1
    charge = {'flow': 'orders', 'atom': 'charge', 'kind': 'task'}
    assert value(registry, 'taskflow_atom_starts_total', action='execute', **charge) == 3
    assert value(registry, 'taskflow_atom_starts_total', action='revert', **charge) == 2
    assert value(registry, 'taskflow_atom_finishes_total', state='FAILURE', **charge) == 2
    assert value(registry, 'taskflow_atom_finishes_total', state='SUCCESS', **charge) == 1
    assert value(registry, 'taskflow_atom_finishes_total', state='REVERTED', **charge) == 2
    assert value(registry, 'taskflow_atom_duration_seconds_count', action='execute',
                 **charge) == 3
    # The successful run slept 10ms in each task.
    ship_sum = value(registry, 'taskflow_atom_duration_seconds_sum', flow='orders',
                     atom='ship', kind='task', action='execute')
    assert ship_sum >= 0.01
    assert value(registry, 'taskflow_atom_retries_total', flow='orders',
                 atom='payment-retry') == 1
    text = generate_latest(registry).decode()
    assert 'taskflow_atom_duration_seconds_bucket{' in text


def test_no_values_only_names_and_states(tmp_path):
    registry = CollectorRegistry()
    run(flows.make_independent(), registry,
        {'log': str(tmp_path / 'log'), 'delay': 0, 'password': 'hunter2'})
    text = generate_latest(registry).decode()
    assert 'hunter2' not in text and str(tmp_path) not in text
    assert 'flow="independent"' in text


def test_atom_label_can_be_dropped_and_registries_are_shared(tmp_path):
    registry = CollectorRegistry()
    store = {'log': str(tmp_path / 'log'), 'delay': 0}
    run(flows.make_independent(), registry, store, atom_label=False)
    run(flows.make_independent(), registry, store, atom_label=False)
    assert value(registry, 'taskflow_atom_finishes_total', flow='independent', atom='',
                 kind='task', state='SUCCESS') == 8
    other = CollectorRegistry()
    run(flows.make_independent(), other, store, namespace='jobs')
    assert value(other, 'jobs_flows_total', flow='independent', state='SUCCESS') == 1


def test_optional_packages_are_not_imported_by_taskflow():
    code = ('import sys, taskflow.engines, taskflow.listeners, taskflow.operate, '
            'taskflow.persistence.backends\n'
            'bad = [m for m in ("opentelemetry", "prometheus_client", "click", "rich",'
            ' "starlette") if m in sys.modules]\n'
            'assert not bad, bad')
    subprocess.run([sys.executable, '-c', code], check=True, timeout=60)
