"""taskflow.logging: levels, the trace adapter, and which warnings reach stderr."""

import logging
import subprocess
import sys

from taskflow import logging as tf_logging


def test_level_constants():
    assert tf_logging.TRACE == tf_logging.BLATHER == 5
    for name in ('CRITICAL', 'DEBUG', 'ERROR', 'FATAL', 'INFO', 'NOTSET',
                 'WARN', 'WARNING'):
        assert getattr(tf_logging, name) == getattr(logging, name)
    # The reference does not register a name for level 5.
    assert logging.getLevelName(5) == 'Level 5'


def test_get_logger_defaults_and_extra():
    log = tf_logging.getLogger()
    assert isinstance(log, logging.LoggerAdapter)
    assert log.logger is logging.getLogger('taskflow')
    assert log.extra is None
    other = tf_logging.getLogger('foo.bar', extra={'a': 1})
    assert other.logger.name == 'foo.bar' and other.extra == {'a': 1}


def test_null_handler_added_only_when_missing():
    name = 'taskflow.tests.logging_null_handler'
    logger = logging.getLogger(name)
    assert logger.handlers == []
    tf_logging.getLogger(name)
    tf_logging.getLogger(name)
    assert [type(h) for h in logger.handlers] == [logging.NullHandler]
    configured = logging.getLogger(name + '.configured')
    handler = logging.StreamHandler()
    configured.addHandler(handler)
    tf_logging.getLogger(configured.name)
    assert configured.handlers == [handler]


def test_trace_and_warn(caplog):
    log = tf_logging.getLogger('taskflow.tests.trace')
    with caplog.at_level(tf_logging.TRACE, logger='taskflow.tests.trace'):
        log.trace('hello %s', 1)
        log.warn('warned %s', 2)
        log.debug('dbg')
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (5, 'hello 1'), (logging.WARNING, 'warned 2'), (logging.DEBUG, 'dbg')]


def test_trace_is_filtered_below_level(caplog):
    log = tf_logging.getLogger('taskflow.tests.filtered')
    with caplog.at_level(logging.DEBUG, logger='taskflow.tests.filtered'):
        log.trace('hidden')
    assert caplog.records == []


def _unconfigured(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that configures no logging."""
    return subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, check=True, timeout=120)


def test_importing_taskflow_installs_no_handler():
    result = _unconfigured(
        "import logging, taskflow, taskflow.engines, taskflow.listeners.logging\n"
        "print(logging.getLogger('taskflow').handlers)\n")
    assert result.stdout == '[]\n'


def test_unconfigured_program_sees_a_raising_callback_on_stderr():
    # As the original: the notifier logs through a plain logger, so Python's
    # last-resort handler prints the warning (with its traceback).
    result = _unconfigured(
        "from taskflow.types import notifier\n"
        "n = notifier.Notifier()\n"
        "def bad(e, details): raise RuntimeError('boom')\n"
        "n.register('e', bad)\n"
        "n.notify('e', {})\n"
        "print('still running')\n")
    assert result.stdout == 'still running\n'
    assert result.stderr.startswith("Failure calling listener <Listener object at ")
    assert "to notify about event e, details: {}" in result.stderr
    assert result.stderr.rstrip().endswith('RuntimeError: boom')


def test_unconfigured_program_does_not_see_quiet_library_warnings():
    # Tasks log through taskflow.logging (a NullHandler): a clamped progress
    # value is not printed, as with the original.
    result = _unconfigured(
        "from taskflow import task\n"
        "class T(task.Task):\n"
        "    def execute(self): pass\n"
        "T('t').update_progress(7)\n"
        "print('done')\n")
    assert (result.stdout, result.stderr) == ('done\n', '')


def test_basic_config_shows_trace_records():
    code = ("import logging, sys\n"
            "from taskflow import logging as l\n"
            "logging.basicConfig(level=l.TRACE, stream=sys.stdout,"
            " format='%(name)s %(levelname)s %(message)s')\n"
            "l.getLogger('taskflow.y').trace('t %s', 1)\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                            text=True, check=True)
    assert result.stdout == 'taskflow.y Level 5 t 1\n'
