"""What the CLI and the web view show about books, flows and atoms.

Plain data built from stored details (never from a live engine), with
secrets masked (:mod:`taskflow.listeners._masking`): values under secret
keys, whole results published under a secret name, flow inputs (``store``)
under secret names.  Every view has ``to_dict()`` for ``--json`` and the
web view's JSON API (values that JSON cannot hold are shown by ``repr``).

Times come from what listeners stored in ``meta``: ``'<STATE>-timestamp'``
(:class:`~taskflow.listeners.timing.EventTimeListener`, which the tools'
own runs attach) and ``'duration'``
(:class:`~taskflow.listeners.timing.DurationListener`).  Flows run without
them have no times.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Container
from typing import Any

from taskflow import states as st
from taskflow.listeners import _masking
from taskflow.operate import _apply
from taskflow.persistence import models
from taskflow.storage import Storage
from taskflow.types import failure as failure_module

_STARTS = {st.RUNNING: (st.SUCCESS, st.FAILURE), st.REVERTING: (st.REVERTED,
                                                                st.REVERT_FAILURE)}
_FLOW_ENDS = (st.SUCCESS, st.FAILURE, st.REVERTED, st.SUSPENDED)
#: Atom states counted as done in progress figures.
DONE_STATES = frozenset((st.SUCCESS, st.IGNORE))


def format_when(epoch: float | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) or ``-``."""
    if epoch is None:
        return '-'
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(
        '%Y-%m-%d %H:%M:%S')


def format_seconds(value: float | None) -> str:
    """A duration for people: ``12ms``, ``3.40s``, ``2m05s`` or ``-``."""
    if value is None:
        return '-'
    if value < 1:
        return '%.0fms' % (value * 1000)
    if value < 120:
        return '%.2fs' % value
    return '%dm%02ds' % divmod(int(value), 60)


def _ts(meta: dict, state: str) -> float | None:
    value = meta.get('%s-timestamp' % state)
    return float(value) if isinstance(value, (int, float)) else None


@dataclasses.dataclass
class FailureView:
    """An execute or revert failure: exception type, message and traceback."""

    type: str
    message: str
    traceback: str | None

    @classmethod
    def of(cls, failure: Any) -> FailureView | None:
        if not isinstance(failure, failure_module.Failure):
            return None
        names = failure.exc_type_names
        return cls(type=names[0] if names else 'Exception',
                   message=failure.exception_str,
                   traceback=failure.traceback_str or None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class AtomView:
    """One task or retry of a flow."""

    name: str
    kind: str                      # 'task' or 'retry'
    state: str
    intention: str
    started_at: float | None       # epoch seconds of the last start (run or revert)
    duration: float | None         # seconds (still counting while running)
    result: Any                    # masked; None when there is none to show
    has_result: bool
    failure: FailureView | None
    revert_failure: FailureView | None
    attempts: list[dict[str, Any]]  # retries: [{'value': ..., 'failed': [names]}]
    progress: float | None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data['failure'] = self.failure.to_dict() if self.failure else None
        data['revert_failure'] = self.revert_failure.to_dict() if self.revert_failure else None
        return data


@dataclasses.dataclass
class FlowView:
    """One flow: its state, times, atoms, inputs and operator actions."""

    uuid: str
    name: str
    state: str
    book_uuid: str | None
    book_name: str | None
    started_at: float | None
    finished_at: float | None
    duration: float | None
    counts: dict[str, int]         # atom state -> number of atoms
    total: int                     # atoms (tasks and retries)
    done: int                      # atoms SUCCESS or IGNORE
    current: str | None            # an atom running or reverting now, if any
    atoms: list[AtomView]
    store: dict[str, Any]          # flow inputs, masked
    actions: list[dict[str, Any]]  # operator actions, oldest first
    interrupted_action: dict[str, Any] | None  # an action a crash left half stored
    factory: str | None

    def to_dict(self, atoms: bool = True) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if atoms:
            data['atoms'] = [atom.to_dict() for atom in self.atoms]
        else:
            del data['atoms'], data['store']
        return data


def _secret_outputs(compilation: Any, keys: Container[Any]) -> set[str]:
    """Atoms that publish a result under a secret name (their whole result is hidden)."""
    if compilation is None:
        return set()
    return {node.name for node in compilation.atoms
            if any(name in keys for name in node.atom.save_as)}


def _duration(meta: dict, state: str | None, now: float) -> tuple[float | None, float | None]:
    """``(start, seconds)`` of an atom's last run or revert, from its meta."""
    best: tuple[float, float | None] | None = None
    for start_state, ends in _STARTS.items():
        started = _ts(meta, start_state)
        if started is None or (best is not None and started < best[0]):
            continue
        ended = [t for t in (_ts(meta, e) for e in ends) if t is not None and t >= started]
        if ended:
            best = (started, min(ended) - started)
        elif state == start_state:
            best = (started, max(now - started, 0.0))
        else:
            best = (started, None)
    if isinstance(meta.get('duration'), (int, float)) and (best is None or best[1] is None):
        return (best[0] if best else None), float(meta['duration'])
    return best if best is not None else (None, None)


def _atom_view(ad: models.AtomDetail, keys: Container[Any], hidden: set[str],
               now: float) -> AtomView:
    is_retry = isinstance(ad, models.RetryDetail)
    started, seconds = _duration(ad.meta, ad.state, now)
    secret = ad.name in hidden
    attempts = []
    result: Any = None
    has_result = False
    if is_retry:
        for value, failures in ad.results or []:
            attempts.append({'value': _masking.MASK if secret else _masking.mask(value, keys),
                             'failed': sorted(failures or {})})
        if ad.results:
            result, has_result = attempts[-1]['value'], True
    elif ad.state in (st.SUCCESS, st.REVERTING, st.REVERTED, st.REVERT_FAILURE) and \
            ad.results is not None and ad.failure is None:
        result = _masking.MASK if secret else _masking.mask(ad.results, keys)
        has_result = True
    progress = ad.meta.get('progress')
    return AtomView(name=ad.name, kind='retry' if is_retry else 'task',
                    state=ad.state or st.PENDING, intention=ad.intention or st.EXECUTE,
                    started_at=started, duration=seconds, result=result,
                    has_result=has_result, failure=FailureView.of(ad.failure),
                    revert_failure=FailureView.of(ad.revert_failure), attempts=attempts,
                    progress=float(progress) if isinstance(progress, (int, float)) else None)


def describe(flow_detail: models.FlowDetail, book: models.LogBook | None = None, *,
             mask_keys: Container[Any] | None = None, compilation: Any = None,
             with_atoms: bool = True) -> FlowView:
    """The view of one flow (an action a crash interrupted is shown completed).

    :param mask_keys: keys to mask (default: :class:`SecretKeys` defaults).
    :param compilation: the compiled flow, when it could be rebuilt: orders
        atoms as the flow does and hides results published under secret names.
    """
    keys = mask_keys if mask_keys is not None else _masking.SecretKeys()
    journal = _apply.pending(flow_detail)
    flow_detail = _apply.effective(flow_detail)
    now = time.time()
    details = [ad for ad in flow_detail if ad.name != Storage.injector_name]
    if compilation is not None:
        order = {node.name: i for i, node in enumerate(compilation.atoms)}
        details.sort(key=lambda ad: order.get(ad.name, len(order)))
    hidden = _secret_outputs(compilation, keys)
    atoms = [_atom_view(ad, keys, hidden, now) for ad in details] if with_atoms else []
    counts: dict[str, int] = {}
    current = None
    for ad in details:
        state = ad.state or st.PENDING
        counts[state] = counts.get(state, 0) + 1
        if state in (st.RUNNING, st.REVERTING) and current is None:
            current = ad.name
    injector = next((ad for ad in flow_detail if ad.name == Storage.injector_name), None)
    store = {}
    if injector is not None and isinstance(injector.results, dict):
        store = {name: _masking.mask_named(name, value, keys)
                 for name, value in injector.results.items()}
    meta = flow_detail.meta or {}
    started = _ts(meta, st.RUNNING)
    ends = [t for t in (_ts(meta, s) for s in _FLOW_ENDS)
            if t is not None and started is not None and t >= started]
    finished = max(ends) if ends and flow_detail.state in _FLOW_ENDS else None
    duration = (finished - started if finished is not None and started is not None
                else now - started if started is not None and flow_detail.state == st.RUNNING
                else meta.get('duration') if isinstance(meta.get('duration'), (int, float))
                else None)
    factory = (meta.get('factory') or {}).get('name') if isinstance(meta.get('factory'),
                                                                      dict) else None
    return FlowView(
        uuid=flow_detail.uuid, name=flow_detail.name, state=flow_detail.state or st.PENDING,
        book_uuid=book.uuid if book is not None else None,
        book_name=book.name if book is not None else None,
        started_at=started, finished_at=finished, duration=duration, counts=counts,
        total=len(details), done=sum(counts.get(s, 0) for s in DONE_STATES),
        current=current, atoms=atoms, store=store,
        actions=_apply.history_of(meta),
        interrupted_action=journal['record'] if journal is not None else None,
        factory=factory)


def _utc_epoch(when: datetime.datetime | None) -> float | None:
    # Logbook times are naive UTC (as the original stores them).
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def describe_book(book: models.LogBook) -> dict[str, Any]:
    """A logbook's summary: name, uuid, times and its flows' states."""
    states: dict[str, int] = {}
    for flow_detail in book:
        state = flow_detail.state or st.PENDING
        states[state] = states.get(state, 0) + 1
    return {
        'uuid': book.uuid, 'name': book.name,
        'created_at': _utc_epoch(book.created_at), 'updated_at': _utc_epoch(book.updated_at),
        'flows': len(book), 'states': states,
    }
