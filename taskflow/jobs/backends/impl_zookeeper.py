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
import itertools
import json
import math
import posixpath
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator
from typing import Any, NamedTuple

from taskflow import exceptions as exc
from taskflow import logging
from taskflow.jobs import base
from taskflow.jobs.backends import _notifier
from taskflow.jobs.backends import _zookeeper_watch
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


def _from_json(raw: bytes, what: str) -> dict[str, Any]:
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


_VERBS = {'abandoned': 'abandon', 'trashed': 'trash'}


def _check_expiry(expiry: float | None) -> float:
    if expiry is None:
        return base.DEFAULT_CLAIM_EXPIRY
    try:
        value = float(expiry)
    except (TypeError, ValueError):
        raise ValueError('Claim expiry must be a number of seconds, not %r'
                         % (expiry,)) from None
    if not (value > 0 and math.isfinite(value)):
        # Claims always end (also when the session lives on).
        raise ValueError('Claim expiry must be positive and finite, not %r'
                         % (expiry,))
    return value


class _Lock:
    """A job's lock node as read: who holds it, until when (ng locks)."""

    def __init__(self, data: dict[str, Any], stat: Any, server_now: float) -> None:
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


class _Held(NamedTuple):
    """A claim this job object made (or renewed), as far as we know."""

    who: str
    lock_version: int
    session: Any       # the client's session id when claimed
    deadline: float    # monotonic: the claim has surely not expired before


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
        self._zk_board = board
        # The history node's version after this object's claim: a claim
        # taken over since changes it, which fences consume/abandon/trash
        # (a new lock's version alone could equal ours).
        self._meta_version: int | None = None
        # Set by a successful claim, so consume can skip reading the lock.
        self._held: _Held | None = None
        self._last_modified = last_modified
        self._trashed = trashed

    @property
    def path(self) -> str:
        """The job's znode."""
        return self._path

    @property
    def lock_path(self) -> str:
        """The znode of the job's claim (exists while claimed)."""
        return self._path + self._zk_board.LOCK_POSTFIX

    @property
    def last_modified(self) -> datetime.datetime | None:
        return self._last_modified

    @property
    def state(self) -> str:
        if self._trashed:
            return 'COMPLETE'
        return self._zk_board._job_state(self)


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
        # Nodes whose history node we know exists (they were claimed).
        self._histories: set[str] = set()
        self._watch_generation = itertools.count(1)
        self._watched: tuple[set[str], int] = (set(), 0)
        self._watch: _zookeeper_watch.ChildrenWatch | None = None
        self._watch_lock = threading.Lock()
        # The watch starts when first needed (see _ensure_watch): a board
        # that only posts never pays for it.
        self._events_wanted = False
        self.notifier = _notifier.WatchedNotifier(self._want_events)
        # The last children listed and the job nodes among them: a listing
        # is filtered by its difference to the last one (see _job_nodes).
        self._seen: tuple[set[str], set[str]] = (set(), set())

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

    def _zk_job(self, job: base.Job) -> ZookeeperJob:
        if not isinstance(job, ZookeeperJob):
            raise TypeError('Job %s is not a job of a ZooKeeper board (it is'
                            ' a %s)' % (getattr(job, 'uuid', job),
                                        type(job).__name__))
        return job

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
        self._check_live()
        result = getattr(self._client, method + '_async')(*args, **kwargs)
        return result.get(timeout=self._op_timeout)

    def _commit(self, txn: Any) -> list:
        self._check_live()
        return txn.commit_async().get(timeout=self._op_timeout)

    def _check_live(self) -> None:
        # kazoo queues requests made while it reconnects and sends them
        # later: one we gave up on (a claim, a post) would then still
        # happen. Refuse them instead while the connection is down.
        if not self._client.connected:
            raise k_exc.ConnectionLoss('not connected (state %s)'
                                       % self._client.state)

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
        if self._events_wanted:
            self._ensure_watch()

    def _want_events(self) -> None:
        # Someone registered on the notifier: POSTED/REMOVAL of other
        # boards' moves come from the watch.
        self._events_wanted = True
        if self._connected:
            self._ensure_watch()

    def _ensure_watch(self) -> None:
        """Watch the board's children (from now until ``close``).

        Started by the first listing, ``wait``, claim or notifier
        registration: what the watch sees wakes ``wait``, feeds the
        notifier, and lets ``iterjobs``/``claim`` skip what rivals took.
        """
        if self._watch is not None:
            return
        with self._watch_lock:
            if self._watch is not None or not self._watching:
                return
            watch = _zookeeper_watch.ChildrenWatch(
                self._client, self._path, self._on_children, name=self.name)
            watch.start()
            self._watch = watch

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
        with self._watch_lock:
            self._watching = False
            watch, self._watch = self._watch, None
        if watch is not None:
            watch.stop()
        if self._owned:
            with contextlib.suppress(Exception):
                kazoo_utils.finalize_client(self._client)
        self._connected = False
        with self._known_lock:
            self._known.clear()
        with self._changed:
            self._changed.notify_all()

    # -- listing -------------------------------------------------------------

    def _on_children(self, children: list[str]) -> None:
        if not self._watching:
            return
        # What the watch saw last, newer than a listing taken before it.
        current = set(children)
        self._watched = (current, next(self._watch_generation))
        try:
            self._refresh(current)
        except Exception:
            LOG.warning('ZooKeeper board %r: could not refresh its jobs after'
                        ' a change', self.name, exc_info=True)
        with self._changed:
            self._changed.notify_all()

    def _load_jobs(self, nodes: list[str]) -> list[ZookeeperJob]:
        """The postings of ``nodes`` (requested at once, not one by one)."""
        paths = [posixpath.join(self._path, node) for node in nodes]
        pending = [self._client.get_async(path) for path in paths]
        jobs = []
        for path, result in zip(paths, pending):
            try:
                raw, stat = result.get(timeout=self._op_timeout)
            except k_exc.NoNodeError:
                continue  # consumed meanwhile
            job = self._job_from(path, raw, stat, 'job %s' % path)
            if job is not None:
                jobs.append(job)
        return jobs

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

    def _job_nodes(self, children: set[str]) -> set[str]:
        """The job nodes among ``children`` (a lock is no job).

        Only the names that changed since the last listing are looked at:
        a busy board lists thousands of names many times a second.
        """
        with self._known_lock:
            seen, seen_nodes = self._seen
            added = children - seen
            nodes = seen_nodes - (seen - children)
            nodes.update(c for c in added if self._is_job_node(c))
            self._seen = (children, nodes)
        return nodes

    def _refresh(self, children: set[str]) -> set[str]:
        """Bring the known jobs in line with ``children``; notify changes;
        the job nodes among ``children``."""
        nodes = self._job_nodes(children)
        posted: list[ZookeeperJob] = []
        removed: list[ZookeeperJob] = []
        with self._known_lock:
            for node in self._known.keys() - nodes:
                removed.append(self._known.pop(node))
                self._histories.discard(node)
            missing = list(nodes - self._known.keys())
        for job in self._load_jobs(missing):
            with self._known_lock:
                if job._node not in self._known:
                    self._known[job._node] = job
                    posted.append(job)
        if self._emit_notifications:
            for job in posted:
                self.notifier.notify(base.POSTED, {'job': job})
            for job in removed:
                self.notifier.notify(base.REMOVAL, {'job': job})
        return nodes

    def _list(self) -> tuple[list[ZookeeperJob], set[str]]:
        """The current jobs and the nodes of the locked ones."""
        self._ensure_connected('Listing jobs')
        with self._wrapped('Listing jobs'):
            children = self._call('get_children', self._path)
            nodes = self._refresh(set(children))
        with self._known_lock:
            jobs = [self._known[n] for n in nodes if n in self._known]
        locked = {c[:-len(self.LOCK_POSTFIX)] for c in children
                  if c.endswith(self.LOCK_POSTFIX)}
        # Highest priority first, oldest first within a priority.
        jobs.sort(key=lambda j: (base._RANK[j.priority], j.sequence))
        return jobs, locked

    def iterjobs(self, only_unclaimed: bool = False,
                 ensure_fresh: bool = False) -> Iterator[ZookeeperJob]:
        """The board's jobs (always listed afresh: one request), highest
        priority first; ``only_unclaimed`` skips held claims."""
        listed_at = self._watched[1]
        jobs, locked = self._list()
        self._ensure_watch()
        for job in jobs:
            if only_unclaimed:
                # Callers claim as they go: skip, at no cost, what the watch
                # saw claimed or gone since the listing (rivals' work). A
                # lock seen at listing time is read below: it may be expired.
                children, generation = self._watched
                if generation > listed_at and (
                        job._node not in children
                        or (job._node not in locked
                            and job.lock_path.rsplit('/', 1)[1] in children)):
                    continue
                if job._node in locked:
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
            self._ensure_watch()  # its first listing wakes us if needed
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

    def find_owner(self, job: base.Job) -> str | None:
        """Who holds ``job``'s claim (``None`` if unclaimed or expired)."""
        job = self._zk_job(job)
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

    def claim(self, job: base.Job, who: str,
              expiry: float | None = None) -> None:
        """Claim ``job`` for ``who`` for ``expiry`` seconds (bounded by the
        session); sets ``job.claim_token``."""
        job = self._zk_job(job)
        base.check_who(who)
        expiry = _check_expiry(expiry)
        self._ensure_connected('Claiming job %s' % job.uuid)
        self._ensure_watch()
        # A job never claimed (as far as we know) and not locked (as far as
        # the watch saw) is claimed in one request, reading nothing first:
        # the transaction fails harmlessly if it guessed wrong.
        optimistic = (job._node not in self._histories
                      and job.lock_path.rsplit('/', 1)[1]
                      not in self._watched[0])
        for _ in range(10):
            if optimistic:
                lock, meta, meta_stat = None, {}, None
            else:
                lock = self._read_lock(job, include_expired=True)
                if lock is not None and not lock.expired():
                    raise exc.UnclaimableJob(
                        'Job %s (%s) is already claimed by %r'
                        % (job.uuid, job.name, lock.owner))
                with self._wrapped('Claiming job %s' % job.uuid):
                    meta, meta_stat = self._read_meta(job._node)
            with self._wrapped('Claiming job %s' % job.uuid):
                now = time.time()
                sent = time.monotonic()
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
                job._meta_version = (0 if meta_stat is None
                                     else meta_stat.version + 1)
                # The lock was written after `sent`, so it expires after
                # sent + expiry (whatever the clocks say).
                job._held = _Held(who, 0, self._client.client_id,
                                  sent + expiry)
                self._histories.add(job._node)
                return
            if isinstance(results[0], k_exc.NoNodeError):
                raise exc.NotFound('Claiming failure: job %s (%s) is not on'
                                   ' the board (consumed or trashed)'
                                   % (job.uuid, job.path))
            if optimistic and isinstance(results[-1], k_exc.NodeExistsError):
                self._histories.add(job._node)  # claimed before
            optimistic = False
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
        if job._meta_version not in (None, meta_stat.version):
            raise exc.JobFailure('Can not %s job %s: its claim was taken over'
                                 % (_VERBS[outcome], job.uuid))
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

    def renew_claim(self, job: base.Job, who: str,
                    expiry: float | None = None) -> None:
        """Extend ``who``'s live claim of ``job`` by ``expiry`` seconds."""
        job = self._zk_job(job)
        expiry = _check_expiry(expiry)
        lock = self._owned_lock(job, who, 'renew the claim of')
        data = dict(lock.data, expiry=expiry)
        with self._wrapped('Renewing the claim of job %s' % job.uuid):
            try:
                sent = time.monotonic()
                stat = self._call('set', job.lock_path, _to_json(data),
                                  lock.stat.version)
                self._clock_offset = stat.mtime / 1000.0 - time.monotonic()
                held = job._held
                if held is not None and held.who == who \
                        and lock.token == job.claim_token:
                    job._held = held._replace(lock_version=stat.version,
                                              deadline=sent + expiry)
            except (k_exc.BadVersionError, k_exc.NoNodeError) as e:
                raise exc.JobFailure('Can not renew the claim of job %s: %s'
                                     ' lost it meanwhile' % (job.uuid, who),
                                     cause=e) from e

    def _consume_held(self, job: ZookeeperJob, who: str) -> bool:
        """Consume in one request, without reading the lock first, when
        this job object's own claim is surely still ``who``'s: same
        session (so its ephemeral lock was not dropped), not expired (by
        our clock, from before the lock was written), and fenced by the
        lock's and the history node's versions (a takeover changes the
        history's). ``False``: not sure, or the request failed; nothing
        changed then."""
        held = job._held
        if (held is None or held.who != who or job._meta_version is None
                or held.session != self._client.client_id
                or time.monotonic() >= held.deadline):
            return False
        with self._wrapped('Consuming job %s' % job.uuid):
            txn = self._client.transaction()
            txn.delete(job.lock_path, held.lock_version)
            txn.delete(job.path, -1)
            txn.delete(self._meta_path(job._node), job._meta_version)
            results = self._commit(txn)
        return not any(isinstance(r, Exception) for r in results)

    def consume(self, job: base.Job, who: str) -> None:
        """``who`` is done: the job (and its history) leave the board."""
        job = self._zk_job(job)
        base.check_who(who)
        self._ensure_connected('Can not consume job %s' % job.uuid)
        if self._consume_held(job, who):
            job._held = None
            self._histories.discard(job._node)
            self._forget(job)
            return
        # Not sure the claim is ours, or it is not: look, and say why.
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
                    txn.delete(self._meta_path(job._node),
                               -1 if job._meta_version is None
                               else job._meta_version)
                results = self._commit(txn)
            if with_meta and isinstance(results[-1], k_exc.NoNodeError):
                continue
            self._check_results(results, job, 'consume')
            break
        job._held = None
        self._histories.discard(job._node)
        self._forget(job)

    def abandon(self, job: base.Job, who: str,
                reason: str | None = None) -> None:
        """``who`` gives ``job`` back, unclaimed."""
        job = self._zk_job(job)
        lock = self._owned_lock(job, who, 'abandon')
        job._held = None
        with self._wrapped('Abandoning job %s' % job.uuid):
            txn = self._client.transaction()
            txn.delete(job.lock_path, lock.stat.version)
            self._end_attempt(txn, job, lock, 'abandoned', reason)
        self._finish(txn, job, 'abandon')

    def trash(self, job: base.Job, who: str,
              reason: str | None = None) -> None:
        """Move ``job`` to the trash (``<parent>/.trash``), history kept."""
        job = self._zk_job(job)
        lock = self._owned_lock(job, who, 'trash')
        job._held = None
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

    def history(self, job: base.Job) -> list[base.Attempt]:
        """Every taskflow-ng claim of ``job``, oldest first."""
        job = self._zk_job(job)
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
        # Known jobs are forgotten by the watch once gone: without one (a
        # board that only posts) keeping them would only grow memory.
        with self._known_lock:
            fresh = job._node not in self._known
            if self._watch is not None:
                self._known.setdefault(job._node, job)
        if fresh and self._emit_notifications:
            self.notifier.notify(base.POSTED, {'job': job})
        return job
