"""What the driver sees of a trial: stored snapshots and worker runs.

A :class:`Snapshot` is read from the backend by the driver itself, after a
worker died and before the next one starts.  Reading it is also invariant
(e): the stored data must always load.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from tests.reliability.shapes import Shape


@dataclass(frozen=True)
class AtomState:
    state: str | None
    intention: str | None
    # The retry attempt this state belongs to: for a retry, how many attempts
    # it has recorded; for an atom of its subflow, the retry's current attempt;
    # ``None`` elsewhere (matches the ``attempt`` of ledger records).
    attempt: int | None


@dataclass(frozen=True)
class Snapshot:
    """A trial's stored flow: ``absent`` before its logbook was first saved."""

    flow_state: str | None = None
    atoms: dict[str, AtomState] = field(default_factory=dict)
    absent: bool = False
    error: str | None = None   # why it could not be loaded


def save(snap: Snapshot, path: Any) -> None:
    """Keep a snapshot beside the trial's other files (for humans)."""
    data = dataclasses.asdict(snap)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=1, sort_keys=True)


def snapshot(conf: dict, book_uuid: str, shape: Shape) -> Snapshot:
    """Load the trial's flow detail with a fresh backend (never raises)."""
    from taskflow import exceptions
    from taskflow.persistence import backends

    try:
        backend = backends.fetch(dict(conf))
    except Exception as e:
        return Snapshot(error='fetch(): %s: %s' % (type(e).__name__, e))
    try:
        with contextlib.closing(backend.get_connection()) as conn:
            try:
                book = conn.get_logbook(book_uuid)
            except exceptions.NotFound:
                return Snapshot(absent=True)
            details = list(book)
            if not details:
                return Snapshot(absent=True)
            if len(details) != 1:
                return Snapshot(error='%d flow details in the book' % len(details))
            return _from_detail(details[0], shape)
    except Exception as e:
        return Snapshot(error='%s: %s' % (type(e).__name__, e))
    finally:
        backend.close()


def _from_detail(fd: Any, shape: Shape) -> Snapshot:
    retry_attempt = None
    if shape.retry_name is not None:
        for ad in fd:
            if ad.name == shape.retry_name:
                retry_attempt = len(ad.results or [])
    atoms = {}
    for ad in fd:
        if ad.name.startswith('_TaskFlow_'):
            continue
        attempt = None
        if ad.name == shape.retry_name or ad.name in shape.retry_subflow:
            attempt = retry_attempt
        atoms[ad.name] = AtomState(ad.state, ad.intention, attempt)
    return Snapshot(flow_state=fd.state, atoms=atoms)


# How one worker process ended.
KILLED = 'killed'          # we SIGKILLed it
FINISHED = 'finished'      # exit 0: the flow reached a final state
LOAD_FAILED = 'load-failed'   # exit 3: could not load the stored flow
REFUSED = 'refused'        # exit 5: another worker owned the flow
CRASHED = 'crashed'        # any other exit
HUNG = 'hung'              # still running at the deadline (then killed)
STOPPED = 'stopped'        # exit 4: the database was unreachable (an outage)


@dataclass
class Incarnation:
    """One worker process of a trial."""

    number: int               # in the order workers were started
    before: Snapshot          # what was stored when it started
    kill_mode: str | None     # how we planned to kill it (None: let it finish)
    end: str = ''             # KILLED, FINISHED...
    reached_ready: bool = False
    stderr: str = ''
    group: int | None = None  # workers started together share it (None: alone)
