"""Every public module path and name the spec names must import (drop-in contract)."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

PUBLIC = {
    'taskflow.atom': ['Atom'],
    'taskflow.task': ['Task', 'FunctorTask', 'MapFunctorTask', 'ReduceFunctorTask',
                      'REVERT_RESULT', 'REVERT_FLOW_FAILURES', 'EVENT_UPDATE_PROGRESS'],
    'taskflow.retry': ['Retry', 'Decision', 'History', 'Times', 'ForEach', 'ForEachBase',
                       'ParameterizedForEach', 'AlwaysRevert', 'AlwaysRevertAll', 'REVERT',
                       'REVERT_ALL', 'RETRY', 'EXECUTE_REVERT_HISTORY', 'REVERT_FLOW_FAILURES'],
    'taskflow.flow': ['Flow', 'LINK_INVARIANT', 'LINK_MANUAL', 'LINK_RETRY', 'LINK_REASONS',
                      'LINK_DECIDER', 'LINK_DECIDER_DEPTH'],
    'taskflow.patterns.linear_flow': ['Flow'],
    'taskflow.patterns.unordered_flow': ['Flow'],
    'taskflow.patterns.graph_flow': ['Flow', 'TargetedFlow'],
    'taskflow.deciders': ['Depth', 'pick_widest'],
    'taskflow.states': ['PENDING', 'RUNNING', 'SUCCESS', 'FAILURE', 'REVERTING', 'REVERTED',
                        'REVERT_FAILURE', 'SUSPENDING', 'SUSPENDED', 'RESUMING', 'RETRYING',
                        'IGNORE', 'SCHEDULING', 'WAITING', 'ANALYZING', 'UNCLAIMED', 'CLAIMED',
                        'COMPLETE', 'EXECUTE', 'REVERT', 'RETRY', 'INTENTIONS',
                        'check_flow_transition', 'check_task_transition',
                        'check_retry_transition', 'check_job_transition'],
    'taskflow.exceptions': ['TaskFlowException', 'StorageFailure', 'ConductorFailure',
                            'JobFailure', 'UnclaimableJob', 'ExecutionFailure', 'RequestTimeout',
                            'InvalidState', 'DependencyFailure', 'AmbiguousDependency',
                            'MissingDependencies', 'CompilationFailure', 'IncompatibleVersion',
                            'Duplicate', 'NotFound', 'Empty', 'MultipleChoices', 'InvalidFormat',
                            'DisallowedAccess', 'WrappedFailure', 'NotImplementedError',
                            'raise_with_cause'],
    'taskflow.storage': ['Storage'],
    'taskflow.engines': ['load', 'run', 'load_from_factory', 'load_from_detail',
                         'flow_from_detail', 'save_factory_details'],
    'taskflow.engines.helpers': ['load', 'run', 'load_from_factory', 'load_from_detail',
                                 'flow_from_detail', 'save_factory_details',
                                 'ENGINES_NAMESPACE', 'ENGINE_DEFAULT'],
    'taskflow.engines.base': ['Engine'],
    'taskflow.engines.action_engine.engine': ['ActionEngine', 'SerialActionEngine',
                                              'ParallelActionEngine'],
    # Not in the spec's contract, but imported by services and upstream programs.
    'taskflow.engines.action_engine.executor': [
        'TaskExecutor', 'SerialTaskExecutor', 'ParallelTaskExecutor',
        'ParallelThreadTaskExecutor', 'ParallelGreenThreadTaskExecutor',
        'SerialRetryExecutor', 'EXECUTED', 'REVERTED'],
    'taskflow.engines.action_engine.compiler': [
        'Compilation', 'PatternCompiler', 'Terminator', 'TASK', 'RETRY', 'FLOW', 'FLOW_END',
        'ATOMS', 'FLOWS', 'LINK_INVARIANT', 'LINK_RETRY'],
    'taskflow.types.failure': ['Failure'],
    'taskflow.types.notifier': ['Notifier', 'RestrictedNotifier', 'Listener',
                                'register_deregister'],
    'taskflow.types.sets': ['OrderedSet'],
    'taskflow.types.entity': ['Entity'],
    'taskflow.types.timing': ['Timeout', 'convert_to_timeout', 'StopWatch'],
    'taskflow.types.latch': ['Latch'],
    'taskflow.types.tree': ['Node'],
    'taskflow.types.graph': ['DiGraph', 'OrderedDiGraph', 'Graph'],
    'taskflow.listeners.base': ['Listener', 'DumpingListener', 'DEFAULT_LISTEN_FOR',
                                'FINISH_STATES'],
    'taskflow.listeners.printing': ['PrintingListener'],
    'taskflow.listeners.logging': ['LoggingListener', 'DynamicLoggingListener'],
    'taskflow.listeners.timing': ['DurationListener', 'PrintingDurationListener',
                                  'EventTimeListener'],
    'taskflow.listeners.capturing': ['CaptureListener'],
    'taskflow.listeners.claims': ['CheckingClaimListener'],
    'taskflow.formatters': ['FailureFormatter'],
    'taskflow.logging': ['getLogger', 'BLATHER', 'TRACE', 'CRITICAL', 'DEBUG', 'ERROR', 'FATAL',
                         'INFO', 'NOTSET', 'WARN', 'WARNING'],
    'taskflow.version': ['version_string', 'version_string_with_package'],
    'taskflow.persistence.models': ['LogBook', 'FlowDetail', 'AtomDetail', 'TaskDetail',
                                    'RetryDetail', 'atom_detail_class', 'atom_detail_type',
                                    'ATOM_TYPES'],
    'taskflow.persistence.backends': ['fetch', 'backend'],
    'taskflow.persistence.base': ['Backend', 'Connection'],
    'taskflow.persistence.backends.impl_memory': ['MemoryBackend'],
    'taskflow.persistence.backends.impl_dir': ['DirBackend'],
    'taskflow.persistence.backends.impl_sqlalchemy': ['SQLAlchemyBackend'],
    'taskflow.utils.persistence_utils': ['temporary_log_book', 'temporary_flow_detail',
                                         'create_flow_detail'],
    'taskflow.utils.threading_utils': ['daemon_thread', 'get_ident', 'get_optimal_thread_count',
                                       'is_alive', 'ThreadBundle'],
    'taskflow.utils.misc': ['as_int', 'capture_failure', 'get_hostname', 'get_version_string',
                            'parse_uri', 'clamp', 'is_iterable', 'binary_encode',
                            'binary_decode'],
    'taskflow.utils.eventlet_utils': ['EVENTLET_AVAILABLE', 'check_for_eventlet'],
    'taskflow.utils.kazoo_utils': ['make_client', 'finalize_client'],
    'taskflow.utils.redis_utils': ['is_server_new_enough'],
    'taskflow.utils.banner': ['make_banner'],
    'taskflow.tests.utils': ['wrap_all_failures', 'TaskOneArgOneReturn',
                             'TaskMultiArgOneReturn'],
    # taskflow-ng extensions.
    'taskflow.delays': ['Delay', 'none', 'fixed', 'exponential', 'uniform', 'chain'],
}


@pytest.mark.parametrize('module_name', sorted(PUBLIC))
def test_public_names_exist(module_name):
    module = importlib.import_module(module_name)
    missing = [name for name in PUBLIC[module_name] if not hasattr(module, name)]
    assert not missing, '%s lacks %s' % (module_name, missing)


def test_import_engines_alone_exposes_load():
    code = 'import taskflow.engines; print(callable(taskflow.engines.load))'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == 'True'


def test_importing_the_core_does_not_import_optional_dependencies():
    code = ('import sys, taskflow.engines, taskflow.patterns.graph_flow, taskflow.retry;'
            ' from taskflow import engines, task;'
            ' print(sorted(m for m in ("networkx", "sqlalchemy", "alembic", "kombu", "redis")'
            ' if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == '[]'


@pytest.mark.parametrize('path, signature', [
    ('taskflow.engines.helpers:load',
     "(flow, store=None, flow_detail=None, book=None, backend=None,"
     " namespace='taskflow.engines', engine='default', **kwargs)"),
    ('taskflow.engines.helpers:run',
     "(flow, store=None, flow_detail=None, book=None, backend=None,"
     " namespace='taskflow.engines', engine='default', **kwargs)"),
    ('taskflow.engines.helpers:load_from_factory',
     "(flow_factory, factory_args=None, factory_kwargs=None, store=None, book=None,"
     " backend=None, namespace='taskflow.engines', engine='default', **kwargs)"),
    ('taskflow.engines.helpers:load_from_detail',
     "(flow_detail, store=None, backend=None, namespace='taskflow.engines',"
     " engine='default', **kwargs)"),
    ('taskflow.task:Task.__init__',
     "(self, name=None, provides=None, requires=None, auto_extract=True, rebind=None,"
     " inject=None, ignore_list=None, revert_rebind=None, revert_requires=None, *,"
     " timeout=None)"),
    ('taskflow.task:FunctorTask.__init__',
     "(self, execute, name=None, provides=None, requires=None, auto_extract=True,"
     " rebind=None, revert=None, version=None, inject=None, *, timeout=None)"),
    ('taskflow.retry:Times.__init__',
     "(self, attempts=1, name=None, provides=None, requires=None, auto_extract=True,"
     " rebind=None, revert_all=False, *, delay=None)"),
    ('taskflow.retry:ForEach.__init__',
     "(self, values, name=None, provides=None, requires=None, auto_extract=True,"
     " rebind=None, revert_all=False, *, delay=None)"),
    ('taskflow.patterns.graph_flow:Flow.add',
     "(self, *nodes, resolve_requires=True, resolve_existing=True)"),
    ('taskflow.patterns.graph_flow:Flow.link',
     "(self, u, v, decider=None, decider_depth=None)"),
])
def test_signatures_match_the_original(path, signature):
    module_name, _, attr = path.partition(':')
    target = importlib.import_module(module_name)
    for part in attr.split('.'):
        target = getattr(target, part)
    text = str(inspect.signature(target))
    # Annotations are ours; compare names, order, kinds and defaults only.
    params = inspect.signature(target).parameters.values()
    plain = inspect.Signature([p.replace(annotation=inspect.Parameter.empty) for p in params])
    assert str(plain) == signature, text
