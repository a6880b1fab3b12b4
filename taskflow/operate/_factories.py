"""Rebuilding a stored flow, and importing ``MODULE:FACTORY`` references.

A flow started with ``engines.load_from_factory`` records its factory's
importable name in ``meta['factory']``; resuming or acting on it rebuilds the
flow from there.  ``taskflow run path/to/file.py:make_flow`` also records the
file's directory (``meta['factory_path']``) so later commands find the module
from any working directory.  A factory that cannot be imported (e.g. one
defined in a script's ``__main__``) can be given explicitly instead.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from taskflow.engines import helpers
from taskflow.operate import _errors
from taskflow.persistence import models

#: Flow meta key: the directory to put on ``sys.path`` to import the factory.
META_FACTORY_PATH = 'factory_path'


def _add_path(path: str) -> None:
    if path and path not in sys.path:
        sys.path.insert(0, path)


def import_factory(reference: str) -> tuple[Callable[..., Any], str | None]:
    """``(factory, directory added to sys.path or None)`` for ``MODULE:ATTR``.

    ``MODULE`` is a dotted module name (found from the working directory
    too) or a path to a ``.py`` file, imported under its file name so the
    factory can be found by name again.
    """
    module_ref, sep, attr = reference.rpartition(':')
    if not sep or not module_ref or not attr:
        raise _errors.OperatorError('expected MODULE:FACTORY (e.g. orders.flows:make_flow'
                                    ' or path/to/flows.py:make_flow), got %r' % reference)
    added = None
    if module_ref.endswith('.py') or os.sep in module_ref:
        path = os.path.abspath(module_ref)
        if not os.path.isfile(path):
            raise _errors.OperatorError('no such file: %s' % module_ref)
        added = os.path.dirname(path)
        module_name = os.path.splitext(os.path.basename(path))[0]
    else:
        added = os.getcwd()
        module_name = module_ref
    _add_path(added)
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise _errors.OperatorError('cannot import %s: %s: %s'
                                    % (module_name, type(error).__name__, error)) from error
    target: Any = module
    for part in attr.split('.'):
        target = getattr(target, part, None)
        if target is None:
            raise _errors.OperatorError('%s has no %r' % (module_name, attr))
    if not callable(target):
        raise _errors.OperatorError('%s:%s is not callable' % (module_name, attr))
    return target, added


def rebuild_flow(flow_detail: models.FlowDetail, factory: str | Callable | None = None) -> Any:
    """The flow of ``flow_detail``, built by ``factory`` or by the recorded one."""
    if factory is not None:
        if isinstance(factory, str):
            factory, _added = import_factory(factory)
        data = flow_detail.meta.get('factory') or {}
        try:
            return factory(*data.get('args', ()), **data.get('kwargs', {}))
        except Exception as error:
            raise _errors.OperatorError('factory %r failed to build flow %r: %s: %s'
                                        % (factory, flow_detail.name, type(error).__name__,
                                           error)) from error
    _add_path(flow_detail.meta.get(META_FACTORY_PATH) or '')
    try:
        return helpers.flow_from_detail(flow_detail)
    except Exception as error:
        recorded = (flow_detail.meta.get('factory') or {}).get('name')
        if not recorded:
            reason = 'no factory was recorded (the flow was not loaded from a factory)'
        elif recorded.startswith('__main__.'):
            reason = 'it was defined in the script that ran the flow (__main__)'
        else:
            cause = error.__cause__ or error
            reason = '%s: %s' % (type(cause).__name__,
                                 str(cause).split(' ([', 1)[0].strip().splitlines()[0]
                                 if str(cause).strip() else '')
        raise _errors.OperatorError(
            'cannot rebuild flow %r (%s) from its factory %s: %s; pass the factory'
            ' (--factory MODULE:FACTORY)' % (flow_detail.name, flow_detail.uuid,
                                             recorded or '-', reason)) from error
