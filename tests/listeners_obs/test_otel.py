"""The OpenTelemetry listener, with the SDK's in-memory span exporter."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from taskflow import engines
from taskflow import task
from taskflow.listeners.otel import OpenTelemetryListener
from taskflow.patterns import linear_flow as lf
from tests.operate import flows


@pytest.fixture
def traced():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def run(flow, provider, store, **listener_options):
    engine = engines.load(flow, store=store)
    with OpenTelemetryListener(engine, tracer_provider=provider, **listener_options):
        try:
            engine.run()
        except RuntimeError:
            pass
    return engine


def test_a_span_per_flow_and_per_atom_execution(traced, tmp_path):
    provider, exporter = traced
    run(flows.make_independent(), provider, {'log': str(tmp_path / 'log'), 'delay': 0})
    spans = exporter.get_finished_spans()
    (flow_span,) = [s for s in spans if s.name == 'flow independent']
    assert [s.name for s in spans if s is not flow_span] == [
        'execute a', 'execute b', 'execute c', 'execute d']
    for span in spans:
        if span is not flow_span:
            assert span.parent.span_id == flow_span.context.span_id
            assert span.context.trace_id == flow_span.context.trace_id
            assert span.attributes['taskflow.atom.state'] == 'SUCCESS'
            assert span.attributes['taskflow.flow.uuid'] == flow_span.attributes[
                'taskflow.flow.uuid']
            assert span.start_time >= flow_span.start_time
            assert span.end_time <= flow_span.end_time
    assert flow_span.attributes['taskflow.flow.state'] == 'SUCCESS'
    assert flow_span.status.status_code == StatusCode.UNSET
    assert 'taskflow.atom.result' not in spans[1].attributes      # off by default


def test_failures_retries_and_reverts(traced, tmp_path):
    provider, exporter = traced
    log = str(tmp_path / 'log')
    flows.break_task(log, 'charge')
    run(flows.make_orders(), provider, {'log': log, 'delay': 0})
    spans = exporter.get_finished_spans()
    (flow_span,) = [s for s in spans if s.name == 'flow orders']
    assert flow_span.attributes['taskflow.flow.state'] == 'REVERTED'
    assert flow_span.status.status_code == StatusCode.ERROR
    charges = [s for s in spans if s.name == 'execute charge']
    assert len(charges) == 2                                    # two attempts
    for span in charges:
        assert span.status.status_code == StatusCode.ERROR
        assert span.status.description == 'RuntimeError: charge is broken'
        assert span.attributes['error.type'] == 'RuntimeError'
        (event,) = [e for e in span.events if e.name == 'exception']
        assert event.attributes['exception.type'] == 'RuntimeError'
        assert event.attributes['exception.message'] == 'charge is broken'
        assert 'raise RuntimeError' in event.attributes['exception.stacktrace']
    reverts = [s.name for s in spans if s.name.startswith('revert ')]
    assert reverts == ['revert charge', 'revert charge', 'revert payment-retry']
    events = [(e.name, e.attributes['taskflow.atom.name']) for e in flow_span.events]
    assert ('taskflow.retry', 'payment-retry') in events
    assert events.count(('taskflow.revert', 'charge')) == 2


class Secretive(task.Task):
    def execute(self):
        return {'user': 'ann', 'password': 'hunter2', 'nested': [{'api_key': 'k'}]}


class Token(task.Task):
    def execute(self):
        return 'tok-123'


def test_results_only_when_asked_and_always_masked(traced):
    provider, exporter = traced
    flow = lf.Flow('secrets').add(Secretive('creds', provides='creds'),
                                  Token('fetch', provides='session_token'),
                                  Token('plain', provides='card'))
    run(flow, provider, {}, record_results=True, mask_keys=['card'])
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    creds = by_name['execute creds'].attributes['taskflow.atom.result']
    assert 'hunter2' not in creds and "'password': '***'" in creds and "'user': 'ann'" in creds
    assert "'api_key': '***'" in creds
    assert by_name['execute fetch'].attributes['taskflow.atom.result'] == '***'
    assert by_name['execute plain'].attributes['taskflow.atom.result'] == '***'


def test_nothing_is_registered_until_attached(tmp_path):
    engine = engines.load(flows.make_independent(),
                          store={'log': str(tmp_path / 'log'), 'delay': 0})
    listener = OpenTelemetryListener(engine)
    assert len(engine.notifier) == 0 and len(engine.atom_notifier) == 0
    with listener:
        assert len(engine.atom_notifier) > 0
    assert len(engine.notifier) == 0 and len(engine.atom_notifier) == 0
