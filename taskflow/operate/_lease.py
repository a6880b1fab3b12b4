"""Who may change a stored flow right now: the one function that decides.

An operator action must hold the flow's lease while it changes the flow, and
must refuse when someone else (an engine, a conductor, another operator)
holds a live one.  Leases come from :mod:`taskflow.persistence.ownership`;
while a backend offers none (or that module is absent) the stored flow state
is the only clue: a flow stored as ``RUNNING``/``SUSPENDING``/``RESUMING``
may be running elsewhere, or its process may have died.  Then the action is
refused unless the operator says the process is gone (``force=True``,
``--force``).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
from collections.abc import Iterator
from typing import Any

from taskflow import exceptions as exc
from taskflow import states as st
from taskflow.operate import _errors

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


def _ownership() -> Any:
    try:
        from taskflow.persistence import ownership
    except ImportError:
        return None
    return ownership


def _backend_has_leases(backend: Any) -> bool:
    with contextlib.closing(backend.get_connection()) as conn:
        return hasattr(conn, 'acquire_flow_lease')


def leases_supported(backend: Any) -> bool:
    """Whether this backend records flow leases."""
    return _ownership() is not None and _backend_has_leases(backend)


def lease_holder(backend: Any, flow_uuid: str) -> Any:
    """The live lease on a flow (``ownership.Lease``), or ``None``."""
    if not leases_supported(backend):
        return None
    import time
    with contextlib.closing(backend.get_connection()) as conn:
        lease = conn.get_flow_lease(flow_uuid)
    if lease is None or lease.expires_at <= time.time():
        return None
    return lease


def may_be_running(backend: Any, flow_detail: Any) -> bool:
    """Whether the flow may be running elsewhere right now (for displays)."""
    if leases_supported(backend):
        return lease_holder(backend, flow_detail.uuid) is not None
    return flow_detail.state in LIVE_STATES


@contextlib.contextmanager
def holding(backend: Any, flow_detail: Any, owner: str, ttl: float = DEFAULT_TTL,
            force: bool = False) -> Iterator[Any]:
    """Hold the flow's lease for the ``with`` block (yields the lease or ``None``).

    Raises :class:`FlowBusy` when another owner's lease is live, or, without
    lease support, when the flow is stored as running and ``force`` is false.
    """
    if leases_supported(backend):
        ownership = _ownership()
        with contextlib.ExitStack() as stack:
            try:
                lease = stack.enter_context(ownership.hold(backend, flow_detail.uuid,
                                                           owner=owner, ttl=ttl))
            except exc.TaskFlowException as error:
                if type(error).__name__ != 'FlowLeased':
                    raise
                raise _errors.FlowBusy('flow %r (%s) is running elsewhere: %s'
                                       % (flow_detail.name, flow_detail.uuid,
                                          str(error.args[0]))) from error
            yield lease
        return
    if flow_detail.state in LIVE_STATES and not force:
        raise _errors.FlowBusy(
            "flow %r (%s) is stored as %s: it may be running elsewhere. If its process"
            " is gone, pass --force (force=True)" % (flow_detail.name, flow_detail.uuid,
                                                     flow_detail.state))
    yield None
