"""A jobboard on Redis, interoperable with the original TaskFlow's.

Layout (shared with the original, see ``_redis_scripts`` for the keys): the
postings are a hash ``<namespace>:listings`` of msgpack documents, a claim is
the key ``<namespace>:<uuid>.owned`` holding the owner's name, with the
claim's expiry; trashed postings move to ``<namespace>:trash``. Jobs posted,
claimed, consumed, abandoned or trashed by either side are seen by the other.

What taskflow-ng adds, in keys the original ignores: claims expire unless
renewed (``DEFAULT_CLAIM_EXPIRY``; the original's never do by default), a
claim-token counter per job (``job.claim_token`` strictly increases with each
claim, across processes) and each job's history of claims, which a trashed
job keeps (``iter_trashed``, the dead-letter).

Every claim/consume/abandon/trash/post is one Lua script: atomic, and one
round trip.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import random
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator
from typing import Any, NamedTuple

from taskflow import exceptions as exc
from taskflow import logging
from taskflow.jobs import base
from taskflow.jobs.backends import _notifier
from taskflow.jobs.backends import _redis_codec as codec
from taskflow.jobs.backends import _redis_events
from taskflow.jobs.backends import _redis_runner
from taskflow.jobs.backends import _redis_scripts as scripts
from taskflow.utils import redis_utils

try:
    from redis import backoff, retry
    from redis import exceptions as redis_exceptions
    from redis import sentinel as redis_sentinel
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError("The redis jobboard needs the redis package, which is"
                      " not installed: pip install 'taskflow-ng[redis]'"
                      ) from e

__all__ = ['JobNotOwned', 'RedisJob', 'RedisJobBoard']

LOG = logging.getLogger(__name__)

#: Seconds the history of a consumed job is kept (then Redis drops it).
CONSUMED_HISTORY_TTL = 24 * 3600


class JobNotOwned(exc.JobFailure, exc.NotFound):
    """Nobody owns the job (unclaimed, or its claim expired).

    Both a ``JobFailure`` (what taskflow-ng's boards raise for an operation
    by a non-owner) and a ``NotFound`` (what the original raises when it
    cannot determine the owner), so handlers written for either catch it.
    """


def _utcnow() -> datetime.datetime:
    # Naive UTC, as the original writes its timestamps.
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class _JobKeys(NamedTuple):
    owner: bytes
    last_modified: bytes
    token: bytes
    history: bytes


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):  # from a URI's query
        return value.strip().lower() in ('1', 'true', 'yes', 'on')
    return bool(value)


class _Posting(NamedTuple):
    """A decoded posting (what a ``RedisJob`` is made from)."""

    sort_key: tuple[int, int]  # (priority rank, sequence): higher sorts first
    uuid: str
    name: str
    sequence: int
    details: dict[str, Any]
    book_data: dict[str, Any] | None
    priority: base.JobPriority
    created_on: datetime.datetime | None


def _sort_key(posting: _Posting) -> tuple[int, int]:
    return posting.sort_key


def _to_ms(expiry: Any) -> int:
    """``expiry`` seconds as positive milliseconds (``ValueError`` else)."""
    ms = int(float(expiry) * 1000.0) if not isinstance(expiry, bool) else 0
    if ms <= 0:
        raise ValueError('Provided expiry (when converted to milliseconds)'
                         ' must be greater than zero instead of %s' % (expiry,))
    return ms


class RedisJob(base.Job):
    """A job on a :class:`RedisJobBoard`."""

    def __init__(self, board: RedisJobBoard, name: str, uuid: str,
                 sequence: int, details: dict | None = None,
                 backend: Any = None, book: Any = None,
                 book_data: dict | None = None,
                 priority: base.JobPriority | str = base.JobPriority.NORMAL,
                 created_on: datetime.datetime | None = None) -> None:
        super().__init__(board, name, uuid, details=details, backend=backend,
                         book=book, book_data=book_data, priority=priority,
                         sequence=sequence, created_on=created_on)
        self._key = uuid.encode('ascii')
        # The job's own keys all start with this (built on demand: listing
        # a thousand jobs should not build four thousand keys).
        self._prefix = board.join(self._key)

    @property
    def key(self) -> bytes:
        """The job's field in the board's listings hash."""
        return self._key

    @property
    def owner_key(self) -> bytes:
        return self._prefix + RedisJobBoard.OWNED_POSTFIX

    @property
    def last_modified_key(self) -> bytes:
        return self._prefix + RedisJobBoard.LAST_MODIFIED_POSTFIX

    @property
    def board(self) -> RedisJobBoard:
        return self._board  # type: ignore[return-value]

    def expires_in(self) -> float | redis_utils.UnknownExpire:
        """Seconds until the claim expires, or ``UnknownExpire``
        (``DOES_NOT_EXPIRE`` for a claim without expiry,
        ``KEY_NOT_FOUND`` when nobody holds it)."""
        with self.board._wrap('read the claim expiry of job %s' % self.uuid):
            return redis_utils.get_expiry(self.board._client, self.owner_key)

    def extend_expiry(self, expiry: float) -> bool:
        """Make the current claim expire ``expiry`` seconds from now
        (whoever holds it); ``False`` when nobody holds it."""
        with self.board._wrap('extend the claim of job %s' % self.uuid):
            return redis_utils.apply_expiry(self.board._client,
                                            self.owner_key, expiry)

    @property
    def last_modified(self) -> datetime.datetime | None:
        with self.board._wrap('read job %s' % self.uuid):
            raw = self.board._client.get(self.last_modified_key)
        return codec.loads(raw) if raw else None

    @property
    def state(self) -> str:
        return self.board._state(self)


class RedisJobBoard(base.NotifyingJobBoard):
    """A jobboard whose jobs live in a Redis server (or a Sentinel-managed
    one), laid out as the original TaskFlow's redis board lays them out.

    ``conf`` keys: the client's (``host``, ``port``, ``username``,
    ``password``, ``db``, ``encoding``, ``encoding_errors``,
    ``socket_timeout``, ``socket_connect_timeout``, ``retry_on_timeout``,
    ``health_check_interval``, ``unix_socket_path``, ``ssl``, ``ssl_*``),
    ``namespace`` (``'taskflow'``: the prefix of every key), and for
    Sentinel ``sentinel`` (the master's name), ``sentinel_fallbacks``
    (more ``'host:port'`` sentinels) and ``sentinel_kwargs``.

    ``notifier`` emits ``POSTED`` and ``REMOVAL`` (``{'job': job}``, from a
    background thread started when the first callback registers) for jobs
    taskflow-ng boards post, consume or trash; the original's moves are not
    announced.
    """

    CLIENT_CONF_TRANSFERS = (
        ('host', str), ('port', int), ('username', str), ('password', str),
        ('db', int), ('encoding', str), ('encoding_errors', str),
        ('socket_timeout', float), ('socket_connect_timeout', float),
        ('retry_on_timeout', _as_bool), ('health_check_interval', float),
        ('unix_socket_path', str), ('ssl', _as_bool), ('ssl_keyfile', str),
        ('ssl_certfile', str), ('ssl_cert_reqs', str),
        ('ssl_ca_certs', str),
    )
    DEFAULT_NAMESPACE = b'taskflow'
    NAMESPACE_SEP = b':'
    KEY_PIECE_SEP = b'.'
    OWNED_POSTFIX = b'.owned'
    LAST_MODIFIED_POSTFIX = b'.last_modified'
    TOKEN_POSTFIX = b'.token'
    HISTORY_POSTFIX = b'.history'
    MIN_REDIS_VERSION = (2, 6)
    #: Seconds between looks at the listings while ``wait()`` waits (jobs
    #: posted by taskflow-ng wake it at once; the original's do not).
    WAIT_POLL = 0.25

    def __init__(self, name: str, conf: dict, client: Any = None,
                 persistence: Any = None) -> None:
        super().__init__(name, conf)
        self._persistence = persistence
        self._client = client
        self._owns_client = client is None
        self._closed = True
        self._lock = threading.Lock()
        namespace = conf.get('namespace', self.DEFAULT_NAMESPACE)
        if isinstance(namespace, str):
            namespace = namespace.encode('utf-8')
        self._namespace: bytes = namespace
        self._encoding = conf.get('encoding') or 'utf-8'
        self._listings_key = self.join(b'listings')
        self._sequence_key = self.join(b'sequence')
        self._trash_key = self.join(b'trash')
        self._posted_channel = self.join(b'posted')
        self._removed_channel = self.join(b'removed')
        self.notifier = _notifier.WatchedNotifier(self._want_events)
        self._events_wanted = False
        self._listener: _redis_events.Listener | None = None
        self._runner: _redis_runner.ScriptRunner | None = None
        # listings field -> (raw posting, parsed posting): see _listing()
        self._parsed: dict[bytes, tuple[bytes, _Posting | None]] = {}
        # Claims that failed because someone else had (or had consumed)
        # the job: see _unclaimed().
        self._lost_races = 0

    # -- keys --------------------------------------------------------------

    @property
    def namespace(self) -> bytes:
        return self._namespace

    def join(self, key_piece: bytes, *more_pieces: bytes) -> bytes:
        """``key_piece`` (and ``more_pieces``, ``.``-separated) prefixed with
        the namespace."""
        key = self.KEY_PIECE_SEP.join((key_piece,) + more_pieces)
        if self._namespace:
            return self._namespace + self.NAMESPACE_SEP + key
        return key

    @property
    def listings_key(self) -> bytes:
        return self._listings_key

    @property
    def sequence_key(self) -> bytes:
        return self._sequence_key

    @property
    def trash_key(self) -> bytes:
        return self._trash_key

    # -- connection --------------------------------------------------------

    def _client_kwargs(self) -> dict:
        conf = self._conf
        kwargs: dict[str, Any] = {}
        if 'host' not in conf and conf.get('hostname'):
            # A URI gives 'hostname' as host[:port].
            host = str(conf['hostname']).rpartition(':')
            kwargs['host'] = host[0] if host[1] and host[2].isdigit() \
                else host[2]
        for key, convert in self.CLIENT_CONF_TRANSFERS:
            if conf.get(key) is None:
                continue
            try:
                kwargs[key] = convert(conf[key])
            except (TypeError, ValueError) as e:
                raise ValueError('Jobboard %r: invalid %s %r (%s)'
                                 % (self._name, key, conf[key], e)) from e
        if not kwargs.get('ssl'):
            for key in list(kwargs):
                if key.startswith('ssl_'):
                    del kwargs[key]
        return kwargs

    def _make_client(self) -> Any:
        kwargs = self._client_kwargs()
        # Retry a dropped connection at once, then briefly: a killed
        # connection costs one reconnect, a dead server fails in well under
        # a second (redis-py's default backs off for seconds). Retried
        # scripts are safe: see the nonces in _redis_scripts.
        kwargs['retry'] = retry.Retry(
            backoff.ExponentialBackoff(cap=0.2, base=0.02), 3)
        kwargs['retry_on_error'] = [redis_exceptions.ConnectionError,
                                    redis_exceptions.TimeoutError]
        # Named, so operators (and tests) can find the board's connections
        # in CLIENT LIST; names may not contain spaces.
        kwargs['client_name'] = 'taskflow-jobboard:%s' % ''.join(
            c if c.isprintable() and not c.isspace() else '_'
            for c in self._name)
        master = self._conf.get('sentinel')
        if master:
            sentinels = [(kwargs.pop('host', 'localhost'),
                          kwargs.pop('port', 26379))]
            for fallback in self._conf.get('sentinel_fallbacks') or ():
                host, _, port = str(fallback).rpartition(':')
                sentinels.append((host.strip('[]'), int(port)))
            sentinel = redis_sentinel.Sentinel(
                sentinels, sentinel_kwargs=self._conf.get('sentinel_kwargs'),
                **kwargs)
            return sentinel.master_for(master, redis_class=self._client_class())
        return self._client_class()(**kwargs)

    @staticmethod
    def _client_class() -> type:
        return redis_utils.RedisClient

    @property
    def connected(self) -> bool:
        return not self._closed and self._client is not None

    def connect(self) -> None:
        """Connect (and check the server is Redis >= 2.6)."""
        with self._lock:
            if self._runner is not None:  # connecting again
                self._runner.close()
                self._runner = None
            if self._owns_client:
                if self._client is not None:
                    with contextlib.suppress(Exception):
                        self._client.close()
                self._client = self._make_client()
            with self._wrap('connect to redis', connecting=True):
                ok, version = redis_utils.is_server_new_enough(
                    self._client, self.MIN_REDIS_VERSION)
            if not ok:
                raise exc.JobFailure(
                    'Jobboard %r: redis %s is too old, %s or newer is needed'
                    % (self._name, version,
                       '.'.join(map(str, self.MIN_REDIS_VERSION))))
            runner = _redis_runner.ScriptRunner(self._client, {
                'post': scripts.POST, 'claim': scripts.CLAIM,
                'renew': scripts.RENEW, 'end': scripts.END,
                'state': scripts.STATE, 'unclaimed': scripts.UNCLAIMED})
            with self._wrap('load the scripts of the jobboard',
                            connecting=True):
                runner.load()
            self._runner = runner
            self._closed = False
            if self._events_wanted:
                self._start_listener()

    def close(self) -> None:
        """Drop the connection (claims stay until they expire)."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        with self._lock:
            if self._runner is not None:
                self._runner.close()
                self._runner = None
            if self._owns_client and self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()
                self._client = None
            self._closed = True

    # -- notifications -----------------------------------------------------

    def _want_events(self) -> None:
        with self._lock:
            self._events_wanted = True
            if self.connected:
                self._start_listener()

    def _start_listener(self) -> None:
        # Called with self._lock held.
        if self._listener is None:
            self._listener = _redis_events.Listener(
                self._name, self._client,
                [self._posted_channel, self._removed_channel], self._deliver)
            self._listener.start()

    def _deliver(self, channel: bytes, data: bytes) -> None:
        try:
            job = self._job_from_posting(data)
        except Exception:
            LOG.debug('Jobboard %r: ignoring an unreadable %r message',
                      self._name, channel, exc_info=True)
            return
        event = base.POSTED if channel == self._posted_channel \
            else base.REMOVAL
        self.notifier.notify(event, {'job': job})

    @contextlib.contextmanager
    def _wrap(self, what: str, connecting: bool = False) -> Iterator[None]:
        """Turn client errors into ``JobFailure`` (keeping the cause)."""
        if not connecting and (self._closed or self._client is None):
            raise exc.JobFailure('Can not %s: jobboard %r is not connected'
                                 % (what, self._name))
        try:
            yield
        except (redis_exceptions.RedisError, OSError) as e:
            raise exc.JobFailure('Jobboard %r failed to %s: %s'
                                 % (self._name, what, e)) from e

    def _run(self, script: str, what: str, keys: list, args: list) -> Any:
        # What _wrap does, inline: this is every claim's and consume's path.
        runner = self._runner  # close() from another thread may clear it
        if runner is None or self._closed or self._client is None:
            raise exc.JobFailure('Can not %s: jobboard %r is not connected'
                                 % (what, self._name))
        try:
            return runner(script, keys, args)
        except (redis_exceptions.RedisError, OSError) as e:
            raise exc.JobFailure('Jobboard %r failed to %s: %s'
                                 % (self._name, what, e)) from e

    # -- encoding ----------------------------------------------------------

    def _encode_owner(self, who: str) -> bytes:
        return who.encode(self._encoding)

    def _decode_owner(self, raw: bytes) -> str:
        return raw.decode(self._encoding)

    def _job_from_posting(self, raw: bytes) -> RedisJob:
        return self._make_job(self._parse_posting(raw))

    @staticmethod
    def _parse_posting(raw: bytes) -> _Posting:
        posting = codec.loads(raw)
        priority = base.JobPriority.convert(posting.get('priority', 'NORMAL'))
        sequence = posting.get('sequence', 0)
        return _Posting((-base._RANK[priority], sequence), posting['uuid'],
                        posting['name'], sequence,
                        posting.get('details') or {}, posting.get('book'),
                        priority, posting.get('created_on'))

    def _make_job(self, posting: _Posting) -> RedisJob:
        # details copied: a caller changing them must not change the cache
        return RedisJob(self, posting.name, posting.uuid, posting.sequence,
                        details=dict(posting.details),
                        backend=self._persistence,
                        book_data=posting.book_data,
                        priority=posting.priority,
                        created_on=posting.created_on)

    # -- the board ---------------------------------------------------------

    def post(self, name: str, book: Any = None, details: dict | None = None,
             priority: base.JobPriority | str = base.JobPriority.NORMAL
             ) -> RedisJob:
        """Post a job (one round trip); only the book's name and uuid travel."""
        priority = base.JobPriority.convert(priority)
        job_uuid = str(uuidlib.uuid4())
        created_on = _utcnow()
        posting: dict[str, Any] = {'uuid': job_uuid, 'name': name,
                                   'priority': priority.value,
                                   'created_on': created_on,
                                   'details': details or {}}
        if book is not None:
            posting['book'] = {'name': book.name, 'uuid': book.uuid}
        try:
            packed = codec.dumps_map_missing_one(posting)
        except TypeError as e:
            raise exc.JobFailure('Can not post job %r on jobboard %r: %s'
                                 % (name, self._name, e)) from e
        sequence = self._run('post', 'post job %r' % name,
                             [self._sequence_key, self._listings_key,
                              self.join(job_uuid.encode('ascii')
                                        + self.TOKEN_POSTFIX)],
                             [job_uuid, packed, self._posted_channel])
        if sequence == -1:
            # A retried post (the first reply was lost) that had happened.
            sequence = self._posted_sequence(job_uuid)
        return RedisJob(self, name, job_uuid, int(sequence),
                        details=posting['details'], backend=self._persistence,
                        book=book, book_data=posting.get('book'),
                        priority=priority, created_on=created_on)

    def _posted_sequence(self, job_uuid: str) -> int:
        with self._wrap('read job %s' % job_uuid):
            raw = self._client.hget(self._listings_key, job_uuid)
        return self._parse_posting(raw).sequence if raw else 0

    def _listing(self) -> list[_Posting]:
        """The parsed postings, highest priority and newest first (as the
        original lists them).

        Postings never change once posted, so each is parsed once and kept
        (by its raw bytes) for later listings.
        """
        with self._wrap('list jobs'):
            raw = self._client.hgetall(self._listings_key)
        cache = self._parsed
        parsed = []
        for key, value in raw.items():
            hit = cache.get(key)
            if hit is None or hit[0] != value:
                try:
                    hit = (value, self._parse_posting(value))
                except Exception:
                    # Logged once per board, not on every listing.
                    LOG.warning('Jobboard %r: skipping unreadable posting %r',
                                self._name, key, exc_info=True)
                    hit = (value, None)
                cache[key] = hit
            if hit[1] is not None:
                parsed.append(hit[1])
        if len(cache) > len(raw):
            # list(cache) is one atomic step: other threads may list too.
            for key in list(cache):
                if key not in raw:
                    cache.pop(key, None)
        parsed.sort(key=_sort_key, reverse=True)
        return parsed

    def iterjobs(self, only_unclaimed: bool = False,
                 ensure_fresh: bool = False) -> Iterator[RedisJob]:
        """The jobs on the board, highest priority and newest first (read
        from the server on every call: always fresh).

        With ``only_unclaimed``, jobs claimed after the listing are skipped
        too once the caller loses a claim race: see :meth:`_unclaimed`.
        """
        parsed = self._listing()
        if only_unclaimed and parsed:
            with self._wrap('list jobs'):
                owners = self._client.mget(self._owner_keys(parsed))
            parsed = [p for p, owner in zip(parsed, owners) if owner is None]
            return self._unclaimed(parsed)
        return iter([self._make_job(p) for p in parsed])

    def _owner_keys(self, postings: list[_Posting]) -> list[bytes]:
        join, postfix = self.join, self.OWNED_POSTFIX
        return [join(p.uuid.encode('ascii') + postfix) for p in postings]

    def _unclaimed(self, postings: list[_Posting]) -> Iterator[RedisJob]:
        """The jobs of ``postings`` (unclaimed when listed), in order while
        the caller's claims succeed.

        Consumers that list the same jobs in the same order would race for
        each job in turn, the losers paying a claim per job their rivals
        took. So once a claim of a job this yielded fails (claimed or gone
        meanwhile), the rest is checked again in one round trip, what
        rivals took is dropped, and the rest of the highest priority
        continues from a random point: the losers spread out instead of
        trailing the winner. Priorities keep their order; a lone consumer
        keeps the listing's.
        """
        pending, i = postings, 0
        while i < len(pending):
            lost = self._lost_races
            yield self._make_job(pending[i])
            i += 1
            if self._lost_races != lost and i < len(pending):
                pending, i = self._spread(self._still_unclaimed(pending[i:])), 0

    def _still_unclaimed(self, postings: list[_Posting]) -> list[_Posting]:
        reply = self._run('unclaimed', 'list jobs',
                          [self._listings_key, *self._owner_keys(postings)],
                          [p.uuid for p in postings])
        return [p for p, free in zip(postings, reply) if free]

    @staticmethod
    def _spread(postings: list[_Posting]) -> list[_Posting]:
        """``postings`` with their first priority rotated by a random
        amount."""
        if len(postings) < 2:
            return postings
        top = postings[0].priority
        end = next((n for n, p in enumerate(postings) if p.priority != top),
                   len(postings))
        k = random.randrange(end)
        return postings[k:end] + postings[:k] + postings[end:]

    def wait(self, timeout: float | None = None) -> Iterator[RedisJob]:
        """Block until a job is on the board; ``NotFound`` after ``timeout``."""
        started = time.monotonic()
        with self._wrap('wait for jobs'):
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            with self._wrap('wait for jobs'):
                pubsub.subscribe(self._posted_channel)
            while True:
                jobs = list(self.iterjobs())
                if jobs:
                    return iter(jobs)
                left = self.WAIT_POLL
                if timeout is not None:
                    left = min(left, timeout - (time.monotonic() - started))
                    if left <= 0:
                        raise base.expired_waiting(timeout)
                with self._wrap('wait for jobs'):
                    pubsub.get_message(timeout=left)
        finally:
            with contextlib.suppress(Exception):
                pubsub.close()

    @property
    def job_count(self) -> int:
        with self._wrap('count jobs'):
            return int(self._client.hlen(self._listings_key))

    def _keys(self, job: base.Job) -> _JobKeys:
        """The keys of ``job`` (any ``Job``: they derive from its uuid)."""
        prefix = job._prefix if isinstance(job, RedisJob) else \
            self.join(job.uuid.encode('ascii'))
        return _JobKeys(prefix + self.OWNED_POSTFIX,
                        prefix + self.LAST_MODIFIED_POSTFIX,
                        prefix + self.TOKEN_POSTFIX,
                        prefix + self.HISTORY_POSTFIX)

    def find_owner(self, job: base.Job) -> str | None:
        with self._wrap('find the owner of job %s' % job.uuid):
            raw = self._client.get(self._keys(job).owner)
        return self._decode_owner(raw) if raw is not None else None

    def _state(self, job: base.Job) -> str:
        state = self._run('state', 'read the state of job %s' % job.uuid,
                          [self._listings_key, self._keys(job).owner],
                          [job.uuid])
        return ('UNCLAIMED', 'CLAIMED', 'COMPLETE')[int(state)]

    def claim(self, job: base.Job, who: str, expiry: float | None = None
              ) -> None:
        """Claim ``job`` for ``who`` for ``expiry`` seconds (default
        ``base.DEFAULT_CLAIM_EXPIRY``); sets ``job.claim_token``.

        :raises ValueError: ``expiry`` is not more than 0 ms.
        :raises UnclaimableJob: someone holds it (named in the message).
        :raises NotFound: the job is not on the board.
        """
        base.check_who(who)
        ms = _to_ms(base.DEFAULT_CLAIM_EXPIRY if expiry is None else expiry)
        keys = self._keys(job)
        reply = self._run(
            'claim', 'claim job %s' % job.uuid,
            [self._listings_key, keys.owner, keys.last_modified, keys.token,
             keys.history],
            [job.uuid, self._encode_owner(who), ms, repr(time.time()),
             codec.dumps(_utcnow()), os.urandom(8).hex()])
        status = reply[0]
        if status == scripts.S_OK:
            job.claim_token = int(reply[1])
            return
        self._lost_races += 1
        if status == scripts.S_UNKNOWN_JOB:
            raise exc.NotFound('Job %s not found to be claimed' % job.uuid)
        if status == scripts.S_ALREADY_CLAIMED:
            raise exc.UnclaimableJob('Job %s already claimed by %s'
                                     % (job.uuid,
                                        self._decode_owner(reply[1])))
        raise exc.JobFailure('Unexpected reply %r claiming job %s'
                             % (reply, job.uuid))

    def renew_claim(self, job: base.Job, who: str,
                    expiry: float | None = None) -> None:
        """Extend ``who``'s claim of ``job`` to ``expiry`` seconds from now.

        :raises JobFailure: ``who`` no longer holds the claim (or holds a
            later claim than ``job.claim_token``).
        """
        base.check_who(who)
        ms = _to_ms(base.DEFAULT_CLAIM_EXPIRY if expiry is None else expiry)
        token = '' if job.claim_token is None else str(job.claim_token)
        keys = self._keys(job)
        reply = self._run('renew', 'renew the claim of job %s' % job.uuid,
                          [self._listings_key, keys.owner, keys.token],
                          [job.uuid, self._encode_owner(who), ms, token])
        self._check_end_reply(reply, job, who, 'renew the claim of')

    def _check_end_reply(self, reply: list[Any], job: base.Job, who: str,
                         action: str) -> None:
        status = reply[0]
        if status == scripts.S_OK:
            return
        if status == scripts.S_UNKNOWN_JOB:
            raise exc.NotFound('Can not %s job %s: it is not on jobboard %r'
                               % (action, job.uuid, self._name))
        if status == scripts.S_UNKNOWN_OWNER:
            raise JobNotOwned('Can not %s job %s which we can not determine'
                              ' the owner of (nobody holds a claim on it)'
                              % (action, job.uuid))
        if status == scripts.S_NOT_OWNER:
            raise exc.JobFailure('Can not %s job %s which is not owned by %s'
                                 ' (it is actively owned by %s)'
                                 % (action, job.uuid, who,
                                    self._decode_owner(reply[1])))
        raise exc.JobFailure('Unexpected reply %r to %s job %s'
                             % (reply, action, job.uuid))

    def _end(self, job: base.Job, who: str, outcome: str, action: str,
             reason: str | None) -> None:
        base.check_who(who)
        keys = self._keys(job)
        reply = self._run(
            'end', '%s job %s' % (action, job.uuid),
            [self._listings_key, keys.owner, keys.last_modified, keys.token,
             keys.history, self._trash_key],
            [job.uuid, self._encode_owner(who), outcome, repr(time.time()),
             reason or '', codec.dumps(_utcnow()), CONSUMED_HISTORY_TTL,
             os.urandom(8).hex(), self._removed_channel])
        self._check_end_reply(reply, job, who, action)

    def consume(self, job: base.Job, who: str) -> None:
        """``who`` is done with ``job``: it leaves the board."""
        self._end(job, who, 'consumed', 'consume', None)

    def abandon(self, job: base.Job, who: str, reason: str | None = None
                ) -> None:
        """``who`` gives ``job`` back, unclaimed."""
        self._end(job, who, 'abandoned', 'abandon', reason)

    def trash(self, job: base.Job, who: str, reason: str | None = None
              ) -> None:
        """Move ``job`` to the trash (dead-letter), keeping its history."""
        self._end(job, who, 'trashed', 'trash', reason)

    def history(self, job: base.Job) -> list[base.Attempt]:
        """Every claim of ``job`` made by taskflow-ng, oldest first (claims
        by the original are not recorded)."""
        with self._wrap('read the history of job %s' % job.uuid):
            raw = self._client.hgetall(self._keys(job).history)
        attempts = []
        for value in raw.values():
            entry = json.loads(value)
            ended = entry.get('ended_at')
            attempts.append(base.Attempt(
                who=entry['who'], claimed_at=float(entry['claimed_at']),
                token=int(entry['token']),
                ended_at=float(ended) if ended is not None else None,
                outcome=entry.get('outcome'), reason=entry.get('reason')))
        attempts.sort(key=lambda a: a.token)
        return base.lost_attempts(attempts)

    def iter_trashed(self) -> Iterator[RedisJob]:
        """The trashed jobs (including the original's), newest first."""
        with self._wrap('list trashed jobs'):
            raw = self._client.hgetall(self._trash_key)
        parsed = [self._parse_posting(value) for value in raw.values()]
        parsed.sort(key=_sort_key, reverse=True)
        return iter([self._make_job(p) for p in parsed])

    def register_entity(self, entity: Any) -> None:
        """Nothing to record on Redis (as with the original)."""
