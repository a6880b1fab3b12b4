"""Storage without a backend gets the original's in-memory backend.

Programs load an engine without persistence and then dump
``engine.storage.backend.memory``: it must hold the flow detail (in no
book) and every atom detail, as they are when it is read and afterwards.
"""

from __future__ import annotations

import contextlib
import threading

import taskflow.engines
from taskflow import storage as storage_module
from taskflow import task
from taskflow.engines.action_engine import engine as engine_module
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from taskflow.persistence import models
from taskflow.persistence.backends import impl_memory


class Hello(task.Task):
    def execute(self):
        return 'hi'


def stored(backend, flow_uuid):
    with contextlib.closing(backend.get_connection()) as conn:
        assert list(conn.get_logbooks()) == []
        detail = conn.get_flow_details(flow_uuid)
        return detail.state, {ad.name: (ad.state, ad.results) for ad in detail}


def test_loaded_engine_has_a_shallow_copying_memory_backend():
    engine = taskflow.engines.load(lf.Flow('f').add(Hello('h')), store={'a': 1})
    backend = engine.storage.backend
    assert isinstance(backend, impl_memory.MemoryBackend)
    assert backend.memory._copier.__name__ == 'copy'     # conf deep_copy=False
    assert engine.storage.backend is backend
    assert stored(backend, engine.storage.flow_uuid) == (
        None, {'_TaskFlow_INJECTOR': ('SUCCESS', {'a': 1})})
    engine.run()
    assert stored(backend, engine.storage.flow_uuid) == (
        'SUCCESS', {'_TaskFlow_INJECTOR': ('SUCCESS', {'a': 1}), 'h': ('SUCCESS', 'hi')})
    # 3 top directories, the flow detail, 2 atom details and their 2 links.
    assert len(backend.memory.ls_r(backend.memory.root_path, absolute=True)) == 8


def test_backend_read_after_the_run_holds_the_final_state():
    engine = taskflow.engines.load(lf.Flow('f').add(Hello('h')))
    engine.run()
    assert stored(engine.storage.backend, engine.storage.flow_uuid) == (
        'SUCCESS', {'h': ('SUCCESS', 'hi')})


def test_each_engine_and_storage_gets_its_own():
    one = taskflow.engines.load(lf.Flow('f').add(Hello('h')))
    two = taskflow.engines.load(lf.Flow('g').add(Hello('h')))
    assert one.storage.backend is not two.storage.backend
    assert two.storage.backend.memory.ls('/flow_details') == [two.storage.flow_uuid]
    detail = models.FlowDetail('x', 'uuid-x')
    direct = engine_module.SerialActionEngine(lf.Flow('x').add(Hello('h')), detail, None, {})
    assert isinstance(direct.storage.backend, impl_memory.MemoryBackend)
    alone = storage_module.Storage(models.FlowDetail('y', 'uuid-y'))
    assert alone.backend.memory.ls('/flow_details') == ['uuid-y']


def test_a_given_backend_is_kept():
    backend = impl_memory.MemoryBackend()
    engine = taskflow.engines.load(lf.Flow('f').add(Hello('h')), backend=backend)
    assert engine.storage.backend is backend


def test_read_while_a_parallel_run_writes():
    # The backend made while atoms run must still end up with every result.
    gate = threading.Event()

    class Slow(task.Task):
        def execute(self):
            gate.wait(10)
            return self.name

    flow = uf.Flow('u').add(*[Slow('s%d' % i) for i in range(8)])
    engine = taskflow.engines.load(flow, engine='parallel', max_workers=4)
    runner = threading.Thread(target=engine.run)
    runner.start()
    try:
        backend = engine.storage.backend
    finally:
        gate.set()
        runner.join(30)
    state, atoms = stored(backend, engine.storage.flow_uuid)
    assert state == 'SUCCESS'
    assert {name: value for name, (_s, value) in atoms.items() if name.startswith('s')} == {
        's%d' % i: 's%d' % i for i in range(8)}
