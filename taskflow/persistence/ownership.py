"""One owner per flow: leases with fencing tokens (a taskflow-ng extension).

An engine that runs a persisted flow first takes a *lease* on its flow
detail: a record, kept by the persistence backend next to the flow, of who
owns the flow until when, with a *token* that grows by one with every new
owner.  The engine renews the lease while it runs and gives it up when the
run ends.  While the lease is live, anyone else who tries to take the flow is
refused with :class:`~taskflow.exceptions.FlowLeased`; once it expires (the
owner died, or hangs), the flow can be taken over.

Every write the owner makes carries its token, and the backend refuses a
write whose token is not the flow's current one
(:class:`~taskflow.exceptions.OwnershipLost`): an owner that lost its lease
while paused or partitioned cannot overwrite what the new owner did.

A jobboard claim can pre-empt a lease: a conductor passes the token of its
claim (``claim_token``, increasing with every claim of the job); a lease
taken with a claim token greater than the one recorded on the current lease
is granted even while that lease is live, so the conductor that now holds
the job never waits for a stale holder to expire.

Flows written by the original TaskFlow have no lease: they are free.

An owner named ``host:pid:...`` (the default) that is gone can be replaced
at once by a process on the same host: a crashed engine's flow is resumable
right away there, as with the original, without waiting for the lease to
expire.  Owners elsewhere (or named otherwise) are waited out.

Backends implement four connection methods (``acquire_flow_lease``,
``renew_flow_lease``, ``release_flow_lease``, ``get_flow_lease``) and check
the token of ``connection.fence`` (a :class:`Lease`, or ``None``) under the
same lock or in the same transaction as each write.  The rule for granting
a lease is :func:`grant`, shared by every backend.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple

from taskflow import exceptions as exc

DEFAULT_TTL = 30.0   # seconds a lease lasts unless renewed


class Lease(NamedTuple):
    """Who owns a flow, until when, and the fencing token of that ownership."""

    flow_uuid: str
    owner: str
    token: int               # 1 for the first owner, +1 for every new one
    expires_at: float        # seconds since the epoch (the backend's clock)
    claim_token: int | None  # the jobboard claim it was taken under, if any

    def remaining(self, now: float) -> float:
        return self.expires_at - now


def default_owner() -> str:
    """A name for an owner that gave none: ``host:pid:random``."""
    return '%s:%d:%s' % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8])


# Owners of this process that gave their lease up but could not record it
# (the backend was down): their leases are free for this process at once.
_retired: set[str] = set()


def retire(owner: str) -> None:
    """``owner`` (of this process) no longer holds its lease, whatever is stored."""
    _retired.add(owner)


def reinstate(owner: str) -> None:
    """``owner`` holds a lease again (see :func:`retire`)."""
    _retired.discard(owner)


def owner_gone(owner: str) -> bool:
    """Whether ``owner`` names a process of this host that no longer exists
    (or an owner of this process that gave its lease up)."""
    host, _, rest = owner.partition(':')
    pid_text = rest.partition(':')[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner in _retired
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. another user's process: it exists
        return False
    return False


def check_ttl(ttl: Any) -> float:
    """A lease's time to live, in seconds (> 0)."""
    try:
        seconds = float(ttl)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(ttl, bool) or not seconds > 0:
        raise ValueError('A lease time to live must be a positive number of seconds, not %r'
                         % (ttl,))
    return seconds


def grant(current: Lease | None, flow_uuid: str, owner: str, ttl: float, now: float,
          claim_token: int | None = None) -> Lease:
    """The lease ``owner`` gets on ``flow_uuid`` at ``now``, or ``FlowLeased``.

    Free when there is no lease yet or it has expired; pre-empted by a newer
    jobboard claim (``claim_token`` greater than the one recorded).  The
    same owner may take its own live lease again (a new token all the same).
    """
    if not owner or not isinstance(owner, str):
        raise ValueError('A lease owner must be a non-empty string, not %r' % (owner,))
    if current is None:
        return Lease(flow_uuid, owner, 1, now + ttl, claim_token)
    newer_claim = claim_token is not None and (current.claim_token is None
                                               or claim_token > current.claim_token)
    if (current.expires_at > now and current.owner != owner and not newer_claim
            and not owner_gone(current.owner)):
        raise exc.FlowLeased(
            "Flow detail '%s' is owned by '%s' (lease token %d, expires in %.1f s);"
            " it can be taken over once that lease expires"
            % (flow_uuid, current.owner, current.token, current.expires_at - now))
    if claim_token is None:
        claim_token = current.claim_token
    elif current.claim_token is not None and claim_token < current.claim_token:
        claim_token = current.claim_token
    return Lease(flow_uuid, owner, current.token + 1, now + ttl, claim_token)


def lost(lease: Lease, current: Lease | None) -> exc.OwnershipLost:
    """The error for a write (or renewal) under ``lease`` when ``current`` is stored."""
    if current is None:
        now_owned = 'no lease is recorded any more'
    else:
        now_owned = "it is now owned by '%s' with token %d" % (current.owner, current.token)
    return exc.OwnershipLost(
        "Flow detail '%s' is no longer owned by '%s' (lease token %d): %s; the write"
        " was refused" % (lease.flow_uuid, lease.owner, lease.token, now_owned))


def supports_leases(connection: Any) -> bool:
    """Whether a backend connection keeps leases (third-party backends may not)."""
    return callable(getattr(connection, 'acquire_flow_lease', None))


@contextlib.contextmanager
def hold(backend: Any, flow_uuid: str, owner: str | None = None, ttl: float = DEFAULT_TTL,
         claim_token: int | None = None) -> Iterator[Lease]:
    """Own ``flow_uuid`` for the duration of the ``with`` block.

    For tools that change a stored flow outside an engine (operators,
    conductors): raises :class:`~taskflow.exceptions.FlowLeased` when
    someone else runs the flow.  The lease is not renewed: keep the block
    shorter than ``ttl``.  It is released at the end of the block.
    """
    with contextlib.closing(backend.get_connection()) as conn:
        lease = conn.acquire_flow_lease(flow_uuid, owner or default_owner(), check_ttl(ttl),
                                        claim_token=claim_token)
        reinstate(lease.owner)
        try:
            yield lease
        finally:
            try:
                conn.release_flow_lease(lease)
            except exc.StorageFailure:
                retire(lease.owner)  # (storage is down) it expires by itself
