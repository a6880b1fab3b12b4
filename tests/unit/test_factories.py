"""Flow factories: what is saved, how flows are rebuilt, and import errors."""

from __future__ import annotations

import functools

import pytest

import taskflow.engines
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.persistence import backends
from taskflow.persistence import models


class Add(task.Task):
    def execute(self, x, y):
        return x + y


def make_flow(name, *, y_name='y'):
    return lf.Flow(name).add(Add('add', provides='sum', rebind={'y': y_name}))


def test_a_factory_flow_is_saved_and_rebuilt_from_its_detail():
    backend = backends.fetch('memory://')
    book = models.LogBook('book')
    engine = taskflow.engines.load_from_factory(
        make_flow, factory_args=['adder'], factory_kwargs={'y_name': 'z'},
        store={'x': 1, 'z': 2}, book=book, backend=backend)
    detail, = book
    assert detail.meta['factory'] == {'name': __name__ + '.make_flow', 'args': ['adder'],
                                      'kwargs': {'y_name': 'z'}}
    engine.run()
    rebuilt = taskflow.engines.flow_from_detail(detail)
    assert rebuilt.name == 'adder'
    again = taskflow.engines.load_from_detail(detail, backend=backend)
    again.run()
    assert again.storage.fetch('sum') == 3


@pytest.mark.parametrize('factory, reason', [
    ('nosuch.module.func', "No module named 'nosuch'"),
    ('nodots', 'Empty module name'),
    ('os.path.nope', 'Class nope cannot be found ('),
])
def test_factory_names_that_do_not_import_say_why(factory, reason):
    with pytest.raises(ImportError) as info:
        taskflow.engines.load_from_factory(factory)
    assert str(info.value).startswith("Could not import factory '%s': %s" % (factory, reason))


@pytest.mark.parametrize('factory', [lambda: make_flow('local'),
                                     functools.partial(make_flow, 'partial')])
def test_a_factory_that_cannot_be_reimported_is_refused(factory):
    with pytest.raises(ValueError, match='is not reimportable'):
        taskflow.engines.load_from_factory(factory)
