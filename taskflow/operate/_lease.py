"""Who may change a stored flow right now: the one place that decides.

An operator action holds the flow's lease (:mod:`taskflow.persistence.ownership`)
while it changes the flow, and its writes carry the lease's token; it is
refused (:class:`FlowBusy`) while someone else (an engine, a conductor,
another operator) holds a live lease.  A lease whose owner died expires, and
one whose owner was a process of this host that is gone is free at once, so
a crashed run can be acted on right away.  The owner names used here
(``host:pid:operator:<who>``) follow that convention, so an operator
process killed in the middle of an action never blocks the next one.

A backend without lease support (a third-party one) gives only the stored
flow state as a clue: a flow stored as ``RUNNING``/``SUSPENDING``/
``RESUMING`` may be running elsewhere, or its process may have died; the
action is then refused unless the operator says it is gone (``force=True``,
``--force``).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

from taskflow import exceptions as exc
from taskflow import states as st
from taskflow.operate import _errors
from taskflow.persistence import ownership

#: Stored flow states that mean "an engine was running it" (maybe still is).
LIVE_STATES = frozenset((st.RUNNING, st.SUSPENDING, st.RESUMING))
DEFAULT_TTL = 30.0


def default_operator() -> str:
    """``user@host``: who is acting, when the caller does not say."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name (containers): still say something useful
        user = 'uid%d' % os.getuid()
    return '%s@%s' % (user, socket.gethostname())


def owner_name(who: str) -> str:
    """The lease owner for an operator (replaceable at once if this process dies)."""
    return '%s:%d:operator:%s' % (socket.gethostname(), os.getpid(), who)


def leases_supported(backend: Any) -> bool:
    """Whether this backend records flow leases."""
    with contextlib.closing(backend.get_connection()) as conn:
        return ownership.supports_leases(conn)


def live_lease(backend: Any, flow_uuid: str) -> ownership.Lease | None:
    """The lease on a flow if someone alive holds it, else ``None``."""
    with contextlib.closing(backend.get_connection()) as conn:
        if not ownership.supports_leases(conn):
            return None
        lease = conn.get_flow_lease(flow_uuid)
    if lease is None or lease.expires_at <= time.time() or ownership.owner_gone(lease.owner):
        return None
    return lease


def may_be_running(backend: Any, flow_detail: Any) -> bool:
    """Whether the flow may be running elsewhere right now (for displays)."""
    if leases_supported(backend):
        return live_lease(backend, flow_detail.uuid) is not None
    return flow_detail.state in LIVE_STATES


def _busy(backend: Any, flow_detail: Any, error: BaseException) -> _errors.FlowBusy:
    lease = live_lease(backend, flow_detail.uuid)
    if lease is None:
        detail = str(error.args[0]) if error.args else str(error)
    else:
        detail = 'its lease belongs to %r for %.0f more seconds' % (
            lease.owner, max(lease.expires_at - time.time(), 0.0))
    return _errors.FlowBusy('flow %r (%s) is running elsewhere: %s'
                            % (flow_detail.name, flow_detail.uuid, detail))


@contextlib.contextmanager
def holding(backend: Any, flow_detail: Any, owner: str, ttl: float = DEFAULT_TTL,
            force: bool = False) -> Iterator[ownership.Lease | None]:
    """Hold the flow's lease for the ``with`` block; yields it (``None`` without leases).

    Writes made meanwhile must carry it (``connection.fence = lease``).
    Raises :class:`FlowBusy` when another owner's lease is live or, without
    lease support, when the flow is stored as running and ``force`` is false.
    """
    if leases_supported(backend):
        with contextlib.ExitStack() as stack:
            try:
                lease = stack.enter_context(ownership.hold(backend, flow_detail.uuid,
                                                           owner=owner, ttl=ttl))
            except exc.FlowLeased as error:
                raise _busy(backend, flow_detail, error) from error
            yield lease
        return
    if flow_detail.state in LIVE_STATES and not force:
        raise _errors.FlowBusy(
            "flow %r (%s) is stored as %s: it may be running elsewhere. If its process"
            " is gone, pass --force (force=True)" % (flow_detail.name, flow_detail.uuid,
                                                     flow_detail.state))
    yield None
