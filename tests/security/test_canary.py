"""The canary: a secret under masked keys never shows up anywhere.

Flows whose inputs, results and failures carry a unique canary under
project-wide masked keys run with every listener attached, the engine's and
SQLAlchemy's logging on at every level (TRACE, SQL echo), and a real SQL
database whose trigger refuses one result (so a database error, whose text
would normally quote the statement's parameters, goes through the engine).
Then everything is searched for the canary: what was printed (file
descriptors 1 and 2), every log record formatted, what listeners captured,
the failures stored in the database (read back by a fresh backend, and as
raw column text), the failure formatter's text and every error ``run()``
raised that taskflow made.

The one thing not searched is a task's own exception object, which
``run()`` re-raises as it was raised (identity is checked instead):
taskflow never changes user objects, only the text it makes from them.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import taskflow.engines
from taskflow import formatters
from taskflow import retry
from taskflow import secrets
from taskflow import task
from taskflow.listeners import base
from taskflow.listeners import capturing
from taskflow.listeners import claims
from taskflow.listeners import logging as logging_listeners
from taskflow.listeners import printing
from taskflow.listeners import timing
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from taskflow.persistence import backends
from taskflow.persistence import models
from tests import _services
from tests.security.conftest import formatted

Creds = collections.namedtuple('Creds', 'user password')

#: What a test's canaries start with; each test makes its own, unique ones.
PREFIX = 'canary'

# Exceptions raised by tasks, so raised errors can be told apart from the
# ones taskflow makes.
TASK_EXCEPTIONS: list[BaseException] = []


class LoginRejected(Exception):
    pass


class RevertRefused(Exception):
    pass


class Login(task.Task):
    """Succeeds; its result carries secrets in every kind of container."""

    default_provides = 'session'

    def execute(self, password, config, user):
        return {'user': user, 'api_token': config['db']['api_token'] + '-session',
                'pair': ('x', {'password': password}), 'creds': Creds(user, password),
                'both': [config], 'tokens': frozenset([('api_token', 'n/a')])}


class Reject(task.Task):
    """Fails, quoting its secret inputs in the message, args and a cause."""

    def execute(self, password, session):
        try:
            raise KeyError({'api_token': session['api_token']})
        except KeyError as e:
            error = LoginRejected('rejected %s for %s' % (password, session['api_token']))
            error.config = {'password': password}
            TASK_EXCEPTIONS.append(error)
            raise error from e


class BadRevert(task.Task):
    """Succeeds, then fails to revert, quoting its secret."""

    def execute(self, password):
        return None

    def revert(self, password, **kwargs):
        error = RevertRefused('could not undo login of %s' % password)
        TASK_EXCEPTIONS.append(error)
        raise error


class Poison(task.Task):
    """Returns a result the database refuses to store (see the triggers)."""

    def execute(self, password):
        return {'password': password, 'note': REFUSE_MARK}


def linear_failure():
    return lf.Flow('linear').add(Login('login'), Reject('reject'))


def parallel_failures():
    # Two failures in one pass: run() raises a WrappedFailure taskflow made.
    return lf.Flow('outer').add(Login('login'),
                                uf.Flow('both').add(Reject('reject-1'), Reject('reject-2')))


def retried_failure():
    # The retry's history stores every attempt's failure.
    return lf.Flow('retried', retry=retry.Times(2, 'retry-login')).add(
        Login('login'), Reject('reject'))


def revert_failure():
    return lf.Flow('revert-failure').add(Login('login'), BadRevert('bad-revert'),
                                         Reject('reject'))


def poisoned():
    return lf.Flow('poisoned').add(Login('login'), Poison('poison'))


FLOWS = [linear_failure, parallel_failures, retried_failure, revert_failure, poisoned]


# -- the SQL database -------------------------------------------------------------

#: Results holding this are refused by the database (not a secret: the SQL
#: creating the triggers is echoed too).
REFUSE_MARK = 'refuse-me'

TRIGGERS = {
    'sqlite': ["""
        CREATE TRIGGER tf_refuse BEFORE UPDATE ON atomdetails
        WHEN NEW.name = 'poison' AND instr(NEW.results, 'refuse-me') > 0
        BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"""],
    'postgresql': ["""
        CREATE FUNCTION tf_refuse() RETURNS trigger AS $$
        BEGIN
          IF NEW.name = 'poison' AND position('refuse-me' in NEW.results::text) > 0 THEN
            RAISE EXCEPTION 'refused by trigger';
          END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql""", """
        CREATE TRIGGER tf_refuse BEFORE UPDATE ON atomdetails
        FOR EACH ROW EXECUTE FUNCTION tf_refuse()"""],
    'mysql': ["""
        CREATE TRIGGER tf_refuse BEFORE UPDATE ON atomdetails FOR EACH ROW
        BEGIN
          IF NEW.name = 'poison' AND LOCATE('refuse-me', NEW.results) > 0 THEN
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by trigger';
          END IF;
        END"""],
}


@contextlib.contextmanager
def sql_backend(kind: str, tmp_path) -> Iterator[object]:
    """A real SQL backend, SQL echo on, refusing to store ``poison``'s secret."""
    if kind == 'sqlite':
        url = 'sqlite:///%s' % (tmp_path / 'canary.db')
    else:
        url = _services.scratch_database(kind)
    backend = backends.fetch({'connection': url, 'echo': True})
    try:
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
        with backend.engine.begin() as conn:
            for statement in TRIGGERS[kind]:
                conn.exec_driver_sql(statement)
        yield backend
    finally:
        backend.close()
        if kind != 'sqlite':
            _services.drop_scratch_database(url)


def stored_failure_texts(backend, book_uuid: str) -> list[str]:
    """Every failure stored for the book, read back by a fresh backend, as text."""
    texts = []
    fresh = backends.fetch(dict(backend._conf))
    try:
        with contextlib.closing(fresh.get_connection()) as conn:
            book = conn.get_logbook(book_uuid)
            for flow_detail in book:
                for atom_detail in flow_detail:
                    found = [atom_detail.failure, atom_detail.revert_failure]
                    if isinstance(atom_detail, models.RetryDetail):
                        for _value, failures in atom_detail.results:
                            found.extend(failures.values())
                    for fail in found:
                        if fail is not None:
                            texts += [fail.pformat(traceback=True),
                                      json.dumps(fail.to_dict(), default=repr)]
        # The raw column text, as any other tool reading the database sees it.
        with fresh.engine.connect() as conn:
            for row in conn.execute(sa.text(
                    'SELECT name, failure, revert_failure, results, atom_type'
                    ' FROM atomdetails')):
                texts += [str(row.failure), str(row.revert_failure)]
                if row.atom_type == 'RETRY':
                    texts.append(str(row.results))
    finally:
        fresh.close()
    return texts


# -- listeners ------------------------------------------------------------------

class FormatEveryFailure(base.Listener):
    """Runs the failure formatter (no keys of its own) on every task failure."""

    def __init__(self, engine):
        super().__init__(engine, task_listen_for=['FAILURE', 'REVERT_FAILURE'],
                         flow_listen_for=[], retry_listen_for=[])
        self.texts: list[str] = []

    def _task_receiver(self, state, details):
        name = details['task_name']
        _exc_info, text = formatters.FailureFormatter(self._engine).format(
            details['result'], lambda node: node.item.name == name)
        self.texts.append(text)


class StillClaimed:
    """A jobboard (and its job) on which the job stays claimed by 'me'."""

    state = 'CLAIMED'

    def find_owner(self, job):
        return 'me'


def broken_callback(state, details):
    # The notifier logs the event's details when a callback fails.
    raise RuntimeError('callback broke')


def every_listener(engine, app_log):
    return [
        printing.PrintingListener(engine),
        printing.PrintingListener(engine, stderr=True),
        logging_listeners.LoggingListener(engine, level=5),
        logging_listeners.LoggingListener(engine, log=app_log, level=logging.INFO),
        logging_listeners.DynamicLoggingListener(engine),
        logging_listeners.DynamicLoggingListener(engine, log=app_log, level=logging.INFO),
        capturing.CaptureListener(engine),
        timing.DurationListener(engine),
        timing.PrintingDurationListener(engine),
        timing.EventTimeListener(engine),
        claims.CheckingClaimListener(engine, StillClaimed(), StillClaimed(), 'me'),
        FormatEveryFailure(engine),
    ]


def run_with_everything(flow, store, kind, backend, book):
    """Run ``flow`` with every listener; return (texts to search, raised errors)."""
    engine = taskflow.engines.load(flow, store=store, engine=kind, backend=backend, book=book)
    engine.atom_notifier.register('SUCCESS', broken_callback)
    app_log = logging.getLogger('app.audit.%s' % uuid.uuid4().hex)
    listeners = every_listener(engine, app_log)
    raised = []
    with contextlib.ExitStack() as stack:
        for listener in listeners:
            stack.enter_context(listener)
        try:
            engine.run()
        except Exception as e:
            raised.append(e)
    texts = []
    for listener in listeners:
        if isinstance(listener, capturing.CaptureListener):
            texts += [repr(value) for value in listener.values]
            texts += [str(value[2].get('result')) for value in listener.values]
        elif isinstance(listener, FormatEveryFailure):
            texts += listener.texts
    for fail in list(engine.storage.get_execute_failures().values()) + list(
            engine.storage.get_revert_failures().values()):
        texts.append(fail.pformat(traceback=True))
    return texts, raised


def canaries(prefix):
    return {
        'password': '%s-password' % prefix,
        'api_token': '%s-token' % prefix,
        'user': 'bob',
    }


@pytest.mark.parametrize('kind, database', [
    ('serial', 'sqlite'),
    ('parallel', 'sqlite'),
    pytest.param('serial', 'postgresql', marks=pytest.mark.postgresql),
    pytest.param('parallel', 'mysql', marks=pytest.mark.mysql),
])
def test_canary_never_shows(kind, database, tmp_path, capfd, everything_logged):
    prefix = '%s-%s' % (PREFIX, uuid.uuid4().hex)
    secrets.mask_keys('password', 'api_token')
    values = canaries(prefix)
    store = {'password': values['password'], 'user': values['user'],
             'config': {'db': {'api_token': values['api_token'], 'host': 'db.local'}}}
    del TASK_EXCEPTIONS[:]
    searched: list[tuple[str, str]] = []
    raised_by_taskflow: list[BaseException] = []
    with sql_backend(database, tmp_path) as backend:
        book = models.LogBook('canary-book')
        for make_flow in FLOWS:
            texts, raised = run_with_everything(make_flow(), store, kind, backend, book)
            searched += [(make_flow.__name__, text) for text in texts]
            assert raised, '%s did not fail' % make_flow.__name__
            for error in raised:
                if any(error is own for own in TASK_EXCEPTIONS):
                    continue
                raised_by_taskflow.append(error)
                searched.append(('raised by ' + make_flow.__name__, str(error)))
                if isinstance(error, taskflow.exceptions.WrappedFailure):
                    searched += [('wrapped', f.pformat(traceback=True)) for f in error]
        searched += [('stored', text) for text in stored_failure_texts(backend, book.uuid)]
    out, err = capfd.readouterr()
    logged = formatted(everything_logged)
    searched += [('stdout', out), ('stderr', err), ('logs', logged)]

    leaks = [(where, text) for where, text in searched if prefix in text]
    assert not leaks, 'canary leaked:\n' + '\n---\n'.join(
        '%s: %s' % (where, text[max(0, text.find(prefix) - 300):text.find(prefix) + 100])
        for where, text in leaks[:5])

    # Everything that was meant to be exercised was: listeners printed and
    # logged, masks show, the database refused a write and said so, SQL was
    # echoed, and errors were both re-raised (the tasks' own) and made.
    assert out.count('has moved task') > 10 and err.count('has moved task') > 10
    assert "with result '{'user': 'bob', 'api_token': '***'" in out
    assert 'Failure: %s.LoginRejected: rejected *** for ***' % __name__ in out
    assert 'transitioned into state' in logged and 'predecessors' in logged
    assert 'It took task' in out and 'started.' in out
    assert 'Failure calling listener' in logged
    assert any(r.name.startswith('sqlalchemy.engine') for r in everything_logged)
    assert 'refused by trigger' in '\n'.join(text for _where, text in searched)
    assert '[SQL parameters hidden due to hide_parameters=True]' in logged + out + err
    assert TASK_EXCEPTIONS and raised_by_taskflow
    stored = [text for where, text in searched if where == 'stored']
    assert any('LoginRejected' in text and '***' in text for text in stored)
    assert any('RevertRefused' in text for text in stored)


def test_listener_keys_protect_that_listeners_output(tmp_path, capfd):
    """Keys given to one listener (not project-wide) hide values in its output."""
    prefix = '%s-%s' % (PREFIX, uuid.uuid4().hex)
    store = {'db_password': prefix + '-input', 'user': 'bob'}

    class Connect(task.Task):
        def execute(self, db_password, user):
            return {'session_key': prefix + '-output', 'user': user,
                    'nested': ({'session_key': prefix + '-nested'},)}

    class Query(task.Task):
        def execute(self, db_password, connect):
            raise LoginRejected('cannot query with %s' % db_password)

    flow = lf.Flow('f').add(Connect('connect', provides='connect'), Query('query'))
    engine = taskflow.engines.load(flow, store=store)
    log = logging.getLogger('app.local.%s' % uuid.uuid4().hex)
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    log.addHandler(Keep())
    log.setLevel(logging.DEBUG)
    log.propagate = False
    formatted_failures = []

    class FormatWithKeys(base.Listener):
        def _task_receiver(self, state, details):
            if state == 'FAILURE':
                formatter = formatters.FailureFormatter(
                    engine, mask_inputs_keys=['db_password'], mask_outputs_keys=['session_key'])
                formatted_failures.append(formatter.format(
                    details['result'], lambda node: node.item.name == 'query')[1])

    with logging_listeners.DynamicLoggingListener(
            engine, log=log, mask_inputs_keys=['db_password'],
            mask_outputs_keys=['session_key']), FormatWithKeys(engine):
        with pytest.raises(LoginRejected):
            engine.run()
    text = formatted(records) + '\n'.join(formatted_failures)
    assert prefix not in text
    assert "'session_key': '***'" in text and "'db_password': '***'" in text
    assert 'LoginRejected: cannot query with ***' in text
    assert 'predecessors' in formatted_failures[0]
