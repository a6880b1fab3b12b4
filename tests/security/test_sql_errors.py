"""Database errors never carry SQL parameters into logs, raised or stored errors.

SQLAlchemy writes a statement's parameters into the text of its errors (and
into its echo log) unless the engine is made with ``hide_parameters=True``;
the parameters of taskflow's statements are the stored values: results,
arguments, failures.  These tests need no masked keys at all: whatever a
task returns must not be quoted back by a database error.  A trigger makes
the database refuse one write, as a real server refuses a value too long, a
constraint or a full disk.
"""

from __future__ import annotations

import contextlib
import uuid

import pytest

import taskflow.engines
from taskflow import exceptions as exc
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.persistence import backends
from taskflow.persistence import models
from tests import _services
from tests.security.conftest import formatted
from tests.security.test_canary import TRIGGERS

HIDDEN = '[SQL parameters hidden due to hide_parameters=True]'

KINDS = [
    pytest.param('sqlite', id='sqlite'),
    pytest.param('postgresql', id='postgresql', marks=pytest.mark.postgresql),
    pytest.param('mysql', id='mysql', marks=pytest.mark.mysql),
]


class Poison(task.Task):
    """Returns a value (no masked key anywhere) the database refuses."""

    def __init__(self, value):
        super().__init__('poison')
        self.value = value

    def execute(self):
        return {'anything': self.value, 'note': 'refuse-me'}


@contextlib.contextmanager
def refusing_backend(kind, tmp_path, **conf):
    if kind == 'sqlite':
        url = 'sqlite:///%s' % (tmp_path / 'refusing.db')
    else:
        url = _services.scratch_database(kind)
    backend = backends.fetch(dict(conf, connection=url))
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


def refused_write(backend, value):
    """Save an atom detail whose result the trigger refuses; return the error."""
    book = models.LogBook('b')
    flow_detail = models.FlowDetail('f', str(uuid.uuid4()))
    atom_detail = models.TaskDetail('poison', str(uuid.uuid4()))
    flow_detail.add(atom_detail)
    book.add(flow_detail)
    with contextlib.closing(backend.get_connection()) as conn:
        conn.save_logbook(book)
        atom_detail.put('SUCCESS', {'anything': value, 'note': 'refuse-me'})
        with pytest.raises(exc.StorageFailure) as raised:
            conn.update_atom_details(atom_detail)
    return raised.value


@pytest.mark.parametrize('kind', KINDS)
def test_storage_failure_text_has_no_parameters(kind, tmp_path):
    value = 'value-%s' % uuid.uuid4().hex
    with refusing_backend(kind, tmp_path) as backend:
        error = refused_write(backend, value)
    text = str(error)
    assert 'refused by trigger' in text
    assert HIDDEN in text
    assert value not in text and value not in repr(error.cause)


@pytest.mark.parametrize('kind', KINDS)
def test_a_refused_result_is_not_quoted_by_logs_raised_or_stored_errors(
        kind, tmp_path, capfd, everything_logged):
    value = 'value-%s' % uuid.uuid4().hex
    texts = []
    with refusing_backend(kind, tmp_path, echo=True) as backend:
        book = models.LogBook('b')
        engine = taskflow.engines.load(lf.Flow('f').add(Poison(value)), backend=backend,
                                       book=book)
        with pytest.raises(Exception) as raised:
            engine.run()
        texts.append(str(raised.value))
        with contextlib.closing(backend.get_connection()) as conn:
            for flow_detail in conn.get_logbook(book.uuid):
                for atom_detail in flow_detail:
                    for fail in (atom_detail.failure, atom_detail.revert_failure):
                        if fail is not None:
                            texts.append(fail.pformat(traceback=True))
                            texts.append(repr(fail.to_dict()))
    out, err = capfd.readouterr()
    texts += [out, err, formatted(everything_logged)]
    everything = '\n'.join(texts)
    assert 'refused by trigger' in everything
    assert HIDDEN in everything
    assert value not in everything


def test_parameters_can_be_shown_again_on_request(tmp_path):
    # An explicit engine argument still wins (e.g. while debugging locally).
    value = 'value-%s' % uuid.uuid4().hex
    with refusing_backend('sqlite', tmp_path,
                          engine_args={'hide_parameters': False}) as backend:
        error = refused_write(backend, value)
    assert value in str(error)


def test_sql_echo_hides_parameters(tmp_path, everything_logged):
    value = 'value-%s' % uuid.uuid4().hex
    backend = backends.fetch({'connection': 'sqlite:///%s' % (tmp_path / 'echo.db'),
                              'echo': True})
    try:
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
            conn.save_logbook(models.LogBook(value))
    finally:
        backend.close()
    logged = formatted(everything_logged)
    assert 'INSERT INTO logbooks' in logged and HIDDEN in logged
    assert value not in logged
