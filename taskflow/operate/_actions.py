"""The operator controls: retry, skip, resume (with or without reverting), revert.

Each action:

1. finds the flow and rebuilds it (to know its structure);
2. takes the flow's lease (refused with :class:`FlowBusy` when someone else
   runs it), reloads the flow detail and finishes any action a crash
   interrupted;
3. plans the change (``_plans``; :class:`ActionRefused` when it makes no
   sense for the flow's state) and stores it with a record of who, when and
   why (``_apply``: all or nothing);
4. optionally runs the flow (``run=True``): a normal resume then runs only
   what the action left to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from taskflow import engines
from taskflow.engines.action_engine import _compile
from taskflow.listeners import timing
from taskflow.operate import _apply
from taskflow.operate import _errors
from taskflow.operate import _factories
from taskflow.operate import _lease
from taskflow.operate import _plans
from taskflow.operate import _store
from taskflow.persistence import models

#: ``skip()`` without a result records the task as IGNORE.
NOTHING = object()

ListenerFactory = Callable[[Any], Any]   # engine -> a listener (a context manager)


class ActionResult(NamedTuple):
    """What an action did (and, when it ran the flow, how the run ended)."""

    flow_uuid: str
    flow_name: str
    action: str
    record: dict[str, Any]           # the entry added to meta['operator_actions']
    state: str                       # flow state after the action (after the run, if any)
    ran: bool = False
    error: str | None = None         # why the run failed (one line), if it did


def _backend(backend: Any) -> Any:
    if backend is None or isinstance(backend, str):
        return _store.open_backend(backend)
    return backend


def _flow_detail(backend: Any, flow: Any) -> models.FlowDetail:
    uuid = flow.uuid if isinstance(flow, models.FlowDetail) else None
    if uuid is None:
        uuid = _store.find_flow(backend, str(flow)).flow.uuid
    return _store.load_flow_detail(backend, uuid)


def _act(backend: Any, flow: Any, planner: Callable[[models.FlowDetail, Any], _plans.Plan],
         who: str | None, why: str | None, force: bool,
         factory: str | Callable | None, action: str) -> tuple[Any, models.FlowDetail, dict]:
    """Steps 1-3 of every action; returns ``(flow, stored flow detail, record)``."""
    flow_detail = _flow_detail(backend, flow)
    # Early, for a clearer refusal (checked again under the lease).
    _plans.check_accepts(action, _apply.effective(flow_detail))
    flow_obj = _factories.rebuild_flow(flow_detail, factory)
    try:
        compilation = _compile.Compilation(flow_obj)
    except Exception as error:
        raise _errors.OperatorError('cannot compile flow %r: %s' % (flow_detail.name, error)
                                    ) from error
    who = who or _lease.default_operator()
    with _lease.holding(backend, flow_detail, owner=_lease.owner_name(who),
                        force=force) as lease:
        # Under the lease: what we plan from is what nobody else will change.
        flow_detail = _apply.recover(backend, _store.load_flow_detail(backend,
                                                                      flow_detail.uuid),
                                     lease)
        plan = planner(flow_detail, compilation)
        record = _apply.make_record(plan, who, why or None)
        _apply.commit(backend, flow_detail, plan, record, lease)
    return flow_obj, flow_detail, record


def _finish(backend: Any, flow_obj: Any, flow_detail: models.FlowDetail, record: dict,
            run: bool, engine: str | None, listeners: Iterable[ListenerFactory],
            never_resolve: bool = False) -> ActionResult:
    if not run:
        return ActionResult(flow_detail.uuid, flow_detail.name, record['action'], record,
                            flow_detail.state or 'PENDING')
    state, error = run_flow(backend, flow_detail.uuid, flow_obj=flow_obj, engine=engine,
                            listeners=listeners, never_resolve=never_resolve,
                            owner=_lease.owner_name(record['who']))
    return ActionResult(flow_detail.uuid, flow_detail.name, record['action'], record, state,
                        ran=True, error=error)


def retry(backend: Any, flow: Any, *, who: str | None = None, why: str | None = None,
          force: bool = False, factory: str | Callable | None = None, run: bool = False,
          engine: str | None = None, listeners: Iterable[ListenerFactory] = ()
          ) -> ActionResult:
    """Retry a ``FAILURE``/``REVERTED``/``SUSPENDED`` flow from the atom(s) that failed.

    What failed, was reverted or was interrupted runs again (with fresh
    attempts for the retry controllers in charge of it); what succeeded is
    kept and not run again.  The flow is left ``SUSPENDED``: resume it (or
    pass ``run=True``).

    :param backend: a backend, or a URL (see :func:`open_backend`).
    :param flow: a flow uuid, unique uuid prefix or name, or a ``FlowDetail``.
    :param who: recorded as the operator (default ``user@host``).
    :param why: recorded reason.
    :param force: act on a flow stored as running when no lease says whether
        it is (only without lease support: its process is known to be gone).
    :param factory: builds the flow when its recorded factory cannot
        (a callable or ``'module:attr'``).
    :raises FlowNotFound, FlowBusy, ActionRefused: nothing was changed.
    """
    backend = _backend(backend)
    flow_obj, fd, record = _act(backend, flow, _plans.plan_retry, who, why, force, factory,
                                  'retry')
    return _finish(backend, flow_obj, fd, record, run, engine, listeners)


def skip(backend: Any, flow: Any, atom: str, result: Any = NOTHING, *,
         who: str | None = None, why: str | None = None, force: bool = False,
         factory: str | Callable | None = None, run: bool = False,
         engine: str | None = None, listeners: Iterable[ListenerFactory] = ()
         ) -> ActionResult:
    """Record task ``atom`` as skipped and let the flow carry on past it.

    Without ``result`` the task is stored ``IGNORE`` (refused when a later
    atom needs its result); with one it is stored ``SUCCESS`` with that
    result, which later atoms then receive.  Other failed or reverted atoms
    run again, as with :func:`retry`.  Same parameters as :func:`retry`.
    """
    backend = _backend(backend)

    def planner(flow_detail: models.FlowDetail, compilation: Any) -> _plans.Plan:
        return _plans.plan_skip(flow_detail, compilation, atom,
                                None if result is NOTHING else result,
                                with_result=result is not NOTHING)

    flow_obj, fd, record = _act(backend, flow, planner, who, why, force, factory, 'skip')
    return _finish(backend, flow_obj, fd, record, run, engine, listeners)


def resume(backend: Any, flow: Any, *, revert: bool = True, who: str | None = None,
           why: str | None = None, force: bool = False,
           factory: str | Callable | None = None, run: bool = True,
           engine: str | None = None, listeners: Iterable[ListenerFactory] = ()
           ) -> ActionResult:
    """Resume a stopped flow (this call runs it, unless ``run=False``).

    With ``revert=False`` ("resume without reverting") reverts that were
    pending are cancelled (what still holds results keeps them, what failed
    or was reverted runs again) and the run does not revert on a new
    failure either: it stops in ``FAILURE`` with everything done kept, for
    the operator to retry or skip.  Same other parameters as :func:`retry`;
    with ``run=False`` only the action is stored, and whoever runs the flow
    should pass ``never_resolve=True`` to :func:`run_flow` for ``revert=False``.
    """
    backend = _backend(backend)
    if revert:
        def planner(flow_detail: models.FlowDetail, compilation: Any) -> _plans.Plan:
            return _plans.plan_resume(flow_detail)
    else:
        planner = _plans.plan_resume_no_revert
    flow_obj, fd, record = _act(backend, flow, planner, who, why, force, factory,
                                'resume' if revert else 'resume_no_revert')
    return _finish(backend, flow_obj, fd, record, run, engine, listeners,
                   never_resolve=not revert)


def revert(backend: Any, flow: Any, *, who: str | None = None, why: str | None = None,
           force: bool = False, factory: str | Callable | None = None, run: bool = False,
           engine: str | None = None, listeners: Iterable[ListenerFactory] = ()
           ) -> ActionResult:
    """Force a revert of a ``SUSPENDED`` (or halted ``FAILURE``) flow.

    Every atom is marked to revert; resuming (or ``run=True``) undoes, newest
    first, everything that was done, and the flow ends ``REVERTED``.  Same
    parameters as :func:`retry`.
    """
    backend = _backend(backend)
    flow_obj, fd, record = _act(backend, flow, _plans.plan_revert, who, why, force, factory,
                                  'revert')
    return _finish(backend, flow_obj, fd, record, run, engine, listeners)


def run_flow(backend: Any, flow: Any, *, flow_obj: Any = None,
             factory: str | Callable | None = None, engine: str | None = None,
             listeners: Iterable[ListenerFactory] = (), never_resolve: bool = False,
             owner: str | None = None, timestamps: bool = True) -> tuple[str, str | None]:
    """Run (resume) a stored flow to its end; returns ``(final state, error or None)``.

    Failures of the flow are reported, not raised.  ``timestamps`` records
    when each atom and the flow entered each state (``EventTimeListener``),
    which the CLI and the web view show as durations.
    """
    backend = _backend(backend)
    flow_detail = _flow_detail(backend, flow)
    if flow_obj is None:
        flow_obj = _factories.rebuild_flow(flow_detail, factory)
    options: dict[str, Any] = {}
    if never_resolve:
        options['never_resolve'] = True
    if owner:
        options['owner'] = owner
    eng = engines.load(flow_obj, flow_detail=flow_detail, backend=backend,
                       engine=engine or 'serial', **options)
    return run_engine(eng, listeners, timestamps)


def run_engine(eng: Any, listeners: Iterable[ListenerFactory] = (),
               timestamps: bool = True) -> tuple[str, str | None]:
    """Run a loaded engine with ``listeners``; ``(final state, error or None)``."""
    error = None
    with contextlib.ExitStack() as stack:
        if timestamps:
            stack.enter_context(timing.EventTimeListener(eng))
        for make in listeners:
            stack.enter_context(make(eng))
        try:
            eng.run()
        except Exception as exc:  # the flow's own failure: report it
            error = one_line(exc)
        finally:
            stack.callback(eng.storage.close)
    return eng.storage.get_flow_state(), error


def one_line(error: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(error).strip()
    return '%s: %s' % (type(error).__name__, text.splitlines()[0]) if text \
        else type(error).__name__


def history(flow_detail: models.FlowDetail) -> list[dict[str, Any]]:
    """The operator actions recorded on a flow, oldest first."""
    return _apply.history_of(_apply.effective(flow_detail).meta)
