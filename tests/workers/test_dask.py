"""The parallel engine on a Dask distributed cluster (``executor=
client.get_executor()``): a LocalCluster of 2 worker processes."""

from __future__ import annotations

import os

import pytest

import taskflow.engines
from taskflow import states as st
from taskflow.patterns import linear_flow
from taskflow.patterns import unordered_flow
from tests.workers import tasks

distributed = pytest.importorskip('distributed', reason="pip install 'taskflow-ng[dask]'")


class WhereAmI(tasks.task.Task):
    def execute(self):
        return os.getpid()


@pytest.fixture(scope='module')
def dask_client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_tasks_run_in_the_cluster_processes(dask_client) -> None:
    executor = dask_client.get_executor()
    flow = unordered_flow.Flow('u').add(*[WhereAmI(name='w%d' % i, provides='p%d' % i)
                                          for i in range(20)])
    engine = taskflow.engines.load(flow, engine='parallel', executor=executor)
    engine.run()
    pids = {engine.storage.fetch('p%d' % i) for i in range(20)}
    worker_pids = set(dask_client.run(os.getpid).values())
    assert pids <= worker_pids and os.getpid() not in pids


def test_results_failures_and_reverts_cross_the_cluster(dask_client) -> None:
    executor = dask_client.get_executor()
    flow = linear_flow.Flow('f').add(tasks.Adder(provides='z'), tasks.Failing())
    engine = taskflow.engines.load(flow, engine='parallel', executor=executor,
                                   store={'x': 1, 'y': 2})
    with pytest.raises(ValueError, match='failing on purpose'):
        engine.run()
    assert engine.storage.get_flow_state() == st.REVERTED
    assert engine.storage.get_atom_state('tests.workers.tasks.Adder') == st.REVERTED


def test_the_engine_never_shuts_the_cluster_executor_down(dask_client) -> None:
    executor = dask_client.get_executor()
    flow = linear_flow.Flow('f').add(tasks.Adder(provides='z'))
    for _ in range(2):
        assert taskflow.engines.run(flow, engine='parallel', executor=executor,
                                    store={'x': 2, 'y': 3})['z'] == 5
    assert executor.submit(sum, [1, 2]).result(timeout=30) == 3


def test_a_dead_cluster_fails_the_run_instead_of_hanging() -> None:
    cluster = distributed.LocalCluster(n_workers=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    executor = client.get_executor()
    client.close()
    cluster.close()
    flow = linear_flow.Flow('f').add(tasks.Noop())
    engine = taskflow.engines.load(flow, engine='parallel', executor=executor)
    with pytest.raises(distributed.client.ClosedClientError):
        engine.run()
    assert engine.storage.get_flow_state() == st.FAILURE


def test_functor_tasks_travel_by_cloudpickle(dask_client) -> None:
    from taskflow import task as task_module
    offset = 40
    functor = task_module.FunctorTask(lambda x: x + offset, name='closure', provides='y')
    result = taskflow.engines.run(linear_flow.Flow('f').add(functor), engine='parallel',
                                  executor=dask_client.get_executor(), store={'x': 2})
    assert result['y'] == 42
