"""A jobboard on etcd (v3, through its JSON gateway, with ``etcd3gw``).

Key layout (the original's, so both sides share one board; ``<path>`` is the
``path`` option, default ``'jobboard'``, without leading slashes)::

    /taskflow/jobs/<path>/sequence          last posting sequence number
    /taskflow/jobs/<path>/job<N>.data       the posting (JSON, with "sequence")
    /taskflow/jobs/<path>/job<N>.lock       {"owner": who, "lease_id": id}
                                            attached to the claim's lease
    /taskflow/jobs/<path>/job<N>.last_modified  {"last_modified": iso time}
    /taskflow/.trash/<path>/job<N>          a trashed posting

taskflow-ng adds, outside the original's job prefix (so the original never
lists them):

    /taskflow/.history/<path>/job<N>/<id>   one record per claim (who, when,
                                            how it ended)

Every change is one etcd transaction guarded by compares, so rival boards
(of either implementation) never both win. A claim is the creation of the
lock key (``create_revision == 0``); its *claim token* is the revision that
created it, which etcd makes strictly increasing. The claim's history record
is created in the same transaction, so its ``create_revision`` is the token
too. Claims always carry a lease (``expiry``, else the ``ttl`` option, else
``base.DEFAULT_CLAIM_EXPIRY``): when the claimer stops renewing it, etcd
deletes the lock and the job is free again.

Per job the board makes three requests: the post, the claim and its end
(each one transaction); one lease grant serves a burst of one owner's
claims, and listings read only keys plus what changed since the last one.
Requests go over kept-alive connections (``_etcd_http``); the ``notifier``
is fed by an etcd watch (``_etcd_events``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import math
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator
from typing import Any, NamedTuple

from taskflow import exceptions as exc
from taskflow import logging
from taskflow.jobs import base
from taskflow.jobs.backends import _etcd_events
from taskflow.jobs.backends import _etcd_http
from taskflow.jobs.backends import _notifier

__all__ = ['EtcdJob', 'EtcdJobBoard']

LOG = logging.getLogger(__name__)

ROOT_PATH = '/taskflow'
JOB_PREFIX = 'jobs'
TRASH_PREFIX = '.trash'
HISTORY_PREFIX = '.history'
DEFAULT_PATH = 'jobboard'
#: Seconds an etcd request may take before the board reports a failure
#: (the original waits forever: an unreachable server must not hang us).
DEFAULT_TIMEOUT = 10.0
# wait() re-lists the board at least this often (seconds), and backs off
# this long after a watch that failed at once.
_WATCH_MAX = 5.0
# Claims by one owner with one expiry made within this many seconds of each
# other (and at most 5% of the expiry) share a lease: a claim ends at most
# this much early, and one grant serves a burst of claims.
_SHARED_LEASE_AGE = 0.25
_SHARED_LEASE_SHARE = 0.05
_POLL_DELAY = 0.05
_CLIENT_KEYS = ('host', 'port', 'protocol', 'ca_cert', 'cert_key',
                'cert_cert', 'api_path')


def _b64(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode('utf-8')
    return base64.b64encode(data).decode('ascii')


def _unb64(data: str | None) -> bytes:
    return base64.b64decode(data) if data else b''


def _prefix_end(prefix: str) -> str:
    """The range end covering every key that starts with ``prefix``."""
    raw = bytearray(prefix.encode('utf-8'))
    raw[-1] += 1
    return _b64(bytes(raw))


def _now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None).isoformat()


def _parse_time(value: Any) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def _ttl(expiry: float) -> int:
    """etcd leases are whole seconds; round up so a claim never ends early."""
    if isinstance(expiry, bool) or not isinstance(expiry, (int, float)):
        raise TypeError('Claim expiry must be a number of seconds, not %r'
                        % (expiry,))
    if not expiry > 0:
        raise ValueError('Claim expiry must be greater than zero seconds'
                         ' (got %r)' % (expiry,))
    return max(1, math.ceil(expiry))


class _KeyValue:
    """One key of a range response (decoded)."""

    __slots__ = ('key', 'value', 'create_revision', 'mod_revision', 'lease')

    def __init__(self, raw: dict) -> None:
        self.key = _unb64(raw.get('key')).decode('utf-8')
        self.value = _unb64(raw.get('value'))
        self.create_revision = int(raw.get('create_revision', 0))
        self.mod_revision = int(raw.get('mod_revision', 0))
        self.lease = int(raw.get('lease', 0))

    def json(self) -> Any:
        return json.loads(self.value.decode('utf-8'))


class _Held(NamedTuple):
    """A claim this process made (lets it end the claim in one request)."""

    who: str
    token: int           # the lock's create revision
    mod: int             # the lock's mod revision as last written by us
    lease: int
    record: str          # the history record's key
    record_value: dict


class EtcdJob(base.Job):
    """A job on an :class:`EtcdJobBoard`."""

    def __init__(self, board: EtcdJobBoard, name: str, uuid: str,
                 key: str, root: str, details: dict | None = None,
                 backend: Any = None, book: Any = None,
                 book_data: dict | None = None,
                 priority: base.JobPriority | str = base.JobPriority.NORMAL,
                 sequence: int = 0,
                 created_on: datetime.datetime | None = None) -> None:
        super().__init__(board, name, uuid, details=details, backend=backend,
                         book=book, book_data=book_data, priority=priority,
                         sequence=sequence, created_on=created_on)
        self._key = key
        self._root = root
        self._etcd = board  # typed: the board's etcd helpers
        self._held: _Held | None = None

    @property
    def key(self) -> str:
        """The job's key prefix (``<root>/job<N>``)."""
        return self._key

    @property
    def root(self) -> str:
        """The board's job prefix."""
        return self._root

    @property
    def lease(self) -> int | None:
        """The id of the lease the current claim lives on (``None`` if
        unclaimed or claimed without a lease)."""
        lock = self._etcd._get(self._key + '.lock')
        return (lock.lease or None) if lock is not None else None

    def expires_in(self) -> float:
        """Seconds until the current claim expires (-1 if unclaimed or it
        never expires)."""
        lease = self.lease
        if lease is None:
            return -1
        return float(self._etcd._lease_ttl(lease))

    def extend_expiry(self, expiry: float) -> bool:
        """Renew the current claim's lease (``True`` if it was still alive).

        Kept for the original's API: etcd renews a lease for the time it was
        granted, so ``expiry`` is not used; ``board.renew_claim`` also checks
        who holds the claim and can lengthen it.
        """
        lease = self.lease
        if lease is None:
            return False
        return self._etcd._keepalive(lease) > 0

    @property
    def last_modified(self) -> datetime.datetime | None:
        kv = self._etcd._get(self._key + '.last_modified')
        if kv is None:
            return None
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            return _parse_time(kv.json().get('last_modified'))
        return None

    @property
    def state(self) -> str:
        kvs = self._etcd._range_prefix(self._key + '.')
        names = {kv.key[len(self._key):] for kv in kvs}
        if '.data' not in names:
            return 'COMPLETE'
        return 'CLAIMED' if '.lock' in names else 'UNCLAIMED'


class EtcdJobBoard(base.JobBoard):
    """A jobboard on etcd, interoperable with the original's etcd board.

    ``conf`` keys: ``path`` (``'jobboard'``), ``host`` (``'localhost'``),
    ``port`` (2379), ``api_path`` (etcd3gw discovers it when absent),
    ``protocol`` (``'http'``/``'https'``), ``ca_cert``, ``cert_key``,
    ``cert_cert``, ``timeout`` (seconds per request, default 10) and ``ttl``
    (the default claim expiry in seconds; ``base.DEFAULT_CLAIM_EXPIRY`` when
    unset: claims always expire unless renewed).

    ``notifier`` emits ``POSTED`` and ``REMOVAL`` (``{'job': job}``) for
    every job posted, consumed or trashed on the board, by either
    implementation, from an etcd watch held by a background thread started
    when the first callback registers.
    """

    def __init__(self, name: str, conf: dict, client: Any = None,
                 persistence: Any = None) -> None:
        super().__init__(name, conf)
        path = str(conf.get('path') or DEFAULT_PATH).strip('/')
        if not path:
            raise ValueError('Jobboard %r: the etcd path must name something'
                             ' (got %r)' % (name, conf.get('path')))
        self._path = path
        self._root = '%s/%s/%s' % (ROOT_PATH, JOB_PREFIX, path)
        self._trash_root = '%s/%s/%s' % (ROOT_PATH, TRASH_PREFIX, path)
        self._history_root = '%s/%s/%s' % (ROOT_PATH, HISTORY_PREFIX, path)
        ttl = conf.get('ttl')
        self._default_expiry = (float(ttl) if ttl is not None
                                else base.DEFAULT_CLAIM_EXPIRY)
        self._persistence = persistence
        self._client = client
        self._owns_client = client is None
        # Requests go through this unless the caller gave an etcd3gw client.
        self._transport: _etcd_http.Transport | None = None
        self._connected = False
        self._lock = threading.RLock()
        self._last_sequence: int | None = None
        # (revision, {posting key: (mod revision, job fields or None)}) of
        # the last listing: see _listing_at.
        self._seen: tuple[int, dict[str, tuple[int, tuple | None]]] | None = (
            None)
        # (who, ttl) -> (lease id, granted at) of the owner's latest lease:
        # its next claims join it while it is young (see _take_lease).
        self._leases: dict[tuple[str, int], tuple[int, float]] = {}
        self.notifier = _notifier.WatchedNotifier(self._want_events)
        self._events_wanted = False
        self._watcher: _etcd_events.Watcher | None = None

    # -- connection -------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def path(self) -> str:
        """The board's path (its jobs live under ``/taskflow/jobs/<path>``)."""
        return self._path

    @property
    def root(self) -> str:
        """The key prefix of this board's jobs (``/taskflow/jobs/<path>``)."""
        return self._root

    def connect(self) -> None:
        """Build the etcd client (unless one was given) and check that the
        server answers; ``JobFailure`` if it does not."""
        with self._lock:
            if self._client is None:
                import etcd3gw  # only boards of this kind need it

                kwargs = {k: self._conf[k] for k in _CLIENT_KEYS
                          if self._conf.get(k) is not None}
                if 'port' in kwargs:
                    kwargs['port'] = int(kwargs['port'])
                timeout = self._conf.get('timeout')
                kwargs['timeout'] = (float(timeout) if timeout is not None
                                     else DEFAULT_TIMEOUT)
                self._client = etcd3gw.client(**kwargs)
                self._owns_client = True
            with self._wrap('connect to etcd'):
                self._client.status()  # also discovers the API path
                if self._owns_client and self._transport is None:
                    self._transport = self._make_transport()
            self._connected = True
            if self._events_wanted:
                self._start_watcher()

    def _make_transport(self) -> _etcd_http.Transport:
        client = self._client
        conf = self._conf
        return _etcd_http.Transport(
            client.host, client.port, client.api_path,
            protocol=client.protocol, timeout=client.timeout,
            ca_cert=conf.get('ca_cert'), cert_key=conf.get('cert_key'),
            cert_cert=conf.get('cert_cert'))

    def close(self) -> None:
        with self._lock:
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
        with self._lock:
            if self._transport is not None:
                self._transport.close()
                self._transport = None
            if self._client is not None and self._owns_client:
                with contextlib.suppress(Exception):
                    self._client.session.close()
                self._client = None
            self._seen = None
            self._connected = False

    @contextlib.contextmanager
    def _wrap(self, what: str) -> Iterator[None]:
        """Turn the client's errors into ``JobFailure`` (cause kept)."""
        import requests
        from etcd3gw import exceptions as etcd_exc

        try:
            yield
        except (etcd_exc.Etcd3Exception, requests.RequestException,
                _etcd_http.EtcdRequestError) as e:
            detail = ' '.join(str(a) for a in e.args if a) or type(e).__name__
            raise exc.JobFailure('Jobboard %r (etcd %s): failed to %s: %s'
                                 % (self._name, self._root, what,
                                    detail.strip()[:300]), cause=e) from e

    def _api(self, path: str, payload: dict, what: str) -> dict:
        if self._client is None:
            raise exc.JobFailure('Jobboard %r is not connected (call'
                                 ' connect() first)' % self._name)
        transport = self._transport
        with self._wrap(what):
            if transport is not None:
                return transport.post(path, payload)
            return self._client.post(self._client.get_url(path), json=payload)

    # -- notifications -----------------------------------------------------

    def _want_events(self) -> None:
        with self._lock:
            self._events_wanted = True
            if self._connected:
                self._start_watcher()

    def _start_watcher(self) -> None:
        # Called with self._lock held.
        if self._watcher is None:
            prefix = self._root + '/'
            self._watcher = _etcd_events.Watcher(
                self._name, _b64(prefix), _prefix_end(prefix),
                self._open_watch, self._on_watch_event)
            self._watcher.start()

    def _open_watch(self, payload: dict, read_timeout: float) -> Any:
        client = self._client
        if client is None:
            raise exc.JobFailure('Jobboard %r is not connected'
                                 % self._name)
        connect_timeout = client.timeout or DEFAULT_TIMEOUT
        return client.session.post(client.get_url('/watch'), json=payload,
                                   stream=True,
                                   timeout=(connect_timeout, read_timeout))

    def _on_watch_event(self, event: dict) -> None:
        """``POSTED`` for a created posting, ``REMOVAL`` for a deleted one
        (its last value comes with the event)."""
        removed = event.get('type') == 'DELETE'
        raw = event.get('prev_kv') if removed else event.get('kv')
        if not raw or not (removed or int(raw.get('version', 0)) == 1):
            return
        kv = _KeyValue(raw)
        stem, dot, suffix = kv.key[len(self._root) + 1:].rpartition('.')
        if not (suffix == 'data' and stem.startswith('job')
                and stem[3:].isdigit()):
            return
        job = self._job_from('%s/%s' % (self._root, stem), kv.json())
        self.notifier.notify(base.REMOVAL if removed else base.POSTED,
                             {'job': job})

    # -- raw key-value helpers ---------------------------------------------

    def _range_prefix(self, prefix: str, what: str = 'read the board'
                      ) -> list[_KeyValue]:
        return self._range_at(prefix, what)[0]

    def _range_at(self, prefix: str, what: str = 'read the board'
                  ) -> tuple[list[_KeyValue], int]:
        """The keys under ``prefix`` and the revision they were read at."""
        result = self._api('/kv/range', {'key': _b64(prefix),
                                         'range_end': _prefix_end(prefix)},
                           what)
        revision = int(result.get('header', {}).get('revision', 0))
        return [_KeyValue(kv) for kv in result.get('kvs', ())], revision

    def _get(self, key: str) -> _KeyValue | None:
        result = self._api('/kv/range', {'key': _b64(key)}, 'read %s' % key)
        kvs = result.get('kvs') or ()
        return _KeyValue(kvs[0]) if kvs else None

    def _txn(self, compare: list, success: list, failure: list,
             what: str) -> dict:
        return self._api('/kv/txn', {'compare': compare, 'success': success,
                                     'failure': failure}, what)

    def _grant(self, ttl: int, what: str) -> int:
        return int(self._api('/lease/grant', {'TTL': ttl, 'ID': 0},
                             what)['ID'])

    def _take_lease(self, who: str, ttl: int, what: str,
                    fresh: bool = False) -> int:
        """A lease of ``ttl`` seconds for a claim by ``who``: the one granted
        for ``who``'s previous claim if it is young enough, else a new one.

        Sharing a lease makes a claim end at most ``_SHARED_LEASE_AGE``
        seconds early (5% of ``ttl`` if less), and renewing one of the
        claims on it renews them all: only claims of one owner share.
        """
        now = time.monotonic()
        with self._lock:
            latest = self._leases.get((who, ttl))
        if not fresh and latest is not None and now - latest[1] < min(
                _SHARED_LEASE_AGE, ttl * _SHARED_LEASE_SHARE):
            return latest[0]
        lease = self._grant(ttl, what)
        with self._lock:
            # Forget leases too old to share (owners come and go).
            for key in [k for k, (_, at) in self._leases.items()
                        if now - at >= _SHARED_LEASE_AGE]:
                del self._leases[key]
            self._leases[(who, ttl)] = (lease, now)
        return lease

    def _revoke(self, lease: int) -> None:
        # Best effort: the lease expires on its own anyway.
        with contextlib.suppress(exc.JobFailure):
            self._api('/kv/lease/revoke', {'ID': lease}, 'revoke a lease')

    def _keepalive(self, lease: int) -> int:
        result = self._api('/lease/keepalive', {'ID': lease},
                           'renew a lease')
        return int(result.get('result', {}).get('TTL', -1))

    def _lease_ttl(self, lease: int) -> int:
        return int(self._api('/kv/lease/timetolive', {'ID': lease},
                             'read a lease').get('TTL', -1))

    @staticmethod
    def _put(key: str, value: Any, lease: int = 0) -> dict:
        data = value if isinstance(value, (str, bytes)) else json.dumps(value)
        op: dict[str, Any] = {'key': _b64(key), 'value': _b64(data)}
        if lease:
            op['lease'] = lease
        return {'request_put': op}

    @staticmethod
    def _delete(key: str, prefix: bool = False) -> dict:
        op = {'key': _b64(key)}
        if prefix:
            op['range_end'] = _prefix_end(key)
        return {'request_delete_range': op}

    @staticmethod
    def _read(key: str, prefix: bool = False, keys_only: bool = False,
              min_mod_revision: int = 0) -> dict:
        op: dict[str, Any] = {'key': _b64(key)}
        if prefix:
            op['range_end'] = _prefix_end(key)
        if keys_only:
            op['keys_only'] = True
        if min_mod_revision:
            op['min_mod_revision'] = min_mod_revision
        return {'request_range': op}

    @staticmethod
    def _compare(key: str, target: str, result: str, value: int) -> dict:
        field = {'CREATE': 'create_revision', 'MOD': 'mod_revision'}[target]
        return {'key': _b64(key), 'target': target, 'result': result,
                field: value}

    @staticmethod
    def _ranges(response: dict) -> list[list[_KeyValue]]:
        return [[_KeyValue(kv) for kv in
                 r.get('response_range', {}).get('kvs', ())]
                for r in response.get('responses', ())]

    # -- jobs ----------------------------------------------------------------

    def _job_from(self, key: str, data: dict, root: str | None = None
                  ) -> EtcdJob:
        return self._job_of(key, self._posting_fields(data), root)

    @staticmethod
    def _posting_fields(data: dict) -> tuple:
        """The parts of a posting a job is made of (what the listing
        caches: a posting never changes once written)."""
        return (data.get('name', ''), data['uuid'],
                data.get('details') or {}, data.get('book') or None,
                base.JobPriority.convert(data.get('priority', 'NORMAL')),
                int(data.get('sequence', 0)),
                _parse_time(data.get('created_on')))

    def _job_of(self, key: str, fields: tuple, root: str | None = None
                ) -> EtcdJob:
        name, job_uuid, details, book_data, priority, sequence, created = (
            fields)
        return EtcdJob(self, name, job_uuid, key, root or self._root,
                       details=details, backend=self._persistence,
                       book_data=book_data, priority=priority,
                       sequence=sequence, created_on=created)

    def _listing(self) -> tuple[list[EtcdJob], set[str]]:
        """The jobs on the board (sorted) and the keys of claimed ones."""
        jobs, locked, _ = self._listing_at()
        return jobs, locked

    def _listing_at(self) -> tuple[list[EtcdJob], set[str], int]:
        """:meth:`_listing` and the revision it was read at.

        Postings never change, so the board keeps the ones it decoded (with
        the revision of the listing that saw them): later listings read the
        board's keys without values and, in the same read-only transaction,
        the values of keys changed since then only.
        """
        prefix = self._root + '/'
        seen = self._seen
        if seen is None:
            keys, revision = self._range_at(prefix)
            changed = {kv.key: kv for kv in keys}
            known: dict[str, tuple[int, tuple | None]] = {}
        else:
            result = self._txn([], [
                self._read(prefix, True, keys_only=True),
                self._read(prefix, True, min_mod_revision=seen[0] + 1)],
                [], 'read the board')
            revision = int(result['header']['revision'])
            keys, fresh = self._ranges(result)
            changed = {kv.key: kv for kv in fresh}
            known = seen[1]
        jobs, locked = [], set()
        postings: dict[str, tuple[int, tuple | None]] = {}
        skip = len(self._root) + 1
        for kv in keys:
            stem, dot, suffix = kv.key[skip:].rpartition('.')
            # Only job<N>.data postings are jobs (other keys are ignored, as
            # the original ignores them).
            if not (dot and stem.startswith('job') and stem[3:].isdigit()):
                continue
            job_key = '%s/%s' % (self._root, stem)
            if suffix == 'lock':
                locked.add(job_key)
                continue
            if suffix != 'data':
                continue
            hit = known.get(kv.key)
            if hit is not None and hit[0] == kv.mod_revision:
                fields = hit[1]
            else:
                # Changed since the last listing (or not seen by it).
                full = changed.get(kv.key) or self._get(kv.key)
                fields = None
                if full is not None:
                    try:
                        fields = self._posting_fields(full.json())
                    except (ValueError, KeyError, TypeError) as e:
                        LOG.warning('Jobboard %r: skipping unreadable'
                                    ' posting %s: %s', self._name, kv.key, e)
            postings[kv.key] = (kv.mod_revision, fields)
            if fields is not None:
                jobs.append(self._job_of(job_key, fields))
        self._seen = (revision, postings)
        return sorted(jobs), locked, revision

    def post(self, name: str, book: Any = None, details: dict | None = None,
             priority: base.JobPriority | str = base.JobPriority.NORMAL
             ) -> EtcdJob:
        priority = base.JobPriority.convert(priority)
        job_uuid = str(uuidlib.uuid4())
        seq_key = self._root + '/sequence'
        # Guess the sequence from this board's last post: one request when
        # nobody else posted; a miss returns the current value to retry with.
        expected = self._last_sequence  # what the key holds (None: absent)
        sequence = (expected or 0) + 1
        while True:
            data: dict[str, Any] = {
                'uuid': job_uuid, 'name': name, 'priority': priority.value,
                'created_on': _now_iso(), 'details': details or {}}
            if book is not None:
                data['book'] = {'name': book.name, 'uuid': book.uuid}
            data['sequence'] = sequence
            job_key = '%s/job%d' % (self._root, sequence)
            guard = (self._compare(seq_key, 'CREATE', 'EQUAL', 0)
                     if expected is None else
                     {'key': _b64(seq_key), 'target': 'VALUE',
                      'result': 'EQUAL', 'value': _b64(str(expected))})
            result = self._txn(
                [guard, self._compare(job_key + '.data', 'CREATE', 'EQUAL',
                                      0)],
                [self._put(seq_key, str(sequence)),
                 self._put(job_key + '.data', data)],
                [self._read(seq_key)], 'post job %r' % name)
            if result.get('succeeded'):
                self._last_sequence = sequence
                break
            # Another poster took this sequence number: retry after theirs.
            current = self._ranges(result)[0]
            seen = int(current[0].value) if current else None
            if seen == expected:
                # The guess held but job<N> exists (the sequence key was
                # reset): skip that number rather than overwrite the job.
                sequence += 1
            else:
                expected, sequence = seen, (seen or 0) + 1
        return EtcdJob(self, name, job_uuid, job_key, self._root,
                       details=data['details'], backend=self._persistence,
                       book=book, book_data=data.get('book'),
                       priority=priority, sequence=sequence,
                       created_on=_parse_time(data['created_on']))

    def iterjobs(self, only_unclaimed: bool = False,
                 ensure_fresh: bool = False) -> Iterator[EtcdJob]:
        """The board's jobs, lowest priority and oldest first (read fresh
        from etcd every time, so ``ensure_fresh`` changes nothing)."""
        jobs, locked = self._listing()
        if only_unclaimed:
            jobs = [j for j in jobs if j.key not in locked]
        return iter(jobs)

    def wait(self, timeout: float | None = None) -> Iterator[EtcdJob]:
        """Block until a job exists (woken by an etcd watch on the board's
        keys, so a post elsewhere wakes it at once)."""
        start = time.monotonic()
        while True:
            jobs, _, revision = self._listing_at()
            if jobs:
                return iter(jobs)
            waited = time.monotonic() - start
            if timeout is not None and waited >= timeout:
                raise base.expired_waiting(timeout)
            left = _WATCH_MAX if timeout is None else min(timeout - waited,
                                                          _WATCH_MAX)
            if not self._watch(revision + 1, left):
                # The watch failed at once (not a timeout): do not spin.
                time.sleep(min(_POLL_DELAY * 10, left))

    def _watch(self, start_revision: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a change under the board's
        root from ``start_revision`` on; ``False`` if the watch failed
        before its time was up (the caller backs off)."""
        import requests

        client = self._client
        if client is None:
            raise exc.JobFailure('Jobboard %r is not connected (call'
                                 ' connect() first)' % self._name)
        prefix = self._root + '/'
        payload = {'create_request': {'key': _b64(prefix),
                                      'range_end': _prefix_end(prefix),
                                      'start_revision': start_revision}}
        began = time.monotonic()
        try:
            with self._wrap('watch the board'):
                url = client.get_url('/watch')
            # A read timeout ends the watch: every read waits at most the
            # time left (etcd sends nothing while nothing changes).
            with client.session.post(url, json=payload, stream=True,
                                     timeout=(timeout, timeout)) as resp:
                for line in resp.iter_lines():
                    if line and json.loads(line).get('result', {}).get(
                            'events'):
                        return True
                    if time.monotonic() - began >= timeout:
                        return True
        except (requests.RequestException, ValueError):
            pass
        return time.monotonic() - began >= timeout * 0.9

    @property
    def job_count(self) -> int:
        return len(self._listing()[0])

    def _check_job(self, job: base.Job) -> str:
        """The key of ``job``, which must be a job of an etcd board."""
        return self._etcd_job(job).key

    def _etcd_job(self, job: base.Job) -> EtcdJob:
        if not isinstance(job, EtcdJob):
            raise exc.NotFound('Job %s is not a job of etcd board %r'
                               % (getattr(job, 'uuid', job), self._name))
        return job

    def find_owner(self, job: base.Job) -> str | None:
        lock = self._get(self._check_job(job) + '.lock')
        return self._owner_of(lock)

    @staticmethod
    def _owner_of(lock: _KeyValue | None) -> str | None:
        if lock is None:
            return None
        try:
            return lock.json().get('owner')
        except (ValueError, AttributeError):
            return None

    def claim(self, job: base.Job, who: str, expiry: float | None = None
              ) -> None:
        """Claim ``job`` for ``who`` on a lease of ``expiry`` seconds
        (default: the ``ttl`` option, else ``base.DEFAULT_CLAIM_EXPIRY``);
        sets ``job.claim_token``."""
        base.check_who(who)
        key = self._check_job(job)
        ttl = _ttl(self._default_expiry if expiry is None else expiry)
        record = '%s/%s/%s' % (self._history_root, key.rsplit('/', 1)[1],
                               uuidlib.uuid4().hex)
        for fresh in (False, True):
            lease = self._take_lease(who, ttl, 'claim job %s' % job.uuid,
                                     fresh=fresh)
            claimed_at = time.time()
            try:
                result = self._txn(
                    [self._compare(key + '.lock', 'CREATE', 'EQUAL', 0),
                     self._compare(key + '.data', 'CREATE', 'GREATER', 0)],
                    [self._put(key + '.lock',
                               {'owner': who, 'lease_id': lease}, lease),
                     self._put(key + '.last_modified',
                               {'last_modified': _now_iso()}),
                     self._put(record,
                               {'who': who, 'claimed_at': claimed_at})],
                    [self._read(key + '.lock'),
                     self._read(key + '.data', keys_only=True)],
                    'claim job %s' % job.uuid)
                break
            except exc.JobFailure as e:
                # A shared lease that ended early (this process was paused
                # past it): try once more on a lease of its own.
                if fresh or 'lease not found' not in str(e):
                    raise
        if result.get('succeeded'):
            token = int(result['header']['revision'])
            job.claim_token = token
            self._etcd_job(job)._held = _Held(
                who, token, token, lease, record,
                {'who': who, 'claimed_at': claimed_at})
            return
        # The lease stays this owner's latest: its next claim may use it.
        lock, data = self._ranges(result)
        if not data:
            raise exc.NotFound('Job %s not found on board %r (consumed or'
                               ' trashed)' % (job.uuid, self._name))
        raise exc.UnclaimableJob('Job %s already claimed by %r'
                                 % (job.uuid, self._owner_of(lock[0]) if lock
                                    else None))

    def renew_claim(self, job: base.Job, who: str,
                    expiry: float | None = None) -> None:
        """Keep ``who``'s claim of ``job`` alive for ``expiry`` more seconds
        (``JobFailure`` if ``who`` no longer holds it)."""
        base.check_who(who)
        key = self._check_job(job)
        ttl = _ttl(self._default_expiry if expiry is None else expiry)
        lock, _ = self._owned_lock(job, key, who, 'renew the claim of')
        if not lock.lease:
            return  # claimed without a lease (by the original): never expires
        left = self._keepalive(lock.lease)
        if left <= 0:
            raise exc.JobFailure('Job %s: the claim of %r expired before it'
                                 ' was renewed' % (job.uuid, who))
        if left >= ttl:
            return
        # A longer expiry than the lease was granted with: move the lock to
        # a new lease (same key, so the claim token does not change).
        lease = self._grant(ttl, 'renew the claim of job %s' % job.uuid)
        result = self._txn(
            [self._compare(key + '.lock', 'MOD', 'EQUAL', lock.mod_revision)],
            [self._put(key + '.lock', {'owner': who, 'lease_id': lease},
                       lease)], [], 'renew the claim of job %s' % job.uuid)
        if not result.get('succeeded'):
            self._revoke(lease)
            raise exc.JobFailure('Job %s: %r lost its claim while renewing'
                                 ' it' % (job.uuid, who))
        held = self._etcd_job(job)._held
        if held is not None and held.token == lock.create_revision:
            self._etcd_job(job)._held = held._replace(
                mod=int(result['header']['revision']), lease=lease)
        # The old lease is left to expire: other claims of ``who`` may
        # share it.

    def _owned_lock(self, job: base.Job, key: str, who: str,
                    what: str) -> tuple[_KeyValue, list[_KeyValue]]:
        """The lock of ``job`` if ``who`` holds it (else the right error),
        and the job's history records (one read)."""
        result = self._txn([], [self._read(key + '.lock'),
                                self._read(key + '.data'),
                                self._read(self._record_prefix(key), True)],
                           [], '%s job %s' % (what, job.uuid))
        lock, data, records = self._ranges(result)
        if not data:
            raise exc.NotFound('Job %s not found on board %r (consumed or'
                               ' trashed)' % (job.uuid, self._name))
        owner = self._owner_of(lock[0]) if lock else None
        if owner is None:
            raise exc.JobFailure('Cannot %s job %s: it is not claimed'
                                 % (what, job.uuid))
        if owner != who:
            raise exc.JobFailure('Cannot %s job %s: it is owned by %r, not'
                                 ' %r' % (what, job.uuid, owner, who))
        token = getattr(job, 'claim_token', None)
        if token is not None and token != lock[0].create_revision:
            raise exc.JobFailure('Cannot %s job %s: the claim of %r (token'
                                 ' %s) was lost, the job was claimed again'
                                 ' (token %s)' % (what, job.uuid, who, token,
                                                  lock[0].create_revision))
        return lock[0], records

    def _end_claim(self, job: base.Job, who: str, what: str, outcome: str,
                   reason: str | None, changes: list,
                   keep_history: bool = True) -> None:
        """End ``who``'s claim of ``job`` with ``changes`` (one guarded
        transaction that also closes the claim's history record).

        The claim's lease is left to expire: no key is attached to it any
        more, and revoking it would cost another request per job.
        """
        base.check_who(who)
        key = self._check_job(job)
        held = self._etcd_job(job)._held
        if (held is not None and held.who == who
                and held.token == job.claim_token):
            # This process made the claim: one guarded write, no reads.
            ended = ([self._put(held.record, dict(
                held.record_value, ended_at=time.time(), outcome=outcome,
                reason=reason))] if keep_history else [])
            result = self._txn(
                [self._compare(key + '.lock', 'MOD', 'EQUAL', held.mod)],
                changes + ended, [], '%s job %s' % (what, job.uuid))
            if result.get('succeeded'):
                job.claim_token = None
                self._etcd_job(job)._held = None
                return
            # Changed under us: read it and say why (or go on if it is ours).
        lock, records = self._owned_lock(job, key, who, what)
        ended = []
        for kv in records if keep_history else ():
            if kv.create_revision == lock.create_revision:
                record = kv.json()
                record.update(ended_at=time.time(), outcome=outcome,
                              reason=reason)
                ended.append(self._put(kv.key, record))
        result = self._txn(
            [self._compare(key + '.lock', 'MOD', 'EQUAL', lock.mod_revision)],
            changes + ended, [], '%s job %s' % (what, job.uuid))
        if not result.get('succeeded'):
            raise exc.JobFailure('Cannot %s job %s: %r lost its claim'
                                 % (what, job.uuid, who))
        job.claim_token = None
        self._etcd_job(job)._held = None

    def _record_prefix(self, key: str) -> str:
        return '%s/%s/' % (self._history_root, key.rsplit('/', 1)[1])

    def consume(self, job: base.Job, who: str) -> None:
        key = self._check_job(job)
        # A consumed job is gone: so is its history (boards live long).
        self._end_claim(job, who, 'consume', 'consumed', None,
                        [self._delete(key + '.data'),
                         self._delete(key + '.lock'),
                         self._delete(key + '.last_modified'),
                         self._delete(self._record_prefix(key), prefix=True)],
                        keep_history=False)

    def abandon(self, job: base.Job, who: str, reason: str | None = None
                ) -> None:
        key = self._check_job(job)
        self._end_claim(job, who, 'abandon', 'abandoned', reason,
                        [self._delete(key + '.lock')])

    def trash(self, job: base.Job, who: str, reason: str | None = None
              ) -> None:
        key = self._check_job(job)
        trash_key = '%s/%s' % (self._trash_root, key.rsplit('/', 1)[1])
        base.check_who(who)
        data = self._get(key + '.data')
        if data is None:
            raise exc.NotFound('Job %s not found on board %r (consumed or'
                               ' trashed)' % (job.uuid, self._name))
        self._end_claim(job, who, 'trash', 'trashed', reason,
                        [self._put(trash_key, data.value),
                         self._delete(key + '.data'),
                         self._delete(key + '.lock'),
                         self._delete(key + '.last_modified')])

    def history(self, job: base.Job) -> list[base.Attempt]:
        key = self._check_job(job)
        lock = self._get(key + '.lock')
        records = sorted(self._range_prefix(self._record_prefix(key)),
                         key=lambda kv: kv.create_revision)
        attempts = []
        for kv in records:
            try:
                r = kv.json()
            except ValueError:
                continue
            attempts.append(base.Attempt(
                r.get('who', ''), float(r.get('claimed_at', 0)),
                kv.create_revision, r.get('ended_at'), r.get('outcome'),
                r.get('reason')))
        if lock is not None and lock.create_revision not in {
                a.token for a in attempts}:
            # Claimed by the original (it keeps no history).
            attempts.append(base.Attempt(self._owner_of(lock) or '',
                                         time.time(), lock.create_revision))
        attempts = base.lost_attempts(attempts)
        if attempts and attempts[-1].outcome is None and (
                lock is None or lock.create_revision != attempts[-1].token):
            # Expired, or released by a board that keeps no history.
            attempts[-1] = attempts[-1]._replace(outcome='lost')
        return attempts

    def iter_trashed(self) -> Iterator[EtcdJob]:
        """The trashed jobs (the dead-letter), oldest first."""
        jobs = []
        for kv in self._range_prefix(self._trash_root + '/'):
            stem = kv.key.rsplit('/', 1)[1]
            try:
                jobs.append(self._job_from('%s/%s' % (self._root, stem),
                                           kv.json()))
            except (ValueError, KeyError, TypeError) as e:
                LOG.warning('Jobboard %r: skipping unreadable trashed'
                            ' posting %s: %s', self._name, kv.key, e)
        return iter(sorted(jobs, key=lambda j: j.sequence))

    def register_entity(self, entity: Any) -> None:
        """Conductors register themselves; etcd boards keep no registry."""
        LOG.debug('Jobboard %r: entity %s registered', self._name,
                  getattr(entity, 'name', entity))
