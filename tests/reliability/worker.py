"""The process the driver kills: run (or resume) one persisted flow.

    python -m tests.reliability.worker SPEC.json

``SPEC.json`` (written by the driver) names the backend configuration, the
logbook uuid, the shape, the ledger file, the incarnation number and where
to write the outcome.  The worker:

1. opens the backend (``upgrade()`` every time, as a service would);
2. finds the trial's logbook and its flow detail, or creates both in a
   single ``save_logbook`` (factory details included, so there is never a
   flow detail that cannot be rebuilt);
3. ``engines.load_from_detail(...)`` and writes the *ready* file;
4. ``engine.run()`` -- unless the stored flow is already ``REVERTED`` or
   ``FAILURE`` (a flow killed after it ended): then it only reports it;
5. writes the outcome JSON and exits 0.

Exit codes: 0 finished (the flow reached a final state), 3 the stored data
could not be loaded (invariant e), 4 the database could not be reached (a
``StorageFailure`` that is neither a corrupt record nor an unstorable value:
an outage trial made the database go away), 5 refused: another worker owns
the flow (its lease is live), 1 anything else unexpected.

The worker owns the flow (a lease, see ``taskflow.persistence.ownership``)
from before it looks at the stored state until the run ends, so a worker
started at the same time as another either runs the flow or is refused,
and never runs a flow the other finished meanwhile.

Optional stop points, for precise kills: ``stop_after_record`` (SIGSTOP
right after the N-th ledger record of this process), ``stop_after_event``
(SIGSTOP inside the N-th flow/atom notification) and ``stop_after_write``
(SIGSTOP right after the N-th write to the backend returned, i.e. was
committed).  The driver SIGKILLs the stopped process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
import traceback
import uuid
from typing import Any

EXIT_FINISHED, EXIT_UNEXPECTED, EXIT_LOAD_FAILED, EXIT_STORAGE_DOWN, EXIT_REFUSED = \
    0, 1, 3, 4, 5
# A stored flow in one of these states is over: a resumer must not run it
# again (an engine resets a REVERTED flow and runs it from the start; a
# rival that finds a finished flow would store it RUNNING again).
ALREADY_OVER = ('REVERTED', 'FAILURE', 'SUCCESS')


def _find_or_create(conn: Any, spec: dict) -> Any:
    from taskflow import engines, exceptions
    from taskflow.persistence import models
    from tests.reliability import shapes

    try:
        book = conn.get_logbook(spec['book'])
    except exceptions.NotFound:
        book = models.LogBook('crash-%s' % spec['shape'], uuid=spec['book'])
    for fd in book:
        return fd
    # The trial's one flow detail: workers creating it at once (rivals, after
    # a kill at startup) all save the same one rather than one each.
    fd = models.FlowDetail(spec['shape'], uuid=str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                               spec['book'])))
    engines.save_factory_details(fd, shapes.FACTORY, [spec['shape']], {})
    book.add(fd)
    try:
        conn.save_logbook(book)
    except exceptions.StorageFailure:
        # A rival created the book first (its INSERT won): use what it saved.
        try:
            saved = conn.get_logbook(spec['book'])
        except exceptions.NotFound:
            saved = ()
        for fd in saved:
            return fd
        raise
    return fd


_WRITES = ('save_logbook', 'update_flow_details', 'update_atom_details',
           '_write_flow_details', '_write_logbook')


class _CountingConnection:
    """A backend connection that counts writes (and may stop after one)."""

    def __init__(self, conn: Any, counter: list, stop_after: int | None) -> None:
        self._conn = conn
        self._counter = counter
        self._stop_after = stop_after

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith('_'):
            object.__setattr__(self, name, value)
        else:   # e.g. the storage's lease: the wrapped connection checks it
            setattr(self._conn, name, value)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._conn, name)
        if name not in _WRITES:
            return attr

        def write(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            self._counter[0] += 1
            if self._counter[0] == self._stop_after:
                os.kill(os.getpid(), signal.SIGSTOP)
            return result
        return write


def _count_writes(backend: Any, counter: list, stop_after: int | None) -> None:
    get_connection = backend.get_connection
    backend.get_connection = lambda: _CountingConnection(get_connection(), counter,
                                                         stop_after)


def _count_events(engine: Any, counter: list, stop_after: int | None) -> None:
    """Count flow and atom notifications (and maybe stop inside one)."""
    def on_event(state: str, details: dict) -> None:
        counter[0] += 1
        if counter[0] == stop_after:
            os.kill(os.getpid(), signal.SIGSTOP)

    engine.notifier.register('*', on_event)
    engine.atom_notifier.register('*', on_event)


def _reloaded_results(spec: dict, shape: Any) -> dict:
    """``fetch_all()`` of an engine loaded afresh from the stored flow.

    Not always what the run's own engine returns: the original does not
    publish a reverted flow's failures once it is loaded again.
    """
    from taskflow import engines
    from taskflow.persistence import backends

    backend = backends.fetch(dict(spec['conf']))
    try:
        with contextlib.closing(backend.get_connection()) as conn:
            fd = _find_or_create(conn, spec)
        engine = engines.load_from_detail(fd, backend=backend, engine=shape.engine,
                                          **shape.options)
        return engine.storage.fetch_all()
    finally:
        backend.close()


def _plain(value: Any) -> str:
    """JSON for results that are not JSON: a ``Failure`` by its message."""
    if hasattr(value, 'exception_str'):
        return 'Failure: %s' % value.exception_str
    return repr(value)


def _die_with_the_driver() -> None:
    """Linux: get SIGKILLed when the driver dies (a stopped worker would stay)."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _storage_down(error: BaseException) -> bool:
    """Whether ``error`` says the database was unreachable (not that the
    stored data or a value is bad)."""
    from taskflow import exceptions
    from taskflow.persistence import _decode

    return (isinstance(error, exceptions.StorageFailure)
            and not isinstance(error, (exceptions.UnstorableValue,
                                       _decode.CorruptRecord)))


def main(spec_path: str) -> int:
    _die_with_the_driver()
    with open(spec_path, encoding='utf-8') as f:
        spec = json.load(f)
    from tests.reliability import ledger, shapes

    ledger.writer.configure(spec['ledger'], spec['incarnation'],
                            spec.get('stop_after_record'))
    shapes.work_random.seed(spec.get('seed'))
    shape = shapes.SHAPES[spec['shape']]

    started = time.monotonic()
    writes = [0]
    try:
        from taskflow import exceptions
        from taskflow.persistence import backends, ownership
        backend = backends.fetch(dict(spec['conf']))
        _count_writes(backend, writes, spec.get('stop_after_write'))
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
            fd = _find_or_create(conn, spec)
    except Exception as e:
        traceback.print_exc()
        return EXIT_STORAGE_DOWN if _storage_down(e) else EXIT_LOAD_FAILED
    # host:pid names: a resumer on this host replaces a killed worker at once.
    owner = '%s:%d:worker-%d' % (socket.gethostname(), os.getpid(), spec['incarnation'])
    holding = contextlib.ExitStack()
    try:
        holding.enter_context(ownership.hold(backend, fd.uuid, owner=owner, ttl=60))
    except exceptions.FlowLeased as e:
        print('refused: %s' % e, file=sys.stderr)
        return EXIT_REFUSED
    except Exception as e:
        traceback.print_exc()
        return EXIT_STORAGE_DOWN if _storage_down(e) else EXIT_LOAD_FAILED
    with holding:   # released before the outcome is read back, or on any exit
        return _run(spec, shape, backend, fd, owner, holding, started, writes)


def _run(spec: dict, shape: Any, backend: Any, fd: Any, owner: str,
         holding: contextlib.ExitStack, started: float, writes: list) -> int:
    from taskflow import engines
    from tests.reliability import ledger

    try:
        with contextlib.closing(backend.get_connection()) as conn:
            fd = conn.get_flow_details(fd.uuid)   # as stored now that we own it
        engine = engines.load_from_detail(fd, backend=backend, engine=shape.engine,
                                          owner=owner, **shape.options)
    except Exception as e:
        traceback.print_exc()
        return EXIT_STORAGE_DOWN if _storage_down(e) else EXIT_LOAD_FAILED
    events = [0]
    _count_events(engine, events, spec.get('stop_after_event'))
    with open(spec['ready'], 'w'):
        pass
    ready = time.monotonic()

    raised = None
    ran = fd.state not in ALREADY_OVER
    if not ran:
        raised = 'not resumed: the stored flow is %s' % fd.state
    else:
        try:
            if shape.run_async:
                import asyncio
                asyncio.run(engine.run_async())
            else:
                engine.run()
        except Exception as e:
            if _storage_down(e):
                traceback.print_exc()
                return EXIT_STORAGE_DOWN
            raised = '%s: %s' % (type(e).__name__, e)
    finished = time.monotonic()
    holding.close()
    try:
        reloaded = _reloaded_results(spec, shape)
    except Exception as e:
        if _storage_down(e):
            traceback.print_exc()
            return EXIT_STORAGE_DOWN
        raise
    outcome = {
        'state': engine.storage.get_flow_state(),
        'ran': ran,
        'results': engine.storage.fetch_all(),
        'reloaded_results': reloaded,
        'raised': raised,
        'startup_seconds': ready - started,
        'run_seconds': finished - ready,
        'events': events[0],
        'records': ledger.writer.written,
        'writes': writes[0],
        'taskflow': os.path.dirname(engines.__file__.rsplit(os.sep, 1)[0]),
    }
    # Rivals that found the flow over finish too: each writes its outcome
    # whole, then moves it in place (any finished one is a valid outcome).
    partial = '%s.%d' % (spec['outcome'], os.getpid())
    with open(partial, 'w', encoding='utf-8') as f:
        json.dump(outcome, f, sort_keys=True, default=_plain)
    os.replace(partial, spec['outcome'])
    backend.close()
    return EXIT_FINISHED


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
