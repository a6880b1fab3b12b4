"""Operator controls and read models for stored flows (used by the CLI and the web view).

Look at flows::

    from taskflow import operate
    backend = operate.open_backend('sqlite:///orders.db')
    ref = operate.find_flow(backend, 'fulfil-order')        # uuid, prefix or name
    view = operate.describe(ref.flow, ref.book)              # states, results (masked), failures

Steer them (each action holds the flow's lease, is refused with a clear
error when the flow runs elsewhere or the action makes no sense, and is
recorded with who/when/why in ``flow_detail.meta['operator_actions']``)::

    operate.retry(backend, ref.flow.uuid, why='gateway is back', run=True)
    operate.skip(backend, uuid, 'charge-card', result='PAY-BY-HAND', why='paid by phone')
    operate.resume(backend, uuid, revert=False)   # go forward, never revert
    operate.revert(backend, uuid, run=True)       # undo a suspended flow

See ``docs/operate.md`` for what each action changes and how a crash in the
middle of one is handled.

Modules: ``_store`` (backends, finding flows), ``_plans`` (what actions
change; pure), ``_apply`` (storing it all-or-nothing), ``_lease`` (who may
change a flow), ``_actions`` (the actions), ``_views`` (read models),
``_graph`` (dot/mermaid/svg), ``_factories`` (rebuilding flows), ``_launch``
(starting flows).
"""

from __future__ import annotations

from taskflow.operate._actions import NOTHING as NOTHING
from taskflow.operate._actions import ActionResult as ActionResult
from taskflow.operate._actions import history as history
from taskflow.operate._actions import resume as resume
from taskflow.operate._actions import retry as retry
from taskflow.operate._actions import revert as revert
from taskflow.operate._actions import run_flow as run_flow
from taskflow.operate._actions import skip as skip
from taskflow.operate._apply import META_HISTORY as META_HISTORY
from taskflow.operate._errors import ActionRefused as ActionRefused
from taskflow.operate._errors import FlowBusy as FlowBusy
from taskflow.operate._errors import FlowNotFound as FlowNotFound
from taskflow.operate._errors import OperatorError as OperatorError
from taskflow.operate._factories import import_factory as import_factory
from taskflow.operate._factories import rebuild_flow as rebuild_flow
from taskflow.operate._launch import parse_store as parse_store
from taskflow.operate._launch import start as start
from taskflow.operate._lease import may_be_running as may_be_running
from taskflow.operate._store import FlowRef as FlowRef
from taskflow.operate._store import default_backend_url as default_backend_url
from taskflow.operate._store import find_flow as find_flow
from taskflow.operate._store import iter_flows as iter_flows
from taskflow.operate._store import list_books as list_books
from taskflow.operate._store import main_job_database as main_job_database
from taskflow.operate._store import mask_url as mask_url
from taskflow.operate._store import open_backend as open_backend
from taskflow.operate._views import AtomView as AtomView
from taskflow.operate._views import FlowView as FlowView
from taskflow.operate._views import describe as describe
from taskflow.operate._views import describe_book as describe_book

__all__ = ['NOTHING', 'ActionResult', 'history', 'resume', 'retry', 'revert', 'run_flow',
           'skip', 'META_HISTORY', 'ActionRefused', 'FlowBusy', 'FlowNotFound',
           'OperatorError', 'import_factory', 'rebuild_flow', 'parse_store', 'start',
           'may_be_running', 'FlowRef', 'default_backend_url', 'find_flow', 'iter_flows',
           'list_books', 'main_job_database', 'mask_url', 'open_backend', 'AtomView',
           'FlowView', 'describe', 'describe_book']
