"""Storing an action's plan all at once, and finishing one a crash interrupted.

An action changes several atom details and the flow detail.  Whoever reads
the flow afterwards must see the action either fully done or not done:

* On SQL backends (and memory) ``update_flow_details`` writes the flow and
  all its atom details in one transaction: one write does it all.
* Elsewhere (the directory backend writes one file per detail) the plan is
  first written into the flow's ``meta`` as a *journal*
  (``meta['operator_pending']``), then the atom details, then the flow (its
  new state and the action record, journal removed).  A crash leaves either
  no journal and nothing changed, or a journal: :func:`recover` completes it
  (the next action or resume does so, under the lease) and :func:`effective`
  shows readers the flow as if it were complete.  A journal whose atoms have
  since changed in other ways (someone ran the flow without recovering it)
  is stale: it is dropped and recorded as abandoned.

Every completed action appends a record to ``meta['operator_actions']``:
``{'id', 'action', 'who', 'when' (ISO 8601, UTC), 'why', 'flow_state':
[before, after], 'atoms': {name: [before, after]}, ...}``.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import os
import signal
import uuid as uuid_module
from typing import Any

from taskflow.operate import _plans
from taskflow.persistence import models

#: Flow meta key: the list of operator actions, oldest first.
META_HISTORY = 'operator_actions'
#: Flow meta key: the journal of an action being stored.
META_PENDING = 'operator_pending'
#: Crash tests: SIGKILL this process at the named point (see ``checkpoint``).
CRASH_ENV = 'TASKFLOW_OPERATE_CRASH_AT'
_ATOMIC_BACKENDS = {
    'taskflow.persistence.backends.impl_sqlalchemy': 'SQLAlchemyBackend',
    'taskflow.persistence.backends.impl_memory': 'MemoryBackend',
}
_counts: dict[str, int] = {}


def checkpoint(point: str) -> None:
    """Die here (SIGKILL) when ``$TASKFLOW_OPERATE_CRASH_AT`` names this point.

    ``point`` or ``point:N`` (the Nth time this process reaches it): how the
    crash tests make a kill land exactly between two writes.
    """
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if wanted in (point, '%s:%d' % (point, _counts[point])):
        os.kill(os.getpid(), signal.SIGKILL)


def writes_atomically(backend: Any) -> bool:
    """Whether one ``update_flow_details`` stores a flow and its atoms atomically."""
    for cls in type(backend).__mro__:
        if _ATOMIC_BACKENDS.get(cls.__module__) == cls.__name__:
            return True
    return False


def make_record(plan: _plans.Plan, who: str, why: str | None) -> dict[str, Any]:
    """The history entry of an action."""
    record = {
        'id': str(uuid_module.uuid4()),
        'action': plan.action,
        'who': who,
        'when': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'why': why,
        'flow_state': list(plan.flow_state),
        'atoms': {change.name: [change.before[0], change.after.get('state', change.before[0])]
                  for change in plan.changes},
    }
    record.update(plan.notes)
    return record


def history_of(meta: dict) -> list[dict[str, Any]]:
    """The action records in a flow's ``meta`` (entries that are not records skipped)."""
    records = meta.get(META_HISTORY)
    if not isinstance(records, list):
        return []
    return [record for record in records if isinstance(record, dict)]


def _finished_meta(meta: dict, record: dict) -> dict:
    meta = copy.deepcopy(meta)
    meta.pop(META_PENDING, None)
    # A damaged history is replaced rather than extended (it was unreadable).
    meta[META_HISTORY] = history_of(meta) + [record]
    return meta


def _connection(backend: Any, lease: Any) -> Any:
    conn = backend.get_connection()
    if lease is not None:
        conn.fence = lease   # every write is refused once someone else owns the flow
    return conn


def commit(backend: Any, flow_detail: models.FlowDetail, plan: _plans.Plan,
           record: dict[str, Any], lease: Any = None) -> models.FlowDetail:
    """Store ``plan`` and ``record``: all of it or (after a crash) none/recoverable.

    ``flow_detail`` must be fresh from the backend; it is updated in place
    and returned.  ``lease``: the flow's lease the caller holds.
    """
    with contextlib.closing(_connection(backend, lease)) as conn:
        if writes_atomically(backend):
            checkpoint('before-commit')
            _plans.apply_to_detail(flow_detail, plan)
            flow_detail.meta = _finished_meta(flow_detail.meta, record)
            conn.update_flow_details(flow_detail)
            checkpoint('committed')
            return flow_detail
        journal = {
            'record': record,
            'flow_state': list(plan.flow_state),
            'changes': [{'name': c.name, 'before': list(c.before), 'after': c.after}
                        for c in plan.changes],
        }
        checkpoint('before-journal')
        _write_flow_only(conn, flow_detail, flow_detail.state,
                         dict(copy.deepcopy(flow_detail.meta), **{META_PENDING: journal}))
        checkpoint('journal-written')
        return _complete(conn, flow_detail, journal)


def _write_flow_only(conn: Any, flow_detail: models.FlowDetail, state: str | None,
                     meta: dict) -> None:
    """Write the flow detail's own fields, none of its atom details."""
    flow_detail.state = state
    flow_detail.meta = meta
    conn.update_flow_details(flow_detail.copy(retain_contents=False))


def _complete(conn: Any, flow_detail: models.FlowDetail,
              journal: dict[str, Any]) -> models.FlowDetail:
    details = {ad.name: ad for ad in flow_detail}
    for change in journal['changes']:
        ad = details.get(change['name'])
        if ad is None:
            continue
        _set_fields(ad, change['after'])
        conn.update_atom_details(ad)
        checkpoint('atom-written')
    _write_flow_only(conn, flow_detail, journal['flow_state'][1],
                     _finished_meta(flow_detail.meta, journal['record']))
    checkpoint('committed')
    return flow_detail


def _set_fields(ad: models.AtomDetail, after: dict[str, Any]) -> None:
    for field in _plans.FIELDS:   # only the fields an action may change
        if field in after:
            setattr(ad, field, after[field])


def pending(flow_detail: models.FlowDetail) -> dict[str, Any] | None:
    """The journal of an interrupted action, if the flow has one.

    A journal that is not one (damaged stored data) counts as stale: it is
    dropped, never applied (see :func:`is_stale`).
    """
    journal = flow_detail.meta.get(META_PENDING)
    if journal is None:
        return None
    if not isinstance(journal, dict):
        return {'record': {'action': 'unknown', 'damaged': True}, 'changes': None}
    if not isinstance(journal.get('record'), dict):
        journal = dict(journal, record={'action': 'unknown', 'damaged': True})
    return journal


def is_stale(flow_detail: models.FlowDetail, journal: dict[str, Any]) -> bool:
    """Whether the flow changed since the journal was written (other than by it).

    A damaged journal is always stale.
    """
    try:
        return _is_stale(flow_detail, journal)
    except (KeyError, TypeError, ValueError, AttributeError):
        return True


def _is_stale(flow_detail: models.FlowDetail, journal: dict[str, Any]) -> bool:
    before_state, after_state = journal['flow_state']
    if flow_detail.state not in (before_state, after_state):
        return True
    details = {ad.name: ad for ad in flow_detail}
    for change in journal['changes']:
        ad = details.get(change['name'])
        if ad is None:
            return True
        before = tuple(change['before'])
        after = (change['after'].get('state', before[0]),
                 change['after'].get('intention', before[1]))
        if not set(change['after']) <= set(_plans.FIELDS):
            return True
        if (ad.state, ad.intention) not in (before, after):
            return True
    return False


def recover(backend: Any, flow_detail: models.FlowDetail,
            lease: Any = None) -> models.FlowDetail:
    """Finish (or drop, when stale) an interrupted action; the caller holds ``lease``."""
    journal = pending(flow_detail)
    if journal is None:
        return flow_detail
    with contextlib.closing(_connection(backend, lease)) as conn:
        if not is_stale(flow_detail, journal):
            return _complete(conn, flow_detail, journal)
        record = dict(journal['record'], abandoned=True)
        _write_flow_only(conn, flow_detail, flow_detail.state,
                         _finished_meta(flow_detail.meta, record))
    return flow_detail


def effective(flow_detail: models.FlowDetail) -> models.FlowDetail:
    """What readers should see: a copy with an interrupted action completed in memory."""
    journal = pending(flow_detail)
    if journal is None:
        return flow_detail
    view = flow_detail.copy(retain_contents=False)
    for ad in flow_detail:
        view.add(ad.copy())
    if is_stale(flow_detail, journal):
        view.meta = _finished_meta(view.meta, dict(journal['record'], abandoned=True))
        return view
    details = {ad.name: ad for ad in view}
    for change in journal['changes']:
        found = details.get(change['name'])
        if found is not None:
            _set_fields(found, change['after'])
    view.state = journal['flow_state'][1]
    view.meta = _finished_meta(view.meta, journal['record'])
    return view
