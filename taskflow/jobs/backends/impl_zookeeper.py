"""A jobboard on ZooKeeper (kazoo), laid out as the original's.

Layout under the board's ``path`` (default ``/taskflow/jobs``), shared with
the original TaskFlow so both list, claim, consume, abandon and trash each
other's jobs::

    <path>/job0000000007         persistent, sequenced: the posting (JSON
                                 {uuid, name, priority, details[, book]})
    <path>/job0000000007.lock    ephemeral: the claim ({"owner": who, ...})
    <parent>/.trash/job0000000007   a trashed posting
    <parent>/.entities/<kind>/<name> ephemeral: registered entities

taskflow-ng adds, where the original never looks:

* extra keys in the lock's JSON (``expiry``, ``token``, ``claimed_at``):
  a claim ends when its session dies *or* when ``expiry`` seconds pass
  after the lock's last write (its ``mtime``, stamped by the server) without
  ``renew_claim``; a later claimer replaces an expired lock in a versioned
  transaction. Expiry is judged on the server's clock (each board measures
  its offset to it on connect and on renewals), so claimers on hosts whose
  clocks disagree still agree on when a claim ends. The original's locks
  carry no expiry: they last for their session, as the original expects.
* ``<parent>/.taskflow-ng/<basename of path>/job0000000007`` (persistent):
  the job's claim token counter and its history of attempts, changed in the
  same transaction as the lock, so tokens strictly increase per job. Kept
  for trashed jobs (the dead-letter's history), removed on consume.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import posixpath
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator
from typing import Any

from taskflow import exceptions as exc
from taskflow import logging
from taskflow.jobs import base
from taskflow.utils import kazoo_utils

try:
    from kazoo import exceptions as k_exc
except ImportError as e:  # the 'zookeeper' extra is missing
    raise ImportError('The ZooKeeper jobboard needs kazoo, which is not'
                      ' installed: pip install taskflow[zookeeper]') from e

LOG = logging.getLogger(__name__)

__all__ = ['ZookeeperJob', 'ZookeeperJobBoard']


def _to_json(value: Any) -> bytes:
    return json.dumps(value).encode('utf-8')


def _from_json(raw: bytes, what: str) -> dict:
    try:
        value = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as e:
        raise exc.JobFailure('Unreadable data in %s: %s' % (what, e)) from e
    if not isinstance(value, dict):
        raise exc.JobFailure('Unreadable data in %s: not a JSON object'
                             % what)
    return value


def _ms_to_datetime(ms: int) -> datetime.datetime:
    # Naive UTC, as the original gives.
    return datetime.datetime.fromtimestamp(
        ms / 1000.0, tz=datetime.timezone.utc).replace(tzinfo=None)


def _check_expiry(expiry: float | None) -> float:
    if expiry is None:
        return base.DEFAULT_CLAIM_EXPIRY
    try:
        value = float(expiry)
    except (TypeError, ValueError):
        raise ValueError('Claim expiry must be a number of seconds, not %r'
                         % (expiry,)) from None
    if not value > 0:
        raise ValueError('Claim expiry must be positive, not %r' % (expiry,))
    return value


class _Lock:
    """A job's lock node as read: who holds it, until when (ng locks)."""

    def __init__(self, data: dict, stat: Any, server_now: float) -> None:
        self.owner = data.get('owner')
        self.expiry = data.get('expiry')
        self.token = data.get('token')
        self.data = data
        self.stat = stat
        self._server_now = server_now

    def expired(self) -> bool:
        if not isinstance(self.expiry, (int, float)):
            return False  # the original's locks last for their session
        return self._server_now >= self.stat.mtime / 1000.0 + self.expiry


class ZookeeperJob(base.Job):
    """A job posted on a :class:`ZookeeperJobBoard` (one znode)."""

    def __init__(self, board: ZookeeperJobBoard, name: str, uuid: str,
                 path: str, details: dict | None = None, backend: Any = None,
                 book_data: dict | None = None,
                 priority: base.JobPriority | str = base.JobPriority.NORMAL,
                 created_on: datetime.datetime | None = None,
                 last_modified: datetime.datetime | None = None,
                 trashed: bool = False) -> None:
        node = posixpath.basename(path)
        try:
            sequence = int(node[len(board.JOB_PREFIX):])
        except ValueError:
            sequence = 0
        super().__init__(board, name, uuid, details=details, backend=backend,
                         book_data=book_data, priority=priority,
                         sequence=sequence, created_on=created_on)
        self._path = path
        self._node = node
        self._last_modified = last_modified
        self._trashed = trashed

    @property
    def path(self) -> str:
        """The job's znode."""
        return self._path

    @property
    def lock_path(self) -> str:
        """The znode of the job's claim (exists while claimed)."""
        return self._path + self._board.LOCK_POSTFIX

    @property
    def last_modified(self) -> datetime.datetime | None:
        return self._last_modified

    @property
    def state(self) -> str:
        if self._trashed:
            return 'COMPLETE'
        return self._board._job_state(self)


class ZookeeperJobBoard(base.NotifyingJobBoard):
    """A jobboard on ZooKeeper, compatible with the original's.

    ``conf`` keys: ``path`` (``'/taskflow/jobs'``; absolute, non-empty),
    ``hosts`` (``'localhost:2181'``), ``timeout`` (session timeout, seconds),
    ``handler``, ``check_compatible`` (``True``: refuse servers older than
    3.4), ``operation_timeout`` (seconds one request may take before the
    board reports ``JobFailure``; default 10), and kazoo's TLS keys
    (``use_ssl``, ``keyfile``, ``keyfile_password``, ``certfile``, ``ca``,
    ``verify_certs``).
    """

    TRASH_FOLDER = '.trash'
    ENTITY_FOLDER = '.entities'
    NG_FOLDER = '.taskflow-ng'
    JOB_PREFIX = 'job'
    LOCK_POSTFIX = '.lock'
    MIN_ZK_VERSION = (3, 4, 0)
    DEFAULT_PATH = '/taskflow/jobs'

    def __init__(self, name: str, conf: dict, client: Any = None,
                 persistence: Any = None,
                 emit_notifications: bool = True) -> None:
        super().__init__(name, conf)
        path = conf.get('path', self.DEFAULT_PATH)
        if not path:
            raise ValueError('Empty zookeeper path is disallowed')
        if not posixpath.isabs(path):
            raise ValueError('Zookeeper path must be absolute')
        path = posixpath.normpath(path)
        self._path = path
        parent = posixpath.dirname(path)
        self._trash_path = posixpath.join(parent, self.TRASH_FOLDER)
        self._entity_path = posixpath.join(parent, self.ENTITY_FOLDER)
        self._ng_path = posixpath.join(parent, self.NG_FOLDER,
                                       posixpath.basename(path) or 'root')
        if client is not None:
            self._client = client
            self._owned = False
        else:
            if 'hosts' not in conf and conf.get('hostname'):
                # A URI's host (zookeeper://host:port/?path=...); the
                # original ignores it and goes to localhost:2181.
                conf = dict(conf, hosts=conf['hostname'])
            self._client = kazoo_utils.make_client(conf)
            self._owned = True
        self._persistence = persistence
        self._emit_notifications = bool(emit_notifications)
        self._op_timeout = float(conf.get('operation_timeout',
                                          conf.get('timeout', 10.0)))
        self._connected = False
        self._clock_offset = time.time() - time.monotonic()
        self._known: dict[str, ZookeeperJob] = {}
        self._known_lock = threading.RLock()
        self._changed = threading.Condition()
        self._watching = False

    # -- paths and conveniences ------------------------------------------

    @property
    def path(self) -> str:
        """Where the board's jobs live."""
        return self._path

    @property
    def trash_path(self) -> str:
        """Where trashed jobs go (shared with the original)."""
        return self._trash_path

    @property
    def entity_path(self) -> str:
        return self._entity_path

    @property
    def connected(self) -> bool:
        return self._connected and self._client.connected

    def _meta_path(self, node: str) -> str:
        return posixpath.join(self._ng_path, node)

    def _is_job_node(self, child: str) -> bool:
        return (child.startswith(self.JOB_PREFIX)
                and not child.endswith(self.LOCK_POSTFIX))

    @contextlib.contextmanager
    def _wrapped(self, what: str) -> Iterator[None]:
        """Report a ZooKeeper/connection problem as ``JobFailure``."""
        try:
            yield
        except exc.TaskFlowException:
            raise
        except (k_exc.KazooException, k_exc.ZookeeperError, OSError) as e:
            raise exc.JobFailure('%s on ZooKeeper board %r (%s) failed: %s: %s'
                                 % (what, self.name, self._path,
                                    type(e).__name__, e), cause=e) from e
        except Exception as e:
            # The handler's own timeout class (kazoo's KazooTimeoutError
            # derives from KazooException, gevent's does not).
            if 'timeout' in type(e).__name__.lower():
                raise exc.JobFailure('%s on ZooKeeper board %r (%s) timed'
                                     ' out after %ss' % (what, self.name,
                                                         self._path,
                                                         self._op_timeout),
                                     cause=e) from e
            raise

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        # The async form, so a request never outlives operation_timeout
        # (the sync ones wait for as long as the connection is retried).
        result = getattr(self._client, method + '_async')(*args, **kwargs)
        return result.get(timeout=self._op_timeout)

    def _commit(self, txn: Any) -> list:
        return txn.commit_async().get(timeout=self._op_timeout)

    def _ensure_connected(self, what: str) -> None:
        if not self._connected:
            raise exc.JobFailure('%s: ZooKeeper board %r is not connected'
                                 % (what, self.name))

    # -- connection --------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> None:
        """Start the client (unless it is up) and make the board's paths."""
        if self._connected:
            return
        with self._wrapped('Connecting'):
            if not self._client.connected:
                try:
                    self._client.start(timeout=timeout)
                except Exception as e:
                    with contextlib.suppress(Exception):
                        self._client.stop()
                    raise exc.JobFailure(
                        'Failed to connect ZooKeeper board %r to %s: %s: %s'
                        % (self.name, self._conf.get('hosts',
                                                     'localhost:2181'),
                           type(e).__name__, e), cause=e) from e
            if kazoo_utils._bool_from(self._conf.get('check_compatible',
                                                     True)):
                kazoo_utils.check_compatible(self._client,
                                             self.MIN_ZK_VERSION)
            for path in (self._path, self._trash_path, self._ng_path):
                self._client.ensure_path(path)
            self._measure_clock()
            self._prune_histories()
        self._connected = True
        with self._known_lock:
            self._known.clear()
        self._watching = True
        self._client.ChildrenWatch(self._path, self._on_children)

    def _measure_clock(self) -> None:
        """Learn the offset of the server's clock to ours (monotonic).

        The server stamps a write's ``mtime`` before we get the reply, so
        ``mtime - reply time`` never overstates the offset: our estimate of
        the server's time lags (by the round trip at most), and a claim is
        judged expired late rather than early. Best of three writes.
        """
        offsets = []
        for _ in range(3):
            stat = self._client.set(self._ng_path, b'')
            offsets.append(stat.mtime / 1000.0 - time.monotonic())
        self._clock_offset = max(offsets)

    def _server_now(self) -> float:
        """The server's current time (epoch seconds), as estimated."""
        return time.monotonic() + self._clock_offset

    def _prune_histories(self) -> None:
        """Drop the histories of jobs gone from the board and the trash
        (consumed by the original, which does not know about them)."""
        histories = self._client.get_children(self._ng_path)
        if not histories:
            return
        # Listed after the histories: a job claimed meanwhile is seen.
        alive = set(self._client.get_children(self._path))
        alive.update(self._client.get_children(self._trash_path))
        for node in histories:
            if node not in alive:
                with contextlib.suppress(k_exc.NoNodeError):
                    self._client.delete(self._meta_path(node))

    def close(self) -> None:
        """Stop watching; stop the client if the board made it."""
        self._watching = False
        if self._owned:
            with contextlib.suppress(Exception):
                kazoo_utils.finalize_client(self._client)
        self._connected = False
        with self._known_lock:
            self._known.clear()
        with self._changed:
            self._changed.notify_all()

    # -- listing -------------------------------------------------------------

    def _on_children(self, children: list[str]) -> bool | None:
        if not self._watching:
            return False  # stops kazoo's watch
        try:
            self._refresh(children)
        except Exception:
            LOG.warning('ZooKeeper board %r: could not refresh its jobs after'
                        ' a change', self.name, exc_info=True)
        with self._changed:
            self._changed.notify_all()
        return None

    def _load_job(self, node: str) -> ZookeeperJob | None:
        path = posixpath.join(self._path, node)
        try:
            raw, stat = self._call('get', path)
        except k_exc.NoNodeError:
            return None
        return self._job_from(path, raw, stat, 'job %s' % path)

    def _job_from(self, path: str, raw: bytes, stat: Any, what: str,
                  trashed: bool = False) -> ZookeeperJob | None:
        try:
            posting = _from_json(raw, what)
            return ZookeeperJob(
                self, posting['name'], posting['uuid'], path,
                details=posting.get('details') or {},
                backend=self._persistence,
                book_data=posting.get('book'),
                priority=posting.get('priority', 'NORMAL'),
                created_on=_ms_to_datetime(stat.ctime),
                last_modified=_ms_to_datetime(stat.mtime),
                trashed=trashed)
        except (exc.JobFailure, KeyError, ValueError) as e:
            LOG.warning('ZooKeeper board %r: skipping unreadable %s: %s',
                        self.name, what, e)
            return None

    def _refresh(self, children: list[str]) -> list[ZookeeperJob]:
        """Bring the known jobs in line with ``children``; notify changes."""
        nodes = {c for c in children if self._is_job_node(c)}
        posted: list[ZookeeperJob] = []
        removed: list[ZookeeperJob] = []
        with self._known_lock:
            for node in list(self._known):
                if node not in nodes:
                    removed.append(self._known.pop(node))
            missing = [n for n in nodes if n not in self._known]
        for node in missing:
            job = self._load_job(node)
            if job is None:
                continue
            with self._known_lock:
                if node not in self._known:
                    self._known[node] = job
                    posted.append(job)
        if self._emit_notifications:
            for job in posted:
                self.notifier.notify(base.POSTED, {'job': job})
            for job in removed:
                self.notifier.notify(base.REMOVAL, {'job': job})
        with self._known_lock:
            return [self._known[n] for n in nodes if n in self._known]

    def _list(self) -> tuple[list[ZookeeperJob], set[str]]:
        """The current jobs and the nodes of the locked ones."""
        self._ensure_connected('Listing jobs')
        with self._wrapped('Listing jobs'):
            children = self._call('get_children', self._path)
            jobs = self._refresh(children)
        locked = {c[:-len(self.LOCK_POSTFIX)] for c in children
                  if c.endswith(self.LOCK_POSTFIX)}
        # Highest priority first, oldest first within a priority.
        jobs.sort(key=lambda j: (base._RANK[j.priority], j.sequence))
        return jobs, locked

    def iterjobs(self, only_unclaimed: bool = False,
                 ensure_fresh: bool = False) -> Iterator[ZookeeperJob]:
        """The board's jobs (always listed afresh: one request), highest
        priority first; ``only_unclaimed`` skips held claims."""
        jobs, locked = self._list()
        for job in jobs:
            if only_unclaimed and job._node in locked:
                try:
                    if self._read_lock(job) is not None:
                        continue
                except exc.JobFailure:
                    continue
            yield job

    @property
    def job_count(self) -> int:
        return len(self._list()[0])

    def wait(self, timeout: float | None = None) -> Iterator[ZookeeperJob]:
        """Block until a job is on the board (woken by a watch)."""
        start = time.monotonic()
        while True:
            jobs, _ = self._list()
            if jobs:
                return iter(jobs)
            left = None
            if timeout is not None:
                left = timeout - (time.monotonic() - start)
                if left <= 0:
                    raise base.expired_waiting(timeout)
            with self._changed:
                # Re-list at least every second in case a watch was missed
                # (e.g. across a reconnection).
                self._changed.wait(1.0 if left is None else min(left, 1.0))

    # -- claims --------------------------------------------------------------

    def _read_lock(self, job: ZookeeperJob, include_expired: bool = False
                   ) -> _Lock | None:
        with self._wrapped('Reading the claim of job %s' % job.uuid):
            try:
                raw, stat = self._call('get', job.lock_path)
            except k_exc.NoNodeError:
                return None
        try:
            lock = _Lock(_from_json(raw, 'the lock of job %s' % job.uuid),
                         stat, self._server_now())
        except exc.JobFailure:
            # Held by someone we cannot name.
            lock = _Lock({}, stat, self._server_now())
        if lock.expired() and not include_expired:
            return None
        return lock

    def _job_exists(self, job: ZookeeperJob) -> bool:
        with self._wrapped('Looking up job %s' % job.uuid):
            return self._call('exists', job.path) is not None

    def _job_state(self, job: ZookeeperJob) -> str:
        if not self._job_exists(job):
            return 'COMPLETE'
        return 'UNCLAIMED' if self._read_lock(job) is None else 'CLAIMED'

    def find_owner(self, job: ZookeeperJob) -> str | None:
        """Who holds ``job``'s claim (``None`` if unclaimed or expired)."""
        self._ensure_connected('Finding the owner of job %s' % job.uuid)
        lock = self._read_lock(job)
        return None if lock is None else lock.owner

    def _read_meta(self, node: str) -> tuple[dict, Any]:
        try:
            raw, stat = self._call('get', self._meta_path(node))
        except k_exc.NoNodeError:
            return {}, None
        try:
            return _from_json(raw, 'the history of %s' % node), stat
        except exc.JobFailure:
            return {}, stat  # start afresh rather than block the job

    def claim(self, job: ZookeeperJob, who: str,
              expiry: float | None = None) -> None:
        """Claim ``job`` for ``who`` for ``expiry`` seconds (bounded by the
        session); sets ``job.claim_token``."""
        base.check_who(who)
        expiry = _check_expiry(expiry)
        self._ensure_connected('Claiming job %s' % job.uuid)
        for _ in range(10):
            lock = self._read_lock(job, include_expired=True)
            if lock is not None and not lock.expired():
                raise exc.UnclaimableJob(
                    'Job %s (%s) is already claimed by %r'
                    % (job.uuid, job.name, lock.owner))
            with self._wrapped('Claiming job %s' % job.uuid):
                meta, meta_stat = self._read_meta(job._node)
                now = time.time()
                token = int(meta.get('token', 0)) + 1
                attempts = list(meta.get('attempts', []))
                attempts.append({'who': who, 'claimed_at': now,
                                 'token': token})
                meta = {'uuid': job.uuid, 'token': token,
                        'attempts': attempts}
                txn = self._client.transaction()
                txn.check(job.path, -1)
                if lock is not None:
                    txn.delete(job.lock_path, lock.stat.version)
                txn.create(job.lock_path,
                           _to_json({'owner': who, 'expiry': expiry,
                                     'token': token, 'claimed_at': now}),
                           ephemeral=True)
                if meta_stat is None:
                    txn.create(self._meta_path(job._node), _to_json(meta))
                else:
                    txn.set_data(self._meta_path(job._node), _to_json(meta),
                                 meta_stat.version)
                results = self._commit(txn)
            failures = [r for r in results if isinstance(r, Exception)
                        and not isinstance(r, k_exc.RolledBackError)]
            if not failures:
                job.claim_token = token
                return
            if isinstance(results[0], k_exc.NoNodeError):
                raise exc.NotFound('Claiming failure: job %s (%s) is not on'
                                   ' the board (consumed or trashed)'
                                   % (job.uuid, job.path))
            # Someone else changed the lock or the history first: look again.
            LOG.debug('Claim of job %s raced (%s); retrying', job.uuid,
                      failures)
        raise exc.UnclaimableJob('Job %s (%s) could not be claimed: the claim'
                                 ' kept changing' % (job.uuid, job.name))

    def _owned_lock(self, job: ZookeeperJob, who: str, action: str) -> _Lock:
        """``who``'s live lock of ``job``, else the error the spec gives."""
        base.check_who(who)
        self._ensure_connected('Can not %s job %s' % (action, job.uuid))
        lock = self._read_lock(job, include_expired=True)
        if lock is None:
            if not self._job_exists(job):
                raise exc.NotFound('Can not %s a job %s (%s) which is not on'
                                   ' the board' % (action, job.uuid,
                                                   job.path))
            raise exc.JobFailure('Can not %s a job %s which is not claimed'
                                 ' (by %s or anyone)' % (action, job.uuid,
                                                         who))
        if lock.owner != who:
            raise exc.JobFailure('Can not %s a job %s which is not owned by'
                                 ' %s (owner: %s)' % (action, job.uuid, who,
                                                      lock.owner))
        if lock.expired():
            raise exc.JobFailure('Can not %s a job %s: the claim of %s'
                                 ' expired' % (action, job.uuid, who))
        return lock

    def _end_attempt(self, txn: Any, job: ZookeeperJob, lock: _Lock,
                     outcome: str, reason: str | None) -> None:
        """Add to ``txn`` the record of how ``lock``'s claim ended."""
        meta, meta_stat = self._read_meta(job._node)
        if meta_stat is None:
            return
        attempts = meta.get('attempts', [])
        for attempt in reversed(attempts):
            if attempt.get('token') == lock.token and lock.token is not None:
                attempt.update(ended_at=time.time(), outcome=outcome,
                               reason=reason)
                break
        txn.set_data(self._meta_path(job._node), _to_json(meta),
                     meta_stat.version)

    def _finish(self, txn: Any, job: ZookeeperJob, action: str) -> None:
        with self._wrapped('%s job %s' % (action.capitalize(), job.uuid)):
            results = self._commit(txn)
        self._check_results(results, job, action)

    def _check_results(self, results: list, job: ZookeeperJob,
                       action: str) -> None:
        failures = [r for r in results if isinstance(r, Exception)
                    and not isinstance(r, k_exc.RolledBackError)]
        if failures:
            raise exc.JobFailure('Can not %s job %s: it changed meanwhile'
                                 ' (%s)' % (action, job.uuid, ', '.join(
                                     type(f).__name__ for f in failures)))

    def renew_claim(self, job: ZookeeperJob, who: str,
                    expiry: float | None = None) -> None:
        """Extend ``who``'s live claim of ``job`` by ``expiry`` seconds."""
        expiry = _check_expiry(expiry)
        lock = self._owned_lock(job, who, 'renew the claim of')
        data = dict(lock.data, expiry=expiry)
        with self._wrapped('Renewing the claim of job %s' % job.uuid):
            try:
                stat = self._call('set', job.lock_path, _to_json(data),
                                  lock.stat.version)
                self._clock_offset = stat.mtime / 1000.0 - time.monotonic()
            except (k_exc.BadVersionError, k_exc.NoNodeError) as e:
                raise exc.JobFailure('Can not renew the claim of job %s: %s'
                                     ' lost it meanwhile' % (job.uuid, who),
                                     cause=e) from e

    def consume(self, job: ZookeeperJob, who: str) -> None:
        """``who`` is done: the job (and its history) leave the board."""
        lock = self._owned_lock(job, who, 'consume')
        # An ng claim made the history node in its transaction: delete it in
        # the same one (unless it went missing; then without it).
        for with_meta in ((True, False) if lock.token is not None
                          else (False,)):
            with self._wrapped('Consuming job %s' % job.uuid):
                txn = self._client.transaction()
                txn.delete(job.lock_path, lock.stat.version)
                txn.delete(job.path, -1)
                if with_meta:
                    txn.delete(self._meta_path(job._node), -1)
                results = self._commit(txn)
            if with_meta and isinstance(results[-1], k_exc.NoNodeError):
                continue
            self._check_results(results, job, 'consume')
            break
        self._forget(job)

    def abandon(self, job: ZookeeperJob, who: str,
                reason: str | None = None) -> None:
        """``who`` gives ``job`` back, unclaimed."""
        lock = self._owned_lock(job, who, 'abandon')
        with self._wrapped('Abandoning job %s' % job.uuid):
            txn = self._client.transaction()
            txn.delete(job.lock_path, lock.stat.version)
            self._end_attempt(txn, job, lock, 'abandoned', reason)
        self._finish(txn, job, 'abandon')

    def trash(self, job: ZookeeperJob, who: str,
              reason: str | None = None) -> None:
        """Move ``job`` to the trash (``<parent>/.trash``), history kept."""
        lock = self._owned_lock(job, who, 'trash')
        with self._wrapped('Trashing job %s' % job.uuid):
            try:
                raw, _ = self._call('get', job.path)
            except k_exc.NoNodeError:
                raise exc.NotFound('Can not trash a job %s (%s) which is'
                                   ' not on the board' % (job.uuid,
                                                          job.path)) from None
            txn = self._client.transaction()
            txn.create(posixpath.join(self._trash_path, job._node), raw)
            txn.delete(job.lock_path, lock.stat.version)
            txn.delete(job.path, -1)
            self._end_attempt(txn, job, lock, 'trashed', reason)
        self._finish(txn, job, 'trash')
        self._forget(job)

    def _forget(self, job: ZookeeperJob) -> None:
        with self._known_lock:
            gone = self._known.pop(job._node, None)
        if gone is not None and self._emit_notifications:
            self.notifier.notify(base.REMOVAL, {'job': gone})

    # -- history and the dead-letter ---------------------------------------

    def history(self, job: ZookeeperJob) -> list[base.Attempt]:
        """Every taskflow-ng claim of ``job``, oldest first."""
        self._ensure_connected('Reading the history of job %s' % job.uuid)
        with self._wrapped('Reading the history of job %s' % job.uuid):
            meta, _ = self._read_meta(job._node)
        if meta.get('uuid') not in (None, job.uuid):
            return []  # another path's job of the same node name
        attempts = []
        for item in meta.get('attempts', []):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                attempts.append(base.Attempt(
                    who=item['who'], claimed_at=float(item['claimed_at']),
                    token=int(item['token']), ended_at=item.get('ended_at'),
                    outcome=item.get('outcome'), reason=item.get('reason')))
        return base.lost_attempts(attempts)

    def iter_trashed(self) -> Iterator[ZookeeperJob]:
        """The jobs in the trash (also those the original trashed)."""
        self._ensure_connected('Listing trashed jobs')
        with self._wrapped('Listing trashed jobs'):
            children = self._call('get_children', self._trash_path)
            found = []
            for node in sorted(children):
                path = posixpath.join(self._trash_path, node)
                try:
                    raw, stat = self._call('get', path)
                except k_exc.NoNodeError:
                    continue
                job = self._job_from(path, raw, stat, 'trashed job %s' % path,
                                     trashed=True)
                if job is not None:
                    found.append(job)
        return iter(found)

    # -- entities ------------------------------------------------------------

    def register_entity(self, entity: Any) -> None:
        """Register a conductor (an ephemeral node under ``.entities``)."""
        if entity.kind != 'conductor':
            raise exc.NotImplementedError(
                "Not implemented for other entity type '%s'" % entity.kind)
        self._ensure_connected('Registering entity %s' % entity.name)
        path = posixpath.join(self._entity_path, entity.kind, entity.name)
        with self._wrapped('Registering entity %s' % entity.name):
            try:
                self._client.create(path, _to_json(entity.to_dict()),
                                    ephemeral=True, makepath=True)
            except k_exc.NodeExistsError:
                pass

    # -- posting ---------------------------------------------------------------

    def post(self, name: str, book: Any = None, details: dict | None = None,
             priority: base.JobPriority | str = base.JobPriority.NORMAL
             ) -> ZookeeperJob:
        """Post a job (a sequenced node, as the original writes it)."""
        priority = base.JobPriority.convert(priority)
        self._ensure_connected('Posting job %s' % name)
        posting: dict[str, Any] = {'uuid': str(uuidlib.uuid4()), 'name': name,
                                   'priority': priority.value,
                                   'details': details or {}}
        if book is not None:
            posting['book'] = {'name': book.name, 'uuid': book.uuid}
        with self._wrapped('Posting job %s' % name):
            path, stat = self._call(
                'create', posixpath.join(self._path, self.JOB_PREFIX),
                _to_json(posting), sequence=True, include_data=True)
        job = ZookeeperJob(self, name, posting['uuid'], path,
                           details=posting['details'],
                           backend=self._persistence,
                           book_data=posting.get('book'), priority=priority,
                           created_on=_ms_to_datetime(stat.ctime),
                           last_modified=_ms_to_datetime(stat.mtime))
        if book is not None:
            job._book = book
        with self._known_lock:
            fresh = job._node not in self._known
            self._known.setdefault(job._node, job)
        if fresh and self._emit_notifications:
            self.notifier.notify(base.POSTED, {'job': job})
        return job
