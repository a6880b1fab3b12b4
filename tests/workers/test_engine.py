"""The worker-based engine as users see it, on memory://, RabbitMQ and Redis."""

from __future__ import annotations

import json
import time

import pytest

import taskflow.engines
from taskflow import exceptions as exc
from taskflow import retry
from taskflow import states as st
from taskflow import task as task_module
from taskflow.engines.worker_based import engine as wb_engine
from taskflow.engines.worker_based import executor as wb_executor
from taskflow.patterns import graph_flow
from taskflow.patterns import linear_flow
from taskflow.patterns import unordered_flow
from taskflow.types import failure as failure_module
from tests.workers import tasks


def test_load_gives_the_worker_based_engine_class() -> None:
    flow = linear_flow.Flow('f').add(tasks.Noop())
    for kind in ('worker-based', 'workers'):
        engine = taskflow.engines.load(flow, engine=kind, url='memory://')
        assert type(engine) is wb_engine.WorkerBasedActionEngine
        assert repr(engine).startswith(
            '<taskflow.engines.worker_based.engine.WorkerBasedActionEngine object at 0x')


def test_executor_option_must_be_a_worker_task_executor() -> None:
    flow = linear_flow.Flow('f').add(tasks.Noop())
    with pytest.raises(TypeError) as caught:
        taskflow.engines.load(flow, engine='worker-based', url='memory://', executor=object())
    assert str(caught.value) == (
        "Expected an instance of type '<class 'taskflow.engines.worker_based.executor."
        "WorkerTaskExecutor'>' instead of type '<class 'object'>' for 'executor' option")


def test_results_travel_and_are_stored(broker, workers) -> None:
    workers.start(broker)
    flow = linear_flow.Flow('f').add(
        tasks.Adder(provides='z'),
        tasks.Multiplier(provides='product'),
        tasks.Echo(rebind={'value': 'payload'}, provides='echoed'))
    payload = {'a': [1, 2.5, None, True], 'b': {'nested': 'ü'}}
    engine = broker.load(flow, store={'x': 2, 'y': 3, 'payload': payload})
    engine.run()
    assert engine.storage.get_flow_state() == st.SUCCESS
    assert engine.storage.fetch('z') == 5
    assert engine.storage.fetch('product') == 10
    assert engine.storage.fetch('echoed') == payload


def test_failure_reverts_remotely_with_flow_failures(broker, workers, tmp_path,
                                                    monkeypatch) -> None:
    ledger = tmp_path / 'ledger'
    monkeypatch.setenv(tasks.LEDGER_ENV, str(ledger))
    workers.start(broker)
    flow = linear_flow.Flow('f').add(tasks.Reverting(name='first'),
                                     tasks.Failing(name='second'))
    engine = broker.load(flow)
    # Failures that crossed the wire have no exc_info: the original raises
    # WrappedFailure even for one, and so do we.
    with pytest.raises(exc.WrappedFailure) as caught:
        engine.run()
    assert list(caught.value)[0].check(ValueError)
    assert 'failing on purpose' in str(caught.value)
    assert engine.storage.get_flow_state() == st.REVERTED
    assert engine.storage.get_atom_state('first') == st.REVERTED
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert {'event': 'reverted', 'name': 'second', 'failures': ['second']}.items() <= \
        lines[0].items()
    assert lines[1]['name'] == 'first'
    assert lines[1]['result'] == [1, 'two']
    assert lines[1]['failures'] == {'second': 'failing on purpose'}


def test_progress_reaches_listeners_and_storage(broker, workers) -> None:
    workers.start(broker)
    progressing = tasks.Progressing()
    seen = []
    progressing.notifier.register('update_progress',
                                  lambda event, details: seen.append(dict(details)))
    engine = broker.load(linear_flow.Flow('f').add(progressing))
    engine.run()
    assert {'progress': 0.25} in seen
    assert {'progress': 0.5, 'stage': 'half'} in seen
    assert seen[-1] == {'progress': 1.0}
    assert engine.storage.get_task_progress(progressing.name) == 1.0


def test_atom_notifications_as_on_local_engines(broker, workers) -> None:
    workers.start(broker)
    events = []
    engine = broker.load(linear_flow.Flow('f').add(tasks.Adder(provides='z')),
                         store={'x': 1, 'y': 1})
    engine.atom_notifier.register('*', lambda state, details: events.append(
        (state, details['task_name'], details.get('result'))))
    engine.run()
    name = 'tests.workers.tasks.Adder'
    assert events == [(st.RUNNING, name, None), (st.SUCCESS, name, 2)]


def test_retries_run_in_the_engine(broker, workers) -> None:
    workers.start(broker)
    asked = []

    class Counting(retry.Times):
        def on_failure(self, history, *args, **kwargs):
            asked.append(len(history))
            return super().on_failure(history, *args, **kwargs)

    flow = linear_flow.Flow('f', retry=Counting(3, name='r')).add(tasks.Failing())
    engine = broker.load(flow)
    with pytest.raises(exc.WrappedFailure):
        engine.run()
    assert asked == [1, 2, 3]
    assert engine.storage.get_flow_state() == st.REVERTED


def test_many_tasks_on_two_workers(broker, workers) -> None:
    workers.start(broker, topic='a')
    workers.start(broker, topic='b')
    flow = unordered_flow.Flow('u').add(
        *[tasks.Echo(name='e%d' % i, inject={'value': i}, provides='r%d' % i)
          for i in range(60)])
    graph = graph_flow.Flow('g').add(flow, tasks.Adder(name='sum', rebind={'x': 'r1',
                                                                          'y': 'r2'},
                                                      provides='total'))
    engine = broker.load(graph, topics=['a', 'b'])
    engine.run()
    assert engine.storage.fetch('total') == 3
    assert [engine.storage.fetch('r%d' % i) for i in range(60)] == list(range(60))


def test_no_worker_means_request_timeout(broker) -> None:
    engine = broker.load(linear_flow.Flow('f').add(tasks.Adder()),
                         store={'x': 1, 'y': 2}, transition_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(exc.RequestTimeout) as caught:
        engine.run()
    assert time.monotonic() - started < 10
    # As the original: the revert times out too, so the flow FAILs.
    assert engine.storage.get_flow_state() == st.FAILURE
    message = str(caught.value)
    assert message.startswith("Request '<Request object at 0x")
    assert "with contents {'task_cls': 'tests.workers.tasks.Adder'" in message
    assert message.endswith('seconds for it to transition out of (WAITING, PENDING) states')


def test_functor_tasks_are_never_served(broker, workers) -> None:
    workers.start(broker)
    functor = task_module.FunctorTask(lambda: 1, name='lambda')
    engine = broker.load(linear_flow.Flow('f').add(functor), transition_timeout=0.5)
    with pytest.raises(exc.RequestTimeout):
        engine.run()


def test_unjsonable_arguments_fail_naming_the_task(broker, workers) -> None:
    workers.start(broker)
    engine = broker.load(linear_flow.Flow('f').add(tasks.Echo(name='echo-set')),
                         store={'value': {1, 2}})
    with pytest.raises(ValueError) as caught:
        engine.run()
    assert "The execute request of task 'echo-set' cannot be sent" in str(caught.value)
    assert 'not JSON serializable' in str(caught.value)


def test_unjsonable_results_fail_naming_the_request(broker, workers) -> None:
    workers.start(broker)
    engine = broker.load(linear_flow.Flow('f').add(tasks.Unjsonable()))
    with pytest.raises(exc.WrappedFailure) as caught:
        engine.run()
    assert 'not JSON serializable' in str(caught.value)


def test_oversized_payloads_are_refused_before_publishing(broker, workers) -> None:
    workers.start(broker)
    engine = broker.load(linear_flow.Flow('f').add(tasks.Echo(name='big-echo')),
                         store={'value': 'x' * 5000}, max_message_size=4096)
    with pytest.raises(ValueError) as caught:
        engine.run()
    text = str(caught.value)
    assert "The execute request of task 'big-echo'" in text
    assert 'over the max_message_size of 4096 bytes; it was not sent' in text


def test_oversized_results_become_failures(broker, workers) -> None:
    workers.start(broker, max_message_size=4096)
    engine = broker.load(linear_flow.Flow('f').add(tasks.Huge()), store={'size': 10000})
    with pytest.raises(exc.WrappedFailure) as caught:
        engine.run()
    assert 'over the max_message_size of 4096 bytes' in str(caught.value)


def test_task_timeout_abandons_a_remote_task(broker, workers) -> None:
    workers.start(broker)
    sleeper = tasks.Sleeper(name='slow', inject={'seconds': 3})
    engine = broker.load(linear_flow.Flow('f').add(sleeper), task_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(exc.AtomTimeout, match="Task 'slow' did not finish execute within"):
        engine.run()
    assert time.monotonic() - started < 8
    assert engine.storage.get_atom_state('slow') == st.REVERTED


def test_wait_for_workers(broker, workers) -> None:
    remote = wb_executor.WorkerTaskExecutor('wfw-' + broker.exchange, broker.exchange,
                                            ['t1', 't2'], url=broker.url)
    remote.start()
    try:
        assert remote.wait_for_workers(1, timeout=0.3) == 1
        workers.start(broker, topic='t1')
        workers.start(broker, topic='t2')
        deadline = time.monotonic() + 15
        missing = 2
        while missing and time.monotonic() < deadline:
            missing = remote.wait_for_workers(2, timeout=1)
            remote._notify_topics()
        assert missing == 0
    finally:
        remote.stop()


def test_a_given_executor_is_used(broker, workers) -> None:
    workers.start(broker)
    remote = wb_executor.WorkerTaskExecutor('given-' + broker.exchange, broker.exchange,
                                            ['t1'], url=broker.url)
    engine = taskflow.engines.load(linear_flow.Flow('f').add(tasks.Adder(provides='z')),
                                   engine='worker-based', executor=remote,
                                   store={'x': 4, 'y': 5})
    engine.run()
    assert engine.storage.fetch('z') == 9


def test_engine_runs_again_after_reset(broker, workers) -> None:
    workers.start(broker)
    engine = broker.load(linear_flow.Flow('f').add(tasks.Adder(provides='z')),
                         store={'x': 1, 'y': 2})
    engine.run()
    engine.reset()
    engine.run()
    assert engine.storage.fetch('z') == 3


def test_options_are_checked() -> None:
    flow = linear_flow.Flow('f').add(tasks.Noop())
    with pytest.raises(ValueError, match="'worker_lost_after' must be a positive number"):
        taskflow.engines.load(flow, engine='worker-based', url='memory://',
                              worker_lost_after=0)
    with pytest.raises(ValueError, match="on_worker_lost must be 'redispatch' or 'fail'"):
        taskflow.engines.load(flow, engine='worker-based', url='memory://',
                              on_worker_lost='shrug')


def test_unreachable_broker_fails_clearly_without_password() -> None:
    engine = taskflow.engines.load(linear_flow.Flow('f').add(tasks.Noop()),
                                   engine='worker-based',
                                   url='amqp://guest:s3cret@127.0.0.1:1//',
                                   retry_options={'max_retries': 0})
    started = time.monotonic()
    with pytest.raises(exc.ExecutionFailure) as caught:
        engine.run()
    assert time.monotonic() - started < 30
    assert 'Could not connect to the broker at amqp://guest:**@127.0.0.1:1//' in str(
        caught.value)
    assert 's3cret' not in str(caught.value)


def test_wrong_password_fails_clearly(rabbitmq) -> None:
    url = rabbitmq.url.replace('guest:guest', 'guest:wrong-pass')
    engine = taskflow.engines.load(linear_flow.Flow('f').add(tasks.Noop()),
                                   engine='worker-based', url=url)
    with pytest.raises(exc.ExecutionFailure) as caught:
        engine.run()
    assert 'refused us (AccessRefused)' in str(caught.value)
    assert 'wrong-pass' not in str(caught.value)


def test_failures_rebuilt_from_the_wire_are_data_failures(broker, workers) -> None:
    workers.start(broker)
    engine = broker.load(linear_flow.Flow('f').add(tasks.Failing()))
    with pytest.raises(exc.WrappedFailure):
        engine.run()
    failure = engine.storage.get_atom_detail('tests.workers.tasks.Failing').failure
    assert isinstance(failure, failure_module.Failure)
    assert failure.exc_info is None
    assert failure.exception_str == 'failing on purpose'
    assert failure.exc_type_names[0] == 'ValueError'


def test_without_kombu_the_error_names_the_extra(tmp_path) -> None:
    import subprocess
    import sys
    program = ("import sys; sys.modules['kombu'] = None\n"
               "import taskflow.engines\n"
               "from taskflow.patterns import linear_flow\n"
               "try:\n"
               "    taskflow.engines.load(linear_flow.Flow('f'), engine='worker-based')\n"
               "except ImportError as error:\n"
               "    print(type(error).__name__, error)\n")
    proc = subprocess.run([sys.executable, '-c', program], capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.strip() == ("ModuleNotFoundError No module named 'kombu': the"
                                   " worker-based engine needs it (pip install"
                                   " 'taskflow-ng[workers]')"), proc.stderr


def test_async_tasks_are_awaited_by_workers_and_async_retries_by_the_engine(
        broker, workers) -> None:
    class AsyncTimes(retry.Times):
        async def on_failure(self, history, *args, **kwargs):
            return super().on_failure(history, *args, **kwargs)

    workers.start(broker)
    flow = linear_flow.Flow('f', retry=AsyncTimes(2, name='again')).add(
        tasks.AsyncDoubler(provides='doubled'))
    engine = broker.load(flow, store={'x': 21})
    engine.run()
    assert engine.storage.get_flow_state() == st.SUCCESS
    assert engine.storage.fetch('doubled') == 42
    asked = []

    class Asking(AsyncTimes):
        async def on_failure(self, history, *args, **kwargs):
            asked.append(len(history))
            return await super().on_failure(history, *args, **kwargs)

    failing = linear_flow.Flow('g', retry=Asking(2, name='again')).add(
        tasks.AsyncDoubler(provides='doubled'), tasks.Failing())
    engine = broker.load(failing, store={'x': 1})
    with pytest.raises(exc.WrappedFailure) as caught:   # (a failure from the wire)
        engine.run()
    assert list(caught.value)[0].check(ValueError)
    assert asked == [1, 2] and engine.storage.get_flow_state() == st.REVERTED
